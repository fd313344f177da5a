/**
 * The transactional outbox (src/queue/outbox.ts) under the NATS queue: a job enqueued inside a
 * database transaction exists exactly when the transaction commits, keeps the id it was given, and
 * a row relayed twice (two nodes, or a crash between enqueue and delete) is still one job.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase, type TestDatabase } from '../support/shape.js';
import { freshNats, type TestNats } from '../support/nats.js';
import { NatsQueue } from '../../src/queue/nats-queue.js';
import { QueueOutbox } from '../../src/queue/outbox.js';

describe('queue outbox (NATS)', () => {
  let t: TestDatabase;
  let nats: TestNats;
  let q: NatsQueue;

  before(async () => {
    t = await freshDatabase();
    nats = await freshNats();
    q = new NatsQueue({ nodeId: 'node-a', pollIntervalMs: 25, servers: nats.servers, namespace: nats.namespace, outbox: t.db });
  });
  after(async () => {
    await q.stop(0);
    await nats.drop();
    await t.drop();
  });

  test('a job enqueued in a transaction appears only after the commit; a rolled-back one never', async () => {
    const ran: string[] = [];
    q.work<{ n: number }>('outboxed', async (job) => {
      ran.push(`${job.id}:${job.payload.n}`);
    });
    let committedId = '';
    await t.db.kysely.transaction().execute(async (trx) => {
      committedId = await q.enqueueIn(trx, 'outboxed', { n: 1 });
      assert.equal(await q.get(committedId), null, 'not in the queue before the commit');
    });
    await assert.rejects(
      t.db.kysely.transaction().execute(async (trx) => {
        await q.enqueueIn(trx, 'outboxed', { n: 2 });
        throw new Error('roll back');
      }),
      /roll back/,
    );
    q.wake('outboxed');
    const deadline = Date.now() + 15_000;
    while (ran.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(ran, [`${committedId}:1`], 'the committed job ran once, with the id enqueueIn returned; the rolled-back one never');
    const left = await t.db.kysely.selectFrom('queue_outbox').select('id').execute();
    assert.deepEqual(left, [], 'the outbox is empty after the relay');
  });

  test('a row relayed twice is one job (dedupe by the outbox id)', async () => {
    let id = '';
    await t.db.kysely.transaction().execute(async (trx) => {
      id = await q.enqueueIn(trx, 'twice', { n: 3 });
    });
    const row = await t.db.kysely.selectFrom('queue_outbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    // A second node relays the same row before the first deletes it.
    const other = new QueueOutbox(t.db, (queue, payload, opts) => q.enqueue(queue, payload, opts));
    await other.relay();
    await t.db.kysely.insertInto('queue_outbox').values(row).execute();
    await other.relay();
    const jobs = (await q.list({ queue: 'twice' })).jobs;
    assert.deepEqual(jobs.map((j) => j.id), [id]);
  });
});
