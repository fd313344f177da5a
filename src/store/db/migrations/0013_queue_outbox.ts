/**
 * 0013 — `queue_outbox`: jobs written in a database transaction for a queue that lives elsewhere
 * (NATS JetStream). The row commits or rolls back with the data it belongs to (a stored message,
 * an outbound record); a relay moves committed rows into the queue and deletes them
 * (src/queue/outbox.ts, "transactional outbox"). Purely additive (ADR 0002).
 */
import type { Kysely } from 'kysely';
import type { Migration } from '../migrator.js';

export const migration0013: Migration = {
  version: 13,
  name: 'queue_outbox',
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('queue_outbox')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('queue', 'text', (c) => c.notNull())
      .addColumn('payload_json', 'text', (c) => c.notNull())
      .addColumn('options_json', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('queue_outbox_created').on('queue_outbox').column('created_at').execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('queue_outbox').execute();
  },
};
