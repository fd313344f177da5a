/**
 * What IMAP FETCH reads from stored messages, over a real database and blob store of the current
 * shape: content metadata in batches (tenant-scoped), byte ranges of blobs, ENVELOPE/BODYSTRUCTURE
 * from header ranges only, BODY[section]<partial> streamed from the blob, BINARY, and rows stored
 * without a MIME structure.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { freshDatabase, shape, type TestDatabase } from '../support/shape.js';
import { freshBlobStore } from '../support/blobs.js';
import { RecordingBus, seedMailbox, seedTenant } from '../support/mail-fixtures.js';
import { tenantScope, type Scope } from '../../src/core/scope.js';
import { readAll, type BlobStore } from '../../src/store/blob/blob-store.js';
import { MailboxStateService, NotFoundError, type Folder } from '../../src/core/mailbox-state/index.js';
import { buildBodyStructure, buildEnvelope } from '../../src/mail/imap/index.js';
import { encodeValue } from '../../src/protocols/imap/encoder/index.js';
import { binarySize, fetchBinary, fetchSection, loadMessageContent, loadMessageContents, NoSuchPartError } from '../../src/protocols/imap/fetch/index.js';

/** The blob store with a record of every read, to check that FETCH reads only what it needs. */
class CountingBlobs {
  gets = 0;
  ranges: { start: number; end: number }[] = [];
  constructor(readonly inner: BlobStore) {}
  reset(): void {
    this.gets = 0;
    this.ranges = [];
  }
  store(): BlobStore {
    return new Proxy(this.inner, {
      get: (target, key) => {
        if (key === 'get') return async (k: string) => (this.gets++, target.get(k));
        if (key === 'getRange') return async (k: string, s: number, e: number) => (this.ranges.push({ start: s, end: e }), target.getRange(k, s, e));
        const v = Reflect.get(target, key);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  }
}

const fixture = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url));
const text = (v: Parameters<typeof encodeValue>[0]) => encodeValue(v, { utf8: false }).toString('latin1');

describe(`IMAP message content (${shape})`, () => {
  let tdb: TestDatabase;
  let removeBlobs: () => Promise<void>;
  let counting: CountingBlobs;
  let svc: MailboxStateService;
  let scope: Scope;
  let otherScope: Scope;
  let mailboxId: string;
  let inbox: Folder;
  let otherMessageId: string;

  before(async () => {
    tdb = await freshDatabase();
    const b = await freshBlobStore();
    removeBlobs = b.remove;
    counting = new CountingBlobs(b.blobs);
    svc = new MailboxStateService({ db: tdb.db, blobs: counting.store(), bus: new RecordingBus(), nodeId: 'content-test' });
    const tenantId = await seedTenant(tdb.db);
    mailboxId = await seedMailbox(tdb.db, tenantId);
    scope = tenantScope(tenantId);
    await svc.createDefaultFolders(scope, mailboxId);
    inbox = (await svc.findFolder(scope, mailboxId, 'INBOX'))!;
    const otherTenant = await seedTenant(tdb.db);
    const otherMailbox = await seedMailbox(tdb.db, otherTenant);
    otherScope = tenantScope(otherTenant);
    await svc.createDefaultFolders(otherScope, otherMailbox);
    const otherInbox = (await svc.findFolder(otherScope, otherMailbox, 'INBOX'))!;
    otherMessageId = (await svc.append(otherScope, otherMailbox, otherInbox.id, Buffer.from('Subject: other tenant\r\n\r\nsecret\r\n'))).messageId;
  });
  after(async () => {
    await removeBlobs?.();
    await tdb?.drop();
  });

  const append = async (raw: Buffer, opts?: { internalDate?: number }) => (await svc.append(scope, mailboxId, inbox.id, raw, opts)).messageId;

  test('getMessageContents: blob key, size, structure, dates; other tenants\' and unknown ids are absent', async () => {
    const raw = Buffer.from('Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nSubject: dated\r\n\r\nbody\r\n');
    const id = await append(raw, { internalDate: Date.UTC(2026, 10, 3) });
    const undated = await append(Buffer.from('Subject: undated\r\n\r\nx\r\n'));
    const map = await svc.getMessageContents(scope, [id, undated, otherMessageId, 'no-such-id', id]);
    assert.deepEqual([...map.keys()].sort(), [id, undated].sort());
    const info = map.get(id)!;
    assert.equal(info.size, raw.length);
    assert.equal(info.date, Date.UTC(2026, 10, 2, 10, 0, 0));
    assert.equal(typeof info.receivedAt, 'number');
    assert.ok(info.blobKey.length > 0);
    assert.ok(info.structureJson && JSON.parse(info.structureJson).root, 'structure stored');
    assert.equal(map.get(undated)!.date, null);
    assert.equal((await svc.getMessageContents(otherScope, [id])).size, 0);
  });

  test('getMessageContents reads more than one batch of ids', async () => {
    const id = await append(Buffer.from('Subject: batch\r\n\r\nx\r\n'));
    const ids = [...Array.from({ length: 1200 }, (_, i) => `missing-${i}`), id];
    const map = await svc.getMessageContents(scope, ids);
    assert.deepEqual([...map.keys()], [id]);
  });

  test('openMessageRange: bytes of the message; NotFoundError outside the scope', async () => {
    const raw = Buffer.from('Subject: range\r\n\r\n0123456789\r\n');
    const id = await append(raw);
    assert.equal((await readAll(await svc.openMessageRange(scope, id, 18, 23))).toString(), '01234');
    assert.equal((await readAll(await svc.openMessageRange(scope, id, 5, 5))).length, 0);
    await assert.rejects(() => svc.openMessageRange(otherScope, id, 0, 5), NotFoundError);
    await assert.rejects(() => svc.openMessageRange(scope, otherMessageId, 0, 5), NotFoundError);
  });

  test('loadMessageContent: NotFoundError for another tenant\'s message', async () => {
    await assert.rejects(() => loadMessageContent(svc, scope, otherMessageId), NotFoundError);
  });

  test('ENVELOPE and BODYSTRUCTURE of many messages read only header ranges, never a whole blob', async () => {
    const sample = fixture('imap/bodystructure-sample.eml');
    const attachment = randomBytes(300 * 1024).toString('base64').replace(/.{76}/g, '$&\r\n');
    const big = Buffer.from(
      'From: big@example.org\r\nSubject: big\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n' +
        `--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${attachment}\r\n--b--\r\n`,
    );
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await append(i % 2 === 0 ? sample : big));
    counting.reset();
    const contents = await loadMessageContents(svc, scope, [...ids, otherMessageId], { withHeaders: true });
    assert.deepEqual([...contents.keys()], ids);
    for (const [, content] of contents) {
      const envelope = text(buildEnvelope(content.headerOf(content.structure.root)));
      const structure = text(buildBodyStructure(content.structure.root, (p) => content.headerOf(p), true));
      if (content.size === sample.length) {
        assert.equal(envelope, '("Mon, 2 Nov 2026 08:00:00 +0100" NIL (("Carol" NIL "carol" "example.org")) (("Carol" NIL "carol" "example.org")) (("Carol" NIL "carol" "example.org")) NIL NIL NIL NIL NIL)');
        assert.match(structure, /^\(\("text" "x-notes" .* "mixed" \("boundary" "outer edge"\) NIL NIL NIL\)$/);
        assert.ok(structure.includes('"forwarded"'), 'envelope of the encapsulated message');
      } else {
        assert.equal(envelope, '(NIL "big" ((NIL NIL "big" "example.org")) ((NIL NIL "big" "example.org")) ((NIL NIL "big" "example.org")) NIL NIL NIL NIL NIL)');
        assert.ok(structure.includes(`"base64" ${attachment.length} NIL NIL NIL NIL)`), structure);
      }
    }
    assert.equal(counting.gets, 0, 'no whole-blob read');
    const bytesRead = counting.ranges.reduce((n, r) => n + (r.end - r.start), 0);
    assert.ok(bytesRead < 10 * 1024, `read ${bytesRead} bytes of header ranges for 10 messages`);
    assert.ok(counting.ranges.length <= 10, `one coalesced header read per message, got ${counting.ranges.length}`);
  });

  test('BODY[section]<partial> streams exactly the range from the blob', async () => {
    const payload = randomBytes(2 * 1024 * 1024);
    const raw = Buffer.concat([
      Buffer.from('Subject: large\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'),
      payload,
      Buffer.from('\r\n--z--\r\n'),
    ]);
    const id = await svc.append(scope, mailboxId, inbox.id, Readable.from([raw])).then((r) => r.messageId);
    const content = await loadMessageContent(svc, scope, id);
    counting.reset();
    const part = await fetchSection(content, { part: [1] });
    assert.equal(part.size, payload.length);
    assert.deepEqual(await readAll(await part.open()), payload);
    const window = await fetchSection(content, { part: [1] }, { start: 1000, length: 50 });
    assert.deepEqual(await readAll(await window.open()), payload.subarray(1000, 1050));
    const header = await fetchSection(content, { part: [], text: 'HEADER.FIELDS', fields: ['SUBJECT'] });
    assert.equal((await readAll(await header.open())).toString(), 'Subject: large\r\n\r\n');
    assert.equal(counting.gets, 0);
    assert.deepEqual(counting.ranges.slice(0, 2).map((r) => r.end - r.start), [payload.length, 50]);
    await assert.rejects(() => fetchSection(content, { part: [2] }), NoSuchPartError);
  });

  test('BINARY decodes from the blob; BINARY.SIZE without holding the content', async () => {
    const content = await loadMessageContent(svc, scope, await append(fixture('mime/mixed-nested.eml')));
    const pdf = Buffer.from('255044462d312e340a25c7ec8fa20a312030206f626a0a', 'hex');
    assert.deepEqual(await fetchBinary(content, [2]), pdf);
    assert.equal(await binarySize(content, [2]), pdf.length);
  });

  test('a row stored without structure_json: the structure is parsed from the blob', async () => {
    const raw = fixture('mime/rfc822-attachment.eml');
    const id = await append(raw);
    await tdb.db.kysely.updateTable('messages').set({ structure_json: null }).where('id', '=', id).execute();
    const content = await loadMessageContent(svc, scope, id, { withHeaders: true });
    assert.equal(content.structure.size, raw.length);
    const structure = text(buildBodyStructure(content.structure.root, (p) => content.headerOf(p), false));
    assert.equal(
      structure,
      '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 26 1)("message" "rfc822" NIL NIL NIL "7bit" 215 ' +
        '(NIL "lunch" ((NIL NIL "bob" "example.com")) ((NIL NIL "bob" "example.com")) ((NIL NIL "bob" "example.com")) NIL NIL NIL NIL NIL) ' +
        '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 1)("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 21 1) "alternative") 13) "mixed")',
    );
    const section = await fetchSection(content, { part: [2, 1] });
    assert.equal((await readAll(await section.open())).toString(), 'Lunch at noon?');
  });

  test('headerOf without withHeaders is a programming error, not a silent empty header', async () => {
    const content = await loadMessageContent(svc, scope, await append(Buffer.from('Subject: h\r\n\r\nx\r\n')));
    assert.throws(() => content.headerOf(content.structure.root), /was not loaded/);
  });
});
