/**
 * Folders: reading, creating, and the default set every mailbox gets.
 *
 * UIDVALIDITY (RFC 9051 §2.3.1.1): a new folder takes max(now in seconds, last value handed out in
 * this mailbox + 1) from `mailboxes.last_uid_validity`. So a folder re-created under the name of a
 * deleted or renamed one always gets a strictly greater value, even within the same second or
 * after the clock stepped back, and a client's cached UIDs for the old incarnation are invalidated.
 */
import { sql, type Kysely } from 'kysely';
import { newId, now } from '../../store/db/database.js';
import type { DB } from '../../store/db/types.js';
import { inScope, type Scope } from '../scope.js';
import type { Ctx } from './context.js';
import { readFolder, readMailbox, stateDb, writeTransaction, type FolderRow, type Tx } from './db.js';
import { FolderExistsError, InvalidFolderNameError, LimitExceededError } from './errors.js';
import { publishAll } from './events.js';
import { INBOX, isInbox, normaliseFolderName, superiorNames } from './folder-names.js';
import { MAX_FOLDERS_PER_MAILBOX } from './limits.js';
import { toFolder } from './rows.js';
import { normaliseSpecialUse, SPECIAL_FOLDERS } from './special-folders.js';
import type { CreateFolderOptions, Folder } from './types.js';

type MailboxRef = { id: string; tenant_id: string };

async function nextUidValidity(trx: Tx, mailboxId: string): Promise<number> {
  const nowSeconds = Math.floor(now() / 1000);
  const row = await trx
    .updateTable('mailboxes')
    .set({
      last_uid_validity: sql<number>`CASE WHEN last_uid_validity + 1 > ${nowSeconds} THEN last_uid_validity + 1 ELSE ${nowSeconds} END`,
    })
    .where('id', '=', mailboxId)
    .returning('last_uid_validity')
    .executeTakeFirstOrThrow();
  return Number(row.last_uid_validity);
}

/**
 * Inserts a folder unless the name is taken (ON CONFLICT DO NOTHING, so two concurrent creators
 * of the same name cannot both succeed). Returns null when the name already existed.
 */
export async function insertFolder(
  trx: Tx,
  mailbox: MailboxRef,
  name: string,
  opts: { specialUse: string | null; subscribed: boolean },
): Promise<FolderRow | null> {
  const row: FolderRow = {
    id: newId(),
    tenant_id: mailbox.tenant_id,
    mailbox_id: mailbox.id,
    name,
    special_use: opts.specialUse,
    uid_validity: await nextUidValidity(trx, mailbox.id),
    uid_next: 1,
    highest_modseq: 1,
    subscribed: opts.subscribed ? 1 : 0,
    created_at: now(),
    deleted_at: null,
  };
  const res = await trx
    .insertInto('folders')
    .values(row)
    .onConflict((oc) => oc.columns(['mailbox_id', 'name']).doNothing())
    .executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0n) > 0 ? row : null;
}

export async function liveFolderRows(trx: Tx, mailboxId: string): Promise<FolderRow[]> {
  return trx.selectFrom('folders').selectAll().where('mailbox_id', '=', mailboxId).where('deleted_at', 'is', null).execute();
}

/** INBOX first, then by name (code-point order, so a parent sorts before its children). */
function byName(a: FolderRow, b: FolderRow): number {
  if (a.name === INBOX) return -1;
  if (b.name === INBOX) return 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Creates INBOX, Sent, Drafts, Junk, Trash and Archive where missing; idempotent. `trx` lets the
 * mailbox-creating transaction include it (then no event is published: nobody can be listening
 * to a mailbox that does not exist yet). Returns the folders it created.
 */
export async function createDefaultFolders(ctx: Ctx, scope: Scope, mailboxId: string, trx?: Kysely<DB>): Promise<Folder[]> {
  const run = async (t: Tx): Promise<Folder[]> => {
    const mailbox = await readMailbox(t, scope, mailboxId);
    const have = new Set((await liveFolderRows(t, mailboxId)).map((r) => r.name));
    const created: Folder[] = [];
    for (const sf of SPECIAL_FOLDERS) {
      if (have.has(sf.name)) continue;
      const row = await insertFolder(t, mailbox, sf.name, { specialUse: sf.specialUse, subscribed: true });
      if (row) created.push(toFolder(row));
    }
    return created;
  };
  return trx ? run(trx as unknown as Tx) : writeTransaction(ctx.db, run);
}

export async function listFolders(ctx: Ctx, scope: Scope, mailboxId: string): Promise<Folder[]> {
  const trx = stateDb(ctx.db);
  await readMailbox(trx, scope, mailboxId);
  return (await liveFolderRows(trx, mailboxId)).sort(byName).map(toFolder);
}

export async function getFolder(ctx: Ctx, scope: Scope, folderId: string): Promise<Folder> {
  return toFolder(await readFolder(stateDb(ctx.db), scope, folderId));
}

/** By name (INBOX case-insensitive); null when absent or when the name could never be valid. */
export async function findFolder(ctx: Ctx, scope: Scope, mailboxId: string, name: string): Promise<Folder | null> {
  const trx = stateDb(ctx.db);
  await readMailbox(trx, scope, mailboxId);
  let canonical: string;
  try {
    canonical = normaliseFolderName(name);
  } catch (err) {
    if (err instanceof InvalidFolderNameError) return null;
    throw err;
  }
  const row = await trx
    .selectFrom('folders')
    .selectAll()
    .where('mailbox_id', '=', mailboxId)
    .where('name', '=', canonical)
    .where('deleted_at', 'is', null)
    .where(inScope(scope))
    .executeTakeFirst();
  return row ? toFolder(row) : null;
}

/** The folder carrying an RFC 6154 attribute (e.g. \Sent for saving submitted mail), or null. */
export async function findSpecialFolder(ctx: Ctx, scope: Scope, mailboxId: string, specialUse: string): Promise<Folder | null> {
  const trx = stateDb(ctx.db);
  await readMailbox(trx, scope, mailboxId);
  const row = await trx
    .selectFrom('folders')
    .selectAll()
    .where('mailbox_id', '=', mailboxId)
    .where('special_use', '=', normaliseSpecialUse(specialUse))
    .where('deleted_at', 'is', null)
    .where(inScope(scope))
    .orderBy('created_at')
    .executeTakeFirst();
  return row ? toFolder(row) : null;
}

/**
 * Creates missing superior folders first ("a/b/c" also creates "a" and "a/b"), as RFC 9051 §6.3.4
 * says a server SHOULD. Returns the folder named `name`.
 */
export async function createFolder(ctx: Ctx, scope: Scope, mailboxId: string, name: string, opts: CreateFolderOptions = {}): Promise<Folder> {
  const canonical = normaliseFolderName(name);
  const specialUse = normaliseSpecialUse(opts.specialUse);
  const subscribed = opts.subscribed ?? true;
  if (isInbox(canonical)) throw new FolderExistsError(INBOX);
  const created = await writeTransaction(ctx.db, async (t) => {
    const mailbox = await readMailbox(t, scope, mailboxId);
    const live = new Set((await liveFolderRows(t, mailboxId)).map((r) => r.name));
    if (live.has(canonical)) throw new FolderExistsError(canonical);
    const missing = [...superiorNames(canonical).filter((p) => !live.has(p)), canonical];
    if (live.size + missing.length > MAX_FOLDERS_PER_MAILBOX) throw new LimitExceededError('folders per mailbox', MAX_FOLDERS_PER_MAILBOX);
    const rows: FolderRow[] = [];
    for (const n of missing) {
      const own = n === canonical;
      const row = await insertFolder(t, mailbox, n, { specialUse: own ? specialUse : null, subscribed });
      // A superior created concurrently is fine; the folder itself being taken is not.
      if (!row && own) throw new FolderExistsError(canonical);
      if (row) rows.push(row);
    }
    return rows;
  });
  await publishAll(
    ctx,
    created.map((r) => ({ tenantId: r.tenant_id, mailboxId: r.mailbox_id, folderId: r.id, kind: 'folder_create' as const })),
  );
  return toFolder(created[created.length - 1]);
}
