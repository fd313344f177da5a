import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { systemScope, tenantScope, type Scope } from '../../src/core/scope.js';
import { newId } from '../../src/store/db/database.js';
import { ConflictError, NotFoundError, ValidationError } from '../../src/core/tenancy/errors.js';
import type { Mailbox, Tenant } from '../../src/core/tenancy/types.js';
import { SPECIAL_FOLDERS, auditRows, caught, insertSixFolders, plans, tenancyFixture, type TenancyFixture } from '../support/tenancy-fixtures.js';

describe('tenancy: mailboxes', () => {
  let f: TenancyFixture;
  let a: Tenant;
  let b: Tenant;
  let scopeA: Scope;
  let scopeB: Scope;
  before(async () => {
    f = await tenancyFixture();
    a = await f.tenancy.tenants.create(systemScope, { name: 'alpha' });
    b = await f.tenancy.tenants.create(systemScope, { name: 'beta', plan: 'tiny' });
    scopeA = tenantScope(a.id);
    scopeB = tenantScope(b.id);
    await f.tenancy.domains.add(scopeA, { name: 'alpha.example' });
    await f.tenancy.domains.add(scopeB, { name: 'beta.example' });
    await f.tenancy.users.add(scopeA, { email: 'alice@alpha.example', password: 'correct horse battery' });
    await f.tenancy.users.add(scopeB, { email: 'bob@beta.example', password: 'correct horse battery' });
  });
  after(async () => {
    await f.test.drop();
  });

  async function folderNames(mailboxId: string) {
    const rows = await f.test.db.kysely.selectFrom('folders').select(['name', 'special_use', 'tenant_id']).where('mailbox_id', '=', mailboxId).orderBy('name').execute();
    return rows;
  }

  test('add creates the mailbox with the plan quota, its six folders, and an audit row', async () => {
    const m = await f.tenancy.mailboxes.add(scopeA, { address: 'Alice@ALPHA.example', user: 'alice@alpha.example' }, { type: 'cli' });
    assert.equal(m.address, 'alice@alpha.example');
    assert.equal(m.localPart, 'alice');
    assert.equal(m.quotaBytes, plans.default.mailbox_storage_bytes);
    assert.equal(m.userId, (await f.tenancy.users.get(scopeA, 'alice@alpha.example')).id);
    const folders = await folderNames(m.id);
    assert.deepEqual(folders.map((x) => x.name).sort(), SPECIAL_FOLDERS.map(([n]) => n).sort());
    assert.ok(folders.every((x) => x.tenant_id === a.id));
    const row = (await auditRows(f.test.db.kysely, 'mailbox.created')).find((r) => JSON.parse(r.target_json).id === m.id)!;
    assert.deepEqual(JSON.parse(row.actor_json), { type: 'cli' });
    // Plan quota of another plan, and an explicit one.
    assert.equal((await f.tenancy.mailboxes.add(scopeB, { address: 'bob@beta.example' })).quotaBytes, plans.tiny.mailbox_storage_bytes);
    assert.equal((await f.tenancy.mailboxes.add(scopeA, { address: 'big@alpha.example', quotaBytes: 0 })).quotaBytes, 0);
  });

  test('folder creation is in the same transaction: when it throws, no mailbox row remains', async () => {
    const before = await auditRows(f.test.db.kysely, 'mailbox.created');
    f.folders.create = async (trx, scope, id) => {
      await insertSixFolders(trx, scope, id);
      throw new Error('folder service exploded');
    };
    try {
      const err = await caught(() => f.tenancy.mailboxes.add(scopeA, { address: 'doomed@alpha.example' }));
      assert.match(err.message, /folder service exploded/);
    } finally {
      f.folders.create = insertSixFolders;
    }
    const row = await f.test.db.kysely.selectFrom('mailboxes').select('id').where('address', '=', 'doomed@alpha.example').executeTakeFirst();
    assert.equal(row, undefined, 'mailbox row rolled back');
    const orphanFolders = await f.test.db.kysely
      .selectFrom('folders')
      .leftJoin('mailboxes', 'mailboxes.id', 'folders.mailbox_id')
      .select('folders.id')
      .where('mailboxes.id', 'is', null)
      .execute();
    assert.equal(orphanFolders.length, 0, 'folder rows rolled back');
    assert.equal((await auditRows(f.test.db.kysely, 'mailbox.created')).length, before.length, 'audit row rolled back');
    // And the address is still free.
    await f.tenancy.mailboxes.add(scopeA, { address: 'doomed@alpha.example' });
  });

  test('address must be on a domain of the tenant; owner must be of the tenant; duplicates conflict', async () => {
    assert.ok((await caught(() => f.tenancy.mailboxes.add(scopeA, { address: 'x@beta.example' }))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.mailboxes.add(scopeA, { address: 'x@nowhere.example' }))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.mailboxes.add(scopeA, { address: 'x@alpha.example', user: 'bob@beta.example' }))) instanceof NotFoundError);
    const sys = await caught(() => f.tenancy.mailboxes.add(systemScope, { address: 'x@alpha.example', user: 'bob@beta.example' }));
    assert.ok(sys instanceof ValidationError);
    assert.ok((await caught(() => f.tenancy.mailboxes.add(scopeA, { address: 'ALICE@alpha.example' }))) instanceof ConflictError);
    assert.ok((await caught(() => f.tenancy.mailboxes.add(scopeA, { address: 'bad address@alpha.example' }))) instanceof ValidationError);
    assert.ok((await caught(() => f.tenancy.mailboxes.add(scopeA, { address: 'q@alpha.example', quotaBytes: -1 }))) instanceof ValidationError);
    await f.tenancy.aliases.add(scopeA, { address: 'sales@alpha.example', targets: ['alice@alpha.example'] });
    const clash = await caught(() => f.tenancy.mailboxes.add(scopeA, { address: 'sales@alpha.example' }));
    assert.ok(clash instanceof ConflictError);
    assert.match(clash.message, /already an alias/);
  });

  test('setQuota and setOwner change the mailbox and audit', async () => {
    const m = await f.tenancy.mailboxes.setQuota(scopeA, 'alice@alpha.example', 123_456);
    assert.equal(m.quotaBytes, 123_456);
    assert.equal((await f.tenancy.mailboxes.get(scopeA, m.id)).quotaBytes, 123_456);
    const meta = JSON.parse((await auditRows(f.test.db.kysely, 'mailbox.quota_changed'))[0].metadata_json);
    assert.deepEqual({ from: meta.from, to: meta.to }, { from: plans.default.mailbox_storage_bytes, to: 123_456 });
    assert.equal((await f.tenancy.mailboxes.setOwner(scopeA, m.id, null)).userId, null);
    assert.ok((await caught(() => f.tenancy.mailboxes.setQuota(scopeA, m.id, 1.5))) instanceof ValidationError);
  });

  test('list filters by tenant and domain and is scoped', async () => {
    assert.deepEqual((await f.tenancy.mailboxes.list(scopeA)).map((m) => m.address), ['alice@alpha.example', 'big@alpha.example', 'doomed@alpha.example']);
    assert.deepEqual((await f.tenancy.mailboxes.list(scopeB)).map((m) => m.address), ['bob@beta.example']);
    const d = await f.tenancy.domains.get(systemScope, 'beta.example');
    assert.deepEqual((await f.tenancy.mailboxes.list(systemScope, { domainId: d.id })).map((m) => m.address), ['bob@beta.example']);
    assert.equal((await f.tenancy.mailboxes.list(systemScope)).length, 4);
  });

  test('another tenant cannot get, list, change or remove the mailbox: NOT_FOUND', async () => {
    const m = await f.tenancy.mailboxes.get(scopeA, 'alice@alpha.example');
    assert.ok((await caught(() => f.tenancy.mailboxes.get(scopeB, m.id))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.mailboxes.get(scopeB, m.address))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.mailboxes.setQuota(scopeB, m.id, 1))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.mailboxes.setOwner(scopeB, m.id, 'bob@beta.example'))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.mailboxes.remove(scopeB, m.id, { force: true }))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.domains.setCatchAll(scopeB, 'beta.example', m.id))) instanceof NotFoundError);
    assert.equal((await f.tenancy.mailboxes.get(scopeA, m.id)).quotaBytes, 123_456);
  });

  let uidCounter = 0;
  /** Stores one message and files it in the INBOX of each mailbox (as delivery would), counting usage. */
  async function deliver(mailboxes: Mailbox[], size = 10): Promise<string> {
    const db = f.test.db.kysely;
    const t = Date.now();
    const messageId = newId();
    await db.insertInto('messages').values({
      id: messageId, tenant_id: mailboxes[0].tenantId, blob_key: `k/${messageId}`, size, sha256: '0'.repeat(64), message_id_header: null, subject: 's',
      from_addr: null, to_addrs: null, cc_addrs: null, date_header: null, preview: null, has_attachments: 0, attachments_json: '[]',
      structure_json: null, auth_results: null, spam_score: null, thread_id: null, received_at: t, created_at: t,
    }).execute();
    await db.insertInto('message_text').values({ message_id: messageId, tenant_id: mailboxes[0].tenantId, subject: 's', addresses: '', body: 'hello' }).execute();
    for (const m of mailboxes) {
      const inbox = await db.selectFrom('folders').selectAll().where('mailbox_id', '=', m.id).where('name', '=', 'INBOX').executeTakeFirstOrThrow();
      await db.insertInto('folder_entries').values({
        id: newId(), tenant_id: m.tenantId, mailbox_id: m.id, folder_id: inbox.id, message_id: messageId, uid: ++uidCounter, modseq: 1,
        flags_json: '[]', keywords_json: '[]', internal_date: t, size, deleted_at: null,
      }).execute();
      await db.updateTable('mailboxes').set((eb) => ({ used_bytes: eb('used_bytes', '+', size) })).where('id', '=', m.id).execute();
      await db.updateTable('tenants').set((eb) => ({ used_bytes: eb('used_bytes', '+', size) })).where('id', '=', m.tenantId).execute();
    }
    return messageId;
  }

  async function tenantUsed(id: string): Promise<number> {
    return Number((await f.test.db.kysely.selectFrom('tenants').select('used_bytes').where('id', '=', id).executeTakeFirstOrThrow()).used_bytes);
  }

  async function messageExists(id: string): Promise<{ row: boolean; text: boolean }> {
    const db = f.test.db.kysely;
    const row = await db.selectFrom('messages').select('id').where('id', '=', id).executeTakeFirst();
    const text = await db.selectFrom('message_text').select('message_id').where('message_id', '=', id).executeTakeFirst();
    return { row: !!row, text: !!text };
  }

  test('remove refuses a mailbox holding messages unless forced; cleans folders, aliases, catch-all', async () => {
    const m = await f.tenancy.mailboxes.add(scopeA, { address: 'full@alpha.example' });
    const alice = await f.tenancy.mailboxes.get(scopeA, 'alice@alpha.example');
    const own = await deliver([m], 100);
    const shared = await deliver([m, alice], 7);
    const usedBefore = await tenantUsed(a.id);
    await f.tenancy.aliases.add(scopeA, { address: 'only-full@alpha.example', targets: ['full@alpha.example'] });
    await f.tenancy.aliases.add(scopeA, { address: 'both@alpha.example', targets: ['full@alpha.example', 'alice@alpha.example'] });
    await f.tenancy.domains.setCatchAll(scopeA, 'alpha.example', 'full@alpha.example');
    const err = await caught(() => f.tenancy.mailboxes.remove(scopeA, m.id));
    assert.ok(err instanceof ConflictError);
    assert.match(err.message, /holds 2 message/);
    assert.deepEqual(err.details, { messages: 2 });
    await f.tenancy.mailboxes.remove(scopeA, m.id, { force: true }, { type: 'cli' });
    assert.ok((await caught(() => f.tenancy.mailboxes.get(scopeA, m.id))) instanceof NotFoundError);
    assert.equal((await folderNames(m.id)).length, 0);
    assert.ok((await caught(() => f.tenancy.aliases.get(scopeA, 'only-full@alpha.example'))) instanceof NotFoundError, 'emptied alias removed');
    assert.deepEqual((await f.tenancy.aliases.get(scopeA, 'both@alpha.example')).targets.map((t) => t.address), ['alice@alpha.example']);
    assert.equal((await f.tenancy.domains.get(scopeA, 'alpha.example')).catchAllMailboxId, null);
    const meta = JSON.parse((await auditRows(f.test.db.kysely, 'mailbox.removed')).at(-1)!.metadata_json);
    assert.deepEqual(meta, { address: 'full@alpha.example', messages: 2, entries_removed: 2, forced: true, removed_aliases: ['only-full@alpha.example'] });
    // Its own message (row + text index) is gone; one still filed in another mailbox stays.
    assert.deepEqual(await messageExists(own), { row: false, text: false });
    assert.deepEqual(await messageExists(shared), { row: true, text: true });
    // Tenant usage is the sum over its mailboxes: the removed mailbox's 107 bytes are released.
    assert.equal(await tenantUsed(a.id), usedBefore - 107);
  });

  test('an empty mailbox is removed without force; legal hold blocks removal', async () => {
    await f.tenancy.mailboxes.remove(scopeA, 'doomed@alpha.example');
    assert.ok((await caught(() => f.tenancy.mailboxes.get(scopeA, 'doomed@alpha.example'))) instanceof NotFoundError);
    await f.tenancy.tenants.update(systemScope, a.id, { legalHold: true });
    const err = await caught(() => f.tenancy.mailboxes.remove(scopeA, 'big@alpha.example', { force: true }));
    assert.ok(err instanceof ConflictError);
    assert.match(err.message, /legal hold/);
    await f.tenancy.tenants.update(systemScope, a.id, { legalHold: false });
  });
});
