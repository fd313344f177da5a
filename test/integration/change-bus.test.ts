/**
 * ChangeBus adapters. The in-process bus is tested in every shape; the PostgreSQL LISTEN/NOTIFY bus
 * in the cluster shape, where an unreachable PostgreSQL fails the suite (freshDatabase throws).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { shape, freshDatabase, type TestDatabase } from '../support/shape.js';
import {
  MemoryChangeBus,
  PgChangeBus,
  ChangeEventTooLargeError,
  InvalidChangeEventError,
  createChangeBus,
  type ChangeBus,
  type ChangeEvent,
} from '../../src/store/events/index.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

function event(over: Partial<ChangeEvent> = {}): ChangeEvent {
  return { tenantId: 't1', mailboxId: 'm1', folderId: 'f1', kind: 'append', modseq: 7, ...over };
}

/** Resolves with the first event the handler sees that satisfies `pred`, or rejects after `ms`. */
function nextEvent(
  bus: ChangeBus,
  pred: (e: ChangeEvent) => boolean = () => true,
  filter?: { mailboxId?: string; tenantId?: string },
  ms = 5000,
): Promise<ChangeEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no matching change event within ${ms} ms`));
    }, ms);
    const unsubscribe = bus.subscribe((e) => {
      if (!pred(e)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(e);
    }, filter);
  });
}

const tick = () => new Promise((r) => setImmediate(r));

describe('MemoryChangeBus', () => {
  test('delivers asynchronously, never on the publisher stack', async () => {
    const bus = new MemoryChangeBus({ nodeId: 'node-a' });
    const seen: ChangeEvent[] = [];
    bus.subscribe((e) => seen.push(e));
    const p = bus.publish(event());
    assert.equal(seen.length, 0, 'handler ran synchronously inside publish');
    await p;
    await tick();
    assert.equal(seen.length, 1);
    assert.equal(seen[0].kind, 'append');
    assert.equal(seen[0].origin, 'node-a', 'origin stamped with the node id');
    await bus.close();
  });

  test('a throwing subscriber does not stop the others', async () => {
    const errors: unknown[] = [];
    const logger = { info() {}, warn() {}, error: (obj: object) => errors.push(obj) };
    const bus = new MemoryChangeBus({ logger });
    const seen: string[] = [];
    bus.subscribe(() => seen.push('first'));
    bus.subscribe(() => {
      throw new Error('boom');
    });
    bus.subscribe(() => seen.push('third'));
    await bus.publish(event());
    await bus.publish(event({ kind: 'flags' }));
    await tick();
    assert.deepEqual(seen, ['first', 'third', 'first', 'third']);
    assert.equal(errors.length, 2, 'each failure is logged');
    await bus.close();
  });

  test('filters by mailbox and tenant; resync reaches everyone', async () => {
    const bus = new MemoryChangeBus();
    const byMailbox: string[] = [];
    const byTenant: string[] = [];
    bus.subscribe((e) => byMailbox.push(`${e.kind}:${e.mailboxId}`), { mailboxId: 'm1' });
    bus.subscribe((e) => byTenant.push(`${e.kind}:${e.mailboxId}`), { tenantId: 't2' });
    await bus.publish(event({ mailboxId: 'm1' }));
    await bus.publish(event({ mailboxId: 'm2' }));
    await bus.publish(event({ tenantId: 't2', mailboxId: 'm3' }));
    await bus.publish({ kind: 'resync', tenantId: '*', mailboxId: '*' });
    await tick();
    assert.deepEqual(byMailbox, ['append:m1', 'resync:*']);
    assert.deepEqual(byTenant, ['append:m3', 'resync:*']);
    await bus.close();
  });

  test('unsubscribe stops delivery, even for an event already queued', async () => {
    const bus = new MemoryChangeBus();
    let count = 0;
    const unsubscribe = bus.subscribe(() => count++);
    await bus.publish(event());
    await tick();
    assert.equal(count, 1);
    const p = bus.publish(event());
    unsubscribe();
    await p;
    await bus.publish(event());
    await tick();
    assert.equal(count, 1);
    await bus.close();
  });

  test('refuses oversized and malformed events with clear errors', async () => {
    const bus = new MemoryChangeBus();
    let count = 0;
    bus.subscribe(() => count++);
    await assert.rejects(bus.publish(event({ folderId: 'x'.repeat(8000) })), (err: Error) => {
      assert.ok(err instanceof ChangeEventTooLargeError);
      assert.match(err.message, /8000 bytes/);
      return true;
    });
    await assert.rejects(bus.publish(event({ kind: 'nonsense' as never })), InvalidChangeEventError);
    await assert.rejects(bus.publish(event({ mailboxId: '' })), /mailboxId is required/);
    await tick();
    assert.equal(count, 0, 'nothing delivered for refused events');
    await bus.close();
    await assert.rejects(bus.publish(event()), /closed/);
  });
});

describe('createChangeBus', () => {
  let tdb: TestDatabase;
  before(async () => {
    tdb = await freshDatabase({ migrate: false });
  });
  after(async () => {
    await tdb?.drop();
  });

  test('auto picks the adapter for the database dialect', async () => {
    const bus = await createChangeBus('auto', tdb.db, { nodeId: 'n-auto' });
    try {
      assert.equal(bus.kind, shape === 'cluster' ? 'postgres' : 'memory');
    } finally {
      await bus.close();
    }
  });

  test('nats is refused clearly; postgres needs PostgreSQL', async () => {
    await assert.rejects(createChangeBus('nats', tdb.db, { nodeId: 'n' }), /not yet supported/);
    if (shape === 'embedded') await assert.rejects(createChangeBus('postgres', tdb.db, { nodeId: 'n' }), /needs a PostgreSQL database/);
  });
});

if (shape === 'cluster') {
  describe('PgChangeBus (PostgreSQL LISTEN/NOTIFY)', () => {
    let tdb: TestDatabase;
    let pool: pg.Pool;
    let busA: PgChangeBus;

    before(async () => {
      tdb = await freshDatabase({ migrate: false });
      pool = tdb.db.pgPool!;
      assert.ok(pool, 'cluster shape database has a pool');
      busA = new PgChangeBus(pool, { nodeId: 'node-a', reconnectDelaysMs: [50, 100, 200] });
      await busA.start();
    });
    after(async () => {
      await busA?.close();
      await tdb?.drop();
    });

    test('an event published by another process arrives within 1 s, filtered by mailbox', async (t) => {
      const mbA = `mb-${randomUUID()}`;
      const mbB = `mb-${randomUUID()}`;
      const events = [event({ mailboxId: mbA, modseq: 11 }), event({ mailboxId: mbB, modseq: 12 })];
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'test/fixtures/bus-publisher.ts', tdb.url, 'node-child', JSON.stringify(events)],
        { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      try {
        const filtered: ChangeEvent[] = [];
        const unsubscribe = busA.subscribe((e) => filtered.push(e), { mailboxId: mbA });
        const gotA = nextEvent(busA, (e) => e.mailboxId === mbA, { mailboxId: mbA }, 10_000);
        const gotB = nextEvent(busA, (e) => e.mailboxId === mbB, undefined, 10_000);

        const lines = createInterface({ input: child.stdout });
        for await (const line of lines) if (line === 'ready') break;
        const t0 = performance.now();
        child.stdin.end('go\n');
        const a = await gotA;
        const elapsed = performance.now() - t0;
        t.diagnostic(`cross-process delivery: ${elapsed.toFixed(1)} ms`);
        assert.ok(elapsed < 1000, `cross-process delivery took ${elapsed.toFixed(0)} ms`);
        assert.equal(a.modseq, 11);
        assert.equal(a.origin, 'node-child');

        // NOTIFYs from one session arrive in order: once B is here, A's subscriber has seen all it will.
        await gotB;
        await tick();
        assert.deepEqual(filtered.map((e) => e.mailboxId), [mbA], 'mailbox filter let only its mailbox through');
        unsubscribe();
        assert.equal(await exited, 0, `publisher failed: ${stderr}`);
      } finally {
        child.kill();
      }
    });

    test('local subscribers get the event once (NOTIFY echo de-duplicated), other nodes get it too', async () => {
      const busB = new PgChangeBus(pool, { nodeId: 'node-b' });
      await busB.start();
      try {
        const mb = `mb-${randomUUID()}`;
        const localSeen: ChangeEvent[] = [];
        busA.subscribe((e) => localSeen.push(e), { mailboxId: mb });
        const atB = nextEvent(busB, (e) => e.mailboxId === mb && e.kind === 'append');
        await busA.publish(event({ mailboxId: mb }));
        await tick();
        assert.equal(localSeen.length, 1, 'local delivery does not wait for PostgreSQL');
        assert.equal((await atB).origin, 'node-a');

        // B answers after it saw A's event, so A's own echo (sent earlier) is processed before B's reply.
        const replyAtA = nextEvent(busA, (e) => e.mailboxId === mb && e.kind === 'flags');
        await busB.publish(event({ mailboxId: mb, kind: 'flags' }));
        await replyAtA;
        await tick();
        assert.deepEqual(localSeen.map((e) => e.kind), ['append', 'flags'], 'the echo of A\'s own event was dropped');
      } finally {
        await busB.close();
      }
    });

    test('unsubscribe stops delivery of remote events', async () => {
      const busB = new PgChangeBus(pool, { nodeId: 'node-b2' });
      try {
        const mb = `mb-${randomUUID()}`;
        let count = 0;
        const unsubscribe = busA.subscribe(() => count++, { mailboxId: mb });
        const first = nextEvent(busA, (e) => e.mailboxId === mb && e.modseq === 1);
        await busB.publish(event({ mailboxId: mb, modseq: 1 }));
        await first;
        await tick();
        unsubscribe();
        const second = nextEvent(busA, (e) => e.mailboxId === mb && e.modseq === 2);
        await busB.publish(event({ mailboxId: mb, modseq: 2 }));
        await second;
        await tick();
        assert.equal(count, 1);
      } finally {
        await busB.close();
      }
    });

    test('malformed notifications on the channel are dropped, not delivered', async () => {
      const busB = new PgChangeBus(pool, { nodeId: 'node-b4' });
      try {
        const mb = `mb-${randomUUID()}`;
        const seen: ChangeEvent[] = [];
        const unsubscribe = busA.subscribe((e) => seen.push(e));
        const marker = nextEvent(busA, (e) => e.mailboxId === mb);
        await pool.query("SELECT pg_notify('mairust_changes', 'not json')");
        await pool.query(`SELECT pg_notify('mairust_changes', $1)`, [JSON.stringify({ v: 1, o: 'x', s: 'y', e: { kind: 'bogus' } })]);
        await busB.publish(event({ mailboxId: mb }));
        await marker;
        await tick();
        unsubscribe();
        assert.deepEqual(seen.map((e) => e.mailboxId), [mb], 'only the valid event arrived');
      } finally {
        await busB.close();
      }
    });

    test('payload size limit: refused before anything is sent', async () => {
      let count = 0;
      const unsubscribe = busA.subscribe(() => count++);
      await assert.rejects(busA.publish(event({ folderId: 'é'.repeat(4000) })), ChangeEventTooLargeError);
      await tick();
      unsubscribe();
      assert.equal(count, 0);
    });

    test('reconnects after the listener connection is killed; later events still arrive', async () => {
      const busB = new PgChangeBus(pool, { nodeId: 'node-b3' });
      try {
        assert.equal(busA.listening, true);
        const resync = nextEvent(busA, (e) => e.kind === 'resync', { mailboxId: 'some-mailbox' });
        const killed = await pool.query(
          'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()',
          [busA.applicationName],
        );
        assert.equal(killed.rowCount, 1, 'exactly one listener connection');
        assert.equal(killed.rows[0].ok, true);
        const r = await resync;
        assert.equal(r.mailboxId, '*', 'resync reached a mailbox-filtered subscriber');
        assert.equal(busA.listening, true);

        const mb = `mb-${randomUUID()}`;
        const after = nextEvent(busA, (e) => e.mailboxId === mb);
        await busB.publish(event({ mailboxId: mb, modseq: 99 }));
        assert.equal((await after).modseq, 99);
      } finally {
        await busB.close();
      }
    });

    test('start fails clearly when PostgreSQL is unreachable', async () => {
      const dead = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/none', connectionTimeoutMillis: 2000 });
      const bus = new PgChangeBus(dead, { nodeId: 'node-dead' });
      try {
        await assert.rejects(bus.start(), /cannot LISTEN on PostgreSQL channel mairust_changes/);
      } finally {
        await bus.close();
        await dead.end();
      }
    });
  });
}
