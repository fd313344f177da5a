/**
 * 0003 — indexes for queue inspection and housekeeping.
 *
 * 0001's `queue_jobs_due (queue, status, run_at)` serves the workers' claim. Operators page through
 * jobs in creation order (`mairust queue list`, SPEC §3.3) and housekeeping deletes old `done` rows;
 * without these two indexes both would scan the whole table, which grows with every delivered message.
 */
import type { Kysely } from 'kysely';
import type { Migration } from '../migrator.js';

export const migration0003: Migration = {
  version: 3,
  name: 'queue',
  async up(db: Kysely<any>) {
    await db.schema.createIndex('queue_jobs_created').on('queue_jobs').columns(['created_at', 'id']).execute();
    await db.schema.createIndex('queue_jobs_finished').on('queue_jobs').columns(['status', 'finished_at']).execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropIndex('queue_jobs_finished').execute();
    await db.schema.dropIndex('queue_jobs_created').execute();
  },
};
