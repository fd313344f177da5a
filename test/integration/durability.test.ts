/**
 * "Durable before acknowledged" (ARCHITECTURE §1.5, SPEC §3.1 step 6): a writer process appends
 * messages (or enqueues jobs) in 4 concurrent lanes and prints an ACK for each one only after the
 * call resolved — the stand-in for `250` / IMAP `OK` / HTTP `201`. The test SIGKILLs it in the
 * middle of its load, restarts it on the same folder, kills it again, and then proves that every
 * ACK is still there: entry, message row and blob with the acknowledged bytes.
 *
 * What a SIGKILL proves and what it does not: the process dies at an arbitrary instruction, so any
 * ACK sent before the commit, any commit before the blob, and any UID counter kept in memory would
 * show up here. The operating system survives, so this does not test fsync against power loss;
 * that rests on the adapters' fsync/synchronous=FULL and PostgreSQL's defaults.
 *
 * Left behind by a kill, and allowed: orphan blobs (blob written, rows not committed), stored
 * messages without a folder entry (message committed, delivery not), and entries whose ACK was never
 * printed (committed, reply lost: the client retries, SMTP's at-least-once). They are counted in the
 * diagnostics. Never allowed: an acknowledged message that is missing or differs, a row whose blob
 * is missing, a UID handed out twice, or quota usage that disagrees with the entries.
 */
import { test, describe, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freshDatabase, s3TestSettings, shape, tempDir, type TestDatabase } from '../support/shape.js';
import { seedMailbox, seedTenant } from '../support/mail-fixtures.js';
import { tenantScope, type Scope } from '../../src/core/scope.js';
import { createBlobStore, type BlobStore, type BlobStoreConfig } from '../../src/store/blob/index.js';
import { MemoryChangeBus } from '../../src/store/events/memory-bus.js';
import { MailboxStateService } from '../../src/core/mailbox-state/index.js';
import type { Entry } from '../../src/core/mailbox-state/types.js';
import { checkConsistency } from '../../src/core/consistency.js';

const WRITER = fileURLToPath(new URL('../fixtures/durable-writer.ts', import.meta.url));
const ROUNDS = 3;
/** Kill only once the writer is really under load: this many ACKs and this long since the first. */
const MIN_ACKS = 50;
const MIN_LOAD_MS = 500;
/** A writer that cannot reach MIN_ACKS in this time is broken (or the machine is), not slow. */
const ROUND_TIMEOUT_MS = 60_000;
/** Sequence numbers of round r start at r × SEQ_STRIDE, so they never repeat across restarts. */
const SEQ_STRIDE = 1_000_000;
/**
 * "Busy at the kill" means at least one ACK in the last BUSY_INTERVALS mean ACK intervals (and at
 * least the last 500 ms): ≈ 10 ACKs expected, so a busy writer fails this with odds below 1e-4
 * however slow the machine or the S3 server is.
 */
const BUSY_INTERVALS = 10;
const MIN_BUSY_WINDOW_MS = 500;

let tdb: TestDatabase;
let blobs: BlobStore;
let blobConfig: BlobStoreConfig;
let fsRoot: string | null = null;
let cleanup: () => Promise<void>;
let svc: MailboxStateService;

/** A blob store this process and the writer both open from the same config (fs dir or S3 bucket). */
async function sharedStore(): Promise<void> {
  if (shape === 'embedded') {
    const dir = tempDir('mairust-durability-blobs-');
    fsRoot = dir.path;
    blobConfig = { backend: 'fs', fs: { path: dir.path } };
    blobs = createBlobStore(blobConfig);
    cleanup = async () => { await blobs.close(); dir.remove(); };
    return;
  }
  const s3 = { ...s3TestSettings(), bucket: `mairust-t-${randomBytes(5).toString('hex')}`, forcePathStyle: true, checksumMode: 'WHEN_REQUIRED' as const };
  blobConfig = { backend: 's3', s3: { ...s3, createBucket: false } };
  blobs = createBlobStore({ backend: 's3', s3: { ...s3, createBucket: true } });
  for await (const _ of blobs.list()) break; // creates the bucket before any writer starts
  // The bucket is left behind, as test/support/blobs.ts does: a few hundred 3 KiB objects.
  cleanup = async () => { await blobs.close(); };
}

before(async () => {
  tdb = await freshDatabase();
  await sharedStore();
  svc = new MailboxStateService({ db: tdb.db, blobs, bus: new MemoryChangeBus() });
});

after(async () => {
  await cleanup?.();
  await tdb?.drop();
});

interface Round {
  /** ACK lines split into words, without the leading "ACK". */
  acks: string[][];
  /** From the first ACK to the kill. */
  loadMs: number;
  /** ACKs that arrived in the last `busyWindowMs` before the kill: the writer was busy, not idle. */
  acksJustBeforeKill: number;
  busyWindowMs: number;
}

/**
 * Runs the writer until it has acknowledged MIN_ACKS over MIN_LOAD_MS, then SIGKILLs it at a
 * random moment a little later — with 4 lanes always busy there is no quiet moment to hit, and the
 * jitter keeps the kill from lining up with any phase of an append. Resolves once its stdout is
 * drained, so every ACK the writer wrote before dying is counted.
 */
function runAndKill(mode: 'append' | 'enqueue', ids: { tenantId: string; mailboxId: string; folderId: string }, seqStart: number): Promise<Round> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', WRITER, mode, tdb.url, JSON.stringify(blobConfig), ids.tenantId, ids.mailboxId, ids.folderId, String(seqStart)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const acks: string[][] = [];
  const ackTimes: number[] = [];
  let killedAt = 0;
  let firstAckAt = 0;
  const timer = setTimeout(() => child.kill('SIGKILL'), ROUND_TIMEOUT_MS);

  createInterface({ input: child.stdout }).on('line', (line) => {
    if (!line.startsWith('ACK ')) return;
    acks.push(line.split(' ').slice(1));
    const t = performance.now();
    ackTimes.push(t);
    if (acks.length === 1) firstAckAt = t;
    if (killedAt === 0 && acks.length >= MIN_ACKS && t - firstAckAt >= MIN_LOAD_MS) {
      killedAt = -1; // scheduled
      setTimeout(() => {
        killedAt = performance.now();
        child.kill('SIGKILL');
      }, Math.floor(Math.random() * 50));
    }
  });

  return new Promise<Round>((resolve, reject) => {
    // 'close' (not 'exit') fires after stdout has ended: no ACK line is still in the pipe.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL' || killedAt <= 0) {
        return reject(new Error(`writer ended by itself or timed out (code ${code}, signal ${signal}, ${acks.length} ACKs): ${stderr}`));
      }
      const loadMs = killedAt - firstAckAt;
      const busyWindowMs = Math.max(MIN_BUSY_WINDOW_MS, (BUSY_INTERVALS * loadMs) / acks.length);
      const acksJustBeforeKill = ackTimes.filter((t) => t > killedAt - busyWindowMs && t <= killedAt).length;
      resolve({ acks, loadMs, acksJustBeforeKill, busyWindowMs });
    });
  });
}

async function allEntries(scope: Scope, folderId: string): Promise<Entry[]> {
  const out: Entry[] = [];
  for (;;) {
    const page = await svc.listEntries(scope, folderId, { limit: 1000, afterUid: out.at(-1)?.uid ?? 0 });
    out.push(...page);
    if (page.length < 1000) return out;
  }
}

/** `fn` over `items`, at most `limit` at a time (S3 round trips add up when made one by one). */
async function eachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Temp files an fs put was writing when the process died (the fs adapter's `.tmp` dir). */
function leftoverTempFiles(): number {
  if (!fsRoot) return 0;
  try {
    return readdirSync(join(fsRoot, '.tmp')).length;
  } catch {
    return 0;
  }
}

async function messagesWithoutEntries(tenantId: string): Promise<number> {
  const row = await tdb.db.kysely
    .selectFrom('messages')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('tenant_id', '=', tenantId)
    .where((eb) => eb.not(eb.exists(eb.selectFrom('folder_entries').select('folder_entries.id').whereRef('folder_entries.message_id', '=', 'messages.id'))))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

function logRound(t: TestContext, i: number, r: Round): void {
  const rate = (r.acks.length / (r.loadMs / 1000)).toFixed(0);
  t.diagnostic(`round ${i + 1}: SIGKILL after ${r.acks.length} ACKs in ${r.loadMs.toFixed(0)} ms (≈ ${rate}/s), ${r.acksJustBeforeKill} ACKs in its last ${r.busyWindowMs.toFixed(0)} ms`);
}

describe('durable before acknowledged: SIGKILL the writer mid-load', () => {
  test(`append: ${ROUNDS} kills and restarts on one folder lose no acknowledged message`, { timeout: 240_000 }, async (t) => {
    const tenantId = await seedTenant(tdb.db);
    const mailboxId = await seedMailbox(tdb.db, tenantId);
    const scope = tenantScope(tenantId);
    await svc.createDefaultFolders(scope, mailboxId);
    const folder = (await svc.findFolder(scope, mailboxId, 'INBOX'))!;
    const ids = { tenantId, mailboxId, folderId: folder.id };

    /** uid → [messageId, sha256] of every ACK of every round. */
    const acked = new Map<number, { messageId: string; sha256: string }>();
    let maxUidBefore = 0;
    let totalAcks = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const r = await runAndKill('append', ids, round * SEQ_STRIDE);
      logRound(t, round, r);
      // The writer kept acknowledging until it died: the kill hit a busy writer.
      assert.ok(r.acksJustBeforeKill > 0, `round ${round + 1}: the writer was acknowledging right up to the kill`);
      for (const [uid, messageId, hash] of r.acks) {
        const u = Number(uid);
        assert.ok(Number.isInteger(u) && u > 0, `ACK carries a UID: ${uid}`);
        assert.ok(!acked.has(u), `UID ${u} acknowledged twice`);
        // No reuse after a crash: the restarted writer only gets UIDs above everything committed before.
        assert.ok(u > maxUidBefore, `round ${round + 1}: UID ${u} is above ${maxUidBefore}, the highest UID committed before the restart`);
        acked.set(u, { messageId, sha256: hash });
      }
      totalAcks += r.acks.length;
      const uids = await svc.listUids(scope, folder.id);
      for (const u of acked.keys()) assert.ok(uids.includes(u), `acknowledged UID ${u} is in the folder after kill ${round + 1}`);
      maxUidBefore = uids.at(-1) ?? 0;
      t.diagnostic(`round ${round + 1}: ${uids.length} entries in the folder, ${leftoverTempFiles()} temp files left by the kill`);
    }
    assert.equal(acked.size, totalAcks);

    // Every acknowledged message: the entry under its UID, its message row, and the very bytes.
    await eachLimit([...acked], 8, async ([uid, want]) => {
      const entry = await svc.getEntry(scope, folder.id, uid);
      assert.ok(entry, `acknowledged UID ${uid} exists`);
      assert.equal(entry.messageId, want.messageId, `UID ${uid} holds the acknowledged message`);
      const info = await svc.getMessage(scope, want.messageId);
      assert.equal(info.sha256, want.sha256, `message ${want.messageId}: stored sha256 is the acknowledged one`);
      assert.equal(sha256(await blobs.getBuffer(info.blobKey)), want.sha256, `message ${want.messageId}: blob bytes hash to the acknowledged sha256`);
      assert.equal(entry.size, info.size);
    });

    // The folder as a whole: unique UIDs allocated in order (UID order = MODSEQ order), UIDNEXT and
    // UIDVALIDITY survived three crashes.
    const entries = await allEntries(scope, folder.id);
    const uids = entries.map((e) => e.uid);
    assert.equal(new Set(uids).size, uids.length, 'UIDs are unique');
    assert.ok(uids.every((u, i) => i === 0 || u > uids[i - 1]), 'UIDs strictly increasing');
    const modseqs = entries.map((e) => e.modseq);
    assert.ok(modseqs.every((m, i) => i === 0 || m > modseqs[i - 1]), 'MODSEQs increase with UIDs: the counters never went back');
    const after = await svc.getFolder(scope, folder.id);
    assert.ok(after.uidNext > Math.max(...uids), `uid_next ${after.uidNext} > max UID ${Math.max(...uids)}`);
    assert.equal(after.uidValidity, folder.uidValidity, 'UIDVALIDITY unchanged by crashes');
    assert.ok(after.highestModseq >= Math.max(...modseqs));

    // Quota accounting is committed with the entries, so it matches them exactly.
    const liveBytes = entries.reduce((s, e) => s + e.size, 0);
    assert.equal((await svc.getQuota(scope, mailboxId)).usedBytes, liveBytes, 'mailbox used_bytes = sum of live entry sizes');
    assert.equal((await svc.getTenantQuota(scope, tenantId)).usedBytes, liveBytes, 'tenant used_bytes = sum of live entry sizes');

    const report = await checkConsistency({ db: tdb.db, blobs }, { fix: false, minOrphanAgeMs: 0 });
    assert.equal(report.missingBlobCount, 0, `rows with a missing blob: ${JSON.stringify(report.missingBlobs)}`);
    const stranded = await messagesWithoutEntries(tenantId);
    const unacked = entries.length - totalAcks;
    const tempFiles = leftoverTempFiles();
    t.diagnostic(
      `after ${ROUNDS} kills: ${totalAcks} ACKed, ${unacked} committed but not ACKed, ${stranded} stored without an entry, ` +
        `${report.orphanBlobCount} orphan blobs (${report.blobsChecked} blobs checked), ${tempFiles} temp files`,
    );
    // Proof that the kills interrupted writes (4 lanes × ${ROUNDS} kills = 12 appends in flight): some
    // of them must have left their half-done state behind. All of it is allowed; none of it is acknowledged.
    assert.ok(unacked + stranded + report.orphanBlobCount + tempFiles > 0, 'the kills landed in the middle of appends');
  });

  test(`enqueue: ${ROUNDS} kills and restarts lose no acknowledged job`, { timeout: 240_000 }, async (t) => {
    const tenantId = await seedTenant(tdb.db);
    const ids = { tenantId, mailboxId: '-', folderId: '-' };
    const acked = new Map<string, number>();
    for (let round = 0; round < ROUNDS; round++) {
      const r = await runAndKill('enqueue', ids, round * SEQ_STRIDE);
      logRound(t, round, r);
      assert.ok(r.acksJustBeforeKill > 0, `round ${round + 1}: the writer was acknowledging right up to the kill`);
      for (const [id, seq] of r.acks) {
        assert.ok(!acked.has(id), `job id ${id} acknowledged twice`);
        acked.set(id, Number(seq));
      }
    }

    const rows = await tdb.db.kysely.selectFrom('queue_jobs').select(['id', 'queue', 'payload_json', 'status']).where('queue', '=', 'durability').execute();
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const [id, seq] of acked) {
      const row = byId.get(id);
      assert.ok(row, `acknowledged job ${id} (seq ${seq}) is in queue_jobs`);
      assert.deepEqual(JSON.parse(row.payload_json), { seq }, `job ${id} carries its acknowledged payload`);
      assert.equal(row.status, 'ready', 'no worker ran: the job is still waiting');
    }
    const seqs = rows.map((r) => (JSON.parse(r.payload_json) as { seq: number }).seq);
    assert.equal(new Set(seqs).size, seqs.length, 'no job was written twice');
    t.diagnostic(`after ${ROUNDS} kills: ${acked.size} ACKed, ${rows.length - acked.size} committed but not ACKed`);
  });
});
