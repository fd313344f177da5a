/**
 * Mailbox-state service against a real database and blob store of the current shape:
 * UID/MODSEQ rules (RFC 9051 §2.3.1, RFC 7162), flags, copy/move, expunge, quotas and tenancy.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase, type TestDatabase } from '../support/shape.js';
import { freshBlobStore } from '../support/blobs.js';
import { RecordingBus, sampleMessage, seedMailbox, seedTenant } from '../support/mail-fixtures.js';
import { tenantScope, type Scope } from '../../src/core/scope.js';
import type { BlobStore } from '../../src/store/blob/blob-store.js';
import { searchText } from '../../src/core/search/text-index.js';
import {
  MailboxStateService,
  NotFoundError,
  QuotaExceededError,
  InvalidFlagError,
  type Folder,
} from '../../src/core/mailbox-state/index.js';

let tdb: TestDatabase;
let blobs: BlobStore;
let removeBlobs: () => Promise<void>;
let bus: RecordingBus;
let svc: MailboxStateService;

before(async () => {
  tdb = await freshDatabase();
  const b = await freshBlobStore();
  blobs = b.blobs;
  removeBlobs = b.remove;
  bus = new RecordingBus();
  svc = new MailboxStateService({ db: tdb.db, blobs, bus, nodeId: 'test-node' });
});

after(async () => {
  await removeBlobs?.();
  await tdb?.drop();
});

async function newMailbox(opts: { quotaBytes?: number; storageBytes?: number } = {}) {
  const tenantId = await seedTenant(tdb.db, { storageBytes: opts.storageBytes });
  const mailboxId = await seedMailbox(tdb.db, tenantId, { quotaBytes: opts.quotaBytes });
  const scope = tenantScope(tenantId);
  await svc.createDefaultFolders(scope, mailboxId);
  const inbox = (await svc.findFolder(scope, mailboxId, 'INBOX'))!;
  return { tenantId, mailboxId, scope, inbox };
}

async function countRows(table: 'messages' | 'folder_entries', tenantId: string): Promise<number> {
  const r = await tdb.db.kysely.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).where('tenant_id', '=', tenantId).executeTakeFirstOrThrow();
  return Number(r.n);
}

async function countBlobs(): Promise<number> {
  let n = 0;
  for await (const _ of blobs.list()) n++;
  return n;
}

async function appendN(scope: Scope, mailboxId: string, folder: Folder, n: number, bodyBytes = 100) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await svc.append(scope, mailboxId, folder.id, sampleMessage(`m${i}`, { bodyBytes })));
  return out;
}

describe('default folders', () => {
  test('are created once, with RFC 6154 special-use attributes', async () => {
    const tenantId = await seedTenant(tdb.db);
    const mailboxId = await seedMailbox(tdb.db, tenantId);
    const scope = tenantScope(tenantId);
    const first = await svc.createDefaultFolders(scope, mailboxId);
    assert.equal(first.length, 6);
    const second = await svc.createDefaultFolders(scope, mailboxId);
    assert.equal(second.length, 0, 'second call creates nothing');
    const folders = await svc.listFolders(scope, mailboxId);
    assert.deepEqual(folders.map((f) => f.name), ['INBOX', 'Archive', 'Drafts', 'Junk', 'Sent', 'Trash']);
    assert.deepEqual(
      Object.fromEntries(folders.map((f) => [f.name, f.specialUse])),
      { INBOX: null, Archive: '\\Archive', Drafts: '\\Drafts', Junk: '\\Junk', Sent: '\\Sent', Trash: '\\Trash' },
    );
    for (const f of folders) {
      assert.equal(f.uidNext, 1);
      assert.ok(f.uidValidity > 0 && f.uidValidity < 2 ** 32);
    }
    assert.equal(new Set(folders.map((f) => f.uidValidity)).size, 6, 'UIDVALIDITY values differ within a mailbox');
    assert.equal((await svc.findFolder(scope, mailboxId, 'inbox'))?.name, 'INBOX', 'INBOX is case-insensitive');
    assert.equal((await svc.findSpecialFolder(scope, mailboxId, '\\sent'))?.name, 'Sent');
  });

  test('can run inside the caller\'s transaction', async () => {
    const tenantId = await seedTenant(tdb.db);
    const mailboxId = await seedMailbox(tdb.db, tenantId);
    await tdb.db.kysely.transaction().execute(async (trx) => {
      const created = await svc.createDefaultFolders(tenantScope(tenantId), mailboxId, trx);
      assert.equal(created.length, 6);
    });
    assert.equal((await svc.listFolders(tenantScope(tenantId), mailboxId)).length, 6);
  });
});

describe('folders', () => {
  test('names are validated with clear errors', async () => {
    const { scope, mailboxId } = await newMailbox();
    for (const bad of ['', '/a', 'a/', 'a//b', 'a*b', 'a%', 'tab\there', 'x'.repeat(256)]) {
      await assert.rejects(svc.createFolder(scope, mailboxId, bad), { code: 'INVALID_FOLDER_NAME' }, `refuses ${JSON.stringify(bad).slice(0, 20)}`);
    }
    await assert.rejects(svc.createFolder(scope, mailboxId, 'inbox'), { code: 'FOLDER_EXISTS' });
    await assert.rejects(svc.createFolder(scope, mailboxId, 'Sent'), { code: 'FOLDER_EXISTS' });
    await assert.rejects(svc.createFolder(scope, mailboxId, 'X', { specialUse: '\\All' }), { code: 'INVALID_SPECIAL_USE' });
  });

  test('create makes missing superiors; rename moves inferiors and keeps UIDVALIDITY', async () => {
    const { scope, mailboxId } = await newMailbox();
    const q1 = await svc.createFolder(scope, mailboxId, 'Projects/2025/Q1');
    const names = (await svc.listFolders(scope, mailboxId)).map((f) => f.name);
    assert.ok(names.includes('Projects') && names.includes('Projects/2025') && names.includes('Projects/2025/Q1'));
    const projects = (await svc.findFolder(scope, mailboxId, 'Projects'))!;
    await svc.append(scope, mailboxId, q1.id, sampleMessage('in q1'));

    const renamed = await svc.renameFolder(scope, projects.id, 'Work/Old');
    assert.equal(renamed.name, 'Work/Old');
    assert.equal(renamed.uidValidity, projects.uidValidity, 'rename keeps UIDVALIDITY');
    const after = (await svc.listFolders(scope, mailboxId)).map((f) => f.name);
    assert.ok(after.includes('Work') && after.includes('Work/Old/2025/Q1'));
    assert.ok(!after.some((n) => n.startsWith('Projects')));
    const movedQ1 = await svc.getFolder(scope, q1.id);
    assert.equal(movedQ1.name, 'Work/Old/2025/Q1');
    assert.equal((await svc.listEntries(scope, q1.id)).length, 1, 'entries follow the renamed folder');

    // RFC 9051 §6.3.6: a new folder under the old name must not reuse the old incarnation's UIDs.
    const again = await svc.createFolder(scope, mailboxId, 'Projects');
    assert.ok(again.uidValidity > projects.uidValidity, 're-created name gets a greater UIDVALIDITY');

    const inbox = (await svc.findFolder(scope, mailboxId, 'INBOX'))!;
    await assert.rejects(svc.renameFolder(scope, inbox.id, 'Old Inbox'), { code: 'FOLDER_PROTECTED' });
    await assert.rejects(svc.renameFolder(scope, again.id, 'Work'), { code: 'FOLDER_EXISTS' });
    await assert.rejects(svc.renameFolder(scope, again.id, 'Projects/Sub'), { code: 'INVALID_FOLDER_NAME' });
  });

  test('delete: protected folders refused, children refused, entries released, name reusable', async () => {
    const { scope, mailboxId, inbox } = await newMailbox();
    const trash = (await svc.findFolder(scope, mailboxId, 'Trash'))!;
    await assert.rejects(svc.deleteFolder(scope, inbox.id), { code: 'FOLDER_PROTECTED' });
    await assert.rejects(svc.deleteFolder(scope, trash.id), { code: 'FOLDER_PROTECTED' });
    const parent = await svc.createFolder(scope, mailboxId, 'Tmp');
    const child = await svc.createFolder(scope, mailboxId, 'Tmp/Child');
    await assert.rejects(svc.deleteFolder(scope, parent.id), { code: 'FOLDER_HAS_CHILDREN' });

    await appendN(scope, mailboxId, child, 2, 500);
    const before = await svc.getQuota(scope, mailboxId);
    assert.ok(before.usedBytes > 1000);
    await svc.deleteFolder(scope, child.id);
    assert.equal((await svc.getQuota(scope, mailboxId)).usedBytes, 0, 'deleted entries stop counting');
    await assert.rejects(svc.getFolder(scope, child.id), NotFoundError);
    const entries = await tdb.db.kysely.selectFrom('folder_entries').select('deleted_at').where('folder_id', '=', child.id).execute();
    assert.equal(entries.length, 2, 'entries stay for the purge job');
    assert.ok(entries.every((e) => e.deleted_at !== null));

    const recreated = await svc.createFolder(scope, mailboxId, 'Tmp/Child');
    assert.ok(recreated.uidValidity > child.uidValidity);
    assert.equal(recreated.uidNext, 1);
    await svc.deleteFolder(scope, recreated.id);
    await svc.deleteFolder(scope, parent.id);
    assert.equal(await svc.findFolder(scope, mailboxId, 'Tmp'), null);
  });

  test('subscription can be toggled', async () => {
    const { scope, mailboxId } = await newMailbox();
    const f = await svc.createFolder(scope, mailboxId, 'News', { subscribed: false });
    assert.equal(f.subscribed, false);
    assert.equal((await svc.setSubscribed(scope, f.id, true)).subscribed, true);
    assert.equal((await svc.getFolder(scope, f.id)).subscribed, true);
  });
});

describe('append, UIDs and MODSEQs', () => {
  test('append assigns UIDs 1,2,3 with increasing MODSEQ and publishes events', async () => {
    const { scope, mailboxId, inbox } = await newMailbox();
    bus.clear();
    const r = await appendN(scope, mailboxId, inbox, 3);
    assert.deepEqual(r.map((x) => x.uid), [1, 2, 3]);
    assert.ok(r[0].modseq < r[1].modseq && r[1].modseq < r[2].modseq);
    assert.ok(r.every((x) => x.uidValidity === inbox.uidValidity));
    const status = await svc.folderStatus(scope, inbox.id);
    assert.equal(status.messages, 3);
    assert.equal(status.unseen, 3);
    assert.equal(status.deleted, 0);
    assert.equal(status.uidNext, 4);
    assert.equal(status.highestModseq, r[2].modseq);
    assert.equal(status.size, r.reduce((s, x) => s + x.size, 0));
    const appends = bus.events.filter((e) => e.kind === 'append' && e.folderId === inbox.id);
    assert.equal(appends.length, 3);
    assert.equal(appends[2].modseq, r[2].modseq);
    assert.equal(appends[2].origin, 'test-node');

    const entry = (await svc.getEntry(scope, inbox.id, 2))!;
    assert.equal(entry.uid, 2);
    assert.equal(entry.messageId, r[1].messageId);
    const info = await svc.getMessage(scope, entry.messageId);
    assert.equal(info.subject, 'm1');

    const original = sampleMessage('read back');
    const r4 = await svc.append(scope, mailboxId, inbox.id, original);
    const raw = Buffer.concat(await (await svc.openMessage(scope, r4.messageId)).toArray());
    assert.ok(raw.equals(original), 'the stored bytes are returned unchanged');
    assert.equal(r4.size, original.length);
  });

  test('append with flags, keywords and internal date', async () => {
    const { scope, mailboxId, inbox } = await newMailbox();
    const date = Date.UTC(2020, 0, 2, 3, 4, 5);
    const r = await svc.append(scope, mailboxId, inbox.id, sampleMessage('flagged'), { flags: ['\\seen', 'Work'], keywords: ['$Label1'], internalDate: date });
    const e = (await svc.getEntry(scope, inbox.id, r.uid))!;
    assert.deepEqual(e.flags, ['\\Seen', 'Work', '$Label1']);
    assert.deepEqual(e.keywords, ['Work', '$Label1']);
    assert.equal(e.internalDate, date);
    assert.equal((await svc.folderStatus(scope, inbox.id)).unseen, 0);
    await assert.rejects(svc.append(scope, mailboxId, inbox.id, sampleMessage('bad'), { flags: ['\\Recent'] }), InvalidFlagError);
  });

  test('an expunged UID is never handed out again', async () => {
    const { scope, mailboxId, inbox } = await newMailbox();
    await appendN(scope, mailboxId, inbox, 3);
    await svc.setFlags(scope, inbox.id, [2, 3], 'add', ['\\Deleted']);
    assert.deepEqual(await svc.expunge(scope, inbox.id, { uids: [3] }), [3], 'UID EXPUNGE only touches the given UIDs');
    assert.deepEqual(await svc.expunge(scope, inbox.id), [2]);
    assert.deepEqual(await svc.expunge(scope, inbox.id), []);
    const [next] = await appendN(scope, mailboxId, inbox, 1);
    assert.equal(next.uid, 4);
    const status = await svc.folderStatus(scope, inbox.id);
    assert.equal(status.uidNext, 5);
    assert.equal(status.messages, 2);
    assert.deepEqual(await svc.listUids(scope, inbox.id), [1, 4]);
    const all = await svc.listEntries(scope, inbox.id, { includeDeleted: true });
    assert.deepEqual(all.map((e) => [e.uid, e.deletedAt !== null]), [[1, false], [2, true], [3, true], [4, false]]);
    assert.deepEqual((await svc.listEntries(scope, inbox.id, { afterUid: 1, limit: 1 })).map((e) => e.uid), [4]);
    await assert.rejects(svc.listEntries(scope, inbox.id, { limit: 100000 }), { code: 'LIMIT_EXCEEDED' });
  });

  test('deleteMessages removes without \\Deleted and releases quota', async () => {
    const { scope, mailboxId, inbox } = await newMailbox();
    const r = await appendN(scope, mailboxId, inbox, 2, 300);
    const used = (await svc.getQuota(scope, mailboxId)).usedBytes;
    assert.equal(used, r[0].size + r[1].size);
    assert.deepEqual(await svc.deleteMessages(scope, inbox.id, [1, 99]), [1]);
    assert.equal((await svc.getQuota(scope, mailboxId)).usedBytes, r[1].size);
    assert.equal((await svc.getTenantQuota(scope, (scope as { tenantId: string }).tenantId)).usedBytes, r[1].size);
  });
});

describe('flags', () => {
  test('add / remove / replace bump MODSEQ; no-op does not; UNCHANGEDSINCE reports MODIFIED', async () => {
    const { scope, mailboxId, inbox } = await newMailbox();
    await appendN(scope, mailboxId, inbox, 3);
    const m0 = (await svc.folderStatus(scope, inbox.id)).highestModseq;

    const add = await svc.setFlags(scope, inbox.id, [1, 2], 'add', ['\\Seen', 'Work']);
    assert.deepEqual(add.updated.map((u) => u.uid), [1, 2]);
    assert.deepEqual(add.updated[0].flags, ['\\Seen', 'Work']);
    assert.ok(add.updated[0].modseq > m0 && add.updated[1].modseq > add.updated[0].modseq, 'each changed entry gets a new MODSEQ');
    const m1 = (await svc.folderStatus(scope, inbox.id)).highestModseq;
    assert.equal(m1, add.updated[1].modseq);

    const noop = await svc.setFlags(scope, inbox.id, [1], 'add', ['\\SEEN', 'work']);
    assert.deepEqual(noop.updated, [], 'flags compare case-insensitively; nothing changed');
    assert.equal((await svc.folderStatus(scope, inbox.id)).highestModseq, m1, 'no MODSEQ for a no-op');

    const rem = await svc.setFlags(scope, inbox.id, [1], 'remove', ['WORK']);
    assert.deepEqual(rem.updated[0].flags, ['\\Seen']);

    const rep = await svc.setFlags(scope, inbox.id, [2, 3], 'replace', ['\\Flagged', '$Important']);
    assert.deepEqual(rep.updated.map((u) => u.flags), [['\\Flagged', '$Important'], ['\\Flagged', '$Important']]);
    assert.equal((await svc.folderStatus(scope, inbox.id)).unseen, 2);
    assert.equal(await svc.firstUnseenUid(scope, inbox.id), 2, 'UID 1 is \\Seen');
    assert.equal(await svc.firstUnseenUid(scope, inbox.id, 2), 3);
    assert.equal(await svc.firstUnseenUid(scope, inbox.id, 3), null);
    await svc.setFlags(scope, inbox.id, [1, 3], 'add', ['\\Deleted']);
    assert.equal((await svc.folderStatus(scope, inbox.id)).deleted, 2, 'STATUS DELETED counts \\Deleted entries');
    await svc.setFlags(scope, inbox.id, [1, 3], 'remove', ['\\Deleted']);

    // RFC 7162 §3.1.3: UID 1 changed after `since`, UID 3 did not.
    const e1 = (await svc.getEntry(scope, inbox.id, 1))!;
    const e3 = (await svc.getEntry(scope, inbox.id, 3))!;
    const since = Math.min(e1.modseq, e3.modseq) - 1;
    await svc.setFlags(scope, inbox.id, [3], 'add', ['\\Answered']);
    const e3b = (await svc.getEntry(scope, inbox.id, 3))!;
    const cond = await svc.setFlags(scope, inbox.id, [1, 3], 'add', ['\\Draft'], { unchangedSince: e1.modseq });
    assert.deepEqual(cond.modifiedUids, [3]);
    assert.deepEqual(cond.updated.map((u) => u.uid), [1]);
    assert.ok(!(await svc.getEntry(scope, inbox.id, 3))!.flags.includes('\\Draft'), 'the conflicting entry is untouched');
    assert.ok(e3b.modseq > since);
  });

  test('invalid flags and keywords are refused before anything changes', async () => {
    const { scope, mailboxId, inbox } = await newMailbox();
    await appendN(scope, mailboxId, inbox, 1);
    const m = (await svc.folderStatus(scope, inbox.id)).highestModseq;
    for (const bad of ['\\Recent', '\\Custom', 'two words', 'a(b', 'quote"', 'x]', 'k'.repeat(65), 'ü']) {
      await assert.rejects(svc.setFlags(scope, inbox.id, [1], 'add', [bad]), InvalidFlagError, bad.slice(0, 12));
    }
    assert.equal((await svc.folderStatus(scope, inbox.id)).highestModseq, m);
  });
});

describe('changesSince', () => {
  test('reports new and flag-changed entries and VANISHED UIDs', async () => {
    const { scope, mailboxId, inbox } = await newMailbox();
    await appendN(scope, mailboxId, inbox, 4);
    const base = (await svc.folderStatus(scope, inbox.id)).highestModseq;
    await svc.setFlags(scope, inbox.id, [2], 'add', ['\\Seen']);
    await svc.setFlags(scope, inbox.id, [3], 'add', ['\\Deleted']);
    await svc.expunge(scope, inbox.id);
    await appendN(scope, mailboxId, inbox, 1);
    const ch = await svc.changesSince(scope, inbox.id, base);
    assert.deepEqual(ch.changed.map((c) => c.uid), [2, 5]);
    assert.deepEqual(ch.changed[0].flags, ['\\Seen']);
    assert.deepEqual(ch.expunged, [3]);
    assert.equal(ch.highestModseq, (await svc.folderStatus(scope, inbox.id)).highestModseq);
    const none = await svc.changesSince(scope, inbox.id, ch.highestModseq);
    assert.deepEqual([none.changed, none.expunged], [[], []]);
  });
});

describe('copy and move', () => {
  test('copy maps UIDs (COPYUID), shares the message and counts against quota', async () => {
    const { scope, mailboxId, inbox } = await newMailbox();
    const archive = (await svc.findFolder(scope, mailboxId, 'Archive'))!;
    const r = await appendN(scope, mailboxId, inbox, 3, 200);
    await svc.setFlags(scope, inbox.id, [3], 'add', ['\\Flagged', 'tag1']);
    const used = (await svc.getQuota(scope, mailboxId)).usedBytes;
    const res = await svc.copy(scope, inbox.id, [3, 1, 42], archive.id);
    assert.equal(res.uidValidity, archive.uidValidity);
    assert.deepEqual(res.mapping, [{ from: 1, to: 1 }, { from: 3, to: 2 }]);
    const copied = await svc.listEntries(scope, archive.id);
    assert.deepEqual(copied.map((e) => e.messageId), [r[0].messageId, r[2].messageId], 'the copy shares the message row');
    assert.deepEqual(copied[1].flags, ['\\Flagged', 'tag1'], 'flags are preserved');
    assert.equal((await svc.getQuota(scope, mailboxId)).usedBytes, used + r[0].size + r[2].size);
    assert.equal(await countRows('messages', (scope as { tenantId: string }).tenantId), 3);
  });

  test('move is copy + expunge, atomic, quota-neutral inside one mailbox', async () => {
    const { scope, mailboxId, inbox } = await newMailbox();
    const trash = (await svc.findFolder(scope, mailboxId, 'Trash'))!;
    await appendN(scope, mailboxId, inbox, 3);
    const used = (await svc.getQuota(scope, mailboxId)).usedBytes;
    const base = (await svc.folderStatus(scope, inbox.id)).highestModseq;
    bus.clear();
    const res = await svc.move(scope, inbox.id, [2, 3], trash.id);
    assert.deepEqual(res.mapping, [{ from: 2, to: 1 }, { from: 3, to: 2 }]);
    assert.deepEqual(await svc.listUids(scope, inbox.id), [1]);
    assert.deepEqual(await svc.listUids(scope, trash.id), [1, 2]);
    assert.deepEqual((await svc.changesSince(scope, inbox.id, base)).expunged, [2, 3]);
    assert.equal((await svc.getQuota(scope, mailboxId)).usedBytes, used);
    assert.deepEqual(bus.events.map((e) => e.kind).sort(), ['append', 'expunge']);
  });

  test('a full mailbox can still move, but cannot copy', async () => {
    const probe = sampleMessage('m0', { bodyBytes: 1000 }).length;
    const { scope, mailboxId, inbox } = await newMailbox({ quotaBytes: probe * 2 + 10 });
    const junk = (await svc.findFolder(scope, mailboxId, 'Junk'))!;
    await appendN(scope, mailboxId, inbox, 2, 1000);
    await svc.move(scope, inbox.id, [1], junk.id);
    await assert.rejects(svc.copy(scope, inbox.id, [2], junk.id), QuotaExceededError);
    assert.deepEqual(await svc.listUids(scope, junk.id), [1], 'the refused copy wrote nothing');
  });
});

describe('delivery', () => {
  test('multi-recipient delivery stores one blob and one message row with N entries', async () => {
    const tenantId = await seedTenant(tdb.db);
    const scope = tenantScope(tenantId);
    const mailboxes = [];
    for (let i = 0; i < 3; i++) {
      const id = await seedMailbox(tdb.db, tenantId);
      await svc.createDefaultFolders(scope, id);
      mailboxes.push(id);
    }
    const blobsBefore = await countBlobs();
    const stored = await svc.storeMessage(scope, { raw: sampleMessage('to three'), authResults: 'mx; spf=pass', spamScore: 1.5 });
    const res = await svc.deliver(scope, stored.id, [
      { mailboxId: mailboxes[0] },
      { mailboxId: mailboxes[1], folderName: 'Junk', flags: ['$Junk'] },
      { mailboxId: mailboxes[2], folderName: 'No Such Folder' },
    ]);
    assert.equal(await countBlobs(), blobsBefore + 1, 'one blob');
    assert.equal(await countRows('messages', tenantId), 1, 'one message row');
    assert.equal(await countRows('folder_entries', tenantId), 3, 'N entries');
    assert.deepEqual(res.map((r) => r.uid), [1, 1, 1]);
    const junk = (await svc.findFolder(scope, mailboxes[1], 'Junk'))!;
    assert.equal(res[1].folderId, junk.id);
    const inbox2 = (await svc.findFolder(scope, mailboxes[2], 'INBOX'))!;
    assert.equal(res[2].folderId, inbox2.id, 'an unknown folder name falls back to INBOX');
    for (const m of mailboxes) assert.equal((await svc.getQuota(scope, m)).usedBytes, stored.size);
    assert.equal((await svc.getTenantQuota(scope, tenantId)).usedBytes, stored.size * 3);
    const info = await svc.getMessage(scope, stored.id);
    assert.equal(info.authResults, 'mx; spf=pass');
    assert.equal(info.spamScore, 1.5);
    assert.equal(info.sha256, stored.sha256);
  });

  test('a stream is stored and its metadata extracted', async () => {
    const { scope, mailboxId, inbox } = await newMailbox();
    const { Readable } = await import('node:stream');
    const raw = sampleMessage('streamed subject', { bodyBytes: 70000 });
    const r = await svc.append(scope, mailboxId, inbox.id, Readable.from([raw.subarray(0, 1000), raw.subarray(1000)]));
    assert.equal(r.size, raw.length);
    assert.equal((await svc.getMessage(scope, r.messageId)).subject, 'streamed subject');
    assert.deepEqual(await searchText(tdb.db, scope, { query: 'streamed subj' }), [r.messageId], 'the text index row was written');
  });

  test('quota exceeded → QuotaExceededError and nothing written', async () => {
    const { tenantId, scope, mailboxId, inbox } = await newMailbox({ quotaBytes: 1500 });
    await svc.append(scope, mailboxId, inbox.id, sampleMessage('fits', { bodyBytes: 500 }));
    const state = async () => ({
      messages: await countRows('messages', tenantId),
      entries: await countRows('folder_entries', tenantId),
      blobs: await countBlobs(),
      used: (await svc.getQuota(scope, mailboxId)).usedBytes,
      tenant: (await svc.getTenantQuota(scope, tenantId)).usedBytes,
      uidNext: (await svc.folderStatus(scope, inbox.id)).uidNext,
    });
    const before = await state();
    const err = await svc.append(scope, mailboxId, inbox.id, sampleMessage('too big', { bodyBytes: 1200 })).catch((e) => e);
    assert.ok(err instanceof QuotaExceededError, String(err));
    assert.equal(err.level, 'mailbox');
    assert.equal(err.limitBytes, 1500);
    assert.deepEqual(await state(), before);

    // The same through storeMessage + deliver with a second, roomy target: all or nothing.
    const roomy = await seedMailbox(tdb.db, tenantId);
    await svc.createDefaultFolders(scope, roomy);
    const stored = await svc.storeMessage(scope, { raw: sampleMessage('two targets', { bodyBytes: 1200 }) });
    await assert.rejects(svc.deliver(scope, stored.id, [{ mailboxId: roomy }, { mailboxId }]), QuotaExceededError);
    assert.equal((await svc.getQuota(scope, roomy)).usedBytes, 0, 'the roomy target was rolled back too');
    assert.equal(await countRows('folder_entries', tenantId), before.entries);
    assert.equal(await svc.discardMessage(scope, stored.id), true);
    assert.deepEqual(await state(), before);
  });

  test('the tenant storage limit applies across mailboxes', async () => {
    const one = sampleMessage('m0', { bodyBytes: 400 }).length;
    const { tenantId, scope, mailboxId, inbox } = await newMailbox({ storageBytes: one * 2 + 10 });
    const other = await seedMailbox(tdb.db, tenantId);
    await svc.createDefaultFolders(scope, other);
    const otherInbox = (await svc.findFolder(scope, other, 'INBOX'))!;
    await svc.append(scope, mailboxId, inbox.id, sampleMessage('m0', { bodyBytes: 400 }));
    await svc.append(scope, other, otherInbox.id, sampleMessage('m1', { bodyBytes: 400 }));
    const err = await svc.append(scope, other, otherInbox.id, sampleMessage('m2', { bodyBytes: 400 })).catch((e) => e);
    assert.ok(err instanceof QuotaExceededError);
    assert.equal(err.level, 'tenant');
    await assert.rejects(svc.checkQuota(scope, mailboxId, one), QuotaExceededError);
    await svc.checkQuota(scope, mailboxId, 5);
  });

  test('metadata stays readable when a blob is missing', async () => {
    const { scope, mailboxId, inbox } = await newMailbox();
    const r = await svc.append(scope, mailboxId, inbox.id, sampleMessage('lost body'));
    const info = await svc.getMessage(scope, r.messageId);
    await blobs.delete(info.blobKey);
    await assert.rejects(svc.openMessage(scope, r.messageId), { code: 'BLOB_NOT_FOUND' });
    assert.equal((await svc.listEntries(scope, inbox.id)).length, 1);
    assert.equal((await svc.getMessage(scope, r.messageId)).subject, 'lost body');
  });
});

describe('tenant isolation', () => {
  test('tenant B cannot read, list, flag, expunge, copy or open tenant A\'s data', async () => {
    const a = await newMailbox();
    const b = await newMailbox();
    const [ra] = await appendN(a.scope, a.mailboxId, a.inbox, 1);
    await svc.setFlags(a.scope, a.inbox.id, [1], 'add', ['\\Deleted']);
    const B = b.scope;
    const attempts: [string, () => Promise<unknown>][] = [
      ['getFolder', () => svc.getFolder(B, a.inbox.id)],
      ['listFolders', () => svc.listFolders(B, a.mailboxId)],
      ['findFolder', () => svc.findFolder(B, a.mailboxId, 'INBOX')],
      ['listEntries', () => svc.listEntries(B, a.inbox.id)],
      ['getEntry', () => svc.getEntry(B, a.inbox.id, 1)],
      ['folderStatus', () => svc.folderStatus(B, a.inbox.id)],
      ['changesSince', () => svc.changesSince(B, a.inbox.id, 0)],
      ['setFlags', () => svc.setFlags(B, a.inbox.id, [1], 'add', ['\\Seen'])],
      ['expunge', () => svc.expunge(B, a.inbox.id)],
      ['deleteMessages', () => svc.deleteMessages(B, a.inbox.id, [1])],
      ['copy from A', () => svc.copy(B, a.inbox.id, [1], b.inbox.id)],
      ['copy into A', () => svc.copy(B, b.inbox.id, [1], a.inbox.id)],
      ['move', () => svc.move(B, a.inbox.id, [1], b.inbox.id)],
      ['append', () => svc.append(B, a.mailboxId, a.inbox.id, sampleMessage('x'))],
      ['deliver', () => svc.deliver(B, ra.messageId, [{ mailboxId: b.mailboxId }])],
      ['deliver into A', async () => {
        const s = await svc.storeMessage(B, { raw: sampleMessage('y') });
        return svc.deliver(B, s.id, [{ mailboxId: a.mailboxId }]);
      }],
      ['getMessage', () => svc.getMessage(B, ra.messageId)],
      ['openMessage', () => svc.openMessage(B, ra.messageId)],
      ['createFolder', () => svc.createFolder(B, a.mailboxId, 'Evil')],
      ['renameFolder', () => svc.renameFolder(B, a.inbox.id, 'Evil')],
      ['deleteFolder', () => svc.deleteFolder(B, a.inbox.id)],
      ['setSubscribed', () => svc.setSubscribed(B, a.inbox.id, false)],
      ['getQuota', () => svc.getQuota(B, a.mailboxId)],
      ['getTenantQuota', () => svc.getTenantQuota(B, a.tenantId)],
      ['createDefaultFolders', () => svc.createDefaultFolders(B, a.mailboxId)],
    ];
    for (const [name, run] of attempts) {
      await assert.rejects(run(), NotFoundError, name);
    }
    // Nothing of A changed.
    const e = (await svc.getEntry(a.scope, a.inbox.id, 1))!;
    assert.deepEqual(e.flags, ['\\Deleted']);
    assert.equal((await svc.folderStatus(a.scope, a.inbox.id)).messages, 1);
    assert.equal((await svc.getFolder(a.scope, a.inbox.id)).subscribed, true);
  });
});
