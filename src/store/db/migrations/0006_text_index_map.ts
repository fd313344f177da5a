/**
 * 0006 — SQLite only: a map from message id to the rowid of its row in the FTS5 table `message_text`.
 *
 * In SQLite `message_text` is an FTS5 virtual table (0001) whose `message_id` column is UNINDEXED:
 * finding a message's row means reading every row (≈ 245 ms per delete at 100 000 messages). FTS5
 * does look rows up by rowid, so `message_text_rowid` records the rowid of each message's row and
 * deletes and re-indexing become two B-tree lookups (src/core/search/text-index.ts).
 *
 * Why a map and not a rowid derived from the message id (a hash): a 63-bit hash of random UUIDs can
 * still collide, and handling a collision needs a probe sequence and a message-id check on every
 * lookup; the map has no collisions and costs one small B-tree. The map is WITHOUT ROWID so that the
 * message id is the table's own key: one B-tree, not a table plus an index on it.
 *
 * PostgreSQL needs nothing: its `message_text` has `message_id` as primary key. The migration is a
 * no-op there (it is still recorded, so versions stay the same in both shapes).
 *
 * Purely additive (docs/adr/0002-additive-migrations.md), apart from removing duplicate index rows —
 * see `up`.
 */
import { sql, type Kysely } from 'kysely';
import type { Migration } from '../migrator.js';

export const migration0006: Migration = {
  version: 6,
  name: 'text_index_map',
  async up(db: Kysely<any>, dialect) {
    if (dialect !== 'sqlite') return;
    await sql`CREATE TABLE message_text_rowid (
      message_id TEXT PRIMARY KEY NOT NULL,
      fts_rowid INTEGER NOT NULL
    ) WITHOUT ROWID`.execute(db);

    // Backfill. Before this migration a second write of the same message added a second row (the
    // old writeTextIndex only inserted in SQLite). The newest row — the highest rowid, since FTS5
    // gives a new row max(rowid) + 1 — is the message's current text, as PostgreSQL's upsert keeps
    // the last write; it is the one mapped, and the older copies are removed so that no row is left
    // that a delete through the map could not reach. Rows without a message id cannot belong to any
    // message (search joins on it) and are left alone.
    await sql`INSERT INTO message_text_rowid (message_id, fts_rowid)
      SELECT message_id, max(rowid) FROM message_text WHERE message_id IS NOT NULL GROUP BY message_id`.execute(db);
    await sql`DELETE FROM message_text
      WHERE message_id IS NOT NULL AND rowid NOT IN (SELECT fts_rowid FROM message_text_rowid)`.execute(db);
  },
  async down(db: Kysely<any>, dialect) {
    // Safe: the code before 0006 never reads the map, and the duplicates removed by `up` were
    // older copies of text that is still indexed.
    if (dialect !== 'sqlite') return;
    await sql`DROP TABLE message_text_rowid`.execute(db);
  },
};
