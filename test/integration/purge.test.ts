/** Purge job and legal hold (SPEC §2 "Deleted messages", §4 Lifecycle, §9), in both shapes. */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase, type TestDatabase } from '../support/shape.js';
import { freshBlobStore } from '../support/blobs.js';
import type { BlobStore } from '../../src/store/blob/blob-store.js';
import type { Database } from '../../src/store/db/database.js';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import { purgeDeleted, setLegalHold, LegalHoldTargetNotFoundError } from '../../src/core/mailbox-state/purge.js';
import {
  DAY_MS,
  addEntry,
  addMailbox,
  addMessage,
  addMessageWithEntry,
  addTenant,
  blobExists,
  entryExists,
  messageExists,
  textRowExists,
} from '../support/purge-fixtures.js';

describe('purgeDeleted', () => {
  let tdb: TestDatabase;
  let store: Awaited<ReturnType<typeof freshBlobStore>>;
  let db: Database;
  let blobs: BlobStore;
  const now = Date.now();
  const purge = (extra: { batchSize?: number } = {}) => purgeDeleted({ db, blobs }, { now, defaultRetentionDays: 30, ...extra });

  before(async () => {
    tdb = await freshDatabase();
    store = await freshBlobStore();
    db = tdb.db;
    blobs = store.blobs;
  });
  after(async () => {
    await store?.remove();
    await tdb?.drop();
  });

  test('entries deleted 31 days ago go with their message, text row and blob; 29 days and live ones stay', async () => {
    const mb = await addMailbox(db, await addTenant(db));
    const old = await addMessageWithEntry(db, blobs, mb, { deletedDaysAgo: 31, now });
    const recent = await addMessageWithEntry(db, blobs, mb, { deletedDaysAgo: 29, now });
    const live = await addMessageWithEntry(db, blobs, mb);

    const result = await purge();
    assert.deepEqual(result, { entriesPurged: 1, messagesPurged: 1, blobsDeleted: 1, blobsFailed: 0 });

    assert.equal(await entryExists(db, old.entryId), false);
    assert.equal(await messageExists(db, old.messageId), false);
    assert.equal(await textRowExists(db, old.messageId), false);
    assert.equal(await blobExists(blobs, old.blobKey), false);

    for (const kept of [recent, live]) {
      assert.equal(await entryExists(db, kept.entryId), true);
      assert.equal(await messageExists(db, kept.messageId), true);
      assert.equal(await textRowExists(db, kept.messageId), true);
      assert.equal(await blobExists(blobs, kept.blobKey), true);
    }
    const liveRow = await db.kysely.selectFrom('folder_entries').selectAll().where('id', '=', live.entryId).executeTakeFirstOrThrow();
    assert.equal(liveRow.deleted_at, null, 'live entry untouched');

    assert.deepEqual(await purge(), { entriesPurged: 0, messagesPurged: 0, blobsDeleted: 0, blobsFailed: 0 }, 'a second run finds nothing');
  });

  test('per-tenant retention overrides the default', async () => {
    const short = await addMailbox(db, await addTenant(db, { retentionDays: 7 }));
    const long = await addMailbox(db, await addTenant(db, { retentionDays: 60 }));
    const shortOld = await addMessageWithEntry(db, blobs, short, { deletedDaysAgo: 8, now });
    const shortNew = await addMessageWithEntry(db, blobs, short, { deletedDaysAgo: 6, now });
    const longOld = await addMessageWithEntry(db, blobs, long, { deletedDaysAgo: 31, now });
    const longOlder = await addMessageWithEntry(db, blobs, long, { deletedDaysAgo: 61, now });

    await purge();
    assert.equal(await entryExists(db, shortOld.entryId), false, '8 days > 7-day retention');
    assert.equal(await entryExists(db, shortNew.entryId), true);
    assert.equal(await entryExists(db, longOld.entryId), true, '31 days < 60-day retention');
    assert.equal(await entryExists(db, longOlder.entryId), false);
    assert.equal(await blobExists(blobs, longOlder.blobKey), false);
  });

  test('legal hold on a tenant stops purging; lifting it lets the next run purge', async () => {
    const tenantId = await addTenant(db);
    const mb = await addMailbox(db, tenantId);
    const held = await addMessageWithEntry(db, blobs, mb, { deletedDaysAgo: 400, now });

    await setLegalHold(db, systemScope, { tenantId }, true);
    await purge();
    assert.equal(await entryExists(db, held.entryId), true);
    assert.equal(await messageExists(db, held.messageId), true);
    assert.equal(await blobExists(blobs, held.blobKey), true);

    const audit = await db.kysely.selectFrom('audit_log').selectAll().where('tenant_id', '=', tenantId).orderBy('id').execute();
    assert.deepEqual(audit.map((a) => a.event_type), ['legal_hold.set']);
    assert.deepEqual(JSON.parse(audit[0].target_json), { type: 'tenant', id: tenantId });

    await setLegalHold(db, tenantScope(tenantId), { tenantId }, false);
    await purge();
    assert.equal(await entryExists(db, held.entryId), false);
    assert.equal(await messageExists(db, held.messageId), false);
    assert.equal(await blobExists(blobs, held.blobKey), false);
  });

  test('legal hold on a mailbox protects only that mailbox', async () => {
    const tenantId = await addTenant(db);
    const heldMb = await addMailbox(db, tenantId);
    const freeMb = await addMailbox(db, tenantId);
    const held = await addMessageWithEntry(db, blobs, heldMb, { deletedDaysAgo: 90, now });
    const free = await addMessageWithEntry(db, blobs, freeMb, { deletedDaysAgo: 90, now });

    await setLegalHold(db, tenantScope(tenantId), { mailboxId: heldMb.mailboxId }, true);
    await purge();
    assert.equal(await entryExists(db, held.entryId), true);
    assert.equal(await blobExists(blobs, held.blobKey), true);
    assert.equal(await entryExists(db, free.entryId), false);

    await setLegalHold(db, systemScope, { mailboxId: heldMb.mailboxId }, false);
    await purge();
    assert.equal(await entryExists(db, held.entryId), false);
    assert.equal(await blobExists(blobs, held.blobKey), false);
  });

  test('setLegalHold refuses targets outside the scope or unknown', async () => {
    const a = await addTenant(db);
    const b = await addTenant(db);
    const mbA = await addMailbox(db, a);
    await assert.rejects(setLegalHold(db, tenantScope(b), { mailboxId: mbA.mailboxId }, true), LegalHoldTargetNotFoundError);
    await assert.rejects(setLegalHold(db, tenantScope(b), { tenantId: a }, true), LegalHoldTargetNotFoundError);
    await assert.rejects(setLegalHold(db, systemScope, { tenantId: 'no-such-tenant' }, true), /tenant no-such-tenant not found/);
    const row = await db.kysely.selectFrom('mailboxes').select('legal_hold').where('id', '=', mbA.mailboxId).executeTakeFirstOrThrow();
    assert.equal(row.legal_hold, 0, 'nothing changed');
  });

  test('a blob shared by two message rows survives until both rows are gone', async () => {
    const mbA = await addMailbox(db, await addTenant(db));
    const mbB = await addMailbox(db, await addTenant(db));
    const first = await addMessageWithEntry(db, blobs, mbA, { deletedDaysAgo: 40, now });
    const second = await addMessageWithEntry(db, blobs, mbB, { blobKey: first.blobKey });

    await purge();
    assert.equal(await messageExists(db, first.messageId), false);
    assert.equal(await messageExists(db, second.messageId), true);
    assert.equal(await blobExists(blobs, first.blobKey), true, 'still referenced by the other tenant');

    await db.kysely.updateTable('folder_entries').set({ deleted_at: now - 40 * DAY_MS }).where('id', '=', second.entryId).execute();
    const result = await purge();
    assert.equal(result.blobsDeleted, 1);
    assert.equal(await messageExists(db, second.messageId), false);
    assert.equal(await blobExists(blobs, first.blobKey), false);
  });

  test('a message with another live entry keeps its row and blob', async () => {
    const mb = await addMailbox(db, await addTenant(db));
    const msg = await addMessage(db, blobs, mb.tenantId);
    const deletedEntry = await addEntry(db, mb, msg.messageId, { deletedAt: now - 45 * DAY_MS });
    const liveEntry = await addEntry(db, mb, msg.messageId);

    await purge();
    assert.equal(await entryExists(db, deletedEntry), false);
    assert.equal(await entryExists(db, liveEntry), true);
    assert.equal(await messageExists(db, msg.messageId), true);
    assert.equal(await blobExists(blobs, msg.blobKey), true);
  });

  test('works through many entries in small batches', async () => {
    const mb = await addMailbox(db, await addTenant(db));
    const made = [];
    for (let i = 0; i < 7; i++) made.push(await addMessageWithEntry(db, blobs, mb, { deletedDaysAgo: 35, now }));
    const result = await purge({ batchSize: 2 });
    assert.equal(result.entriesPurged, 7);
    assert.equal(result.messagesPurged, 7);
    assert.equal(result.blobsDeleted, 7);
    for (const m of made) assert.equal(await entryExists(db, m.entryId), false);
  });

  test('refuses nonsensical options', async () => {
    await assert.rejects(purgeDeleted({ db, blobs }, { defaultRetentionDays: -1 }), /defaultRetentionDays/);
    await assert.rejects(purgeDeleted({ db, blobs }, { defaultRetentionDays: 30, batchSize: 0 }), /batchSize must be between 1 and 5000/);
  });
});
