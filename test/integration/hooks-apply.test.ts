/**
 * Applying a plugin's writes to a stored message (src/hooks/apply.ts) through the real
 * mailbox-state service: keywords, flags, moves, quarantine, metadata and deletes land on every
 * live entry of the message, publish change events (what IMAP sessions listen to), and bad input
 * changes nothing.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase, tempDir, type TestDatabase } from '../support/shape.js';
import { cheapPasswords, plans } from '../support/tenancy-fixtures.js';
import { createBlobStore, type BlobStore } from '../../src/store/blob/index.js';
import { MemoryChangeBus } from '../../src/store/events/memory-bus.js';
import type { ChangeEvent } from '../../src/store/events/change-bus.js';
import { MailboxStateService } from '../../src/core/mailbox-state/service.js';
import { NotFoundError } from '../../src/core/mailbox-state/errors.js';
import { TenancyService } from '../../src/core/tenancy/service.js';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import { applyPluginWrites, ApplyError, requestedWrites, ungrantedWrites } from '../../src/hooks/apply.js';
import { MAX_PLUGIN_METADATA_BYTES, readPluginMetadata } from '../../src/hooks/metadata-store.js';
import { NO_PERMISSIONS } from '../../src/plugins/permissions.js';

const PLUGIN = 'com.example.tagger';

let tdb: TestDatabase;
let blobDir: { path: string; remove(): void };
let blobs: BlobStore;
let bus: MemoryChangeBus;
let ms: MailboxStateService;
let tenancy: TenancyService;
let t1: string;
let t2: string;
const mb: Record<string, string> = {};
const events: ChangeEvent[] = [];

before(async () => {
  tdb = await freshDatabase();
  blobDir = tempDir('mairust-apply-blobs-');
  blobs = createBlobStore({ backend: 'fs', fs: { path: blobDir.path }, s3: {} as never });
  bus = new MemoryChangeBus();
  ms = new MailboxStateService({ db: tdb.db, blobs, bus, nodeId: 'apply-test' });
  tenancy = new TenancyService({
    db: tdb.db,
    plans,
    defaultPlan: 'default',
    createDefaultFolders: async (trx, scope, mailboxId) => void (await ms.createDefaultFolders(scope, mailboxId, trx)),
    passwordOptions: cheapPasswords,
  });
  t1 = (await tenancy.tenants.create(systemScope, { name: 'acme' })).id;
  t2 = (await tenancy.tenants.create(systemScope, { name: 'globex' })).id;
  await tenancy.domains.add(systemScope, { tenantId: t1, name: 'acme.test' });
  await tenancy.domains.add(systemScope, { tenantId: t2, name: 'globex.test' });
  for (const a of ['ann@acme.test', 'ben@acme.test', 'gus@globex.test']) mb[a] = (await tenancy.mailboxes.add(systemScope, { address: a })).id;
  bus.subscribe((e) => void events.push(e));
});

after(async () => {
  await blobs?.close();
  await tdb?.drop();
  blobDir?.remove();
});

function raw(subject: string): Buffer {
  return Buffer.from(`From: x@remote.example\r\nTo: ann@acme.test\r\nSubject: ${subject}\r\nMessage-ID: <${Math.random()}@r>\r\n\r\nbody\r\n`);
}

/** A message of `tenant` in the INBOX of each given mailbox. */
async function stored(tenant: string, addresses: string[]): Promise<string> {
  const scope = tenantScope(tenant);
  const m = await ms.storeMessage(scope, { raw: raw('apply test') });
  await ms.deliver(scope, m.id, addresses.map((a) => ({ mailboxId: mb[a] })));
  return m.id;
}

async function folderName(tenant: string, folderId: string): Promise<string> {
  return (await ms.getFolder(tenantScope(tenant), folderId)).name;
}

async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 20));
}

describe('pure rules', () => {
  test('requestedWrites / ungrantedWrites', () => {
    const w = { tags: ['a'], flags: [], folder: 'Work', metadata: { k: 1 }, delete: true };
    assert.deepEqual(requestedWrites(w), ['tags', 'move', 'metadata', 'delete']);
    assert.deepEqual(requestedWrites({ tags: [], metadata: {} }), []);
    assert.deepEqual(ungrantedWrites({ ...NO_PERMISSIONS, read_headers: true, write_tags: true, write_metadata: true }, w), ['move', 'delete']);
  });
});

describe('entriesOfMessage', () => {
  test('every live entry, tenant-checked', async () => {
    const id = await stored(t1, ['ann@acme.test', 'ben@acme.test']);
    const entries = await ms.entriesOfMessage(tenantScope(t1), id);
    assert.equal(entries.length, 2);
    assert.deepEqual(new Set(entries.map((e) => e.mailboxId)), new Set([mb['ann@acme.test'], mb['ben@acme.test']]));
    await assert.rejects(ms.entriesOfMessage(tenantScope(t2), id), NotFoundError);
  });
});

describe('applyPluginWrites', () => {
  test('tags and flags land on every entry and publish flag events', async () => {
    const id = await stored(t1, ['ann@acme.test', 'ben@acme.test']);
    await settle();
    events.length = 0;
    const r = await applyPluginWrites({ mailboxState: ms, db: tdb.db }, { tenantId: t1, messageId: id, pluginId: PLUGIN, write: { tags: ['newsletter', 'Newsletter', '$Important'], flags: ['\\seen'] } });
    assert.deepEqual(r.tags, ['newsletter', '$Important']);
    assert.deepEqual(r.flags, ['\\Seen']);
    for (const e of await ms.entriesOfMessage(tenantScope(t1), id)) {
      const [entry] = await ms.listEntries(tenantScope(t1), e.folderId, { uids: [e.uid] });
      assert.deepEqual(entry.keywords, ['newsletter', '$Important']);
      assert.ok(entry.flags.includes('\\Seen'));
    }
    await settle();
    const flagEvents = events.filter((e) => e.kind === 'flags');
    assert.equal(flagEvents.length, 2, 'one flags event per folder (IMAP sessions see the change)');
    assert.deepEqual(new Set(flagEvents.map((e) => e.mailboxId)), new Set([mb['ann@acme.test'], mb['ben@acme.test']]));
  });

  test('flags other than \\Seen \\Flagged \\Answered \\Draft, and bad keywords, are refused; nothing changes', async () => {
    const id = await stored(t1, ['ann@acme.test']);
    const deps = { mailboxState: ms, db: tdb.db };
    const base = { tenantId: t1, messageId: id, pluginId: PLUGIN };
    await assert.rejects(applyPluginWrites(deps, { ...base, write: { tags: ['ok'], flags: ['\\Deleted'] } }), (e: unknown) => e instanceof ApplyError && e.code === 'invalid' && /use delete/.test(e.message));
    await assert.rejects(applyPluginWrites(deps, { ...base, write: { flags: ['\\Recent'] } }), (e: unknown) => e instanceof ApplyError && e.code === 'invalid');
    await assert.rejects(applyPluginWrites(deps, { ...base, write: { flags: ['plain'] } }), (e: unknown) => e instanceof ApplyError && /allowed/.test(e.message));
    await assert.rejects(applyPluginWrites(deps, { ...base, write: { tags: ['two words'] } }), (e: unknown) => e instanceof ApplyError && e.code === 'invalid');
    await assert.rejects(applyPluginWrites(deps, { ...base, write: { tags: ['x'.repeat(65)] } }), ApplyError);
    await assert.rejects(applyPluginWrites(deps, { ...base, write: { tags: ['back\\slash'] } }), ApplyError);
    const [e] = await ms.entriesOfMessage(tenantScope(t1), id);
    assert.deepEqual(e.flags, []);
  });

  test('move to a folder by name in each mailbox; a folder missing in one mailbox moves nothing', async () => {
    const id = await stored(t1, ['ann@acme.test', 'ben@acme.test']);
    const deps = { mailboxState: ms, db: tdb.db };
    const r = await applyPluginWrites(deps, { tenantId: t1, messageId: id, pluginId: PLUGIN, write: { folder: 'Archive' } });
    assert.equal(r.moved, 2);
    assert.deepEqual(r.movedTo, ['Archive']);
    for (const e of await ms.entriesOfMessage(tenantScope(t1), id)) assert.equal(await folderName(t1, e.folderId), 'Archive');

    await ms.createFolder(tenantScope(t1), mb['ann@acme.test'], 'Work');
    await assert.rejects(
      applyPluginWrites(deps, { tenantId: t1, messageId: id, pluginId: PLUGIN, write: { folder: 'Work', tags: ['moved'] } }),
      (e: unknown) => e instanceof ApplyError && e.code === 'not_found' && /Work/.test(e.message),
    );
    const after = await ms.entriesOfMessage(tenantScope(t1), id);
    for (const e of after) {
      assert.equal(await folderName(t1, e.folderId), 'Archive');
      assert.deepEqual(e.flags, [], 'validation failed before the tags were applied');
    }
  });

  test('quarantine: the named folder if it exists, else the special-use Junk folder (nothing created)', async () => {
    const id = await stored(t1, ['ann@acme.test']);
    const r = await applyPluginWrites({ mailboxState: ms, db: tdb.db }, { tenantId: t1, messageId: id, pluginId: PLUGIN, write: { quarantine: true }, quarantineFolder: 'Quarantine' });
    assert.equal(r.quarantined, true);
    const [e] = await ms.entriesOfMessage(tenantScope(t1), id);
    const f = await ms.getFolder(tenantScope(t1), e.folderId);
    assert.equal(f.specialUse, '\\Junk');
    assert.equal(await ms.findFolder(tenantScope(t1), mb['ann@acme.test'], 'Quarantine'), null);
  });

  test('metadata merges per plugin and is bounded', async () => {
    const id = await stored(t1, ['ann@acme.test']);
    const deps = { mailboxState: ms, db: tdb.db };
    await applyPluginWrites(deps, { tenantId: t1, messageId: id, pluginId: PLUGIN, write: { metadata: { score: 3, lang: 'en' } } });
    const r = await applyPluginWrites(deps, { tenantId: t1, messageId: id, pluginId: PLUGIN, write: { metadata: { score: 5 } } });
    assert.deepEqual(r.metadata, { score: 5, lang: 'en' });
    await applyPluginWrites(deps, { tenantId: t1, messageId: id, pluginId: 'org.other.plugin', write: { metadata: { x: true } } });
    assert.deepEqual(await readPluginMetadata(tdb.db, t1, id), { [PLUGIN]: { score: 5, lang: 'en' }, 'org.other.plugin': { x: true } });
    assert.deepEqual(await readPluginMetadata(tdb.db, t2, id), {}, 'another tenant reads nothing');
    await assert.rejects(
      applyPluginWrites(deps, { tenantId: t1, messageId: id, pluginId: PLUGIN, write: { metadata: { big: 'x'.repeat(MAX_PLUGIN_METADATA_BYTES) } } }),
      (e: unknown) => e instanceof ApplyError && e.code === 'invalid',
    );
    assert.deepEqual((await readPluginMetadata(tdb.db, t1, id))[PLUGIN], { score: 5, lang: 'en' });
  });

  test('delete removes every entry and publishes expunge events', async () => {
    const id = await stored(t1, ['ann@acme.test', 'ben@acme.test']);
    await settle();
    events.length = 0;
    const r = await applyPluginWrites({ mailboxState: ms, db: tdb.db }, { tenantId: t1, messageId: id, pluginId: PLUGIN, write: { delete: true } });
    assert.equal(r.deleted, 2);
    assert.deepEqual(await ms.entriesOfMessage(tenantScope(t1), id), []);
    await settle();
    assert.equal(events.filter((e) => e.kind === 'expunge').length, 2);
  });

  test("another tenant's message is not found", async () => {
    const id = await stored(t2, ['gus@globex.test']);
    await assert.rejects(
      applyPluginWrites({ mailboxState: ms, db: tdb.db }, { tenantId: t1, messageId: id, pluginId: PLUGIN, write: { tags: ['x'] } }),
      (e: unknown) => e instanceof ApplyError && e.code === 'not_found',
    );
    const [e] = await ms.entriesOfMessage(tenantScope(t2), id);
    assert.deepEqual(e.flags, []);
  });
});
