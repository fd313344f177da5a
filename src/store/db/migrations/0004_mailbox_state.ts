/**
 * 0004 — columns the mailbox-state service needs beyond 0001.
 *
 * - folders.deleted_at: a deleted folder stays as a tombstone row (renamed so its name is free
 *   again) while its logically deleted entries wait for the purge job, which references it.
 * - mailboxes.last_uid_validity: the last UIDVALIDITY handed out in the mailbox, so a folder
 *   re-created under an old name always gets a strictly greater one (RFC 9051 §2.3.1.1).
 */
import type { Kysely } from 'kysely';
import type { Migration } from '../migrator.js';

export const migration0004: Migration = {
  version: 4,
  name: 'mailbox_state',
  async up(db: Kysely<any>) {
    await db.schema.alterTable('folders').addColumn('deleted_at', 'bigint').execute();
    await db.schema.alterTable('mailboxes').addColumn('last_uid_validity', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
    // The purge job looks for tombstones; live folders are found by (mailbox_id, name).
    await db.schema.createIndex('folders_deleted').on('folders').columns(['deleted_at']).execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropIndex('folders_deleted').execute();
    await db.schema.alterTable('mailboxes').dropColumn('last_uid_validity').execute();
    await db.schema.alterTable('folders').dropColumn('deleted_at').execute();
  },
};
