/**
 * Delivery: placing a stored message into one or more folders, and APPEND (store + deliver).
 *
 * All targets of one deliver() commit together or not at all: UIDs/MODSEQs are allocated, entries
 * inserted and quotas charged in one transaction, and a QuotaExceededError leaves nothing behind.
 * Callers map that error to SMTP `452 4.2.2` or IMAP `NO [OVERQUOTA]` (RFC 9051 §7.1).
 */
import type { Readable } from 'node:stream';
import { newId } from '../../store/db/database.js';
import type { ChangeEvent } from '../../store/events/change-bus.js';
import { inScope, tenantScope, type Scope } from '../scope.js';
import type { Ctx } from './context.js';
import { baseDb, readFolder, stateDb, writeTransaction, type EntryRow, type FolderRow, type Tx } from './db.js';
import { insertEntries } from './entry-writes.js';
import { LimitExceededError, NotFoundError } from './errors.js';
import { publishAll } from './events.js';
import { classifyFlags, type FlagSet } from './flag-rules.js';
import { INBOX, normaliseFolderName } from './folder-names.js';
import { createDefaultFolders } from './folders.js';
import { MAX_DELIVERY_TARGETS } from './limits.js';
import { allocate } from './allocate.js';
import { readMessageRow, putMessageBlob } from './messages.js';
import { storeAndDeliver } from './store-deliver.js';
import { applyUsage, checkQuota } from './quota.js';
import type { AppendOptions, DeliveryResult, DeliveryTarget } from './types.js';

async function folderByName(trx: Tx, mailboxId: string, name: string): Promise<FolderRow | undefined> {
  return trx
    .selectFrom('folders')
    .selectAll()
    .where('mailbox_id', '=', mailboxId)
    .where('name', '=', name)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
}

/**
 * The folder a target asks for. A folderName that does not exist (e.g. chosen by a pre_delivery
 * hook) falls back to INBOX — mail is never refused over a folder name (the Sieve "implicit keep"
 * idea, RFC 5228 §2.10.2). A mailbox without INBOX gets its default folders first.
 */
async function resolveTarget(ctx: Ctx, trx: Tx, scope: Scope, tenantId: string, target: DeliveryTarget): Promise<FolderRow> {
  const mailbox = await trx
    .selectFrom('mailboxes')
    .select(['id', 'tenant_id'])
    .where('id', '=', target.mailboxId)
    .where(inScope(scope))
    .executeTakeFirst();
  // A message and its entries belong to one tenant; a mailbox of another tenant is "not found".
  if (!mailbox || mailbox.tenant_id !== tenantId) throw new NotFoundError('mailbox', target.mailboxId);
  if (target.folderId) {
    const folder = await readFolder(trx, scope, target.folderId);
    if (folder.mailbox_id !== mailbox.id) throw new NotFoundError('folder', target.folderId);
    return folder;
  }
  let name = INBOX;
  try {
    name = normaliseFolderName(target.folderName ?? INBOX);
  } catch {
    name = INBOX;
  }
  const found = (await folderByName(trx, mailbox.id, name)) ?? (await folderByName(trx, mailbox.id, INBOX));
  if (found) return found;
  await createDefaultFolders(ctx, tenantScope(tenantId), mailbox.id, baseDb(trx));
  const inbox = await folderByName(trx, mailbox.id, INBOX);
  if (!inbox) throw new NotFoundError('folder', `${mailbox.id}/${INBOX}`);
  return inbox;
}

export async function deliver(ctx: Ctx, scope: Scope, messageId: string, targets: DeliveryTarget[]): Promise<DeliveryResult[]> {
  if (targets.length === 0) return [];
  const flagSets = checkTargets(targets);
  const { results, events } = await writeTransaction(ctx.db, (trx) => deliverWithin(ctx, trx, scope, messageId, targets, flagSets));
  await publishAll(ctx, events);
  return results;
}

/**
 * Validates a target list before any database work: its size, and every flag (a bad keyword fails
 * the call, not half of it). Returns the classified flags, one set per target.
 */
export function checkTargets(targets: DeliveryTarget[]): FlagSet[] {
  if (targets.length > MAX_DELIVERY_TARGETS) throw new LimitExceededError('delivery targets per call', MAX_DELIVERY_TARGETS);
  return targets.map((t) => classifyFlags(t.flags ?? [], t.keywords ?? []));
}

/**
 * The work of deliver() inside the caller's write transaction `trx` (deliver() and
 * storeAndDeliver() share it). Returns the change events for the caller to publish after commit.
 */
export async function deliverWithin(
  ctx: Ctx,
  trx: Tx,
  scope: Scope,
  messageId: string,
  targets: DeliveryTarget[],
  flagSets: FlagSet[],
): Promise<{ results: DeliveryResult[]; events: ChangeEvent[] }> {
  if (targets.length === 0) return { results: [], events: [] };
  const message = await readMessageRow(trx, scope, messageId);
  const size = Number(message.size);
  const folders: FolderRow[] = [];
  for (const target of targets) folders.push(await resolveTarget(ctx, trx, scope, message.tenant_id, target));

  // Allocate per folder in ascending id order (the lock order in db.ts), all UIDs of a folder at once.
  const countByFolder = new Map<string, number>();
  for (const f of folders) countByFolder.set(f.id, (countByFolder.get(f.id) ?? 0) + 1);
  const next = new Map<string, { uid: number; modseq: number; uidValidity: number }>();
  const events: ChangeEvent[] = [];
  for (const folderId of [...countByFolder.keys()].sort()) {
    const n = countByFolder.get(folderId)!;
    const a = await allocate(trx, folderId, n, n);
    next.set(folderId, { uid: a.firstUid, modseq: a.firstModseq, uidValidity: a.uidValidity });
    const f = folders.find((x) => x.id === folderId)!;
    events.push({ tenantId: f.tenant_id, mailboxId: f.mailbox_id, folderId, kind: 'append', modseq: a.highestModseq });
  }

  const rows: EntryRow[] = [];
  const results: DeliveryResult[] = [];
  const usage = new Map<string, number>();
  folders.forEach((f, i) => {
    const slot = next.get(f.id)!;
    const uid = slot.uid++;
    const modseq = slot.modseq++;
    rows.push({
      id: newId(),
      tenant_id: f.tenant_id,
      mailbox_id: f.mailbox_id,
      folder_id: f.id,
      message_id: message.id,
      uid,
      modseq,
      flags_json: JSON.stringify(flagSets[i].flags),
      keywords_json: JSON.stringify(flagSets[i].keywords),
      internal_date: targets[i].internalDate ?? Number(message.received_at),
      size,
      deleted_at: null,
    });
    results.push({ mailboxId: f.mailbox_id, folderId: f.id, uid, modseq, uidValidity: slot.uidValidity });
    usage.set(f.mailbox_id, (usage.get(f.mailbox_id) ?? 0) + size);
  });
  await insertEntries(trx, rows);
  await applyUsage(ctx, trx, message.tenant_id, usage);
  return { results, events };
}

/**
 * IMAP APPEND / REST upload into one folder. A Buffer is checked against the quota before its blob
 * is written; whatever fails after storing removes the stored message again, so a refused append
 * leaves neither row nor blob.
 */
export async function append(
  ctx: Ctx,
  scope: Scope,
  mailboxId: string,
  folderId: string,
  raw: Buffer | Readable,
  opts: AppendOptions = {},
): Promise<DeliveryResult & { messageId: string; size: number }> {
  const folder = await readFolder(stateDb(ctx.db), scope, folderId);
  if (folder.mailbox_id !== mailboxId) throw new NotFoundError('folder', folderId);
  classifyFlags(opts.flags ?? [], opts.keywords ?? []);
  const owner = tenantScope(folder.tenant_id);
  if (Buffer.isBuffer(raw)) await checkQuota(ctx, owner, mailboxId, raw.length);
  // The blob first (durable), then the message row and its folder entry in ONE transaction, so a
  // crash can leave at most an orphan blob — never a message row that no folder entry reaches.
  const { blob, meta, structureJson } = await putMessageBlob(ctx, { raw });
  try {
    const { messageId, results } = await storeAndDeliver(ctx, owner, {
      blob,
      meta,
      structureJson,
      targets: [{ mailboxId, folderId, flags: opts.flags, keywords: opts.keywords, internalDate: opts.internalDate }],
    });
    return { ...results[0], messageId, size: blob.size };
  } catch (err) {
    await ctx.blobs.delete(blob.key).catch((e) => ctx.logger?.warn({ err: e, key: blob.key }, 'blob of a failed append not removed'));
    throw err;
  }
}
