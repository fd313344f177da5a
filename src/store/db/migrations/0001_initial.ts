/**
 * 0001 — tenancy, mail storage, queue and audit tables.
 *
 * Every tenant-owned table carries `tenant_id` (SPEC §9) and an index that starts with it, so a
 * scoped query never scans another tenant's rows.
 */
import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.js';
import type { Migration } from '../migrator.js';

const ts = 'bigint' as const;

export const migration0001: Migration = {
  version: 1,
  name: 'initial',
  async up(db: Kysely<any>, dialect: Dialect) {
    await db.schema
      .createTable('tenants')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
      .addColumn('plan', 'text', (c) => c.notNull().defaultTo('default'))
      .addColumn('limits_json', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('legal_hold', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('retention_days', 'integer')
      .addColumn('used_bytes', ts, (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .addColumn('deleted_at', ts)
      .execute();

    await db.schema
      .createTable('domains')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
      .addColumn('catch_all_mailbox_id', 'text')
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('domains_tenant').on('domains').columns(['tenant_id', 'name']).execute();

    await db.schema
      .createTable('users')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('email', 'text', (c) => c.notNull().unique())
      .addColumn('display_name', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('domain_scope_json', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('password_hash', 'text', (c) => c.notNull())
      .addColumn('password_history_json', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
      .addColumn('locale', 'text', (c) => c.notNull().defaultTo('en'))
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .addColumn('last_login_at', ts)
      .execute();
    await db.schema.createIndex('users_tenant').on('users').columns(['tenant_id', 'email']).execute();

    await db.schema
      .createTable('mailboxes')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('domain_id', 'text', (c) => c.notNull().references('domains.id'))
      .addColumn('user_id', 'text', (c) => c.references('users.id'))
      .addColumn('address', 'text', (c) => c.notNull().unique())
      .addColumn('local_part', 'text', (c) => c.notNull())
      .addColumn('quota_bytes', ts, (c) => c.notNull().defaultTo(0))
      .addColumn('used_bytes', ts, (c) => c.notNull().defaultTo(0))
      .addColumn('legal_hold', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('mailboxes_tenant').on('mailboxes').columns(['tenant_id', 'address']).execute();
    await db.schema.createIndex('mailboxes_user').on('mailboxes').columns(['user_id']).execute();

    await db.schema
      .createTable('aliases')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('domain_id', 'text', (c) => c.notNull().references('domains.id'))
      .addColumn('address', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', ts, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('aliases_tenant').on('aliases').columns(['tenant_id', 'address']).execute();

    await db.schema
      .createTable('alias_targets')
      .addColumn('alias_id', 'text', (c) => c.notNull().references('aliases.id').onDelete('cascade'))
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('mailbox_id', 'text', (c) => c.notNull().references('mailboxes.id').onDelete('cascade'))
      .addPrimaryKeyConstraint('alias_targets_pk', ['alias_id', 'mailbox_id'])
      .execute();

    await db.schema
      .createTable('folders')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('mailbox_id', 'text', (c) => c.notNull().references('mailboxes.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('special_use', 'text')
      .addColumn('uid_validity', ts, (c) => c.notNull())
      .addColumn('uid_next', ts, (c) => c.notNull().defaultTo(1))
      .addColumn('highest_modseq', ts, (c) => c.notNull().defaultTo(1))
      .addColumn('subscribed', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('created_at', ts, (c) => c.notNull())
      .addUniqueConstraint('folders_mailbox_name', ['mailbox_id', 'name'])
      .execute();
    await db.schema.createIndex('folders_tenant').on('folders').columns(['tenant_id', 'mailbox_id']).execute();

    await db.schema
      .createTable('messages')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('blob_key', 'text', (c) => c.notNull())
      .addColumn('size', ts, (c) => c.notNull())
      .addColumn('sha256', 'text', (c) => c.notNull())
      .addColumn('message_id_header', 'text')
      .addColumn('subject', 'text')
      .addColumn('from_addr', 'text')
      .addColumn('to_addrs', 'text')
      .addColumn('cc_addrs', 'text')
      .addColumn('date_header', ts)
      .addColumn('preview', 'text')
      .addColumn('has_attachments', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('attachments_json', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('structure_json', 'text')
      .addColumn('auth_results', 'text')
      .addColumn('spam_score', 'real')
      .addColumn('thread_id', 'text')
      .addColumn('received_at', ts, (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('messages_tenant').on('messages').columns(['tenant_id', 'received_at']).execute();
    await db.schema.createIndex('messages_blob').on('messages').columns(['blob_key']).execute();

    await db.schema
      .createTable('folder_entries')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('mailbox_id', 'text', (c) => c.notNull().references('mailboxes.id'))
      .addColumn('folder_id', 'text', (c) => c.notNull().references('folders.id'))
      .addColumn('message_id', 'text', (c) => c.notNull().references('messages.id'))
      .addColumn('uid', ts, (c) => c.notNull())
      .addColumn('modseq', ts, (c) => c.notNull())
      .addColumn('flags_json', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('keywords_json', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('internal_date', ts, (c) => c.notNull())
      .addColumn('size', ts, (c) => c.notNull())
      .addColumn('deleted_at', ts)
      // RFC 9051 §2.3.1.1: a UID is unique within a folder for the life of its UIDVALIDITY.
      .addUniqueConstraint('folder_entries_folder_uid', ['folder_id', 'uid'])
      .execute();
    await db.schema.createIndex('folder_entries_modseq').on('folder_entries').columns(['folder_id', 'modseq']).execute();
    await db.schema.createIndex('folder_entries_message').on('folder_entries').columns(['message_id']).execute();
    await db.schema.createIndex('folder_entries_tenant').on('folder_entries').columns(['tenant_id', 'mailbox_id']).execute();
    await db.schema.createIndex('folder_entries_deleted').on('folder_entries').columns(['deleted_at']).execute();

    // Text index for substring search on unsegmented text (Japanese): trigrams in both dialects.
    if (dialect === 'sqlite') {
      await sql`CREATE VIRTUAL TABLE message_text USING fts5(
        message_id UNINDEXED, tenant_id UNINDEXED, subject, addresses, body, tokenize = 'trigram')`.execute(db);
    } else {
      await sql`CREATE EXTENSION IF NOT EXISTS pg_trgm`.execute(db);
      await db.schema
        .createTable('message_text')
        .addColumn('message_id', 'text', (c) => c.primaryKey().references('messages.id').onDelete('cascade'))
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('addresses', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('body', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
      await sql`CREATE INDEX message_text_subject_trgm ON message_text USING gin (subject gin_trgm_ops)`.execute(db);
      await sql`CREATE INDEX message_text_addresses_trgm ON message_text USING gin (addresses gin_trgm_ops)`.execute(db);
      await sql`CREATE INDEX message_text_body_trgm ON message_text USING gin (body gin_trgm_ops)`.execute(db);
      await db.schema.createIndex('message_text_tenant').on('message_text').columns(['tenant_id']).execute();
    }

    await db.schema
      .createTable('queue_jobs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('queue', 'text', (c) => c.notNull())
      .addColumn('payload_json', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('max_attempts', 'integer', (c) => c.notNull())
      .addColumn('backoff_json', 'text', (c) => c.notNull())
      .addColumn('run_at', ts, (c) => c.notNull())
      .addColumn('locked_by', 'text')
      .addColumn('locked_until', ts)
      .addColumn('last_error', 'text')
      .addColumn('dedupe_key', 'text', (c) => c.unique())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .addColumn('finished_at', ts)
      .execute();
    await db.schema.createIndex('queue_jobs_due').on('queue_jobs').columns(['queue', 'status', 'run_at']).execute();

    await db.schema
      .createTable('audit_log')
      .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
      .addColumn('tenant_id', 'text')
      .addColumn('timestamp', ts, (c) => c.notNull())
      .addColumn('event_type', 'text', (c) => c.notNull())
      .addColumn('actor_json', 'text', (c) => c.notNull())
      .addColumn('target_json', 'text', (c) => c.notNull())
      .addColumn('metadata_json', 'text', (c) => c.notNull().defaultTo('{}'))
      .execute();
    await db.schema.createIndex('audit_log_tenant').on('audit_log').columns(['tenant_id', 'timestamp']).execute();
  },
};
