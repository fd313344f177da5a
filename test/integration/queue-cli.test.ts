/**
 * `mairust queue …` against a real database of the current shape. The CLI context is built here
 * around a real DatabaseQueue (instead of a config file) so the command group is tested on its own.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { freshDatabase, shape, type TestDatabase } from '../support/shape.js';
import { DatabaseQueue } from '../../src/queue/db-queue.js';
import { register } from '../../src/cli/queue.js';
import type { CliContext } from '../../src/cli/cli-context.js';
import type { AppContext } from '../../src/app/context.js';

let tdb: TestDatabase;
let queue: DatabaseQueue;

interface Outcome {
  printed: unknown[];
  failures: { message: string; code: number }[];
  closed: number;
}

async function run(args: string[], json = false): Promise<Outcome> {
  const out: Outcome = { printed: [], failures: [], closed: 0 };
  const program = new Command('mairust').exitOverride();
  const cli: CliContext = {
    globals: () => ({ json }),
    open: async () => ({ queue, db: tdb.db, close: async () => void out.closed++ }) as unknown as AppContext,
    print: (v) => void out.printed.push(v),
    fail: (message, code = 1) => void out.failures.push({ message, code }),
  };
  register(program, cli);
  await program.parseAsync(args, { from: 'user' });
  return out;
}

before(async () => {
  tdb = await freshDatabase();
  queue = new DatabaseQueue(tdb.db, { nodeId: 'cli-test' });
});

after(async () => {
  await queue.stop(0);
  await tdb.drop();
});

describe(`mairust queue (${shape})`, () => {
  test('list pages with a cursor and filters by queue and status', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await queue.enqueue('cli-a', { i }));
    await queue.enqueue('cli-b', {});

    const first = await run(['queue', 'list', '--queue', 'cli-a', '--limit', '2']);
    assert.equal(first.closed, 1, 'the app is closed after the command');
    const rows = first.printed[0] as { id: string; status: string; attempts: string }[];
    assert.equal(rows.length, 2);
    assert.equal(rows[0].status, 'ready');
    assert.equal(rows[0].attempts, '0/4');
    const more = String(first.printed[1]);
    assert.match(more, /^more: --cursor \S+$/);

    const second = await run(['queue', 'list', '--queue', 'cli-a', '--limit', '2', '--cursor', more.split(' ').at(-1)!], true);
    const page = second.printed[0] as { jobs: { id: string; payload: unknown }[]; cursor: string | null };
    assert.equal(page.jobs.length, 1);
    assert.equal(page.cursor, null);
    assert.deepEqual([...rows.map((r) => r.id), page.jobs[0].id].sort(), [...ids].sort());

    const dead = await run(['queue', 'list', '--status', 'dead']);
    assert.deepEqual(dead.printed[0], []);
  });

  test('list refuses a bad --status or --limit without opening the app', async () => {
    const bad = await run(['queue', 'list', '--status', 'stuck']);
    assert.match(bad.failures[0].message, /--status must be one of ready, running, done, dead/);
    assert.equal(bad.closed, 0);
    const big = await run(['queue', 'list', '--limit', '5000']);
    assert.match(big.failures[0].message, /--limit must be an integer from 1 to 1000/);
  });

  test('show prints one job with its payload; an unknown id fails', async () => {
    const id = await queue.enqueue('cli-show', { to: 'user@example.com' });
    const shown = await run(['queue', 'show', id]);
    const job = shown.printed[0] as { id: string; payload: unknown; run_at: string };
    assert.equal(job.id, id);
    assert.deepEqual(job.payload, { to: 'user@example.com' });
    assert.match(job.run_at, /^\d{4}-\d\d-\d\dT/);

    const missing = await run(['queue', 'show', 'no-such-job']);
    assert.deepEqual(missing.failures, [{ message: 'job no-such-job not found', code: 1 }]);
  });

  test('retry revives a dead job and refuses a done one', async () => {
    const id = await queue.enqueue('cli-retry', {});
    await tdb.db.kysely.updateTable('queue_jobs').set({ status: 'dead', attempts: 4, last_error: 'gave up' }).where('id', '=', id).execute();
    const retried = await run(['queue', 'retry', id]);
    assert.deepEqual(retried.failures, []);
    const job = retried.printed[0] as { status: string; attempts: number };
    assert.equal(job.status, 'ready');
    assert.equal(job.attempts, 0);

    await tdb.db.kysely.updateTable('queue_jobs').set({ status: 'done' }).where('id', '=', id).execute();
    const refused = await run(['queue', 'retry', id]);
    assert.match(refused.failures[0].message, /is done; only ready or dead jobs can be retried/);
    const missing = await run(['queue', 'retry', 'no-such-job']);
    assert.equal(missing.failures[0].message, 'job no-such-job not found');
  });

  test('delete removes a job once', async () => {
    const id = await queue.enqueue('cli-delete', {});
    const deleted = await run(['queue', 'delete', id]);
    assert.deepEqual(deleted.printed[0], { id, deleted: true });
    assert.equal(await queue.get(id), null);
    const again = await run(['queue', 'delete', id]);
    assert.equal(again.failures[0].message, `job ${id} not found`);
  });

  test('stats counts jobs per queue and status', async () => {
    const out = await run(['queue', 'stats']);
    const stats = out.printed[0] as { queue: string; status: string; count: number }[];
    assert.deepEqual(stats.find((s) => s.queue === 'cli-a'), { queue: 'cli-a', status: 'ready', count: 3 });
    assert.deepEqual(stats.find((s) => s.queue === 'cli-b'), { queue: 'cli-b', status: 'ready', count: 1 });
  });
});
