/**
 * 0010 — `hook_breakers`: the circuit breaker of each (hook, plugin) pair (SPEC §6,
 * src/hooks/circuit-breaker.ts, src/hooks/breaker-store.ts).
 *
 * The state lives in the database so that, with PostgreSQL, every node of a cluster sees the same
 * open breaker: a plugin that hangs is skipped by all nodes after three failures in total, not
 * after three per node. One row per pair; a missing row means "closed, no calls counted".
 * `buckets_json` is the failure-ratio window as a short JSON list of per-10-second
 * [start, calls, failures] triples (at most 30 for the 5-minute window).
 *
 * Purely additive (docs/adr/0002-additive-migrations.md).
 */
import type { Kysely } from 'kysely';
import type { Migration } from '../migrator.js';

export const migration0010: Migration = {
  version: 10,
  name: 'hook_breakers',
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('hook_breakers')
      .addColumn('hook_id', 'text', (c) => c.notNull())
      .addColumn('plugin_id', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('consecutive_failures', 'integer', (c) => c.notNull())
      .addColumn('buckets_json', 'text', (c) => c.notNull())
      .addColumn('opened_at', 'bigint')
      .addColumn('probe_started_at', 'bigint')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('hook_breakers_pk', ['hook_id', 'plugin_id'])
      .execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('hook_breakers').execute();
  },
};
