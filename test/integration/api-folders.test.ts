/**
 * `/api/v1/folders` (SPEC §11): list with counters (total, unseen, size, special use) and paging,
 * create (parents too), rename with subfolders, (un)subscribe, delete; INBOX and special-use
 * folders protected (409); every limit of folder names and counts with its exact error; all
 * through the mailbox-state service, so IMAP's view (UIDVALIDITY, names) agrees. Isolation
 * (SPEC §9): other users' and tenants' folders are 404, admins see only owner-less mailboxes.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tenantScope, type Scope } from '../../src/core/scope.js';
import { newId } from '../../src/store/db/database.js';
import type { Mailbox } from '../../src/core/tenancy/types.js';
import { startApi, type ApiHarness, type ApiResponse, type CallOptions, type TestTenant, type TestUser } from '../support/api.js';

const F = '/api/v1/folders';
const CRLF = '\r\n';

const mail = (subject: string, body = 'body') => Buffer.from([`From: a@example.org`, `Subject: ${subject}`, '', body, ''].join(CRLF));

describe('api: folders', () => {
  let api: ApiHarness;
  let acme: TestTenant;
  let beta: TestTenant;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let scope: Scope;
  let aliceBox: Mailbox;
  let bobBox: Mailbox;
  let shared: Mailbox;
  /** Bytes of the three messages appended to Alice's INBOX. */
  let inboxBytes = 0;

  const call = (method: string, path: string, opts: CallOptions = {}): Promise<ApiResponse> => api.call(method, path, opts);
  const as = (user: TestUser | TestTenant['admin']) => ({
    get: (path: string) => call('GET', path, { token: user.token }),
    post: (path: string, body: unknown) => call('POST', path, { token: user.token, body }),
    patch: (path: string, body: unknown) => call('PATCH', path, { token: user.token, body }),
    del: (path: string) => call('DELETE', path, { token: user.token }),
  });
  const folderNamed = async (box: Mailbox, name: string) => (await api.app.mailboxState.findFolder(scope, box.id, name))!;

  before(async () => {
    api = await startApi();
    acme = await api.tenant();
    beta = await api.tenant();
    scope = tenantScope(acme.id);
    const domain = await api.app.tenancy.domains.add(scope, { name: `${acme.name}.example` });
    alice = await api.user(acme.id);
    bob = await api.user(acme.id);
    aliceBox = await api.app.tenancy.mailboxes.add(scope, { address: `alice@${domain.name}`, user: alice.user.id });
    bobBox = await api.app.tenancy.mailboxes.add(scope, { address: `bob@${domain.name}`, user: bob.user.id });
    shared = await api.app.tenancy.mailboxes.add(scope, { address: `support@${domain.name}` });
    const betaScope = tenantScope(beta.id);
    const betaDomain = await api.app.tenancy.domains.add(betaScope, { name: `${beta.name}.example` });
    carol = await api.user(beta.id);
    await api.app.tenancy.mailboxes.add(betaScope, { address: `carol@${betaDomain.name}`, user: carol.user.id });

    const inbox = await folderNamed(aliceBox, 'INBOX');
    for (let i = 0; i < 3; i++) {
      const r = await api.app.mailboxState.append(scope, aliceBox.id, inbox.id, mail(`m${i}`, 'x'.repeat(i * 10)), i === 0 ? { flags: ['\\Seen'] } : {});
      inboxBytes += r.size;
    }
  });
  after(async () => {
    await api?.close();
  });

  test('GET: the caller\'s own mailbox by default, INBOX first, counters, special use', async () => {
    const res = await as(alice).get(F);
    assert.equal(res.status, 200, res.body);
    const names = res.json.data.map((f: any) => f.name);
    assert.deepEqual(names, ['INBOX', 'Archive', 'Drafts', 'Junk', 'Sent', 'Trash']);
    assert.deepEqual(res.json.pagination, { cursor: null, has_more: false });
    const inbox = res.json.data[0];
    assert.deepEqual(Object.keys(inbox).sort(), ['created_at', 'id', 'mailbox_id', 'name', 'size', 'special_use', 'subscribed', 'total', 'uid_validity', 'unseen']);
    assert.equal(inbox.mailbox_id, aliceBox.id);
    assert.equal(inbox.total, 3);
    assert.equal(inbox.unseen, 2);
    assert.equal(inbox.size, inboxBytes);
    assert.equal(inbox.special_use, null);
    assert.equal(inbox.subscribed, true);
    const status = await api.app.mailboxState.folderStatus(scope, inbox.id);
    assert.deepEqual([inbox.total, inbox.unseen, inbox.size, inbox.uid_validity], [status.messages, status.unseen, status.size, status.uidValidity]);
    const byName = Object.fromEntries(res.json.data.map((f: any) => [f.name, f]));
    assert.deepEqual(
      ['Archive', 'Drafts', 'Junk', 'Sent', 'Trash'].map((n) => byName[n].special_use),
      ['archive', 'drafts', 'junk', 'sent', 'trash'],
    );
    assert.deepEqual([byName.Trash.total, byName.Trash.unseen, byName.Trash.size], [0, 0, 0]);
    // The same with mailbox_id.
    assert.deepEqual((await as(alice).get(`${F}?mailbox_id=${aliceBox.id}`)).json.data, res.json.data);
  });

  test('POST creates a folder and its missing parents; the names IMAP sees', async () => {
    const res = await as(alice).post(F, { mailbox_id: aliceBox.id, name: 'Projects/2024/会議' });
    assert.equal(res.status, 201, res.body);
    assert.equal(res.json.data.name, 'Projects/2024/会議');
    assert.deepEqual([res.json.data.total, res.json.data.special_use, res.json.data.subscribed], [0, null, true]);
    const names = (await api.app.mailboxState.listFolders(scope, aliceBox.id)).map((f) => f.name);
    for (const n of ['Projects', 'Projects/2024', 'Projects/2024/会議']) assert.ok(names.includes(n), n);
    // Without mailbox_id: the caller's own mailbox.
    const own = await as(alice).post(F, { name: 'Receipts' });
    assert.equal(own.status, 201);
    assert.equal(own.json.data.mailbox_id, aliceBox.id);
  });

  test('POST errors: existing name 409, invalid names and limits 422 with the exact message', async () => {
    const exists = await as(alice).post(F, { name: 'Receipts' });
    assert.equal(exists.status, 409);
    assert.equal(exists.json.error.code, 'CONFLICT');
    assert.equal(exists.json.error.message, 'folder already exists: Receipts');
    assert.equal((await as(alice).post(F, { name: 'inbox' })).status, 409);

    const invalid = async (name: string, reason: RegExp) => {
      const res = await as(alice).post(F, { name });
      assert.equal(res.status, 422, `${JSON.stringify(name)}: ${res.body}`);
      assert.equal(res.json.error.code, 'VALIDATION_ERROR');
      assert.equal(res.json.error.details.field, 'name');
      assert.match(res.json.error.message, reason);
    };
    await invalid('a'.repeat(256), /longer than 255 bytes/);
    assert.equal((await as(alice).post(F, { name: 'b'.repeat(255) })).status, 201);
    await invalid('あ'.repeat(86), /longer than 255 bytes/); // 258 UTF-8 bytes
    await invalid(Array.from({ length: 33 }, (_, i) => `d${i}`).join('/'), /32/);
    await invalid('bad\u0007name', /control characters/);
    await invalid('a//b', /./);
    // Schema bounds: empty, over-long, unknown fields, malformed ids.
    for (const body of [{ name: '' }, { name: 'x'.repeat(1025) }, { name: 'ok', colour: 'red' }, { mailbox_id: 'nope', name: 'x' }, {}]) {
      const res = await as(alice).post(F, body);
      assert.equal(res.status, 422, JSON.stringify(body));
    }
  });

  test('the 2000-folder limit of a mailbox: 409 CONFLICT naming it', async () => {
    const box = await api.app.tenancy.mailboxes.add(scope, { address: `many@${acme.name}.example`, user: bob.user.id });
    const have = (await api.app.mailboxState.listFolders(scope, box.id)).length;
    const at = Date.now();
    // Seeded directly: 2000 folder creations one by one would only test patience.
    const rows = Array.from({ length: 2000 - have - 1 }, (_, i) => ({
      id: newId(), tenant_id: acme.id, mailbox_id: box.id, name: `f${i}`, special_use: null, uid_validity: 1, uid_next: 1,
      highest_modseq: 1, subscribed: 1, created_at: at, deleted_at: null,
    }));
    for (let i = 0; i < rows.length; i += 500) await api.app.db.kysely.insertInto('folders').values(rows.slice(i, i + 500)).execute();
    const last = await as(bob).post(F, { mailbox_id: box.id, name: 'the-2000th' });
    assert.equal(last.status, 201, last.body);
    const over = await as(bob).post(F, { mailbox_id: box.id, name: 'one-too-many' });
    assert.equal(over.status, 409, over.body);
    assert.equal(over.json.error.code, 'CONFLICT');
    assert.deepEqual(over.json.error.details, { limit: 'folders per mailbox', max: 2000 });
    // And the list pages through all 2000 with no folder twice.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await as(bob).get(`${F}?mailbox_id=${box.id}&limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(res.status, 200);
      seen.push(...res.json.data.map((f: any) => f.name));
      cursor = res.json.pagination.cursor;
    } while (cursor);
    assert.equal(seen.length, 2000);
    assert.equal(new Set(seen).size, 2000);
    assert.equal(seen[0], 'INBOX');
  });

  test('paging with small pages; a cursor whose folder was deleted meanwhile continues after it', async () => {
    const first = await as(alice).get(`${F}?limit=3`);
    assert.equal(first.json.data.length, 3);
    assert.equal(first.json.pagination.has_more, true);
    const all = (await as(alice).get(`${F}?limit=100`)).json.data.map((f: any) => f.name);
    const rest: string[] = [];
    let cursor = first.json.pagination.cursor;
    while (cursor) {
      const res = await as(alice).get(`${F}?limit=3&cursor=${cursor}`);
      rest.push(...res.json.data.map((f: any) => f.name));
      cursor = res.json.pagination.cursor;
    }
    assert.deepEqual([...first.json.data.map((f: any) => f.name), ...rest], all);

    const tmp = await as(alice).post(F, { name: 'Drafts2' });
    const page = await as(alice).get(`${F}?limit=3`); // INBOX, Archive, Drafts
    const page2 = await as(alice).get(`${F}?limit=1&cursor=${page.json.pagination.cursor}`);
    assert.equal(page2.json.data[0].name, 'Drafts2');
    const afterDrafts2 = page2.json.pagination.cursor;
    assert.equal((await as(alice).del(`${F}/${tmp.json.data.id}`)).status, 204);
    const page3 = await as(alice).get(`${F}?limit=1&cursor=${afterDrafts2}`);
    assert.equal(page3.json.data[0].name, all[all.indexOf('Drafts') + 1]);
    assert.equal((await as(alice).get(`${F}?cursor=bad!`)).status, 400);
    assert.equal((await as(alice).get(`${F}?limit=101`)).status, 400);
  });

  test('PATCH renames a folder with its subfolders; IMAP sees the new names, UIDVALIDITY kept', async () => {
    const projects = await folderNamed(aliceBox, 'Projects');
    const res = await as(alice).patch(`${F}/${projects.id}`, { name: 'Work' });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.json.data.name, 'Work');
    assert.equal(res.json.data.uid_validity, projects.uidValidity);
    const names = (await api.app.mailboxState.listFolders(scope, aliceBox.id)).map((f) => f.name);
    assert.ok(names.includes('Work/2024/会議'));
    assert.ok(!names.some((n) => n.startsWith('Projects')));

    const unsub = await as(alice).patch(`${F}/${projects.id}`, { subscribed: false });
    assert.equal(unsub.json.data.subscribed, false);
    assert.equal((await api.app.mailboxState.getFolder(scope, projects.id)).subscribed, false);
    // The same name again is no change; to an existing name is a conflict.
    assert.equal((await as(alice).patch(`${F}/${projects.id}`, { name: 'Work' })).status, 200);
    const clash = await as(alice).patch(`${F}/${projects.id}`, { name: 'Receipts' });
    assert.equal(clash.status, 409);
    assert.equal((await as(alice).patch(`${F}/${projects.id}`, { name: 'Work/inside' })).status, 422);
    assert.equal((await as(alice).patch(`${F}/${projects.id}`, {})).status, 422);
    assert.equal((await as(alice).patch(`${F}/${projects.id}`, { name: 'x', unknown: 1 })).status, 422);
  });

  test('INBOX and special-use folders cannot be renamed or deleted: 409', async () => {
    for (const name of ['INBOX', 'Sent', 'Drafts', 'Junk', 'Trash', 'Archive']) {
      const f = await folderNamed(aliceBox, name);
      const rename = await as(alice).patch(`${F}/${f.id}`, { name: `${name}-renamed` });
      assert.equal(rename.status, 409, `${name}: ${rename.body}`);
      assert.equal(rename.json.error.code, 'CONFLICT');
      const del = await as(alice).del(`${F}/${f.id}`);
      assert.equal(del.status, 409, `${name}: ${del.body}`);
      assert.equal(del.json.error.code, 'CONFLICT');
      assert.ok(await api.app.mailboxState.getFolder(scope, f.id));
    }
    // Subscription of a special folder may still change.
    const sent = await folderNamed(aliceBox, 'Sent');
    assert.equal((await as(alice).patch(`${F}/${sent.id}`, { subscribed: false })).status, 200);
  });

  test('DELETE: 204, its messages gone from lists and counters; a folder with subfolders is 409', async () => {
    const work = await folderNamed(aliceBox, 'Work');
    const parent = await as(alice).del(`${F}/${work.id}`);
    assert.equal(parent.status, 409);
    assert.match(parent.json.error.message, /subfolders/);

    const box = await as(alice).post(F, { name: 'Old' });
    const id = box.json.data.id;
    await api.app.mailboxState.append(scope, aliceBox.id, id, mail('old one'));
    const before = (await as(alice).get(F)).json.data.find((f: any) => f.id === id);
    assert.equal(before.total, 1);
    const res = await as(alice).del(`${F}/${id}`);
    assert.equal(res.status, 204);
    assert.equal(res.body, '');
    assert.ok(!(await as(alice).get(F)).json.data.some((f: any) => f.id === id));
    assert.equal((await call('GET', `/api/v1/messages?folder=${id}`, { token: alice.token })).status, 404);
    assert.equal((await as(alice).del(`${F}/${id}`)).status, 404);
    // The name is free again, with a new UIDVALIDITY (RFC 9051 §2.3.1.1).
    const again = await as(alice).post(F, { name: 'Old' });
    assert.equal(again.status, 201);
    assert.ok(again.json.data.uid_validity > before.uid_validity);
  });

  describe('isolation', () => {
    test('another user\'s and another tenant\'s folders: 404 on every route, nothing changed', async () => {
      const bobInbox = await folderNamed(bobBox, 'INBOX');
      const bobFolder = (await as(bob).post(F, { name: 'Private' })).json.data;
      for (const [who, token] of [['alice', alice.token], ['carol', carol.token]] as const) {
        const user = { token } as TestUser;
        assert.equal((await as(user).get(`${F}?mailbox_id=${bobBox.id}`)).status, 404, who);
        assert.equal((await as(user).post(F, { mailbox_id: bobBox.id, name: 'Intruder' })).status, 404, who);
        const patch = await as(user).patch(`${F}/${bobFolder.id}`, { name: 'Stolen' });
        assert.equal(patch.status, 404, who);
        assert.equal(patch.json.error.message, 'folder not found');
        assert.equal((await as(user).del(`${F}/${bobFolder.id}`)).status, 404, who);
        assert.equal((await as(user).patch(`${F}/${bobInbox.id}`, { subscribed: false })).status, 404, who);
      }
      assert.equal((await as(alice).patch(`${F}/${newId()}`, { name: 'x' })).status, 404);
      assert.equal((await api.app.mailboxState.getFolder(scope, bobFolder.id)).name, 'Private');
      assert.equal((await api.app.mailboxState.findFolder(scope, bobBox.id, 'Intruder')), null);
    });

    test('admins: not a user-owned mailbox, but owner-less shared ones; users not those', async () => {
      assert.equal((await as(acme.admin).get(`${F}?mailbox_id=${aliceBox.id}`)).status, 404);
      const inbox = await folderNamed(aliceBox, 'INBOX');
      assert.equal((await as(acme.admin).patch(`${F}/${inbox.id}`, { subscribed: false })).status, 404);
      const sharedList = await as(acme.admin).get(`${F}?mailbox_id=${shared.id}`);
      assert.equal(sharedList.status, 200);
      assert.equal(sharedList.json.data.length, 6);
      const created = await as(acme.admin).post(F, { mailbox_id: shared.id, name: 'Tickets' });
      assert.equal(created.status, 201);
      assert.equal((await as(alice).get(`${F}?mailbox_id=${shared.id}`)).status, 404);
      assert.equal((await as(alice).del(`${F}/${created.json.data.id}`)).status, 404);
      // Another tenant's admin sees nothing of it.
      assert.equal((await as(beta.admin).get(`${F}?mailbox_id=${shared.id}`)).status, 404);
      // A domain admin of another domain neither.
      const other = await api.app.tenancy.domains.add(scope, { name: `other-${acme.name}.example` });
      const da = await api.user(acme.id, { role: 'domain_admin', domainScope: [other.id] });
      assert.equal((await as(da).get(`${F}?mailbox_id=${shared.id}`)).status, 404);
      const da2 = await api.user(acme.id, { role: 'domain_admin', domainScope: [shared.domainId] });
      assert.equal((await as(da2).get(`${F}?mailbox_id=${shared.id}`)).status, 200);
    });
  });
});
