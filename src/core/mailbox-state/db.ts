/**
 * Database access shared by the mailbox-state modules: the table types including the columns
 * migration 0004 adds, the write-transaction helper, and the folder row lock.
 *
 * Lock order (PostgreSQL row locks; SQLite takes one database-wide write lock instead):
 *   folders (ascending id) → mailboxes (ascending id) → tenants.
 * Every writer follows it, so two transactions never wait on each other in a cycle.
 */
import { sql, type Kysely } from 'kysely';
import type { Database, Dialect } from '../../store/db/database.js';
import type { DB, MailboxesTable } from '../../store/db/types.js';
import { inScope, type Scope } from '../scope.js';
import { NotFoundError } from './errors.js';

/** Column added by migration 0004_mailbox_state that only the mailbox-state service reads. */
export interface MailboxStateColumns {
  /** Last UIDVALIDITY handed to a folder of this mailbox (keeps re-created names strictly greater). */
  last_uid_validity: number;
}

/** The schema as the mailbox-state modules see it. */
export type StateDB = Omit<DB, 'mailboxes'> & { mailboxes: MailboxesTable & MailboxStateColumns };

export type Tx = Kysely<StateDB>;
export type FolderRow = StateDB['folders'];
export type EntryRow = StateDB['folder_entries'];

export function stateDb(db: Database): Tx {
  return db.kysely as unknown as Tx;
}

/** The same transaction typed with the base schema, for helpers written against `Kysely<DB>`. */
export function baseDb(trx: Tx): Kysely<DB> {
  return trx as unknown as Kysely<DB>;
}

/** PostgreSQL errors worth one more try: serialization_failure, deadlock_detected. */
const RETRYABLE_PG = new Set(['40001', '40P01']);
const MAX_ATTEMPTS = 3;

/**
 * Runs `fn` in one write transaction.
 *
 * SQLite: `BEGIN IMMEDIATE` takes the write lock up front. A plain (deferred) BEGIN would start as
 * a reader and could fail with SQLITE_BUSY when upgrading to a writer while another process
 * committed meanwhile — busy_timeout cannot help in that case, IMMEDIATE waits on it instead.
 * The callback runs on the single connection Kysely hands out, so it must use `trx` only.
 *
 * PostgreSQL: READ COMMITTED; concurrency is made safe by row locks (`lockFolder`, atomic
 * `UPDATE … RETURNING` counters), retried on the rare deadlock/serialization failure.
 */
export async function writeTransaction<T>(db: Database, fn: (trx: Tx) => Promise<T>): Promise<T> {
  const k = stateDb(db);
  if (db.dialect === 'postgres') {
    for (let attempt = 1; ; attempt++) {
      try {
        return await k.transaction().execute(fn);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (attempt >= MAX_ATTEMPTS || !code || !RETRYABLE_PG.has(code)) throw err;
      }
    }
  }
  return k.connection().execute(async (conn) => {
    await sql`BEGIN IMMEDIATE`.execute(conn);
    try {
      const result = await fn(conn);
      await sql`COMMIT`.execute(conn);
      return result;
    } catch (err) {
      await sql`ROLLBACK`.execute(conn).catch(() => {});
      throw err;
    }
  });
}

/**
 * Reads a live folder inside the scope and, on PostgreSQL, locks its row until commit: every
 * change to a folder's entries goes through here first, which serialises UID/MODSEQ allocation,
 * read-modify-write of flags and UNCHANGEDSINCE checks per folder.
 */
export async function lockFolder(trx: Tx, dialect: Dialect, scope: Scope, folderId: string): Promise<FolderRow> {
  let q = trx.selectFrom('folders').selectAll().where('id', '=', folderId).where('deleted_at', 'is', null).where(inScope(scope));
  if (dialect === 'postgres') q = q.forUpdate();
  const row = await q.executeTakeFirst();
  if (!row) throw new NotFoundError('folder', folderId);
  return row;
}

/** Reads a live folder inside the scope without locking. */
export async function readFolder(trx: Tx, scope: Scope, folderId: string): Promise<FolderRow> {
  const row = await trx
    .selectFrom('folders')
    .selectAll()
    .where('id', '=', folderId)
    .where('deleted_at', 'is', null)
    .where(inScope(scope))
    .executeTakeFirst();
  if (!row) throw new NotFoundError('folder', folderId);
  return row;
}

export async function readMailbox(trx: Tx, scope: Scope, mailboxId: string) {
  const row = await trx.selectFrom('mailboxes').selectAll().where('id', '=', mailboxId).where(inScope(scope)).executeTakeFirst();
  if (!row) throw new NotFoundError('mailbox', mailboxId);
  return row;
}

/** Splits a list into slices of `size` (bounded SQL IN lists and VALUES batches). */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
