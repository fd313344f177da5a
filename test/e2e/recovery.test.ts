/**
 * SPEC §4 failure behaviour: a backing store that goes away while the server runs is reported by
 * /health/ready (which one, and why), and the server recovers by itself when it comes back.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { shapeEnv, startServerProcess, waitForReady, type ShapeEnv, type ServerProcess } from '../support/server-process.js';
import { shape } from '../support/shape.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

interface Ready {
  status: string;
  checks: Record<string, { status: string; error?: string }>;
}

let server: ServerProcess;

async function readyUntil(port: number, pred: (r: { code: number; body: Ready }) => boolean, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last: { code: number; body: Ready } | unknown;
  while (Date.now() < deadline) {
    // The server must stay up through every outage: an exit is a failure, not something to wait out.
    assert.equal(server.child.exitCode, null, `server exited during the outage:\n${server.output()}`);
    try {
      // A fresh connection each time: a pooled keep-alive socket may be closed under us, which
      // would say nothing about the server's health.
      const res = await fetch(`http://127.0.0.1:${port}/health/ready`, { headers: { connection: 'close' } });
      const got = { code: res.status, body: (await res.json()) as Ready };
      last = got;
      if (pred(got)) return got;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`condition not reached; last: ${JSON.stringify(last)}`);
}

describe(`backing stores going down and coming back (${shape})`, () => {
  let s: ShapeEnv;
  const proxies: TcpProxy[] = [];

  before(async () => {
    s = await shapeEnv();
    const env = { ...s.env };
    if (shape === 'cluster') {
      const dbUrl = new URL(env.MAIRUST_DATABASE_URL);
      const dbProxy = await startTcpProxy(dbUrl.hostname, Number(dbUrl.port || 5432));
      dbUrl.host = `127.0.0.1:${dbProxy.port}`;
      env.MAIRUST_DATABASE_URL = dbUrl.toString();
      const s3Url = new URL(env.MAIRUST_S3_ENDPOINT);
      const s3Proxy = await startTcpProxy(s3Url.hostname, Number(s3Url.port || 80));
      env.MAIRUST_S3_ENDPOINT = `http://127.0.0.1:${s3Proxy.port}`;
      proxies.push(dbProxy, s3Proxy);
    }
    server = startServerProcess(env);
    await waitForReady(s.httpPort);
  });

  after(async () => {
    await server?.stop();
    for (const p of proxies) await p.close();
    await s.cleanup();
  });

  test('blob store down → /health/ready 503 naming blob_store; back → 200 without a restart', async () => {
    let restore: () => Promise<void>;
    if (shape === 'cluster') {
      await proxies[1].down();
      restore = () => proxies[1].up();
    } else {
      const blobs = join(s.dataDir, 'blobs');
      renameSync(blobs, `${blobs}.away`);
      restore = async () => renameSync(`${blobs}.away`, blobs);
    }
    const down = await readyUntil(s.httpPort, (r) => r.code === 503);
    assert.equal(down.body.status, 'fail');
    assert.equal(down.body.checks.blob_store.status, 'fail');
    assert.equal(typeof down.body.checks.blob_store.error, 'string');
    assert.equal(down.body.checks.database.status, 'ok');
    await restore();
    const up = await readyUntil(s.httpPort, (r) => r.code === 200);
    assert.equal(up.body.checks.blob_store.status, 'ok');
  });

  // SQLite is a file opened inside the process: it has no connection that can go away, so this
  // case exists in the cluster shape only.
  if (shape === 'cluster') test('database down → /health/ready 503 naming database; back → 200 without a restart', async () => {
    await proxies[0].down();
    const down = await readyUntil(s.httpPort, (r) => r.code === 503);
    assert.equal(down.body.checks.database.status, 'fail');
    assert.doesNotMatch(JSON.stringify(down.body), /postgres:\/\/[^*]*:[^*]/, 'no credentials in the health output');
    await proxies[0].up();
    const up = await readyUntil(s.httpPort, (r) => r.code === 200);
    assert.equal(up.body.checks.database.status, 'ok');
  });
});
