/**
 * Readiness against real dependencies of the current shape (SQLite + fs, or PostgreSQL + S3):
 * ok with latencies, a named failing check, a hung check cut off by the timeout, and recovery
 * without a restart.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { freshDatabase, shape, tempDir, s3TestSettings, type TestDatabase } from '../support/shape.js';
import { freshBlobStore } from '../support/blobs.js';
import { openDatabase, type Database } from '../../src/store/db/database.js';
import { FsBlobStore, S3BlobStore, type BlobStore } from '../../src/store/blob/index.js';
import { createHealth, summarizeError } from '../../src/observability/health.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createHttpServer } from '../../src/http/server.js';

const quietLogger = () =>
  createLogger({ level: 'warn', format: 'json', destination: new Writable({ write: (_c, _e, done) => done() }) });

/** A blob store of the current shape that cannot work: an fs root that is a file, or S3 on a closed port. */
function brokenBlobStore(dir: string): BlobStore {
  if (shape === 'embedded') {
    const file = join(dir, 'not-a-directory');
    writeFileSync(file, 'x');
    return new FsBlobStore({ root: file });
  }
  const s3 = s3TestSettings();
  return new S3BlobStore({ ...s3, endpoint: 'http://127.0.0.1:1', bucket: 'mairust-unreachable', maxAttempts: 1, connectTimeoutMs: 1000 });
}

describe(`health (${shape})`, () => {
  let tdb: TestDatabase;
  let blobs: { blobs: BlobStore; remove(): Promise<void> };
  let closedDb: Database;
  const dir = tempDir('mairust-health-');
  let app: FastifyInstance | undefined;

  before(async () => {
    tdb = await freshDatabase({ migrate: false });
    blobs = await freshBlobStore();
    // A second handle on the same database, closed: its ping fails like a lost database would.
    // (One query first: Kysely opens its SQLite connection lazily, and only closes what it opened.)
    closedDb = await openDatabase(tdb.url);
    await sql`SELECT 1`.execute(closedDb.kysely);
    await closedDb.close();
  });

  after(async () => {
    await app?.close();
    await blobs?.remove();
    await tdb?.drop();
    dir.remove();
  });

  test('ready: every real dependency ok, with latency numbers', async () => {
    const health = createHealth({ database: () => tdb.db.ping(), blob_store: () => blobs.blobs.ping() });
    const report = await health.ready();
    assert.equal(report.status, 'ok', JSON.stringify(report));
    assert.deepEqual(Object.keys(report.checks).sort(), ['blob_store', 'database']);
    for (const c of Object.values(report.checks)) {
      assert.equal(c.status, 'ok');
      assert.equal(typeof c.latency_ms, 'number');
      assert.ok(c.latency_ms >= 0 && c.latency_ms < 10_000);
      assert.equal(c.error, undefined);
    }
    assert.deepEqual(health.live(), { status: 'ok' });
  });

  test('over HTTP: 200 while ok, 503 naming the failing dependency, 200 again after recovery', async () => {
    let databaseLost = false;
    const health = createHealth({
      database: () => (databaseLost ? closedDb : tdb.db).ping(),
      blob_store: () => blobs.blobs.ping(),
    });
    app = createHttpServer({ logger: quietLogger(), metrics: createMetrics({ defaultMetrics: false }), health });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    assert.ok(addr && typeof addr === 'object');
    const base = `http://127.0.0.1:${addr.port}`;

    let res = await fetch(`${base}/health/ready`);
    let body = (await res.json()) as { status: string; checks: Record<string, { status: string; latency_ms: number; error?: string }> };
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(body.status, 'ok');
    assert.equal(typeof body.checks.database.latency_ms, 'number');
    assert.equal(typeof body.checks.blob_store.latency_ms, 'number');

    databaseLost = true;
    res = await fetch(`${base}/health/ready`);
    body = (await res.json()) as typeof body;
    assert.equal(res.status, 503);
    assert.equal(body.status, 'fail');
    assert.equal(body.checks.database.status, 'fail');
    assert.ok(body.checks.database.error && body.checks.database.error.length > 0, 'the failure says why');
    assert.equal(body.checks.blob_store.status, 'ok', 'only the broken dependency is blamed');

    // /health mirrors readiness; /health/live stays 200 (the process still serves).
    res = await fetch(`${base}/health`);
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as typeof body).checks.database.status, 'fail');
    res = await fetch(`${base}/health/live`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });

    databaseLost = false;
    res = await fetch(`${base}/health/ready`);
    assert.equal(res.status, 200, 'recovers without restarting anything');
    res = await fetch(`${base}/health`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as typeof body).status, 'ok');
  });

  test('a blob store that cannot work fails its check with a reason', async () => {
    const broken = brokenBlobStore(dir.path);
    try {
      const health = createHealth({ database: () => tdb.db.ping(), blob_store: () => broken.ping() }, { timeoutMs: 8000 });
      const report = await health.ready();
      assert.equal(report.status, 'fail');
      assert.equal(report.checks.database.status, 'ok');
      assert.equal(report.checks.blob_store.status, 'fail');
      assert.ok((report.checks.blob_store.error ?? '').length > 0);
    } finally {
      await broken.close();
    }
  });

  test('a hung check fails at the timeout instead of hanging the probe', async () => {
    let started = 0;
    const health = createHealth(
      {
        database: () => tdb.db.ping(),
        queue: () => {
          started++;
          return new Promise(() => {}); // never settles
        },
      },
      { timeoutMs: 300 },
    );
    const t0 = Date.now();
    const report = await health.ready();
    const elapsed = Date.now() - t0;
    assert.equal(report.status, 'fail');
    assert.equal(report.checks.queue.status, 'fail');
    assert.equal(report.checks.queue.error, 'timed out after 300 ms');
    assert.ok(report.checks.queue.latency_ms >= 250, `latency ${report.checks.queue.latency_ms}`);
    assert.equal(report.checks.database.status, 'ok');
    assert.ok(elapsed < 5000, `took ${elapsed} ms`);
    // A second probe joins the still-pending check instead of piling up another one.
    await health.ready();
    assert.equal(started, 1);
  });

  test('the default timeout is 2000 ms', async () => {
    const health = createHealth({ queue: () => new Promise(() => {}) });
    const report = await health.ready();
    assert.equal(report.checks.queue.error, 'timed out after 2000 ms');
  });

  test('while draining, readiness fails and liveness does not', async () => {
    const health = createHealth({ database: () => tdb.db.ping() });
    health.setDraining(true);
    const report = await health.ready();
    assert.equal(report.status, 'fail');
    assert.equal(report.checks.database.status, 'ok');
    assert.equal(report.checks.shutdown.error, 'server is shutting down');
    assert.deepEqual(health.live(), { status: 'ok' });
    health.setDraining(false);
    assert.equal((await health.ready()).status, 'ok');
  });

  test('error summaries carry no credentials, no stacks, and are bounded', () => {
    const e = new Error('connect ECONNREFUSED postgres://mairust:hunter2@10.0.0.5:5432/mail\n    at x (y.js:1:1)');
    const s = summarizeError(e);
    assert.ok(!s.includes('hunter2'), s);
    assert.ok(s.includes('mairust:***@10.0.0.5'), s);
    assert.ok(!s.includes('\n'));
    assert.ok(summarizeError(new Error('x'.repeat(5000))).length <= 300);
    // pg reports a refused connection to several addresses as an AggregateError with no message.
    const agg = new AggregateError([new Error('connect ECONNREFUSED ::1:5432'), new Error('connect ECONNREFUSED 127.0.0.1:5432')], '');
    assert.equal(summarizeError(agg), 'connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432');
  });
});
