/**
 * Benchmark (not a test): mailbox-state append throughput — storing a message into a folder, durably
 * (blob fsync'ed or S3 200, then the rows committed; ARCHITECTURE §1.5), through
 * `MailboxStateService.append`, with a peer measured on the same machine in the same run.
 *
 *   node --import tsx bench/append.ts [messages=600] [lanes=4]
 *
 * Systems:
 *  - MaiRust, SQLite + fs blobs: always (a temporary directory);
 *  - MaiRust, PostgreSQL + S3: when MAIRUST_BENCH_PG_URL (any database of the server; the bench
 *    creates and drops its own) and MAIRUST_S3_ENDPOINT (+ MAIRUST_S3_ACCESS_KEY_ID,
 *    MAIRUST_S3_SECRET_ACCESS_KEY, MAIRUST_S3_REGION) are set;
 *  - Dovecot LMTP into Maildir (the peer): when `dovecot` is installed and we are root (the mail
 *    user must not be root, so its Maildir is chowned to `nobody`). A throw-away instance with its
 *    own config under a temporary directory, delivering over its LMTP unix socket (RFC 2033) from
 *    the small client below, one connection per lane. MAIRUST_BENCH_PEER=0 skips it.
 *
 * Each system runs two loads of N unique 4 KiB messages with C lanes, each lane one append after
 * another: every lane into the same folder (UID allocation contends on one folder), and lane i
 * into the INBOX of mailbox i (no shared folder). Prints msg/s over the wall time and the p50/p95
 * latency of one append (or one LMTP transaction), as a Markdown table.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type Database } from '../src/store/db/database.js';
import { migrateUp } from '../src/store/db/migrator.js';
import { createBlobStore, type BlobStore } from '../src/store/blob/index.js';
import { MemoryChangeBus } from '../src/store/events/memory-bus.js';
import { MailboxStateService } from '../src/core/mailbox-state/index.js';
import { tenantScope } from '../src/core/scope.js';
import { seedMailbox, seedTenant } from '../test/support/mail-fixtures.js';

const N = Number(process.argv[2] ?? 600);
const C = Number(process.argv[3] ?? 4);
if (!Number.isInteger(N) || N < 50 || N > 100_000) throw new Error(`messages must be an integer from 50 to 100000 (got ${process.argv[2]})`);
if (!Number.isInteger(C) || C < 1 || C > 64) throw new Error(`lanes must be an integer from 1 to 64 (got ${process.argv[3]})`);
const MESSAGE_BYTES = 4096;
const WARMUP = 20;

// ── Messages ─────────────────────────────────────────────────────────────────────────────────
/** Exactly MESSAGE_BYTES of RFC 5322 text, unique by `seq` (Subject, Message-ID and body). */
function message(seq: number): Buffer {
  const head = [
    'From: Bench Sender <sender@bench.example>',
    'To: Bench Reader <reader@bench.example>',
    `Subject: append benchmark message ${seq}`,
    'Date: Sat, 29 Nov 2025 10:00:00 +0000',
    `Message-ID: <${seq}.${randomBytes(6).toString('hex')}@bench.example>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    '',
  ].join('\r\n');
  const line = `Message ${seq}: the quick brown fox jumps over the lazy dog, 0123456789.`.padEnd(76, ' ') + '\r\n';
  let body = line.repeat(Math.ceil((MESSAGE_BYTES - head.length) / line.length));
  body = body.slice(0, MESSAGE_BYTES - head.length - 2) + '\r\n';
  return Buffer.from(head + body);
}

// ── Measuring ────────────────────────────────────────────────────────────────────────────────
interface Result {
  system: string;
  target: string;
  messagesPerSecond: number;
  p50: number;
  p95: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

/** Runs `op(i, lane)` for i = 0..n-1 in `lanes` lanes, each lane one call after another. */
async function timeLanes(n: number, lanes: number, op: (i: number, lane: number) => Promise<void>): Promise<{ seconds: number; latencies: number[] }> {
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      while (next < n) {
        const i = next++;
        const s = performance.now();
        await op(i, lane);
        latencies.push(performance.now() - s);
      }
    }),
  );
  return { seconds: (performance.now() - t0) / 1000, latencies: latencies.sort((a, b) => a - b) };
}

function result(system: string, target: string, run: { seconds: number; latencies: number[] }): Result {
  const r = { system, target, messagesPerSecond: N / run.seconds, p50: percentile(run.latencies, 0.5), p95: percentile(run.latencies, 0.95) };
  process.stderr.write(`  ${system}, ${target}: ${r.messagesPerSecond.toFixed(0)} msg/s, p50 ${r.p50.toFixed(1)} ms, p95 ${r.p95.toFixed(1)} ms\n`);
  return r;
}

const targets = { one: '1 folder', many: `${C} folders (1 per mailbox)` };

// ── MaiRust ──────────────────────────────────────────────────────────────────────────────────
async function benchMaiRust(system: string, db: Database, blobs: BlobStore, messages: Buffer[][]): Promise<Result[]> {
  await migrateUp(db);
  const svc = new MailboxStateService({ db, blobs, bus: new MemoryChangeBus() });
  const tenantId = await seedTenant(db);
  const scope = tenantScope(tenantId);
  const inbox = async () => {
    const mailboxId = await seedMailbox(db, tenantId);
    await svc.createDefaultFolders(scope, mailboxId);
    return { mailboxId, folderId: (await svc.findFolder(scope, mailboxId, 'INBOX'))!.id };
  };
  // Warm-up (connections, JIT, the blob store's directories or bucket) into a mailbox of its own.
  const warm = await inbox();
  for (let i = 0; i < WARMUP; i++) await svc.append(scope, warm.mailboxId, warm.folderId, message(-1 - i));

  const out: Result[] = [];
  const one = await inbox();
  const runOne = await timeLanes(N, C, async (i) => void (await svc.append(scope, one.mailboxId, one.folderId, messages[0][i])));
  out.push(result(system, targets.one, runOne));
  const many = await Promise.all(Array.from({ length: C }, inbox));
  const runMany = await timeLanes(N, C, async (i, lane) => void (await svc.append(scope, many[lane].mailboxId, many[lane].folderId, messages[1][i])));
  out.push(result(system, targets.many, runMany));

  // Sanity: every append landed, with gap-free UIDs.
  const uids = await svc.listUids(scope, one.folderId);
  if (uids.length !== N || uids[N - 1] !== N) throw new Error(`${system}: expected UIDs 1..${N} in one folder, found ${uids.length}`);
  return out;
}

async function sqliteFs(messages: Buffer[][]): Promise<Result[]> {
  const dir = mkdtempSync(join(tmpdir(), 'mairust-bench-append-'));
  const db = await openDatabase(`sqlite:${join(dir, 'bench.db')}`);
  const blobs = createBlobStore({ backend: 'fs', fs: { path: join(dir, 'blobs') } });
  try {
    return await benchMaiRust('MaiRust SQLite + fs', db, blobs, messages);
  } finally {
    await blobs.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function postgresS3(serverUrl: string, messages: Buffer[][]): Promise<Result[]> {
  const name = `mairust_bench_${randomBytes(5).toString('hex')}`;
  const admin = async (statement: string) => {
    const c = new pg.Client({ connectionString: serverUrl });
    await c.connect();
    try {
      await c.query(statement);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const db = await openDatabase(url.toString(), { poolMax: C + 2 });
  const blobs = createBlobStore({
    backend: 's3',
    s3: {
      endpoint: process.env.MAIRUST_S3_ENDPOINT,
      region: process.env.MAIRUST_S3_REGION ?? 'us-east-1',
      accessKeyId: process.env.MAIRUST_S3_ACCESS_KEY_ID,
      secretAccessKey: process.env.MAIRUST_S3_SECRET_ACCESS_KEY,
      bucket: `mairust-bench-${randomBytes(5).toString('hex')}`,
      forcePathStyle: true,
      checksumMode: 'WHEN_REQUIRED',
      createBucket: true,
    },
  });
  try {
    return await benchMaiRust('MaiRust PostgreSQL + S3', db, blobs, messages);
  } finally {
    // Empty the bucket so repeated runs do not fill the S3 server's disk.
    const keys: string[] = [];
    for await (const s of blobs.list()) keys.push(s.key);
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < keys.length) await blobs.delete(keys[next++]);
    }));
    await blobs.close();
    await db.close();
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

// ── Dovecot over LMTP (the peer) ─────────────────────────────────────────────────────────────
/** A minimal LMTP client (RFC 2033) for one connection: one transaction at a time, one recipient. */
class LmtpClient {
  private buffer = '';
  private waiting: { resolve: (reply: string) => void; reject: (err: Error) => void } | null = null;
  private replies: string[] = [];

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffer += d;
      // A reply ends with a line whose fourth character is a space ("250 ok"); "250-" continues.
      for (let m = /(^|\r\n)(\d{3}) [^\r\n]*\r\n/.exec(this.buffer); m; m = /(^|\r\n)(\d{3}) [^\r\n]*\r\n/.exec(this.buffer)) {
        const end = m.index + m[0].length;
        this.replies.push(this.buffer.slice(0, end));
        this.buffer = this.buffer.slice(end);
      }
      this.flush();
    });
    socket.on('error', (err) => this.waiting?.reject(err));
  }

  static async open(path: string): Promise<LmtpClient> {
    const socket = connect(path);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const c = new LmtpClient(socket);
    await c.expect('220');
    await c.command('LHLO bench.example', '250');
    return c;
  }

  private flush(): void {
    if (this.waiting && this.replies.length > 0) {
      const w = this.waiting;
      this.waiting = null;
      w.resolve(this.replies.shift()!);
    }
  }

  private async expect(code: string): Promise<void> {
    const reply = await new Promise<string>((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.flush();
    });
    if (!reply.startsWith(code)) throw new Error(`LMTP: expected ${code}, got ${reply.trim()}`);
  }

  private async command(line: string, code: string): Promise<void> {
    this.socket.write(`${line}\r\n`);
    await this.expect(code);
  }

  /** One delivery; resolves on the recipient's 250, which Dovecot sends once the mail is saved. */
  async deliver(rcpt: string, raw: Buffer): Promise<void> {
    await this.command('MAIL FROM:<sender@bench.example>', '250');
    await this.command(`RCPT TO:<${rcpt}>`, '250');
    await this.command('DATA', '354');
    // RFC 5321 §4.5.2 dot-stuffing, then the end-of-data line.
    this.socket.write(Buffer.concat([Buffer.from(raw.toString('latin1').replace(/(^|\r\n)\./g, '$1..'), 'latin1'), Buffer.from('.\r\n')]));
    await this.expect('250');
  }

  async close(): Promise<void> {
    this.socket.end('QUIT\r\n');
    await new Promise((r) => this.socket.once('close', r));
  }
}

const NOBODY = 65534;

function dovecotConfig(dir: string): string {
  return [
    `base_dir = ${dir}/run`,
    `state_dir = ${dir}/state`,
    `log_path = ${dir}/dovecot.log`,
    'protocols = lmtp',
    'listen = 127.0.0.1',
    'ssl = no',
    'default_internal_user = dovecot',
    'default_login_user = dovenull',
    'mail_location = maildir:~/Maildir',
    // Dovecot's default, spelled out: fsync where a crash could lose mail (each delivered file).
    'mail_fsync = optimized',
    `passdb {\n  driver = passwd-file\n  args = ${dir}/users\n}`,
    `userdb {\n  driver = passwd-file\n  args = ${dir}/users\n}`,
    `service lmtp {\n  process_min_avail = ${C}\n  unix_listener lmtp {\n    mode = 0600\n  }\n}`,
    '',
  ].join('\n');
}

async function dovecotLmtp(messages: Buffer[][]): Promise<Result[] | string> {
  if (process.env.MAIRUST_BENCH_PEER === '0') return 'skipped (MAIRUST_BENCH_PEER=0)';
  const which = spawnSync('dovecot', ['--version'], { encoding: 'utf8' });
  if (which.status !== 0) return 'skipped: dovecot is not installed (apt-get install dovecot-core dovecot-lmtpd)';
  if (process.getuid?.() !== 0) return 'skipped: the throw-away Dovecot instance needs root (its mail user is nobody)';
  const version = which.stdout.trim().split(' ')[0];
  const dir = mkdtempSync(join(tmpdir(), 'mairust-bench-dovecot-'));
  const conf = join(dir, 'dovecot.conf');
  const user = (i: number) => `u${i}@bench.example`;
  // mkdtemp makes the directory 0700; the mail user (nobody) must be able to reach its Maildir below.
  chmodSync(dir, 0o755);
  for (const d of ['run', 'state', 'mail']) mkdirSync(join(dir, d));
  chownSync(join(dir, 'mail'), NOBODY, NOBODY);
  const users = Array.from({ length: C + 2 }, (_, i) => `${user(i)}::${NOBODY}:${NOBODY}::${dir}/mail/u${i}`);
  writeFileSync(join(dir, 'users'), `${users.join('\n')}\n`);
  writeFileSync(conf, dovecotConfig(dir));
  // The master process daemonizes and keeps inherited descriptors: a pipe would never close and
  // spawnSync would wait forever, so its output goes to a file.
  const errFile = join(dir, 'start.err');
  const errFd = openSync(errFile, 'w');
  const started = spawnSync('dovecot', ['-c', conf], { stdio: ['ignore', errFd, errFd] });
  closeSync(errFd);
  if (started.status !== 0) throw new Error(`dovecot did not start: ${readFileSync(errFile, 'utf8')}`);
  const socketPath = join(dir, 'run', 'lmtp');
  const clients: LmtpClient[] = [];
  try {
    for (let i = 0; i < 50 && !existsSync(socketPath); i++) await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < C; i++) clients.push(await LmtpClient.open(socketPath));
    const system = `Dovecot ${version} LMTP → Maildir`;
    // Warm-up: user C+1 is nobody's target in the timed runs.
    for (let i = 0; i < WARMUP; i++) await clients[0].deliver(user(C + 1), message(-1 - i));
    const out: Result[] = [];
    out.push(result(system, targets.one, await timeLanes(N, C, (i, lane) => clients[lane].deliver(user(0), messages[0][i]))));
    out.push(result(system, targets.many, await timeLanes(N, C, (i, lane) => clients[lane].deliver(user(lane + 1), messages[1][i]))));
    // Sanity, as for MaiRust: all N are in the one folder, with UIDs assigned.
    const status = spawnSync('doveadm', ['-c', conf, 'mailbox', 'status', '-u', user(0), 'messages uidnext', 'INBOX'], { encoding: 'utf8' });
    if (!status.stdout.includes(`messages=${N} uidnext=${N + 1}`)) throw new Error(`Dovecot: unexpected status ${status.stdout}${status.stderr}`);
    return out;
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    spawnSync('doveadm', ['-c', conf, 'stop']);
    rmSync(dir, { recursive: true, force: true });
  }
}

// ── Main ─────────────────────────────────────────────────────────────────────────────────────
async function main(): Promise<void> {
  // Two separate sets, so no message is stored twice in one system.
  const messages = [0, 1].map((set) => Array.from({ length: N }, (_, i) => message(set * N + i)));
  const results: Result[] = [];
  const notes: string[] = [];
  process.stderr.write(`${N} messages of ${MESSAGE_BYTES} bytes, ${C} lanes\n`);
  results.push(...(await sqliteFs(messages)));
  const pgUrl = process.env.MAIRUST_BENCH_PG_URL;
  if (pgUrl && process.env.MAIRUST_S3_ENDPOINT) results.push(...(await postgresS3(pgUrl, messages)));
  else notes.push('MaiRust PostgreSQL + S3: skipped (set MAIRUST_BENCH_PG_URL and MAIRUST_S3_ENDPOINT)');
  const peer = await dovecotLmtp(messages);
  if (typeof peer === 'string') notes.push(`Dovecot LMTP: ${peer}`);
  else results.push(...peer);

  console.log(`${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
  console.log(`${N} messages of ${MESSAGE_BYTES} bytes per load, ${C} lanes`);
  console.log('');
  console.log('| system | target | msg/s | p50 ms | p95 ms |');
  console.log('|---|---|---:|---:|---:|');
  for (const r of results) console.log(`| ${r.system} | ${r.target} | ${r.messagesPerSecond.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} |`);
  for (const n of notes) console.log(`\n${n}`);
}

await main();
