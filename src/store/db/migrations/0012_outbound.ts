/**
 * 0012 — outbound mail (SPEC §3.2, §3.3, §5.2, §8):
 *
 * - `outbound_messages`: one row per submitted message with remote recipients (the queue record an
 *   admin lists, shows, holds, retries, deletes). `id` is the pipeline's queue id; the delivery job
 *   in the `outbound` queue carries it. `policy_json` explains the policy decision (signals and
 *   values) — SPEC §8 "every decision explained".
 * - `outbound_recipients`: per remote recipient: its domain, state (`pending`, `deferred`,
 *   `delivered`, `bounced`, `cancelled`), the last reply and attempt times. Delivery marks a
 *   recipient `delivered` right after the server's `250` so a retry never sends it twice.
 * - `outbound_attempts`: per (message, destination, attempt): the MX, address, TLS and the SMTP
 *   transcript (bounded) — SPEC §5.2.
 * - `outbound_accounts`: the policy state of a sending account: level, suspension, last score.
 * - `outbound_whitelist`: named accounts with raised limits (newsletters).
 * - `outbound_events`: policy history (blocks, suspensions, admin reports) read by the history signal.
 *
 * Purely additive (docs/adr/0002-additive-migrations.md).
 */
import type { Kysely } from 'kysely';
import type { Migration } from '../migrator.js';

export const migration0012: Migration = {
  version: 12,
  name: 'outbound',
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('outbound_messages')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('message_id', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text')
      .addColumn('mail_from', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('held', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('policy_json', 'text')
      .addColumn('job_id', 'text')
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_attempt_at', 'bigint')
      .addColumn('delay_warned', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('outbound_messages_status').on('outbound_messages').columns(['status', 'created_at']).execute();
    await db.schema.createIndex('outbound_messages_tenant').on('outbound_messages').columns(['tenant_id', 'created_at']).execute();

    await db.schema
      .createTable('outbound_recipients')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('outbound_id', 'text', (c) => c.notNull())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('address', 'text', (c) => c.notNull())
      .addColumn('domain', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('last_code', 'integer')
      .addColumn('last_reply', 'text')
      .addColumn('last_attempt_at', 'bigint')
      .addColumn('finished_at', 'bigint')
      .execute();
    await db.schema.createIndex('outbound_recipients_message').on('outbound_recipients').column('outbound_id').execute();

    await db.schema
      .createTable('outbound_attempts')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('outbound_id', 'text', (c) => c.notNull())
      .addColumn('domain', 'text', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('mx_host', 'text')
      .addColumn('address', 'text')
      .addColumn('tls', 'text')
      .addColumn('result', 'text', (c) => c.notNull())
      .addColumn('transcript', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('outbound_attempts_message').on('outbound_attempts').columns(['outbound_id', 'at']).execute();

    await db.schema
      .createTable('outbound_accounts')
      .addColumn('user_id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('level', 'text', (c) => c.notNull())
      .addColumn('suspended_at', 'bigint')
      .addColumn('suspended_reason', 'text')
      .addColumn('auto_reenable_at', 'bigint')
      .addColumn('last_score', 'real')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('outbound_accounts_tenant').on('outbound_accounts').columns(['tenant_id', 'level']).execute();

    await db.schema
      .createTable('outbound_whitelist')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text', (c) => c.notNull().unique())
      .addColumn('profile', 'text', (c) => c.notNull())
      .addColumn('hourly_limit', 'integer', (c) => c.notNull())
      .addColumn('daily_limit', 'integer', (c) => c.notNull())
      .addColumn('note', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('outbound_events')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text')
      .addColumn('domain_id', 'text')
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('details_json', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('outbound_events_user').on('outbound_events').columns(['user_id', 'at']).execute();
  },
  async down(db: Kysely<any>) {
    for (const t of ['outbound_events', 'outbound_whitelist', 'outbound_accounts', 'outbound_attempts', 'outbound_recipients', 'outbound_messages']) {
      await db.schema.dropTable(t).execute();
    }
  },
};
