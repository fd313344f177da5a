/**
 * Test data for the purge and consistency suites, written straight into the tables with Kysely
 * (the services that normally write them are not under test here), with real blobs in the store.
 */
import { randomBytes } from 'node:crypto';
import type { Database } from '../../src/store/db/database.js';
import { newBlobKey, type BlobStore } from '../../src/store/blob/blob-store.js';

export const DAY_MS = 24 * 60 * 60 * 1000;

function suffix(): string {
  return randomBytes(5).toString('hex');
}

export async function addTenant(db: Database, opts: { retentionDays?: number | null; legalHold?: boolean } = {}): Promise<string> {
  const id = `t-${suffix()}`;
  const at = Date.now();
  await db.kysely
    .insertInto('tenants')
    .values({
      id,
      name: `tenant-${id}`,
      status: 'active',
      plan: 'default',
      limits_json: '{}',
      legal_hold: opts.legalHold ? 1 : 0,
      retention_days: opts.retentionDays ?? null,
      used_bytes: 0,
      created_at: at,
      updated_at: at,
      deleted_at: null,
    })
    .execute();
  return id;
}

export interface FixtureMailbox {
  tenantId: string;
  mailboxId: string;
  folderId: string;
}

/** A domain, a mailbox in it and its INBOX folder. */
export async function addMailbox(db: Database, tenantId: string, opts: { legalHold?: boolean } = {}): Promise<FixtureMailbox> {
  const at = Date.now();
  const domainId = `d-${suffix()}`;
  const domain = `${domainId}.example`;
  await db.kysely
    .insertInto('domains')
    .values({ id: domainId, tenant_id: tenantId, name: domain, status: 'active', catch_all_mailbox_id: null, created_at: at, updated_at: at })
    .execute();
  const mailboxId = `m-${suffix()}`;
  await db.kysely
    .insertInto('mailboxes')
    .values({
      id: mailboxId,
      tenant_id: tenantId,
      domain_id: domainId,
      user_id: null,
      address: `user@${domain}`,
      local_part: 'user',
      quota_bytes: 0,
      used_bytes: 0,
      legal_hold: opts.legalHold ? 1 : 0,
      status: 'active',
      created_at: at,
      updated_at: at,
    })
    .execute();
  const folderId = `f-${suffix()}`;
  await db.kysely
    .insertInto('folders')
    .values({
      id: folderId,
      tenant_id: tenantId,
      mailbox_id: mailboxId,
      name: 'INBOX',
      special_use: null,
      uid_validity: Math.floor(at / 1000),
      uid_next: 1,
      highest_modseq: 1,
      subscribed: 1,
      created_at: at,
    })
    .execute();
  return { tenantId, mailboxId, folderId };
}

export interface FixtureMessage {
  messageId: string;
  blobKey: string;
}

/**
 * A message row (and its text index row). Without `blobKey` a new blob is written to the store;
 * with one, the row shares that existing blob (as rows of several tenants may).
 */
export async function addMessage(db: Database, blobs: BlobStore, tenantId: string, opts: { blobKey?: string } = {}): Promise<FixtureMessage> {
  const messageId = `msg-${suffix()}`;
  let blobKey = opts.blobKey;
  let size = 0;
  let sha256 = '';
  if (!blobKey) {
    blobKey = newBlobKey();
    const put = await blobs.put(blobKey, Buffer.from(`Subject: ${messageId}\r\n\r\nbody of ${messageId}\r\n`));
    size = put.size;
    sha256 = put.sha256;
  } else {
    const st = await blobs.stat(blobKey);
    size = st?.size ?? 0;
  }
  const at = Date.now();
  await db.kysely
    .insertInto('messages')
    .values({
      id: messageId,
      tenant_id: tenantId,
      blob_key: blobKey,
      size,
      sha256: sha256 || 'shared',
      message_id_header: `<${messageId}@fixture.example>`,
      subject: messageId,
      from_addr: 'alice@fixture.example',
      to_addrs: 'bob@fixture.example',
      cc_addrs: null,
      date_header: at,
      preview: 'body',
      has_attachments: 0,
      attachments_json: '[]',
      structure_json: null,
      auth_results: null,
      spam_score: null,
      thread_id: null,
      received_at: at,
      created_at: at,
    })
    .execute();
  await db.kysely
    .insertInto('message_text')
    .values({ message_id: messageId, tenant_id: tenantId, subject: messageId, addresses: 'alice@fixture.example', body: `body of ${messageId}` })
    .execute();
  return { messageId, blobKey };
}

/** Places a message in the mailbox's folder; `deletedAt` makes it a logically deleted entry. */
export async function addEntry(db: Database, mb: FixtureMailbox, messageId: string, opts: { deletedAt?: number | null } = {}): Promise<string> {
  const id = `e-${suffix()}`;
  const last = await db.kysely
    .selectFrom('folder_entries')
    .select((eb) => eb.fn.max('uid').as('uid'))
    .where('folder_id', '=', mb.folderId)
    .executeTakeFirst();
  const uid = Number(last?.uid ?? 0) + 1;
  await db.kysely
    .insertInto('folder_entries')
    .values({
      id,
      tenant_id: mb.tenantId,
      mailbox_id: mb.mailboxId,
      folder_id: mb.folderId,
      message_id: messageId,
      uid,
      modseq: uid + 1,
      flags_json: opts.deletedAt ? '["\\\\Deleted"]' : '[]',
      keywords_json: '[]',
      internal_date: Date.now(),
      size: 10,
      deleted_at: opts.deletedAt ?? null,
    })
    .execute();
  return id;
}

/** A message with one entry (deleted `deletedDaysAgo` days before `now`, or live when undefined). */
export async function addMessageWithEntry(
  db: Database,
  blobs: BlobStore,
  mb: FixtureMailbox,
  opts: { deletedDaysAgo?: number; now?: number; blobKey?: string } = {},
): Promise<FixtureMessage & { entryId: string }> {
  const msg = await addMessage(db, blobs, mb.tenantId, { blobKey: opts.blobKey });
  const now = opts.now ?? Date.now();
  const deletedAt = opts.deletedDaysAgo === undefined ? null : now - opts.deletedDaysAgo * DAY_MS;
  const entryId = await addEntry(db, mb, msg.messageId, { deletedAt });
  return { ...msg, entryId };
}

export async function entryExists(db: Database, entryId: string): Promise<boolean> {
  return !!(await db.kysely.selectFrom('folder_entries').select('id').where('id', '=', entryId).executeTakeFirst());
}

export async function messageExists(db: Database, messageId: string): Promise<boolean> {
  return !!(await db.kysely.selectFrom('messages').select('id').where('id', '=', messageId).executeTakeFirst());
}

export async function textRowExists(db: Database, messageId: string): Promise<boolean> {
  return !!(await db.kysely.selectFrom('message_text').select('message_id').where('message_id', '=', messageId).executeTakeFirst());
}

export async function blobExists(blobs: BlobStore, key: string): Promise<boolean> {
  return (await blobs.stat(key)) !== null;
}
