/**
 * Several workers on one queue, in this process and in a child process (a second node): every job
 * runs exactly once while leases hold, and a job whose worker is killed mid-run is finished by
 * another worker once the lease expires. Run against both adapters: the database queue and the NATS
 * JetStream queue (runs are recorded in the test database either way).
 *
 * SQLite runs the child on the same database file: WAL and busy_timeout (set by openDatabase) let
 * two processes share it, and each claim is one UPDATE that takes the write lock before reading.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freshDatabase, shape, type TestDatabase } from '../support/shape.js';
import type { Database } from '../../src/store/db/database.js';
import { DatabaseQueue } from '../../src/queue/db-queue.js';
import { NatsQueue } from '../../src/queue/nats-queue.js';
import type { DatabaseQueueOptions } from '../../src/queue/options.js';
import type { Queue } from '../../src/queue/queue.js';
import { createRunsTable, readRuns, recordingHandler, waitFor, type WorkerArgs } from '../fixtures/queue-worker.js';
import { freshNats, type TestNats } from '../support/nats.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const dbFixture = fileURLToPath(new URL('../fixtures/queue-worker.ts', import.meta.url));
const natsFixture = fileURLToPath(new URL('../fixtures/nats-queue-worker.ts', import.meta.url));

let tdb: TestDatabase;
let db: Database;
let nats: TestNats;
const children: ChildProcess[] = [];

/** One adapter as the suite sees it: how to build a queue in this process and how to start a node. */
interface Backend {
  name: string;
  fixture: string;
  extraArgs(): Record<string, unknown>;
  newQueue(opts: DatabaseQueueOptions): Queue;
}

/** Every queue made here, stopped at the end (a NATS queue's open connection would keep the file running). */
const made: Queue[] = [];
const track = <Q extends Queue>(q: Q): Q => {
  made.push(q);
  return q;
};

const backends: Backend[] = [
  { name: 'database', fixture: dbFixture, extraArgs: () => ({}), newQueue: (opts) => track(new DatabaseQueue(db, opts)) },
  {
    name: 'NATS JetStream',
    fixture: natsFixture,
    extraArgs: () => ({ nats: { servers: nats.servers, namespace: nats.namespace } }),
    newQueue: (opts) => track(new NatsQueue({ ...opts, servers: nats.servers, namespace: nats.namespace })),
  },
];

/** A worker process; `lines` collects its stdout lines as they come. */
function spawnWorker(backend: Backend, args: WorkerArgs): { child: ChildProcess; lines: string[]; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', backend.fixture, JSON.stringify({ ...args, ...backend.extraArgs() })], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      if (code !== 0 && code !== null) process.stderr.write(`queue worker ${args.nodeId} exited ${code}: ${stderr}\n`);
      resolve(code);
    }),
  );
  return { child, lines, exited };
}

before(async () => {
  tdb = await freshDatabase();
  db = tdb.db;
  await createRunsTable(db);
  nats = await freshNats();
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(made.map((q) => q.stop(0)));
  await tdb.drop();
  await nats.drop();
});

for (const backend of backends) describe(`queue workers across instances and processes: ${backend.name} (${shape})`, () => {
  // Runs of both backends share the runs table; each backend's queue names are its own.
  const ns = backend.name === 'database' ? 'db' : 'nats';
  test('200 jobs over two in-process workers and one child process: each runs exactly once', async () => {
    const queue = `many-${ns}`;
    const child = spawnWorker(backend, { url: tdb.url, queue, nodeId: `node-c-${ns}`, mode: 'record', concurrency: 4, pollIntervalMs: 20, workMs: 5 });
    await waitFor(() => child.lines.includes('ready'), 'the child worker to start', 30_000);

    const producer = backend.newQueue({ nodeId: 'producer' });
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) ids.push(await producer.enqueue(queue, { i }));
    // The child gets a head start so that all three workers really compete for the rest.
    await waitFor(async () => (await readRuns(db)).some((r) => r.node_id === `node-c-${ns}`), 'the child to run a job', 20_000);

    const a = backend.newQueue({ nodeId: 'node-a', pollIntervalMs: 20 });
    const b = backend.newQueue({ nodeId: 'node-b', pollIntervalMs: 20 });
    a.work(queue, recordingHandler(db, 'node-a', 5), { concurrency: 4 });
    b.work(queue, recordingHandler(db, 'node-b', 5), { concurrency: 4 });
    try {
      await waitFor(
        async () => (await producer.stats()).find((s) => s.queue === queue && s.status === 'done')?.count === 200,
        'all 200 jobs to be done',
        45_000,
        100,
      );
    } finally {
      await Promise.all([a.stop(5000), b.stop(5000)]);
      child.child.kill('SIGTERM');
      await child.exited;
    }

    const runs = (await readRuns(db)).filter((r) => ids.includes(r.job_id));
    const ran = runs.map((r) => r.job_id);
    assert.equal(ran.length, 200, `${ran.length} runs recorded for 200 jobs`);
    assert.equal(new Set(ran).size, 200, 'no job ran twice');
    assert.deepEqual([...ran].sort(), [...ids].sort(), 'no job is missing');
    assert.ok(runs.every((r) => r.attempt === 1), 'no job needed a second attempt');
    const counts: Record<string, number> = {};
    for (const r of runs) counts[r.node_id] = (counts[r.node_id] ?? 0) + 1;
    assert.ok((counts[`node-c-${ns}`] ?? 0) > 0, `the child process ran jobs: ${JSON.stringify(counts)}`);
  });

  test('a worker killed mid-job loses its lease and another worker finishes the job', async () => {
    const queue = `crash-${ns}`;
    const producer = backend.newQueue({ nodeId: 'producer' });
    const id = await producer.enqueue(queue, { important: true });
    const child = spawnWorker(backend, { url: tdb.url, queue, nodeId: 'doomed', mode: 'hang', leaseSeconds: 1, pollIntervalMs: 20 });
    await waitFor(() => child.lines.includes(`started ${id}`), 'the child to start the job', 30_000);
    const held = await producer.get(id);
    assert.equal(held?.status, 'running');
    assert.equal(held?.lockedBy, 'doomed');

    child.child.kill('SIGKILL');
    await child.exited;

    const rescuer = backend.newQueue({ nodeId: 'rescuer', leaseSeconds: 1, pollIntervalMs: 50 });
    rescuer.work(queue, recordingHandler(db, 'rescuer'));
    try {
      await waitFor(async () => (await producer.get(id))?.status === 'done', 'the rescuer to finish the job after the lease expired', 15_000);
    } finally {
      await rescuer.stop(2000);
    }
    const done = await producer.get(id);
    assert.equal(done?.attempts, 2, 'the killed run counted as an attempt');
    const runs = (await readRuns(db)).filter((r) => r.job_id === id);
    assert.deepEqual(runs, [{ job_id: id, node_id: 'rescuer', attempt: 2 }]);
  });
});
