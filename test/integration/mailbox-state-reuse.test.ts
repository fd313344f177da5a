/**
 * mailbox-state `storeAndDeliver`: a blob stored once by the caller backs the message rows of
 * several tenants; row, entries and the caller's in-transaction work commit together or not at all.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { freshDatabase, type TestDatabase } from '../support/shape.js';
import { freshBlobStore } from '../support/blobs.js';
import { RecordingBus, sampleMessage, seedMailbox, seedTenant } from '../support/mail-fixtures.js';
import { tenantScope } from '../../src/core/scope.js';
import { newBlobKey, type BlobStore } from '../../src/store/blob/blob-store.js';
import { extractMessageMeta } from '../../src/mail/extract.js';
import { DatabaseQueue } from '../../src/queue/db-queue.js';
import { MailboxStateService, QuotaExceededError } from '../../src/core/mailbox-state/index.js';

let tdb: TestDatabase;
let blobs: BlobStore;
let removeBlobs: () => Promise<void>;
let bus: RecordingBus;
let svc: MailboxStateService;
let queue: DatabaseQueue;

before(async () => {
  tdb = await freshDatabase();
  const b = await freshBlobStore();
  blobs = b.blobs;
  removeBlobs = b.remove;
  bus = new RecordingBus();
  svc = new MailboxStateService({ db: tdb.db, blobs, bus, nodeId: 'reuse-test' });
  queue = new DatabaseQueue(tdb.db, { nodeId: 'reuse-test' });
});

after(async () => {
  await removeBlobs?.();
  await tdb?.drop();
});

async function newMailbox(opts: { quotaBytes?: number } = {}) {
  const tenantId = await seedTenant(tdb.db);
  const mailboxId = await seedMailbox(tdb.db, tenantId, { quotaBytes: opts.quotaBytes });
  await svc.createDefaultFolders(tenantScope(tenantId), mailboxId);
  return { tenantId, mailboxId, scope: tenantScope(tenantId) };
}

async function storedBlob(raw: Buffer) {
  const put = await blobs.put(newBlobKey('msg'), raw);
  return { blob: put, meta: await extractMessageMeta(raw) };
}

async function rows(table: 'messages' | 'folder_entries' | 'queue_jobs', where?: { tenantId: string }) {
  let q = tdb.db.kysely.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n'));
  if (where && table !== 'queue_jobs') q = q.where('tenant_id', '=', where.tenantId);
  return Number((await q.executeTakeFirstOrThrow()).n);
}

test('one blob, two tenants: two message rows share the key; entries, usage and events per tenant', async () => {
  const a = await newMailbox();
  const b = await newMailbox();
  const raw = sampleMessage('shared blob');
  const { blob, meta } = await storedBlob(raw);
  const ra = await svc.storeAndDeliver(a.scope, { blob, meta, structureJson: '{"size":1}', authResults: 'mx; none', spamScore: 1.5, targets: [{ mailboxId: a.mailboxId }] });
  const rb = await svc.storeAndDeliver(b.scope, { blob, meta, targets: [{ mailboxId: b.mailboxId, folderName: 'Junk', flags: ['\\Seen'] }] });
  assert.notEqual(ra.messageId, rb.messageId);
  const ma = await svc.getMessage(a.scope, ra.messageId);
  const mb = await svc.getMessage(b.scope, rb.messageId);
  assert.equal(ma.blobKey, blob.key);
  assert.equal(mb.blobKey, blob.key);
  assert.equal(ma.sha256, createHash('sha256').update(raw).digest('hex'));
  assert.equal(ma.authResults, 'mx; none');
  assert.equal(ma.spamScore, 1.5);
  assert.equal(ma.subject, 'shared blob');
  const structure = await tdb.db.kysely.selectFrom('messages').select('structure_json').where('id', '=', ra.messageId).executeTakeFirstOrThrow();
  assert.equal(structure.structure_json, '{"size":1}');
  assert.equal(rb.results.length, 1);
  const junk = await svc.findSpecialFolder(b.scope, b.mailboxId, '\\Junk');
  assert.equal(rb.results[0].folderId, junk!.id);
  assert.equal((await svc.getQuota(a.scope, a.mailboxId)).usedBytes, raw.length);
  assert.equal((await svc.getQuota(b.scope, b.mailboxId)).usedBytes, raw.length);
  assert.ok(bus.events.some((e) => e.tenantId === b.tenantId && e.folderId === junk!.id && e.kind === 'append'));
  // Both rows read the one blob.
  assert.deepEqual(await blobs.getBuffer(ma.blobKey), raw);
});

test('the caller\'s inTransaction work commits with the rows (a queue job) …', async () => {
  const a = await newMailbox();
  const { blob, meta } = await storedBlob(sampleMessage('with job'));
  let jobId = '';
  const r = await svc.storeAndDeliver(a.scope, {
    blob,
    meta,
    targets: [],
    inTransaction: async (trx, messageId) => {
      jobId = await queue.enqueueIn(trx, 'outbound', { messageId }, { dedupeKey: `outbound:${messageId}` });
    },
  });
  assert.equal(await rows('folder_entries', a), 0, 'no targets: the row alone');
  assert.equal(await rows('messages', a), 1);
  const job = await queue.get(jobId);
  assert.deepEqual(job?.payload, { messageId: r.messageId });
});

test('… and a failure in it rolls everything back, the blob untouched', async () => {
  const a = await newMailbox();
  const { blob, meta } = await storedBlob(sampleMessage('rolled back'));
  const jobs = await rows('queue_jobs');
  await assert.rejects(
    svc.storeAndDeliver(a.scope, {
      blob,
      meta,
      targets: [{ mailboxId: a.mailboxId }],
      inTransaction: async (trx, messageId) => {
        await queue.enqueueIn(trx, 'outbound', { messageId });
        throw new Error('boom');
      },
    }),
    /boom/,
  );
  assert.equal(await rows('messages', a), 0);
  assert.equal(await rows('folder_entries', a), 0);
  assert.equal(await rows('queue_jobs'), jobs);
  assert.equal((await svc.getQuota(a.scope, a.mailboxId)).usedBytes, 0);
  assert.ok(await blobs.stat(blob.key), 'the caller owns the blob: never deleted here');
});

test('over quota: QuotaExceededError and nothing written for that tenant', async () => {
  const full = await newMailbox({ quotaBytes: 100 });
  const other = await newMailbox();
  const { blob, meta } = await storedBlob(sampleMessage('too big', { bodyBytes: 500 }));
  await assert.rejects(
    svc.storeAndDeliver(full.scope, { blob, meta, targets: [{ mailboxId: full.mailboxId }] }),
    (err: unknown) => err instanceof QuotaExceededError && err.level === 'mailbox' && err.id === full.mailboxId,
  );
  assert.equal(await rows('messages', full), 0);
  assert.equal(await rows('folder_entries', full), 0);
  // A mailbox of another tenant is "not found" in this tenant's scope (SPEC §9).
  await assert.rejects(svc.storeAndDeliver(full.scope, { blob, meta, targets: [{ mailboxId: other.mailboxId }] }), /mailbox not found/);
  assert.equal(await rows('messages', full), 0);
});

test('needs a tenant scope', async () => {
  const { blob, meta } = await storedBlob(sampleMessage('system'));
  await assert.rejects(svc.storeAndDeliver({ kind: 'system' }, { blob, meta, targets: [] }), /tenant scope/);
});
