/**
 * The NATS JetStream queue adapter (src/queue/nats-queue.ts) against the NATS server on
 * 127.0.0.1:4222: the shared queue-port suite (test/support/queue-suite.ts), plus what only this
 * adapter has (its stream and bucket). The multi-worker and crashed-worker runs are in
 * queue-workers.test.ts. NATS does not depend on the shape; the suite runs in both.
 */
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { RetentionPolicy, StorageType } from 'nats';
import { NatsQueue, type NatsQueueOptions } from '../../src/queue/nats-queue.js';
import { natsNames } from '../../src/queue/nats/names.js';
import { RecordStore, type JobRecord } from '../../src/queue/nats/records.js';
import { claim } from '../../src/queue/nats/transitions.js';
import { queueSuite } from '../support/queue-suite.js';
import { freshNats, type TestNats } from '../support/nats.js';

let nats: TestNats;
let store: RecordStore;
const open: NatsQueue[] = [];

function newQueue(opts: Partial<NatsQueueOptions> = {}): NatsQueue {
  const q = new NatsQueue({ nodeId: 'node-a', pollIntervalMs: 25, servers: nats.servers, namespace: nats.namespace, ...opts });
  open.push(q);
  return q;
}

async function record(id: string): Promise<JobRecord> {
  const cur = await store.read(id);
  assert.ok(cur, `job ${id} has a record`);
  return cur.record;
}

async function change(id: string, fn: (r: JobRecord) => JobRecord): Promise<void> {
  assert.ok(await store.mutate(id, fn), `job ${id} was changed`);
}

const stopAll = async () => {
  await Promise.all(open.splice(0).map((q) => q.stop(0)));
};

before(async () => {
  nats = await freshNats();
  // A first queue creates the stream and bucket; the suite tampers with records through the bucket.
  const q = newQueue();
  await q.start();
  await stopAll();
  store = new RecordStore(await nats.nc.jetstream().views.kv(natsNames(nats.namespace).bucket));
});

after(async () => {
  await stopAll();
  await nats.drop();
});

queueSuite({
  name: 'NATS JetStream',
  newQueue: (opts) => newQueue(opts),
  raw: (id) => record(id),
  patch: (id, fields) => change(id, (r) => ({ ...r, ...fields })),
  // notified_at null: no hint was published, so the scheduler has to find the job.
  insertRaw: async (r) => assert.ok(await store.create({ ...r, notified_at: null })),
  takeOver: (id, lockedBy) => change(id, (r) => ({ ...r, locked_by: lockedBy, attempts: Number(r.attempts) + 1, locked_until: Date.now() + 60_000 })),
  claimAs: async (id, workerId, leaseMs) => {
    assert.ok(await store.mutate(id, claim(workerId, leaseMs, Date.now())), `claimed ${id}`);
  },
  stopAll,
});

describe('NATS queue only', () => {
  afterEach(stopAll);

  test('creates a WorkQueue stream with file storage and a KV bucket keeping one revision', async () => {
    const jsm = await nats.nc.jetstreamManager();
    const names = natsNames(nats.namespace);
    const info = await jsm.streams.info(names.stream);
    assert.equal(info.config.retention, RetentionPolicy.Workqueue);
    assert.equal(info.config.storage, StorageType.File);
    assert.deepEqual(info.config.subjects, [`${names.subjectPrefix}.>`]);
    const kv = await jsm.streams.info(`KV_${names.bucket}`);
    assert.equal(kv.config.max_msgs_per_subject, 1);
    assert.equal(kv.config.storage, StorageType.File);
  });

  test('options are checked; enqueueIn needs the outbox database', async () => {
    assert.throws(() => new NatsQueue({ nodeId: '' }), /nodeId/);
    assert.throws(() => new NatsQueue({ nodeId: 'n', namespace: 'has.dot' }), /namespace/);
    const q = newQueue();
    assert.equal(q.kind, 'nats');
    // Without `outbox` there is no transaction to join (queue-outbox.test.ts covers it with one).
    await assert.rejects(q.enqueueIn({} as never, 'x', {}), /without an outbox database/);
  });

  test('a dedupe key is freed when its job is deleted or purged', async () => {
    const q = newQueue();
    const a = await q.enqueue('free-key', {}, { dedupeKey: 'again' });
    assert.equal(await q.delete(a), true);
    const b = await q.enqueue('free-key', {}, { dedupeKey: 'again' });
    assert.notEqual(a, b);
    q.work('free-key', async () => {});
    await waitDone(q, b);
    assert.ok((await q.purgeDone(0)) >= 1);
    const c = await q.enqueue('free-key', {}, { dedupeKey: 'again' });
    assert.notEqual(c, b);
  });

  test('two queue instances ("nodes") on one queue: 200 jobs, each runs exactly once', async () => {
    const runs: { id: string; node: string; attempt: number }[] = [];
    const handler = (node: string) => async (job: { id: string; attempts: number }) => {
      await new Promise((r) => setTimeout(r, 2));
      runs.push({ id: job.id, node, attempt: job.attempts });
    };
    const a = newQueue({ nodeId: 'two-a' });
    const b = newQueue({ nodeId: 'two-b' });
    a.work('two-nodes', handler('two-a'), { concurrency: 4 });
    b.work('two-nodes', handler('two-b'), { concurrency: 4 });
    const producer = newQueue({ nodeId: 'two-producer' });
    const ids = await Promise.all(Array.from({ length: 200 }, (_, i) => producer.enqueue('two-nodes', { i })));
    const deadline = Date.now() + 60_000;
    while (runs.length < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300)); // a late duplicate would show up here
    assert.equal(runs.length, 200, `${runs.length} runs for 200 jobs`);
    assert.deepEqual(runs.map((r) => r.id).sort(), [...ids].sort(), 'every job ran once, none twice');
    assert.ok(runs.every((r) => r.attempt === 1));
    const nodes = new Set(runs.map((r) => r.node));
    assert.equal(nodes.size, 2, `both nodes ran jobs: ${[...nodes].join(', ')}`);
    const done = (await producer.stats()).find((s) => s.queue === 'two-nodes' && s.status === 'done');
    assert.equal(done?.count, 200);
  });
});

async function waitDone(q: NatsQueue, id: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await q.get(id))?.status !== 'done') {
    if (Date.now() > deadline) throw new Error(`job ${id} did not finish`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
