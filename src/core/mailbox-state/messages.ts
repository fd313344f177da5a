/**
 * Stored messages: one `messages` row + one blob per message and tenant, however many folder
 * entries point at it (SPEC §3.1 step 6: "one blob is stored once per message").
 *
 * Order of writes (ARCHITECTURE §1.5 "durable before acknowledged"): the blob first — `put`
 * resolves only once it is durable — then the row and its text-index row in one transaction.
 * A crash in between leaves an orphan blob (found by `mairust db check`), never a row whose blob
 * is missing.
 */
import { structureTee } from '../../mail/mime/index.js';
import type { Readable } from 'node:stream';
import { newId, now } from '../../store/db/database.js';
import { newBlobKey } from '../../store/blob/blob-store.js';
import type { MessagesTable } from '../../store/db/types.js';
import { extractMessageMeta, type MessageMeta } from '../../mail/extract.js';
import { deleteTextIndex, textIndexRowFromMeta, writeTextIndex } from '../search/text-index.js';
import { inScope, type Scope } from '../scope.js';
import type { Ctx } from './context.js';
import { baseDb, stateDb, writeTransaction, type Tx } from './db.js';
import { NotFoundError } from './errors.js';
import { toMessageInfo } from './rows.js';
import type { MessageInfo, StoreInput, StoredMessage } from './types.js';

/** A message belongs to exactly one tenant, so storing needs a tenant scope, not the system scope. */
export function tenantOf(scope: Scope, what: string): string {
  if (scope.kind !== 'tenant') throw new TypeError(`${what} needs a tenant scope (messages belong to one tenant)`);
  return scope.tenantId;
}

/**
 * Passes a stream through to the blob store while keeping its chunks, so metadata can be extracted
 * without reading the blob back. Only used when the caller did not supply `meta`; the message size
 * is bounded upstream (SMTP SIZE / IMAP APPENDLIMIT, config mail.max_message_bytes).
 */
async function* teeInto(source: Readable, sink: Buffer[]): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    sink.push(buf);
    yield buf;
  }
}

/** PostgreSQL text cannot hold NUL; header values decoded from hostile mail might. */
function clean(value: string | null): string | null {
  return value === null ? null : value.replaceAll('\u0000', '');
}

export function messageRow(id: string, tenantId: string, stored: { key: string; size: number; sha256: string }, meta: MessageMeta, input: Omit<StoreInput, 'raw' | 'meta'>): MessagesTable {
  const at = now();
  return {
    id,
    tenant_id: tenantId,
    blob_key: stored.key,
    size: stored.size,
    sha256: stored.sha256,
    message_id_header: clean(meta.messageIdHeader),
    subject: clean(meta.subject),
    from_addr: clean(meta.from),
    // JSON lists: display names may contain commas, so a joined string could not be split back.
    to_addrs: JSON.stringify(meta.to),
    cc_addrs: JSON.stringify(meta.cc),
    date_header: meta.date,
    preview: clean(meta.preview),
    has_attachments: meta.hasAttachments ? 1 : 0,
    attachments_json: JSON.stringify(meta.attachments),
    structure_json: input.structureJson ?? null,
    auth_results: clean(input.authResults ?? null),
    spam_score: input.spamScore ?? null,
    thread_id: null,
    received_at: input.receivedAt ?? at,
    created_at: at,
  };
}

/**
 * Writes the message bytes as a new blob (durable when it resolves) and extracts the metadata the
 * rows need. No database work: callers commit rows in their own transaction, and delete the blob
 * if that fails.
 */
export async function putMessageBlob(
  ctx: Ctx,
  input: Pick<StoreInput, 'raw' | 'meta'>,
): Promise<{ blob: { key: string; size: number; sha256: string }; meta: MessageMeta; structureJson?: string }> {
  const extractOpts = ctx.previewBytes ? { previewBytes: ctx.previewBytes } : undefined;
  let meta = input.meta;
  if (!meta && Buffer.isBuffer(input.raw)) meta = await extractMessageMeta(input.raw, extractOpts);
  const key = newBlobKey('msg');
  const kept: Buffer[] = [];
  const body = meta || Buffer.isBuffer(input.raw) ? input.raw : teeInto(input.raw, kept);
  // The MIME structure with byte offsets is computed on the way to the blob store (src/mail/mime/tee.ts).
  const tee = structureTee(body as Buffer | AsyncIterable<Buffer>, (err) => ctx.logger?.warn({ err, key }, 'MIME structure parser failed'));
  const put = await ctx.blobs.put(key, tee.chunks);
  try {
    if (!meta) meta = await extractMessageMeta(Buffer.concat(kept), extractOpts);
  } catch (err) {
    await ctx.blobs.delete(key).catch(() => {});
    throw err;
  }
  return { blob: { key, size: put.size, sha256: put.sha256 }, meta, structureJson: tee.structureJson() };
}

export async function storeMessage(ctx: Ctx, scope: Scope, input: StoreInput): Promise<StoredMessage> {
  const tenantId = tenantOf(scope, 'storeMessage');
  const tenant = await stateDb(ctx.db).selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst();
  if (!tenant) throw new NotFoundError('tenant', tenantId);

  const extractOpts = ctx.previewBytes ? { previewBytes: ctx.previewBytes } : undefined;
  const { blob, meta, structureJson } = await putMessageBlob(ctx, input);
  const id = newId();
  try {
    const row = messageRow(id, tenantId, blob, meta, { ...input, structureJson: input.structureJson ?? structureJson });
    const indexRow = textIndexRowFromMeta(id, tenantId, meta);
    await writeTransaction(ctx.db, async (t) => {
      await t.insertInto('messages').values(row).execute();
      await writeTextIndex(baseDb(t), ctx.db.dialect, indexRow);
    });
  } catch (err) {
    await ctx.blobs.delete(blob.key).catch((e) => ctx.logger?.warn({ err: e, key: blob.key }, 'blob of a failed store not removed'));
    throw err;
  }
  return { id, blobKey: blob.key, size: blob.size, sha256: blob.sha256 };
}

/**
 * Removes a stored message that no folder entry references (deliver failed, e.g. over quota).
 * Refuses silently (returns false) when entries exist: then it is the purge job's business.
 */
export async function discardMessage(ctx: Ctx, scope: Scope, messageId: string): Promise<boolean> {
  const blobKey = await writeTransaction(ctx.db, async (t) => {
    const msg = await t.selectFrom('messages').select(['id', 'blob_key']).where('id', '=', messageId).where(inScope(scope)).executeTakeFirst();
    if (!msg) throw new NotFoundError('message', messageId);
    const ref = await t.selectFrom('folder_entries').select('id').where('message_id', '=', messageId).limit(1).executeTakeFirst();
    if (ref) return null;
    await deleteTextIndex(baseDb(t), ctx.db.dialect, [messageId]);
    await t.deleteFrom('messages').where('id', '=', messageId).execute();
    return msg.blob_key;
  });
  if (blobKey === null) return false;
  await ctx.blobs.delete(blobKey).catch((err) => ctx.logger?.warn({ err, key: blobKey }, 'blob of a discarded message not removed'));
  return true;
}

export async function readMessageRow(trx: Tx, scope: Scope, messageId: string): Promise<MessagesTable> {
  const row = await trx.selectFrom('messages').selectAll().where('id', '=', messageId).where(inScope(scope)).executeTakeFirst();
  if (!row) throw new NotFoundError('message', messageId);
  return row;
}

export async function getMessage(ctx: Ctx, scope: Scope, messageId: string): Promise<MessageInfo> {
  return toMessageInfo(await readMessageRow(stateDb(ctx.db), scope, messageId));
}

/**
 * The raw message. Metadata comes from the database, so when the blob store is down this throws
 * its BlobStoreUnavailableError while listing and flag changes keep working (SPEC §4 "Failure behaviour").
 */
export async function openMessage(ctx: Ctx, scope: Scope, messageId: string): Promise<Readable> {
  const row = await readMessageRow(stateDb(ctx.db), scope, messageId);
  return ctx.blobs.get(row.blob_key);
}
