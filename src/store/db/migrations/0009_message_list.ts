/**
 * 0009 — indexes for the REST message list (src/core/messages/list.ts): each keyset page of a
 * mailbox's or a folder's live entries, by arrival date or by size, is one index range scan even
 * with 100 000 messages in a mailbox (SPEC §12: list p95 < 200 ms). Partial indexes: logically
 * deleted entries waiting for the purge cost nothing.
 *
 * Purely additive (docs/adr/0002-additive-migrations.md).
 */
import { sql, type Kysely } from 'kysely';
import type { Migration } from '../migrator.js';

const INDEXES = [
  ['folder_entries_mailbox_date', ['mailbox_id', 'internal_date', 'id']],
  ['folder_entries_folder_date', ['folder_id', 'internal_date', 'id']],
  ['folder_entries_mailbox_size', ['mailbox_id', 'size', 'id']],
] as const;

export const migration0009: Migration = {
  version: 9,
  name: 'message_list_indexes',
  async up(db: Kysely<any>) {
    for (const [name, columns] of INDEXES) {
      await db.schema.createIndex(name).on('folder_entries').columns([...columns]).where(sql.ref('deleted_at'), 'is', null).execute();
    }
  },
  async down(db: Kysely<any>) {
    for (const [name] of INDEXES) await db.schema.dropIndex(name).execute();
  },
};
