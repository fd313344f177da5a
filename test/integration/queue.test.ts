/**
 * The database queue adapter against the current shape (SQLite or PostgreSQL): the shared queue-port
 * suite (test/support/queue-suite.ts) plus what only this adapter has: the lease SQL and PostgreSQL
 * LISTEN/NOTIFY wake-ups. Multi-worker and multi-process runs are in queue-workers.test.ts.
 */
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { freshDatabase, shape, type TestDatabase } from '../support/shape.js';
import { openDatabase, type Database } from '../../src/store/db/database.js';
import { DatabaseQueue, LISTENER_APPLICATION_NAME } from '../../src/queue/db-queue.js';
import { claimJobs, completeJob, extendLease, failJob } from '../../src/queue/claim.js';
import { createQueue } from '../../src/queue/index.js';
import { queueSuite } from '../support/queue-suite.js';
import { waitFor } from '../fixtures/queue-worker.js';

let tdb: TestDatabase;
let db: Database;
const open: DatabaseQueue[] = [];

function newQueue(opts: Partial<ConstructorParameters<typeof DatabaseQueue>[1]> = {}, on: Database = db): DatabaseQueue {
  const q = new DatabaseQueue(on, { nodeId: 'node-a', pollIntervalMs: 25, ...opts });
  open.push(q);
  return q;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function row(id: string) {
  return db.kysely.selectFrom('queue_jobs').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

const stopAll = async () => {
  await Promise.all(open.splice(0).map((q) => q.stop(0)));
};

before(async () => {
  tdb = await freshDatabase();
  db = tdb.db;
});

after(async () => {
  await tdb.drop();
});

queueSuite({
  name: `database (${shape})`,
  newQueue: (opts) => newQueue(opts),
  raw: (id) => row(id),
  patch: async (id, fields) => {
    await db.kysely.updateTable('queue_jobs').set(fields).where('id', '=', id).execute();
  },
  insertRaw: async (r) => {
    await db.kysely.insertInto('queue_jobs').values(r).execute();
  },
  takeOver: async (id, lockedBy) => {
    await db.kysely.updateTable('queue_jobs').set({ locked_by: lockedBy, attempts: sql<number>`attempts + 1`, locked_until: Date.now() + 60_000 }).where('id', '=', id).execute();
  },
  claimAs: async (id, workerId, leaseMs) => {
    const { queue } = await row(id);
    const [claimed] = await claimJobs(db, { queue, workerId, limit: 1, leaseMs, now: Date.now() });
    assert.equal(claimed?.id, id);
  },
  stopAll,
});

describe(`database queue only (${shape})`, () => {
  afterEach(stopAll);

  test('constructor and factory limits', async () => {
    assert.throws(() => new DatabaseQueue(db, { nodeId: '' }), /nodeId/);
    const nats = createQueue(db, { nodeId: 'n', config: { backend: 'nats' } });
    assert.equal(nats.kind, 'nats');
    assert.equal(typeof nats.enqueueIn, 'function', 'NATS gets enqueueIn through the outbox');
    await nats.stop(0);
  });

  test('lease statements are fenced on worker and attempt', async () => {
    const q = newQueue();
    const id = await q.enqueue('fenced-sql', {});
    const at = Date.now();
    const [claimed] = await claimJobs(db, { queue: 'fenced-sql', workerId: 'w1', limit: 5, leaseMs: 60_000, now: at });
    assert.equal(claimed.id, id);
    assert.equal(Number(claimed.attempts), 1);
    assert.equal(claimed.locked_by, 'w1');
    assert.deepEqual(await claimJobs(db, { queue: 'fenced-sql', workerId: 'w2', limit: 5, leaseMs: 60_000, now: at }), [], 'a held lease is not claimable');
    // The lease expires: another worker takes over.
    const [taken] = await claimJobs(db, { queue: 'fenced-sql', workerId: 'w2', limit: 5, leaseMs: 60_000, now: at + 61_000 });
    assert.equal(taken.locked_by, 'w2');
    assert.equal(Number(taken.attempts), 2);
    const stale = { id, workerId: 'w1', attempts: 1 };
    assert.equal(await extendLease(db, stale, 60_000, at), false);
    assert.equal(await completeJob(db, stale, at), false);
    assert.equal(await failJob(db, stale, { error: 'x', retryAt: at, now: at }), false);
    // Same node name, older attempt (a restarted node re-claiming its own job): still fenced.
    assert.equal(await completeJob(db, { id, workerId: 'w2', attempts: 1 }, at), false);
    assert.equal((await row(id)).status, 'running');
    assert.equal(await completeJob(db, { id, workerId: 'w2', attempts: 2 }, at), true);
    assert.equal((await row(id)).status, 'done');
  });

  // LISTEN/NOTIFY exists only in the cluster shape (PostgreSQL); SQLite has no such channel.
  if (shape === 'cluster') test('PostgreSQL: NOTIFY wakes a worker on another connection; the listener reconnects', async () => {
    const producerDb = await openDatabase(tdb.url, { poolMax: 2 });
    try {
      const producer = new DatabaseQueue(producerDb, { nodeId: 'remote-producer' });
      const worker = newQueue({ nodeId: 'remote-worker', pollIntervalMs: 60_000 });
      const ran: string[] = [];
      worker.work('wake-remote', async (job) => {
        ran.push(job.id);
      });
      const listeners = async () =>
        (
          await sql<{ pid: number }>`SELECT pid FROM pg_stat_activity WHERE application_name = ${LISTENER_APPLICATION_NAME} AND datname = current_database() AND query ILIKE 'LISTEN%'`.execute(db.kysely)
        ).rows.map((r) => Number(r.pid));
      const [first] = await waitFor(async () => {
        const l = await listeners();
        return l.length === 1 ? l : null;
      }, 'the queue listener to connect');
      await sleep(100);

      const a = await producer.enqueue('wake-remote', {});
      await waitFor(() => ran.includes(a), 'NOTIFY to wake the worker (its poll interval is a minute)', 5_000);

      await sql`SELECT pg_terminate_backend(${first})`.execute(db.kysely);
      await waitFor(async () => {
        const l = await listeners();
        return l.length === 1 && l[0] !== first;
      }, 'the listener to reconnect', 10_000);
      await sleep(100);
      const b = await producer.enqueue('wake-remote', {});
      await waitFor(() => ran.includes(b), 'NOTIFY after reconnect to wake the worker', 5_000);
    } finally {
      await producerDb.close();
    }
  });
});
