/**
 * UID/MODSEQ allocation and quota accounting under concurrency: two separate processes append to
 * one folder at the same time (PostgreSQL: row locks; SQLite: WAL + busy_timeout + BEGIN
 * IMMEDIATE), plus many concurrent appends inside one process.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { freshDatabase, type TestDatabase } from '../support/shape.js';
import { RecordingBus, sampleMessage, seedMailbox, seedTenant, sharedBlobStore } from '../support/mail-fixtures.js';
import { tenantScope } from '../../src/core/scope.js';
import type { BlobStore } from '../../src/store/blob/blob-store.js';
import { MailboxStateService } from '../../src/core/mailbox-state/index.js';

const WORKER = fileURLToPath(new URL('../fixtures/append-worker.ts', import.meta.url));
const PER_WORKER = 100;
/** Concurrent append lanes per worker: more contention, and less wall time against a slow S3. */
const LANES = 4;

let tdb: TestDatabase;
let blobs: BlobStore;
let blobEnv: Record<string, string>;
let removeBlobs: () => Promise<void>;
let svc: MailboxStateService;

before(async () => {
  tdb = await freshDatabase();
  const shared = await sharedBlobStore();
  blobs = shared.blobs;
  blobEnv = shared.env;
  removeBlobs = shared.remove;
  svc = new MailboxStateService({ db: tdb.db, blobs, bus: new RecordingBus() });
});

after(async () => {
  await removeBlobs?.();
  await tdb?.drop();
});

interface Worker {
  ready: Promise<void>;
  /** UIDs per lane, in the order each lane received them. */
  done: Promise<number[][]>;
  go(): void;
}

function startWorker(folderId: string, count: number): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, tdb.url, folderId, String(count), String(LANES)], {
    env: { ...process.env, ...blobEnv },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const lines: string[] = [];
  let onReady: () => void;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line === 'ready') onReady();
    else lines.push(line);
  });
  const done = new Promise<number[][]>((resolve, reject) => {
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`worker exited with ${code}: ${stderr}`));
      const last = lines[lines.length - 1];
      try {
        resolve((JSON.parse(last) as { lanes: number[][] }).lanes);
      } catch {
        reject(new Error(`worker printed no result: ${lines.join('\n')} ${stderr}`));
      }
    });
  });
  // A worker that dies before "ready" must fail the test, not hang it.
  const readyOrDead = Promise.race([ready, done.then(() => {}, (e) => Promise.reject(e))]);
  return { ready: readyOrDead, done, go: () => child.stdin.end('go\n') };
}

function strictlyIncreasing(xs: number[]): boolean {
  return xs.every((x, i) => i === 0 || x > xs[i - 1]);
}

describe('concurrent appends', () => {
  test(`two processes × ${PER_WORKER} appends (${LANES} lanes each) to one folder → gap-free, distinct, increasing UIDs`, { timeout: 120_000 }, async (t) => {
    const tenantId = await seedTenant(tdb.db);
    const mailboxId = await seedMailbox(tdb.db, tenantId);
    const scope = tenantScope(tenantId);
    await svc.createDefaultFolders(scope, mailboxId);
    const inbox = (await svc.findFolder(scope, mailboxId, 'INBOX'))!;

    const workers = [startWorker(inbox.id, PER_WORKER), startWorker(inbox.id, PER_WORKER)];
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.go();
    const [lanesA, lanesB] = await Promise.all(workers.map((w) => w.done));
    for (const lane of [...lanesA, ...lanesB]) assert.ok(strictlyIncreasing(lane), 'each sequential appender sees its UIDs increase');
    const a = lanesA.flat();
    const b = lanesB.flat();
    assert.equal(a.length, PER_WORKER);
    assert.equal(b.length, PER_WORKER);
    const all = [...a, ...b].sort((x, y) => x - y);
    assert.deepEqual(all, Array.from({ length: 2 * PER_WORKER }, (_, i) => i + 1), 'distinct and gap-free');
    // How often the UID sequence switched between workers: > 1 shows the appends really interleaved.
    const owner = new Map([...a.map((u) => [u, 'a'] as const), ...b.map((u) => [u, 'b'] as const)]);
    const switches = all.filter((u, i) => i > 0 && owner.get(u) !== owner.get(all[i - 1])).length;
    t.diagnostic(`UID ownership switched ${switches} times between the two workers`);

    const status = await svc.folderStatus(scope, inbox.id);
    assert.equal(status.uidNext, 2 * PER_WORKER + 1);
    assert.equal(status.messages, 2 * PER_WORKER);
    const entries = await svc.listEntries(scope, inbox.id, { limit: 2 * PER_WORKER });
    const modseqs = entries.map((e) => e.modseq);
    assert.equal(new Set(modseqs).size, modseqs.length, 'every append got its own MODSEQ');
    assert.ok(strictlyIncreasing(modseqs), 'MODSEQ follows UID order: allocation is serialised per folder');
    assert.equal(status.highestModseq, Math.max(...modseqs));
    assert.equal(status.highestModseq, 1 + 2 * PER_WORKER, 'one MODSEQ per append, no more, no fewer');

    const total = entries.reduce((s, e) => s + e.size, 0);
    assert.equal((await svc.getQuota(scope, mailboxId)).usedBytes, total, 'mailbox usage is exact');
    assert.equal((await svc.getTenantQuota(scope, tenantId)).usedBytes, total, 'tenant usage is exact');
  });

  test('many concurrent appends inside one process', { timeout: 60_000 }, async () => {
    const tenantId = await seedTenant(tdb.db);
    const scope = tenantScope(tenantId);
    const m1 = await seedMailbox(tdb.db, tenantId);
    const m2 = await seedMailbox(tdb.db, tenantId);
    await svc.createDefaultFolders(scope, m1);
    await svc.createDefaultFolders(scope, m2);
    const f1 = (await svc.findFolder(scope, m1, 'INBOX'))!;
    const f2 = (await svc.findFolder(scope, m2, 'INBOX'))!;
    const jobs = Array.from({ length: 30 }, (_, i) =>
      i % 2 === 0
        ? svc.append(scope, m1, f1.id, sampleMessage(`c${i}`))
        : svc.storeMessage(scope, { raw: sampleMessage(`c${i}`) }).then((s) => svc.deliver(scope, s.id, [{ mailboxId: m1 }, { mailboxId: m2 }])),
    );
    await Promise.all(jobs);
    assert.deepEqual(await svc.listUids(scope, f1.id), Array.from({ length: 30 }, (_, i) => i + 1));
    assert.deepEqual(await svc.listUids(scope, f2.id), Array.from({ length: 15 }, (_, i) => i + 1));
    const sum = async (folderId: string) => (await svc.listEntries(scope, folderId)).reduce((s, e) => s + e.size, 0);
    const used1 = await sum(f1.id);
    const used2 = await sum(f2.id);
    assert.equal((await svc.getQuota(scope, m1)).usedBytes, used1);
    assert.equal((await svc.getTenantQuota(scope, tenantId)).usedBytes, used1 + used2);
  });
});
