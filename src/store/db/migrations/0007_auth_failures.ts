/**
 * 0007 — `auth_failures`: failed-login counters for the lockout of SPEC §10 (5 failures → 15 min,
 * per account and per client address), used by SMTP AUTH now and IMAP, POP3 and the HTTP login later
 * (src/security/lockout.ts).
 *
 * The counters live in the database, not in a node's memory, so that a cluster locks an account on
 * every node at once and a restart does not reset a lock. One row per key (`account:…` or `ip:…`);
 * `prune` deletes rows whose window and lock are both over, so the table holds only recent attackers.
 *
 * Purely additive (docs/adr/0002-additive-migrations.md).
 */
import type { Kysely } from 'kysely';
import type { Migration } from '../migrator.js';

export const migration0007: Migration = {
  version: 7,
  name: 'auth_failures',
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('auth_failures')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('failures', 'integer', (c) => c.notNull())
      .addColumn('window_started_at', 'bigint', (c) => c.notNull())
      .addColumn('locked_until', 'bigint')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    // `prune` deletes by age.
    await db.schema.createIndex('auth_failures_updated').on('auth_failures').column('updated_at').execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('auth_failures').execute();
  },
};
