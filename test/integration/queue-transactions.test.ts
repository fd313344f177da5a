/**
 * `DatabaseQueue.enqueueIn`: a job written inside the caller's transaction commits or rolls back with
 * the data it refers to (SPEC §3.1 step 7), wakes workers only after the commit, and keeps dedupeKey
 * semantics across transactions. Runs against the current shape (SQLite or PostgreSQL).
 */
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { sql, type Kysely } from 'kysely';
import { freshDatabase, shape, type TestDatabase } from '../support/shape.js';
import type { Database } from '../../src/store/db/database.js';
import type { DB } from '../../src/store/db/types.js';
import { DatabaseQueue, LISTENER_APPLICATION_NAME, MAX_PAYLOAD_BYTES, NOTIFY_CHANNEL } from '../../src/queue/db-queue.js';
import type { Queue } from '../../src/queue/queue.js';
import { waitFor } from '../fixtures/queue-worker.js';

let tdb: TestDatabase;
let db: Database;
const open: DatabaseQueue[] = [];

function newQueue(opts: Partial<ConstructorParameters<typeof DatabaseQueue>[1]> = {}): DatabaseQueue {
  const q = new DatabaseQueue(db, { nodeId: 'tx-node', pollIntervalMs: 25, ...opts });
  open.push(q);
  return q;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function transaction<T>(fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
  return db.kysely.transaction().execute(fn);
}

/** Stands in for the data a job refers to (a stored message, say). */
async function insertData(trx: Kysely<DB>, id: string): Promise<void> {
  await sql`INSERT INTO queue_tx_data (id, note) VALUES (${id}, ${`data ${id}`})`.execute(trx);
}

async function readData(id: string): Promise<{ id: string; note: string } | undefined> {
  const r = await sql<{ id: string; note: string }>`SELECT id, note FROM queue_tx_data WHERE id = ${id}`.execute(db.kysely);
  return r.rows[0];
}

/** A promise and the function that resolves it, to hold a transaction open at a chosen point. */
function gate(): { wait: Promise<void>; open: () => void } {
  let openIt!: () => void;
  const wait = new Promise<void>((resolve) => (openIt = resolve));
  return { wait, open: openIt };
}

/** PostgreSQL: the pids of this database's queue LISTEN connections. */
async function pgListeners(): Promise<number[]> {
  const r = await sql<{ pid: number }>`SELECT pid FROM pg_stat_activity WHERE application_name = ${LISTENER_APPLICATION_NAME} AND datname = current_database() AND query ILIKE 'LISTEN%'`.execute(db.kysely);
  return r.rows.map((row) => Number(row.pid));
}

before(async () => {
  tdb = await freshDatabase();
  db = tdb.db;
  await sql`CREATE TABLE queue_tx_data (id TEXT PRIMARY KEY, note TEXT NOT NULL)`.execute(db.kysely);
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((q) => q.stop(0)));
});

after(async () => {
  await tdb.drop();
});

describe(`queue: enqueue inside a transaction (${shape})`, () => {
  test('the database adapter offers enqueueIn and wake through the Queue port', () => {
    const port: Queue = newQueue();
    assert.equal(typeof port.enqueueIn, 'function');
    assert.equal(typeof port.wake, 'function');
  });

  test('a job enqueued in a transaction that rolls back does not exist and never runs', async () => {
    const q = newQueue();
    const ran: string[] = [];
    q.work('tx-rollback', async (job) => {
      ran.push(job.id);
    });
    let id = '';
    await assert.rejects(
      transaction(async (trx) => {
        await insertData(trx, 'rolled-back');
        id = await q.enqueueIn(trx, 'tx-rollback', { dataId: 'rolled-back' });
        const inside = await trx.selectFrom('queue_jobs').select('status').where('id', '=', id).executeTakeFirst();
        assert.equal(inside?.status, 'ready', 'the job is visible inside its own transaction');
        throw new Error('rolled back on purpose');
      }),
      /rolled back on purpose/,
    );
    assert.ok(id);
    q.wake('tx-rollback'); // what a caller may do unconditionally after its transaction: harmless here
    await sleep(400); // many poll intervals of 25 ms
    assert.equal(await q.get(id), null, 'the job is gone with the transaction');
    assert.equal(await readData('rolled-back'), undefined, 'and so is its data');
    assert.deepEqual((await q.list({ queue: 'tx-rollback' })).jobs, []);
    assert.deepEqual(ran, [], 'the job never ran');
  });

  test('a job enqueued in a transaction that commits runs and finds its data', async () => {
    const q = newQueue({ defaultMaxAttempts: 7 });
    const seen: unknown[] = [];
    q.work<{ dataId: string }>('tx-commit', async (job) => {
      seen.push(await readData(job.payload.dataId));
    });
    const id = await transaction(async (trx) => {
      await insertData(trx, 'committed');
      return q.enqueueIn(trx, 'tx-commit', { dataId: 'committed' });
    });
    q.wake('tx-commit');
    await waitFor(async () => (await q.get(id))?.status === 'done', 'the committed job to finish');
    assert.deepEqual(seen, [{ id: 'committed', note: 'data committed' }], 'the handler saw the data committed with the job');
    const job = await q.get(id);
    assert.equal(job?.attempts, 1);
    assert.equal(job?.maxAttempts, 7, 'queue defaults apply as with enqueue');
  });

  test('workers are woken only after the commit', async () => {
    const worker = newQueue({ nodeId: 'tx-sleepy', pollIntervalMs: 60_000 });
    const ran: string[] = [];
    worker.work('tx-wake', async (job) => {
      ran.push(job.id);
    });
    if (shape === 'cluster') await waitFor(async () => (await pgListeners()).length === 1, 'the queue listener to connect');
    await sleep(200); // the worker's first poll found nothing; it now sleeps for a minute

    const commit = gate();
    const entered = gate();
    let id = '';
    const tx = transaction(async (trx) => {
      id = await worker.enqueueIn(trx, 'tx-wake', {});
      entered.open();
      await commit.wait;
    });
    await entered.wait;
    try {
      await sleep(300);
      assert.deepEqual([...ran], [], 'nothing runs while the transaction is open');
    } finally {
      commit.open(); // also when the assertion failed: an open transaction would hang the suite's teardown
      await tx;
    }

    if (shape === 'cluster') {
      // PostgreSQL delivered the NOTIFY queued in the transaction at its commit: no wake() needed.
      await waitFor(() => ran.includes(id), 'the NOTIFY sent at commit to wake the worker (its poll interval is a minute)', 5_000);
    } else {
      // SQLite has no NOTIFY, and enqueueIn must not wake anyone early (a worker woken during the
      // transaction would have claimed the job right after the commit): only wake() does.
      await sleep(300);
      assert.deepEqual([...ran], [], 'no wake-up fired at enqueue time');
      worker.wake('tx-wake');
      await waitFor(() => ran.includes(id), 'wake() after the commit to wake the worker (its poll interval is a minute)', 5_000);
    }
  });

  // LISTEN/NOTIFY exists only in the cluster shape (PostgreSQL); SQLite has no such channel.
  if (shape === 'cluster') test('PostgreSQL: the NOTIFY is delivered at commit, dropped on rollback, and not sent for a delayed job', async () => {
    const q = newQueue();
    const client = new pg.Client({ connectionString: tdb.url });
    await client.connect();
    try {
      const heard: (string | undefined)[] = [];
      client.on('notification', (msg) => {
        if (msg.channel === NOTIFY_CHANNEL) heard.push(msg.payload);
      });
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);

      await assert.rejects(
        transaction(async (trx) => {
          await q.enqueueIn(trx, 'tx-notify-rolled-back', {});
          throw new Error('rolled back on purpose');
        }),
        /on purpose/,
      );

      const commit = gate();
      const entered = gate();
      const tx = transaction(async (trx) => {
        await q.enqueueIn(trx, 'tx-notify', {});
        await q.enqueueIn(trx, 'tx-notify-later', {}, { delayMs: 60_000 });
        entered.open();
        await commit.wait;
      });
      await entered.wait;
      try {
        await sleep(300);
        assert.deepEqual([...heard], [], 'no notification while the transaction is open');
      } finally {
        commit.open();
        await tx;
      }
      await waitFor(() => heard.includes('tx-notify'), 'the notification sent at commit', 5_000);
      await sleep(200);
      assert.deepEqual(heard, ['tx-notify'], 'only the committed, due job was announced');
    } finally {
      await client.end();
    }
  });

  test('dedupeKey works inside transactions', async () => {
    const q = newQueue();
    const outside = await q.enqueue('tx-dedupe', { v: 0 }, { dedupeKey: 'tx-k-outside' });
    const [a, b, c] = await transaction(async (trx) => [
      await q.enqueueIn(trx, 'tx-dedupe', { v: 1 }, { dedupeKey: 'tx-k-outside' }),
      await q.enqueueIn(trx, 'tx-dedupe', { v: 2 }, { dedupeKey: 'tx-k-inside' }),
      await q.enqueueIn(trx, 'tx-dedupe', { v: 3 }, { dedupeKey: 'tx-k-inside' }),
    ]);
    assert.equal(a, outside, 'a key committed earlier returns the existing job');
    assert.equal(b, c, 'a key taken earlier in the same transaction returns that job');
    assert.notEqual(b, outside);
    assert.deepEqual((await q.get(b))?.payload, { v: 2 }, 'the first payload is kept');
    assert.equal((await q.list({ queue: 'tx-dedupe' })).jobs.length, 2);

    // A key held only by a transaction that rolled back is free again.
    let rolledBack = '';
    await assert.rejects(
      transaction(async (trx) => {
        rolledBack = await q.enqueueIn(trx, 'tx-dedupe', { v: 4 }, { dedupeKey: 'tx-k-rollback' });
        throw new Error('rolled back on purpose');
      }),
      /on purpose/,
    );
    const fresh = await q.enqueue('tx-dedupe', { v: 5 }, { dedupeKey: 'tx-k-rollback' });
    assert.notEqual(fresh, rolledBack);
    assert.deepEqual((await q.get(fresh))?.payload, { v: 5 });

    // Concurrent transactions enqueueing one key: one job, and every transaction gets its id.
    const ids = await Promise.all(
      Array.from({ length: 6 }, (_, i) => transaction((trx) => q.enqueueIn(trx, 'tx-dedupe', { i }, { dedupeKey: 'tx-k-race' }))),
    );
    assert.equal(new Set(ids).size, 1);
    const holders = await db.kysely.selectFrom('queue_jobs').select('id').where('dedupe_key', '=', 'tx-k-race').execute();
    assert.deepEqual(holders.map((h) => h.id), [ids[0]]);
  });

  test('a transaction waiting on a key held by another gets the key when the holder rolls back', async () => {
    const q = newQueue();
    const rollback = gate();
    const entered = gate();
    let first = '';
    const holder = transaction(async (trx) => {
      first = await q.enqueueIn(trx, 'tx-dedupe-wait', { who: 'holder' }, { dedupeKey: 'tx-k-handover' });
      entered.open();
      await rollback.wait;
      throw new Error('holder rolls back');
    });
    await entered.wait;
    // Waits for the holder: on PostgreSQL on the unique index, on SQLite for the write connection.
    const waiter = transaction((trx) => q.enqueueIn(trx, 'tx-dedupe-wait', { who: 'waiter' }, { dedupeKey: 'tx-k-handover' }));
    await sleep(200);
    rollback.open();
    await assert.rejects(holder, /holder rolls back/);
    const second = await waiter;
    assert.notEqual(second, first);
    assert.equal(await q.get(first), null);
    assert.deepEqual((await q.get(second))?.payload, { who: 'waiter' });
  });

  test('limits are checked before the first statement, so a refused job leaves the transaction usable', async () => {
    const q = newQueue();
    const id = await transaction(async (trx) => {
      await assert.rejects(q.enqueueIn(trx, 'tx-limits', 'a'.repeat(MAX_PAYLOAD_BYTES)), /at most 262144/);
      await assert.rejects(q.enqueueIn(trx, 'has space', {}), /queue name/);
      await assert.rejects(q.enqueueIn(trx, 'tx-limits', {}, { dedupeKey: '' }), /dedupeKey/);
      await assert.rejects(q.enqueueIn(trx, 'tx-limits', {}, { delayMs: -1 }), /delayMs/);
      // On PostgreSQL a failed statement would have aborted the transaction and this would throw.
      return q.enqueueIn(trx, 'tx-limits', { ok: true });
    });
    assert.deepEqual((await q.get(id))?.payload, { ok: true });
    assert.throws(() => q.wake('has space'), /queue name/);
  });
});
