/**
 * The audit trail (SPEC §10): `GET /api/v1/admin/audit-logs` (filters, offset limits, tenant
 * isolation), the database's append-only guard (UPDATE and early DELETE refused in both dialects),
 * the retention job, and the file sink (every event exactly once across restarts and crashes, late
 * commits included).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, appendFileSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import type { Config } from '../../src/config/schema.js';
import { writeAudit, type AuditEntry } from '../../src/security/audit.js';
import { purgeAuditLog } from '../../src/security/audit-retention.js';
import { AuditFileExporter, positionFile, startAuditFileSink, type AuditFileSinkHost } from '../../src/security/audit-file-sink.js';
import { startApi, type ApiHarness, type TestTenant, type TestUser } from '../support/api.js';
import { shape, tempDir } from '../support/shape.js';

const AUDIT = '/api/v1/admin/audit-logs';
const DAY = 86_400_000;

describe('api: audit logs', () => {
  let api: ApiHarness;
  let acme: TestTenant;
  let globex: TestTenant;
  let root: TestUser;
  let alice: TestUser;
  const dir = tempDir('mairust-audit-');

  const entry = (tenantId: string | null, eventType: string, target: { type: string; id: string }, actorId = 'actor-1', metadata: Record<string, unknown> = {}): AuditEntry => ({
    tenantId,
    eventType,
    actor: { type: 'user', id: actorId, email: 'someone@example.test', ip: '192.0.2.1' },
    target,
    metadata,
  });

  /** Inserts a row directly (bypassing writeAudit) with a chosen timestamp and optionally id. */
  async function insertRaw(timestamp: number, eventType: string, id?: number): Promise<number> {
    const row = {
      ...(id === undefined ? {} : { id }),
      tenant_id: null,
      timestamp,
      event_type: eventType,
      actor_json: JSON.stringify({ type: 'system' }),
      target_json: JSON.stringify({ type: 'test', id: eventType }),
      metadata_json: '{}',
    };
    const res = await api.app.db.kysely.insertInto('audit_log').values(row).returning('id').executeTakeFirstOrThrow();
    return Number(res.id);
  }

  async function allIds(): Promise<number[]> {
    const rows = await api.app.db.kysely.selectFrom('audit_log').select('id').orderBy('id').execute();
    return rows.map((r) => Number(r.id));
  }

  /** PostgreSQL: explicit ids do not advance the sequence; move it past them. */
  async function syncSequence(): Promise<void> {
    if (api.app.db.dialect !== 'postgres') return;
    await sql`select setval(pg_get_serial_sequence('audit_log', 'id'), (select max(id) from audit_log))`.execute(api.app.db.kysely);
  }

  const get = (token: string, query = '') => api.call('GET', `${AUDIT}${query}`, { token });

  before(async () => {
    api = await startApi();
    acme = await api.tenant('acme');
    globex = await api.tenant('globex');
    root = await api.superAdmin();
    alice = await api.user(acme.id, { email: 'alice@acme.test' });
    const db = api.app.db;
    await writeAudit(db, entry(acme.id, 'user.created', { type: 'user', id: 'u-1' }, 'admin-a'));
    await writeAudit(db, entry(acme.id, 'user.updated', { type: 'user', id: 'u-1' }, 'admin-a', { field: 'display_name' }));
    await writeAudit(db, entry(acme.id, 'user_group.created', { type: 'user_group', id: 'g-1' }, 'admin-a'));
    await writeAudit(db, entry(acme.id, 'users.imported', { type: 'user', id: 'u-2' }, 'admin-b'));
    await writeAudit(db, entry(acme.id, 'domain.created', { type: 'domain', id: 'a_c' }, 'admin-b'));
    await writeAudit(db, entry(acme.id, 'domain.created', { type: 'domain', id: 'abc' }, 'admin_b'));
    await writeAudit(db, entry(globex.id, 'user.created', { type: 'user', id: 'u-9' }, 'admin-g'));
    await writeAudit(db, entry(null, 'settings.updated', { type: 'settings', id: 'config' }, 'root'));
  });
  after(async () => {
    await api.close();
    dir.remove();
  });

  test('items have the SPEC §10 shape; tenant admins see only their tenant; users and other roles are refused', async () => {
    const res = await get(acme.admin.token, '?limit=100');
    assert.equal(res.status, 200, res.body);
    const items = res.json.data as any[];
    assert.ok(items.length >= 6);
    assert.ok(items.every((i) => i.tenant_id === acme.id), 'only acme rows, no system rows');
    const created = items.find((i) => i.event_type === 'user.created' && i.target.id === 'u-1');
    assert.deepEqual(Object.keys(created).sort(), ['actor', 'event_type', 'id', 'metadata', 'target', 'tenant_id', 'timestamp']);
    assert.deepEqual(created.actor, { type: 'user', id: 'admin-a', email: 'someone@example.test', ip: '192.0.2.1' });
    assert.deepEqual(created.target, { type: 'user', id: 'u-1' });
    assert.ok(!Number.isNaN(Date.parse(created.timestamp)) && created.timestamp.endsWith('Z'));
    const updated = items.find((i) => i.event_type === 'user.updated');
    assert.deepEqual(updated.metadata, { field: 'display_name' });
    // Newest first.
    const ids = items.map((i) => i.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => b - a));

    const g = await get(globex.admin.token, '?limit=100');
    assert.ok(g.json.data.every((i: any) => i.tenant_id === globex.id));
    assert.ok(g.json.data.some((i: any) => i.target.id === 'u-9'));

    const u = await get(alice.token);
    assert.equal(u.status, 403);
    assert.equal(u.json.error.message, 'role user may not do this');
    const anon = await api.call('GET', AUDIT);
    assert.equal(anon.status, 401);

    const forged = await get(acme.admin.token, `?tenant_id=${globex.id}`);
    assert.equal(forged.status, 403);
    assert.equal(forged.json.error.message, 'only a super-admin may filter by tenant_id');

    const all = await get(root.token, '?limit=100');
    assert.ok(all.json.data.some((i: any) => i.tenant_id === null && i.event_type === 'settings.updated'), 'super-admins see system rows');
    assert.ok(all.json.data.some((i: any) => i.tenant_id === globex.id));
    const onlyGlobex = await get(root.token, `?tenant_id=${globex.id}&limit=100`);
    assert.ok(onlyGlobex.json.data.length > 0 && onlyGlobex.json.data.every((i: any) => i.tenant_id === globex.id));
  });

  test('filters: event_type exact and prefix, actor_id, target_type, target_id (LIKE wildcards are literal), since/until', async () => {
    const types = async (q: string) => (await get(acme.admin.token, `${q}&limit=100`)).json.data.map((i: any) => `${i.event_type}:${i.target.id}`).sort();

    assert.deepEqual(await types('?event_type=user.created&actor_id=admin-a'), ['user.created:u-1']);
    // `user.*` is every `user.…` event (including those of the harness's own user creation), not
    // `user_group.…` nor `users.…`.
    const prefixed = await types('?event_type=user.*');
    assert.ok(prefixed.every((t: string) => t.startsWith('user.')));
    assert.ok(prefixed.includes('user.created:u-1') && prefixed.includes('user.updated:u-1'));
    assert.ok(!prefixed.some((t: string) => t.startsWith('user_group.') || t.startsWith('users.')));

    assert.deepEqual(await types('?actor_id=admin-b'), ['domain.created:a_c', 'users.imported:u-2']);
    assert.deepEqual(await types('?actor_id=admin_b'), ['domain.created:abc'], '_ is not a wildcard');
    assert.deepEqual(await types('?target_type=domain'), ['domain.created:a_c', 'domain.created:abc']);
    assert.deepEqual(await types('?target_id=a_c'), ['domain.created:a_c']);
    assert.deepEqual(await types('?target_id=a%25'), [], '% is not a wildcard');
    assert.deepEqual(await types('?target_type=user&target_id=u-1'), ['user.created:u-1', 'user.updated:u-1']);
    assert.deepEqual(await types('?target_type=use'), [], 'target_type is exact');

    const now = Date.now();
    const future = new Date(now + DAY).toISOString();
    const past = new Date(now - DAY).toISOString();
    assert.deepEqual(await types(`?since=${future}`), []);
    assert.ok((await types(`?since=${past}&until=${future}&actor_id=admin-a`)).length === 3);
    assert.deepEqual(await types(`?until=${past}&actor_id=admin-a`), []);

    const backwards = await get(acme.admin.token, `?since=${future}&until=${past}`);
    assert.equal(backwards.status, 400);
    assert.equal(backwards.json.error.message, 'since must not be after until');
    for (const bad of ['?event_type=User.Created', '?event_type=user.', '?event_type=*', '?since=yesterday', '?actor_id=a%20b', '?unknown=1', '?tenant_id=nope']) {
      const r = await get(root.token, bad);
      assert.equal(r.status, 400, `${bad}: ${r.body}`);
      assert.equal(r.json.error.code, 'INVALID_REQUEST');
    }
  });

  test('offset paging: limit ≤ 100, offset ≤ 10 000, has_more', async () => {
    const p1 = await get(acme.admin.token, '?limit=2');
    assert.equal(p1.status, 200);
    assert.equal(p1.json.data.length, 2);
    assert.deepEqual(p1.json.pagination, { offset: 0, limit: 2, has_more: true });
    const p2 = await get(acme.admin.token, '?limit=2&offset=2');
    assert.deepEqual(p2.json.pagination, { offset: 2, limit: 2, has_more: true });
    assert.ok(p2.json.data[0].id < p1.json.data[1].id, 'the next page continues where the first ended');
    const total = (await get(acme.admin.token, '?limit=100')).json.data.length;
    const last = await get(acme.admin.token, `?limit=2&offset=${total - 1}`);
    assert.equal(last.json.data.length, 1);
    assert.equal(last.json.pagination.has_more, false);

    const deepest = await get(acme.admin.token, '?offset=10000');
    assert.equal(deepest.status, 200);
    assert.deepEqual(deepest.json.data, []);
    for (const [q, path] of [['?offset=10001', '/offset'], ['?limit=101', '/limit'], ['?limit=0', '/limit'], ['?offset=-1', '/offset']]) {
      const r = await get(acme.admin.token, q);
      assert.equal(r.status, 400, q);
      assert.equal(r.json.error.code, 'INVALID_REQUEST');
      assert.equal(r.json.error.details.errors[0].path, path);
    }
    const dflt = await get(root.token);
    assert.equal(dflt.json.pagination.limit, 50);
  });

  test('the database refuses UPDATE of any row and DELETE of rows younger than 180 days', async () => {
    const [latest] = await api.app.db.kysely.selectFrom('audit_log').select('id').orderBy('id', 'desc').limit(1).execute();
    await assert.rejects(
      api.app.db.kysely.updateTable('audit_log').set({ event_type: 'tampered.event' }).where('id', '=', latest.id).execute(),
      /append-only/,
    );
    await assert.rejects(api.app.db.kysely.deleteFrom('audit_log').where('id', '=', latest.id).execute(), /180 days/);
    const old = await insertRaw(Date.now() - 400 * DAY, 'ancient.row');
    await assert.rejects(
      api.app.db.kysely.updateTable('audit_log').set({ metadata_json: '{"x":1}' }).where('id', '=', old).execute(),
      /append-only/,
      'old rows cannot be changed either',
    );
    const still = await api.app.db.kysely.selectFrom('audit_log').select(['id', 'event_type']).where('id', '=', latest.id).executeTakeFirst();
    assert.ok(still && still.event_type !== 'tampered.event');
    // Old rows can be deleted (that is what retention does).
    await api.app.db.kysely.deleteFrom('audit_log').where('id', '=', old).execute();
    assert.equal(await api.app.db.kysely.selectFrom('audit_log').select('id').where('id', '=', old).executeTakeFirst(), undefined);
  });

  test('retention deletes only rows older than audit.retention_days (never fewer than 180), in batches', async () => {
    const now = Date.now();
    const ids = {
      d400a: await insertRaw(now - 400 * DAY, 'retention.d400'),
      d400b: await insertRaw(now - 400 * DAY, 'retention.d400'),
      d400c: await insertRaw(now - 400 * DAY, 'retention.d400'),
      d200: await insertRaw(now - 200 * DAY, 'retention.d200'),
      d185: await insertRaw(now - 185 * DAY, 'retention.d185'),
      d179: await insertRaw(now - 179 * DAY, 'retention.d179'),
      fresh: await insertRaw(now, 'retention.fresh'),
    };
    const left = async () => (await api.app.db.kysely.selectFrom('audit_log').select('event_type').where('event_type', 'like', 'retention.%').orderBy('id').execute()).map((r) => r.event_type);

    assert.equal(await purgeAuditLog(api.app.db, 365, { batchSize: 2 }), 3, 'three 400-day rows, deleted two at a time');
    assert.deepEqual(await left(), ['retention.d200', 'retention.d185', 'retention.d179', 'retention.fresh']);
    assert.equal(await purgeAuditLog(api.app.db, 190), 1);
    assert.deepEqual(await left(), ['retention.d185', 'retention.d179', 'retention.fresh']);
    // A retention below the SPEC minimum is raised to 180 days: the 179-day row stays.
    assert.equal(await purgeAuditLog(api.app.db, 30), 1);
    assert.deepEqual(await left(), ['retention.d179', 'retention.fresh']);
    assert.equal(await purgeAuditLog(api.app.db, 180), 0);
    assert.ok(ids.fresh > ids.d400a);
  });

  /** A host whose `audit.file` can be switched (the sink re-reads it every round). */
  function sinkHost(file: string): AuditFileSinkHost & { file: string } {
    const h = {
      file,
      db: api.app.db,
      logger: api.app.logger,
      get config(): Config {
        return { ...api.app.config, audit: { ...api.app.config.audit, file: h.file } };
      },
    };
    return h;
  }

  function fileIds(file: string): number[] {
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l)
      .map((l) => JSON.parse(l).id as number);
  }

  async function waitFor(cond: () => Promise<boolean> | boolean, what: string, ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await cond()) return;
      await sleep(25);
    }
    assert.fail(`timed out waiting for ${what}`);
  }

  test('file sink: every committed event once, as SPEC §10 JSON lines, across a restart', async () => {
    const file = join(dir.path, 'audit.jsonl');
    const host = sinkHost(file);
    let stop = startAuditFileSink(host, { intervalMs: 20 });
    await waitFor(async () => fileIds(file).length === (await allIds()).length, 'the initial export');
    await writeAudit(api.app.db, entry(acme.id, 'user.deleted', { type: 'user', id: 'u-1' }, 'admin-a', { reason: 'left' }));
    await waitFor(async () => fileIds(file).length === (await allIds()).length, 'the new event');
    await stop();

    // Written while the sink is down: exported after the restart, nothing exported twice.
    for (let i = 0; i < 3; i++) await writeAudit(api.app.db, entry(globex.id, 'domain.verified', { type: 'domain', id: `d-${i}` }));
    const pos = JSON.parse(readFileSync(positionFile(file), 'utf8'));
    assert.ok(pos.last_id > 0 && pos.offset === readFileSync(file).length);
    stop = startAuditFileSink(host, { intervalMs: 20 });
    await waitFor(async () => fileIds(file).length === (await allIds()).length, 'the export after the restart');
    await stop();
    assert.deepEqual(fileIds(file), await allIds(), 'each row once, in order');

    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const deleted = lines.find((l) => l.event_type === 'user.deleted');
    assert.deepEqual(Object.keys(deleted).sort(), ['actor', 'event_type', 'id', 'metadata', 'target', 'tenant_id', 'timestamp']);
    assert.equal(deleted.tenant_id, acme.id);
    assert.deepEqual(deleted.metadata, { reason: 'left' });
    assert.deepEqual(deleted.actor, { type: 'user', id: 'admin-a', email: 'someone@example.test', ip: '192.0.2.1' });
    assert.ok(deleted.timestamp.endsWith('Z'));
  });

  test('file sink: a crash between appending and saving the position duplicates nothing; a torn line is repaired', async () => {
    const file = join(dir.path, 'crash.jsonl');
    const host = sinkHost(file);
    await new AuditFileExporter(host).exportOnce();
    const savedPos = join(dir.path, 'crash.pos.saved');
    copyFileSync(positionFile(file), savedPos);
    await writeAudit(api.app.db, entry(acme.id, 'crash.before', { type: 'x', id: '1' }));
    await writeAudit(api.app.db, entry(acme.id, 'crash.before', { type: 'x', id: '2' }));
    assert.equal(await new AuditFileExporter(host).exportOnce(), 2);
    // Simulate the crash: the lines are in the file, but the sidecar is the one from before, and
    // the process died in the middle of a further line.
    copyFileSync(savedPos, positionFile(file));
    appendFileSync(file, '{"id":999999,"timestamp":"20');
    await writeAudit(api.app.db, entry(acme.id, 'crash.after', { type: 'x', id: '3' }));

    const restarted = new AuditFileExporter(host);
    assert.equal(await restarted.exportOnce(), 1, 'only the row written after the crash');
    assert.deepEqual(fileIds(file), await allIds());
    assert.ok(readFileSync(file, 'utf8').endsWith('\n'));
  });

  test('file sink: a row that commits after a later one (an id gap) is exported late, even across a restart', async () => {
    const file = join(dir.path, 'gaps.jsonl');
    const host = sinkHost(file);
    await new AuditFileExporter(host).exportOnce();
    const ids = await allIds();
    const max = ids[ids.length - 1];
    // id max+2 becomes visible first; max+1 is still "in flight".
    await insertRaw(Date.now(), 'gap.later', max + 2);
    const first = new AuditFileExporter(host, { gapWaitMs: 60_000 });
    assert.equal(await first.exportOnce(), 1);
    const pos = JSON.parse(readFileSync(positionFile(file), 'utf8'));
    assert.equal(pos.last_id, max + 2);
    assert.deepEqual(pos.gaps.map((g: number[]) => g[0]), [max + 1]);

    // Restart, then the missing row commits.
    const second = new AuditFileExporter(host, { gapWaitMs: 60_000 });
    assert.equal(await second.exportOnce(), 0);
    await insertRaw(Date.now(), 'gap.earlier', max + 1);
    await syncSequence();
    assert.equal(await second.exportOnce(), 1);
    const got = fileIds(file);
    assert.deepEqual([...got].sort((a, b) => a - b), await allIds());
    assert.equal(new Set(got).size, got.length);
    assert.deepEqual(got.slice(-2), [max + 2, max + 1], 'the late row is appended after the one that overtook it');
    assert.deepEqual(JSON.parse(readFileSync(positionFile(file), 'utf8')).gaps, []);

    // A gap that never fills (a rolled-back insert) is given up after gapWaitMs.
    let clock = Date.now();
    const third = new AuditFileExporter(host, { gapWaitMs: 1000, now: () => clock });
    await insertRaw(Date.now(), 'gap.never', max + 4);
    await syncSequence();
    await third.exportOnce();
    assert.deepEqual(JSON.parse(readFileSync(positionFile(file), 'utf8')).gaps.map((g: number[]) => g[0]), [max + 3]);
    clock += 1001;
    await third.exportOnce();
    assert.deepEqual(JSON.parse(readFileSync(positionFile(file), 'utf8')).gaps, []);
  });

  test('file sink (PostgreSQL): an open transaction\'s audit row is exported once it commits', { skip: shape !== 'cluster' && 'SQLite has one writer: ids become visible in order' }, async () => {
    const file = join(dir.path, 'concurrent.jsonl');
    const host = sinkHost(file);
    const exporter = new AuditFileExporter(host);
    await exporter.exportOnce();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let inserted!: () => void;
    const insertedP = new Promise<void>((r) => (inserted = r));
    const slow = api.app.db.kysely.transaction().execute(async (trx) => {
      await writeAudit(trx, entry(acme.id, 'slow.commit', { type: 'x', id: 'slow' }));
      inserted();
      await gate;
    });
    await insertedP;
    await writeAudit(api.app.db, entry(acme.id, 'fast.commit', { type: 'x', id: 'fast' }));
    assert.equal(await exporter.exportOnce(), 1, 'only the committed row');
    release();
    await slow;
    assert.equal(await exporter.exportOnce(), 1, 'the slow row once it committed');
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.slice(-2).map((l) => l.event_type), ['fast.commit', 'slow.commit']);
    assert.deepEqual([...fileIds(file)].sort((a, b) => a - b), await allIds());
  });

  test('file sink: off while audit.file is empty; a reload that sets it starts the export', async () => {
    const host = sinkHost('');
    assert.equal(await new AuditFileExporter(host).exportOnce(), 0);
    const before = readdirSync(dir.path).sort();
    const stop = startAuditFileSink(host, { intervalMs: 10 });
    try {
      await sleep(60);
      assert.deepEqual(readdirSync(dir.path).sort(), before, 'no file written while off');
      host.file = join(dir.path, 'switched-on.jsonl');
      await waitFor(async () => fileIds(host.file).length === (await allIds()).length, 'the export after audit.file was set');
    } finally {
      await stop();
    }
  });
});
