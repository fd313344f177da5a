/**
 * Every stored message has its MIME structure with byte offsets (`messages.structure_json`), also
 * when it arrives through `append` (IMAP APPEND, the API) rather than SMTP — computed while the bytes
 * stream to the blob store — and the offsets point at the right bytes of the blob.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { freshDatabase, type TestDatabase } from '../support/shape.js';
import { freshBlobStore } from '../support/blobs.js';
import { RecordingBus, seedMailbox, seedTenant } from '../support/mail-fixtures.js';
import { tenantScope } from '../../src/core/scope.js';
import type { BlobStore } from '../../src/store/blob/blob-store.js';
import { MailboxStateService } from '../../src/core/mailbox-state/index.js';
import { findPart, type MimeStructure } from '../../src/mail/mime/index.js';

let tdb: TestDatabase;
let blobs: BlobStore;
let removeBlobs: () => Promise<void>;
let svc: MailboxStateService;

before(async () => {
  tdb = await freshDatabase();
  const b = await freshBlobStore();
  blobs = b.blobs;
  removeBlobs = b.remove;
  svc = new MailboxStateService({ db: tdb.db, blobs, bus: new RecordingBus(), nodeId: 'structure-test' });
});
after(async () => {
  await removeBlobs?.();
  await tdb?.drop();
});

const multipart = Buffer.from(
  [
    'From: a@example.net',
    'To: b@example.net',
    'Subject: parts',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="XYZ"',
    '',
    '--XYZ',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'first part',
    '--XYZ',
    'Content-Type: application/octet-stream; name="a.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    'AAECAw==',
    '--XYZ--',
    '',
  ].join('\r\n'),
);

for (const [label, raw] of [
  ['a buffer', () => multipart],
  ['a stream', () => Readable.from([multipart.subarray(0, 50), multipart.subarray(50)])],
] as const) {
  test(`append from ${label} records the MIME structure with offsets into the blob`, async () => {
    const tenantId = await seedTenant(tdb.db);
    const mailboxId = await seedMailbox(tdb.db, tenantId);
    const scope = tenantScope(tenantId);
    await svc.createDefaultFolders(scope, mailboxId);
    const inbox = (await svc.findFolder(scope, mailboxId, 'INBOX'))!;
    const r = await svc.append(scope, mailboxId, inbox.id, raw());
    const row = await tdb.db.kysely.selectFrom('messages').select(['structure_json', 'blob_key']).where('id', '=', r.messageId).executeTakeFirstOrThrow();
    assert.ok(row.structure_json, 'structure_json is recorded');
    const structure = JSON.parse(row.structure_json!) as MimeStructure;
    const part = findPart(structure.root, "2");
    assert.ok(part, 'part 2 exists');
    assert.equal(`${part!.contentType.type}/${part!.contentType.subtype}`.toLowerCase(), 'application/octet-stream');
    const chunks: Buffer[] = [];
    for await (const c of await blobs.get(row.blob_key)) chunks.push(c as Buffer);
    const stored = Buffer.concat(chunks);
    assert.equal(stored.subarray(part!.bodyStart, part!.bodyEnd).toString().trim(), 'AAECAw==');
  });
}
