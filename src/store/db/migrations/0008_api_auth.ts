/**
 * 0008 — the REST API's credentials and the stores behind it (SPEC §10, §11):
 *
 * - `sessions`: server-side web sessions. The row id is the SHA-256 of the cookie value, so a
 *   copy of the database does not hold a usable session; `csrf_hash` binds the double-submit
 *   CSRF token to its session.
 * - `auth_tokens`: bearer access tokens (1 h) and rotating refresh tokens, hashed; a family id ties
 *   a refresh chain together so that reuse of a rotated refresh token revokes the whole chain.
 * - `api_keys`: `mk_live_…` keys, looked up by their public prefix, secret part hashed.
 * - `user_mfa`: TOTP enrolment (secret sealed in `secrets`) and hashed recovery codes;
 *   `tenants.mfa_required` is the per-tenant policy.
 * - `secrets`: envelope-encrypted secrets (AES-256-GCM, per-record data key wrapped by the master
 *   key); every other table refers to a secret by id and never holds plaintext.
 * - `rate_counters`: fixed-window request counters shared by all nodes.
 * - `webhooks`: event webhook subscriptions (secret in `secrets`).
 * - `settings`: reloadable settings changed through the API (override the config file).
 * - `emergency_token_uses`: a `MAIRUST_EMERGENCY_TOKEN` works once; its hash is recorded here.
 * - `dkim_keys`: per-domain DKIM keys (private key sealed in `secrets`).
 *
 * The audit log becomes append-only: triggers refuse UPDATE, and DELETE of rows younger than the
 * 180-day retention (SPEC §10), in both dialects.
 *
 * Purely additive (docs/adr/0002-additive-migrations.md).
 */
import { sql, type Kysely } from 'kysely';
import type { Migration } from '../migrator.js';
import type { Dialect } from '../database.js';

/** SPEC §10: audit rows are kept at least this long; the trigger refuses earlier deletes. */
export const AUDIT_MIN_RETENTION_MS = 180 * 86_400_000;

export const migration0008: Migration = {
  version: 8,
  name: 'api_auth',
  async up(db: Kysely<any>, dialect: Dialect) {
    const pg = dialect === 'postgres';

    await db.schema
      .createTable('secrets')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text')
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('wrapped_key', 'text', (c) => c.notNull())
      .addColumn('ciphertext', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('secrets_key_id').on('secrets').column('key_id').execute();

    await db.schema
      .createTable('sessions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('csrf_hash', 'text', (c) => c.notNull())
      .addColumn('mfa_pending', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('ip', 'text')
      .addColumn('user_agent', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('revoked_at', 'bigint')
      .execute();
    await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
    await db.schema.createIndex('sessions_expires').on('sessions').column('expires_at').execute();

    await db.schema
      .createTable('auth_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('kind', 'text', (c) => c.notNull()) // access | refresh
      .addColumn('family_id', 'text', (c) => c.notNull())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('mfa_pending', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('used_at', 'bigint')
      .addColumn('revoked_at', 'bigint')
      .execute();
    await db.schema.createIndex('auth_tokens_family').on('auth_tokens').column('family_id').execute();
    await db.schema.createIndex('auth_tokens_user').on('auth_tokens').column('user_id').execute();
    await db.schema.createIndex('auth_tokens_expires').on('auth_tokens').column('expires_at').execute();

    await db.schema
      .createTable('api_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('prefix', 'text', (c) => c.notNull().unique())
      .addColumn('secret_hash', 'text', (c) => c.notNull())
      .addColumn('scopes_json', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint')
      .addColumn('last_used_at', 'bigint')
      .addColumn('revoked_at', 'bigint')
      .execute();
    await db.schema.createIndex('api_keys_tenant').on('api_keys').columns(['tenant_id', 'created_at']).execute();
    await db.schema.createIndex('api_keys_user').on('api_keys').column('user_id').execute();

    await db.schema
      .createTable('user_mfa')
      .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('totp_secret_id', 'text')
      .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('recovery_codes_json', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('last_step', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('enrolled_at', 'bigint')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.alterTable('tenants').addColumn('mfa_required', 'integer', (c) => c.notNull().defaultTo(0)).execute();

    await db.schema
      .createTable('rate_counters')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('window_start', 'bigint', (c) => c.notNull())
      .addColumn('count', 'integer', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('rate_counters_expires').on('rate_counters').column('expires_at').execute();

    await db.schema
      .createTable('webhooks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('url', 'text', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('events_json', 'text', (c) => c.notNull())
      .addColumn('secret_id', 'text', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('webhooks_tenant').on('webhooks').column('tenant_id').execute();

    await db.schema
      .createTable('settings')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('value_json', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_by', 'text')
      .execute();

    await db.schema
      .createTable('emergency_token_uses')
      .addColumn('token_hash', 'text', (c) => c.primaryKey())
      .addColumn('used_at', 'bigint', (c) => c.notNull())
      .addColumn('ip', 'text')
      .execute();

    await db.schema
      .createTable('dkim_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('domain_id', 'text', (c) => c.notNull().references('domains.id').onDelete('cascade'))
      .addColumn('selector', 'text', (c) => c.notNull())
      .addColumn('algorithm', 'text', (c) => c.notNull()) // rsa-sha256 | ed25519-sha256
      .addColumn('public_key', 'text', (c) => c.notNull()) // base64 SubjectPublicKeyInfo (RSA) or raw key (Ed25519)
      .addColumn('private_key_secret_id', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull()) // active | retiring | retired
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('retired_at', 'bigint')
      .execute();
    await db.schema.createIndex('dkim_keys_domain_selector').on('dkim_keys').columns(['domain_id', 'selector']).unique().execute();

    // Audit log: append-only (SPEC §10).
    await db.schema.createIndex('audit_log_event').on('audit_log').columns(['event_type', 'timestamp']).execute();
    if (pg) {
      await sql`
        create or replace function mairust_audit_guard() returns trigger language plpgsql as $$
        begin
          if tg_op = 'UPDATE' then
            raise exception 'audit_log is append-only';
          end if;
          if old.timestamp > (extract(epoch from now()) * 1000)::bigint - ${sql.lit(AUDIT_MIN_RETENTION_MS)} then
            raise exception 'audit_log rows are kept for 180 days';
          end if;
          return old;
        end $$`.execute(db);
      await sql`create trigger audit_log_guard before update or delete on audit_log for each row execute function mairust_audit_guard()`.execute(db);
    } else {
      await sql`create trigger audit_log_no_update before update on audit_log begin select raise(abort, 'audit_log is append-only'); end`.execute(db);
      await sql`create trigger audit_log_no_early_delete before delete on audit_log
        when old.timestamp > cast(strftime('%s','now') as integer) * 1000 - ${sql.lit(AUDIT_MIN_RETENTION_MS)}
        begin select raise(abort, 'audit_log rows are kept for 180 days'); end`.execute(db);
    }
  },
  async down(db: Kysely<any>, dialect: Dialect) {
    const pg = dialect === 'postgres';
    if (pg) {
      await sql`drop trigger if exists audit_log_guard on audit_log`.execute(db);
      await sql`drop function if exists mairust_audit_guard()`.execute(db);
    } else {
      await sql`drop trigger if exists audit_log_no_update`.execute(db);
      await sql`drop trigger if exists audit_log_no_early_delete`.execute(db);
    }
    await db.schema.dropIndex('audit_log_event').execute();
    for (const t of ['dkim_keys', 'emergency_token_uses', 'settings', 'webhooks', 'rate_counters', 'user_mfa', 'api_keys', 'auth_tokens', 'sessions', 'secrets']) {
      await db.schema.dropTable(t).execute();
    }
    await db.schema.alterTable('tenants').dropColumn('mfa_required').execute();
  },
};
