/**
 * The behaviour every `Queue` adapter must show, as one suite run against each of them: the database
 * queue (test/integration/queue.test.ts, SQLite or PostgreSQL) and the NATS JetStream queue
 * (test/integration/queue-nats.test.ts). Scheduling, retries, dead letters, inspection, leases, stop
 * and wake-ups. A harness gives each adapter its way to look at and tamper with raw job records,
 * which some tests need to stage a crash or a takeover.
 */
import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { Job, JobHandler, Queue } from '../../src/queue/queue.js';
import type { DatabaseQueueOptions, DatabaseQueueSettings, QueueSettings } from '../../src/queue/options.js';
import type { JobRow } from '../../src/queue/claim.js';
import { LeaseLostError, QueueStoppingError } from '../../src/queue/errors.js';
import { MAX_PAYLOAD_BYTES } from '../../src/queue/job-row.js';
import { waitFor } from '../fixtures/queue-worker.js';

/** What the suite uses beyond the port: both adapters offer these for the composition root. */
export type SuiteQueue = Queue & {
  setOptions(partial: DatabaseQueueSettings): void;
  settings(): Readonly<QueueSettings>;
  purgeDone(olderThanMs: number): Promise<number>;
};

export interface QueueHarness {
  /** Shown in the describe title. */
  name: string;
  /** A queue (`nodeId` 'node-a', poll interval 25 ms unless given) that the suite stops after each test. */
  newQueue(opts?: Partial<DatabaseQueueOptions>): SuiteQueue;
  /** The stored record of a job. */
  raw(id: string): Promise<Pick<JobRow, 'status' | 'locked_by' | 'attempts' | 'last_error' | 'backoff_json'>>;
  /** Overwrites fields of a stored job. */
  patch(id: string, fields: Partial<Pick<JobRow, 'status' | 'finished_at'>>): Promise<void>;
  /** Stores a job as given (e.g. with a damaged payload); workers must find it. */
  insertRaw(row: JobRow): Promise<void>;
  /** What another worker's takeover after an expired lease does: new owner, attempt counted, lease for a minute. */
  takeOver(id: string, lockedBy: string): Promise<void>;
  /** Claims job `id` for `workerId` as a worker would, with a lease of `leaseMs` (then "crashes"). */
  claimAs(id: string, workerId: string, leaseMs: number): Promise<void>;
  /** Stops every queue `newQueue` made (at once, no drain time). */
  stopAll(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function queueSuite(h: QueueHarness): void {
  describe(`queue port: ${h.name}`, () => {
    // Each test's workers stop when it ends, so idle pollers of earlier tests do not load later ones.
    afterEach(() => h.stopAll());

    test('enqueue stores a ready job with the defaults and get returns it', async () => {
      const q = h.newQueue({ defaultMaxAttempts: 5, defaultBackoffSeconds: [1, 2] });
      const id = await q.enqueue('basic', { hello: 'wörld', n: 1 });
      const job = await q.get(id);
      assert.ok(job);
      assert.equal(job.queue, 'basic');
      assert.deepEqual(job.payload, { hello: 'wörld', n: 1 });
      assert.equal(job.status, 'ready');
      assert.equal(job.attempts, 0);
      assert.equal(job.maxAttempts, 5);
      assert.equal(job.lockedBy, null);
      assert.equal((await h.raw(id)).backoff_json, '[1,2]');
      assert.equal(await q.get('00000000-0000-0000-0000-000000000000'), null);
    });

    test('every limit is refused with a clear error', async () => {
      const q = h.newQueue();
      await assert.rejects(q.enqueue('', {}), /queue name/);
      await assert.rejects(q.enqueue('has space', {}), /queue name/);
      await assert.rejects(q.enqueue('x', undefined), /JSON value/);
      await assert.rejects(q.enqueue('x', 'a'.repeat(MAX_PAYLOAD_BYTES)), /at most 262144/);
      await assert.rejects(q.enqueue('x', {}, { delayMs: -1 }), /delayMs/);
      await assert.rejects(q.enqueue('x', {}, { maxAttempts: 0 }), /maxAttempts/);
      await assert.rejects(q.enqueue('x', {}, { backoffSeconds: [] }), /non-empty/);
      await assert.rejects(q.enqueue('x', {}, { dedupeKey: 'k'.repeat(201) }), /dedupeKey/);
      await assert.rejects(q.list({ limit: 0 }), /limit/);
      await assert.rejects(q.list({ limit: 1001 }), /limit/);
      await assert.rejects(q.list({ cursor: 'garbage' }), /invalid cursor/);
      await assert.rejects(q.list({ status: 'nope' as never }), /status must be one of/);
      await assert.rejects(q.purgeDone(-1), /olderThanMs/);
      assert.throws(() => q.work('x', async () => {}, { concurrency: 0 }), /concurrency/);
      assert.throws(() => q.setOptions({ pollIntervalMs: 0 }), /pollIntervalMs/);
      assert.throws(() => q.setOptions({ leaseSeconds: -1 }), /leaseSeconds/);
    });

    test('a delayed job does not run before its time and runs after it', async () => {
      const q = h.newQueue();
      const runs: { at: number; job: Job }[] = [];
      q.work('delayed', async (job) => {
        runs.push({ at: Date.now(), job });
      });
      const enqueuedAt = Date.now();
      const id = await q.enqueue('delayed', { x: 1 }, { delayMs: 800 });
      await sleep(300);
      assert.equal(runs.length, 0, 'ran before its delay');
      assert.equal((await q.get(id))?.status, 'ready');
      await waitFor(async () => (await q.get(id))?.status === 'done', 'the delayed job to finish', 10_000);
      assert.equal(runs.length, 1);
      assert.ok(runs[0].at >= enqueuedAt + 800, `ran ${runs[0].at - enqueuedAt} ms after enqueue`);
      assert.ok(runs[0].at >= runs[0].job.runAt);
      const done = await q.get(id);
      assert.equal(done?.attempts, 1);
      assert.ok(done?.finishedAt);
    });

    test('a failing job is retried on its backoff schedule, then dead-lettered; retryNow revives it', async () => {
      const metrics: string[] = [];
      const q = h.newQueue({ onMetrics: (event, queue) => metrics.push(`${event}:${queue}`) });
      const runs: number[] = [];
      let succeed = false;
      q.work('flaky', async (job) => {
        runs.push(Date.now());
        if (!succeed) throw new Error(`boom ${job.attempts}`);
      });
      const id = await q.enqueue('flaky', {}, { maxAttempts: 3, backoffSeconds: [0.05, 0.1] });
      await waitFor(async () => (await q.get(id))?.status === 'dead', 'the job to be dead-lettered');
      const dead = await q.get(id);
      assert.equal(runs.length, 3);
      assert.ok(runs[1] - runs[0] >= 50, `second attempt after ${runs[1] - runs[0]} ms`);
      assert.ok(runs[2] - runs[1] >= 100, `third attempt after ${runs[2] - runs[1]} ms`);
      assert.equal(dead?.attempts, 3);
      assert.equal(dead?.lastError, 'boom 3');
      assert.ok(dead?.finishedAt);
      assert.equal(dead?.lockedBy, null);
      assert.deepEqual(metrics, ['failed:flaky', 'failed:flaky', 'dead:flaky']);

      succeed = true;
      assert.equal(await q.retryNow(id), true);
      await waitFor(async () => (await q.get(id))?.status === 'done', 'the revived job to finish');
      const revived = await q.get(id);
      assert.equal(revived?.attempts, 1, 'a dead job starts its attempts over');
      assert.equal(runs.length, 4);
      assert.equal(metrics.at(-1), 'completed:flaky');

      assert.equal(await q.retryNow(id), false, 'a done job is not retried');
      assert.equal(await q.retryNow('00000000-0000-0000-0000-000000000000'), false);
    });

    test('an error marked permanent dead-letters the job at its first attempt', async () => {
      const q = h.newQueue();
      let calls = 0;
      q.work('permanent', async () => {
        calls++;
        throw Object.assign(new Error('address refused'), { permanent: true });
      });
      const id = await q.enqueue('permanent', {}, { maxAttempts: 5, backoffSeconds: [0] });
      await waitFor(async () => (await q.get(id))?.status === 'dead', 'the job to be dead-lettered');
      const dead = await q.get(id);
      assert.equal(calls, 1);
      assert.equal(dead?.attempts, 1);
      assert.equal(dead?.lastError, 'address refused');
    });

    test('retryNow makes a waiting job due at once and keeps its attempt count', async () => {
      const q = h.newQueue();
      const id = await q.enqueue('waiting', {}, { delayMs: 3_600_000 });
      const before = await q.get(id);
      assert.equal(await q.retryNow(id), true);
      const after = await q.get(id);
      assert.ok(after && before && after.runAt < before.runAt);
      assert.ok(after!.runAt <= Date.now());
      assert.equal(after!.attempts, 0);
    });

    test('a job that fails once and then succeeds ends done with two attempts', async () => {
      const q = h.newQueue();
      let calls = 0;
      q.work('once', async () => {
        calls++;
        if (calls === 1) throw new Error('transient');
      });
      const id = await q.enqueue('once', {}, { backoffSeconds: [0] });
      await waitFor(async () => (await q.get(id))?.status === 'done', 'the job to finish');
      const job = await q.get(id);
      assert.equal(job?.attempts, 2);
      assert.equal(calls, 2);
    });

    test('dedupeKey: a second enqueue returns the existing job', async () => {
      const q = h.newQueue();
      const a = await q.enqueue('dedupe', { v: 1 }, { dedupeKey: 'msg-1/hook-7' });
      const b = await q.enqueue('dedupe', { v: 2 }, { dedupeKey: 'msg-1/hook-7' });
      const c = await q.enqueue('dedupe', { v: 3 }, { dedupeKey: 'msg-2/hook-7' });
      assert.equal(a, b);
      assert.notEqual(a, c);
      const { jobs } = await q.list({ queue: 'dedupe' });
      assert.equal(jobs.length, 2);
      assert.deepEqual((await q.get(a))?.payload, { v: 1 }, 'the first payload is kept');
      // Concurrent enqueues of one key race on the unique index; all get the same id.
      const ids = await Promise.all(Array.from({ length: 8 }, (_, i) => q.enqueue('dedupe', { i }, { dedupeKey: 'race' })));
      assert.equal(new Set(ids).size, 1);
    });

    test('list pages by cursor, filters by queue and status; stats counts; delete removes', async () => {
      const q = h.newQueue();
      const a = [];
      for (let i = 0; i < 5; i++) a.push(await q.enqueue('ls-a', { i }));
      const b = [await q.enqueue('ls-b', {}), await q.enqueue('ls-b', {})];

      const seen: string[] = [];
      let cursor: string | null | undefined;
      let pages = 0;
      do {
        const page = await q.list({ queue: 'ls-a', limit: 2, cursor: cursor ?? undefined });
        assert.ok(page.jobs.length <= 2);
        seen.push(...page.jobs.map((j) => j.id));
        cursor = page.cursor;
        pages++;
      } while (cursor);
      assert.equal(pages, 3);
      assert.deepEqual([...seen].sort(), [...a].sort());
      assert.equal(new Set(seen).size, 5);

      const all = await q.list({ limit: 1000 });
      const order = all.jobs.map((j) => [j.createdAt, j.id] as const);
      for (let i = 1; i < order.length; i++) {
        assert.ok(order[i - 1][0] < order[i][0] || (order[i - 1][0] === order[i][0] && order[i - 1][1] < order[i][1]), 'list is ordered by created_at, id');
      }

      await h.patch(b[0], { status: 'dead' });
      const deadB = await q.list({ queue: 'ls-b', status: 'dead' });
      assert.deepEqual(deadB.jobs.map((j) => j.id), [b[0]]);

      const stats = (await q.stats()).filter((s) => s.queue.startsWith('ls-'));
      assert.deepEqual(stats, [
        { queue: 'ls-a', status: 'ready', count: 5 },
        { queue: 'ls-b', status: 'dead', count: 1 },
        { queue: 'ls-b', status: 'ready', count: 1 },
      ]);

      assert.equal(await q.delete(a[0]), true);
      assert.equal(await q.delete(a[0]), false);
      assert.equal(await q.get(a[0]), null);
      assert.equal((await q.list({ queue: 'ls-a' })).jobs.length, 4);
    });

    test('purgeDone removes finished jobs older than the cutoff and keeps the rest', async () => {
      const q = h.newQueue();
      q.work('purge', async () => {});
      const ids = [await q.enqueue('purge', {}), await q.enqueue('purge', {})];
      const dead = await q.enqueue('purge-dead', {});
      await h.patch(dead, { status: 'dead', finished_at: Date.now() - 10_000 });
      await waitFor(async () => (await q.list({ queue: 'purge', status: 'done' })).jobs.length === 2, 'both jobs to finish');
      assert.equal(await q.purgeDone(3_600_000), 0, 'nothing is older than an hour');
      await sleep(5);
      const before = (await q.list({ status: 'done', limit: 1000 })).jobs.length;
      const purged = await q.purgeDone(0);
      assert.ok(purged >= 2 && purged === before, `purged ${purged} of ${before}`);
      for (const id of ids) assert.equal(await q.get(id), null);
      assert.equal((await q.get(dead))?.status, 'dead', 'dead letters are kept for inspection');
    });

    test('a job with an unreadable payload fails without reaching the handler', async () => {
      const q = h.newQueue();
      let called = false;
      const at = Date.now();
      await h.insertRaw({
        id: 'broken-payload', queue: 'broken', payload_json: '{nope', status: 'ready', attempts: 0, max_attempts: 1,
        backoff_json: '[0]', run_at: at, locked_by: null, locked_until: null, last_error: null, dedupe_key: null,
        created_at: at, updated_at: at, finished_at: null,
      });
      assert.equal((await q.get('broken-payload'))?.payload, '{nope', 'inspection shows the raw text');
      q.work('broken', async () => {
        called = true;
      });
      await waitFor(async () => (await q.get('broken-payload'))?.status === 'dead', 'the broken job to be dead-lettered');
      assert.equal(called, false);
      assert.match((await q.get('broken-payload'))?.lastError ?? '', /unreadable payload/);
    });

    test('a long job renews its lease, so no other worker takes it', async () => {
      const a = h.newQueue({ nodeId: 'lease-a', leaseSeconds: 0.6 });
      const b = h.newQueue({ nodeId: 'lease-b', leaseSeconds: 0.6 });
      const runs: string[] = [];
      let aborted = false;
      const slow = (node: string): JobHandler => async (_job, signal) => {
        runs.push(node);
        await sleep(2000);
        aborted ||= signal.aborted;
      };
      a.work('long', slow('a'));
      const id = await a.enqueue('long', {});
      await waitFor(() => runs.length === 1, 'worker a to start the job');
      b.work('long', slow('b'));
      await waitFor(async () => (await a.get(id))?.status === 'done', 'the long job to finish', 10_000);
      assert.deepEqual(runs, ['a'], 'the job ran on one worker only');
      assert.equal(aborted, false);
      assert.equal((await a.get(id))?.attempts, 1);
    });

    test('a worker that lost its lease is aborted and cannot overwrite the new owner', async () => {
      const a = h.newQueue({ nodeId: 'fence-a', leaseSeconds: 0.6 });
      let signal: AbortSignal | undefined;
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      a.work('fence', async (_job, s) => {
        signal = s;
        await released;
        throw new Error('late failure from the old owner');
      });
      const id = await a.enqueue('fence', {});
      await waitFor(() => signal, 'worker a to start the job');
      // What a takeover claim does after the lease expired: new owner, attempt counted.
      await h.takeOver(id, 'fence-b');
      await waitFor(() => signal!.aborted, 'the heartbeat to notice the lost lease', 5_000);
      assert.ok(signal!.reason instanceof LeaseLostError);
      release();
      await sleep(200);
      const r = await h.raw(id);
      assert.equal(r.status, 'running');
      assert.equal(r.locked_by, 'fence-b');
      assert.equal(Number(r.attempts), 2);
      assert.equal(r.last_error, null);
    });

    test('a job whose lease expires on its last attempt is dead-lettered, not run again', async () => {
      const metrics: string[] = [];
      const q = h.newQueue({ onMetrics: (e) => metrics.push(e) });
      const id = await q.enqueue('crashy', {}, { maxAttempts: 1 });
      await h.claimAs(id, 'ghost', 1);
      await sleep(10);
      let called = false;
      q.work('crashy', async () => {
        called = true;
      });
      await waitFor(async () => (await q.get(id))?.status === 'dead', 'the expired job to be dead-lettered');
      assert.equal(called, false);
      assert.match((await q.get(id))?.lastError ?? '', /lease expired/);
      assert.deepEqual(metrics, ['dead']);
    });

    test('stop aborts unfinished handlers after the drain time and hands their jobs back', async () => {
      const a = h.newQueue({ nodeId: 'stop-a' });
      const signals: AbortSignal[] = [];
      a.work(
        'stopping',
        async (_job, signal) => {
          signals.push(signal);
          await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
        },
        { concurrency: 2 },
      );
      const ids = [await a.enqueue('stopping', {}), await a.enqueue('stopping', {})];
      await waitFor(() => signals.length === 2, 'both jobs to start');
      const t = Date.now();
      await a.stop(150);
      assert.ok(Date.now() - t >= 140, 'stop waited for the drain time');
      assert.ok(signals.every((s) => s.aborted && s.reason instanceof QueueStoppingError));
      for (const id of ids) {
        const r = await h.raw(id);
        assert.equal(r.status, 'ready');
        assert.equal(r.locked_by, null);
        assert.equal(Number(r.attempts), 0, 'a handed-back job does not use up an attempt');
      }
      assert.throws(() => a.work('stopping', async () => {}), /stopped/);

      const b = h.newQueue({ nodeId: 'stop-b' });
      b.work('stopping', async () => {}, { concurrency: 2 });
      await waitFor(async () => (await b.list({ queue: 'stopping', status: 'done' })).jobs.length === 2, 'another worker to finish them');
    });

    test('stop waits for handlers that finish within the drain time', async () => {
      const q = h.newQueue({ nodeId: 'drain' });
      let started = false;
      q.work('drain', async () => {
        started = true;
        await sleep(300);
      });
      const id = await q.enqueue('drain', {});
      await waitFor(() => started, 'the job to start');
      await q.stop(10_000);
      assert.equal((await q.get(id))?.status, 'done');
    });

    test('an enqueue wakes an idle worker in this process long before its next poll', async () => {
      const worker = h.newQueue({ nodeId: 'sleepy', pollIntervalMs: 60_000 });
      const other = h.newQueue({ nodeId: 'producer', pollIntervalMs: 60_000 });
      let ranAt = 0;
      worker.work('wake-local', async () => {
        ranAt = Date.now();
      });
      await sleep(200); // the worker's first poll found nothing; it now sleeps for a minute
      const t = Date.now();
      await other.enqueue('wake-local', {});
      await waitFor(() => ranAt, 'the woken worker to run the job', 5_000);
      assert.ok(ranAt - t < 5_000);
    });

    test('setOptions changes defaults for new jobs', async () => {
      const q = h.newQueue();
      q.setOptions({ defaultMaxAttempts: 9, defaultBackoffSeconds: [5] });
      const id = await q.enqueue('opts', {});
      assert.equal((await q.get(id))?.maxAttempts, 9);
      assert.equal((await h.raw(id)).backoff_json, '[5]');
      assert.equal(q.settings().pollIntervalMs, 25);
    });

    test('ping measures a round-trip to the queue storage', async () => {
      const ms = await h.newQueue().ping();
      assert.ok(Number.isFinite(ms) && ms >= 0);
    });
  });
}
