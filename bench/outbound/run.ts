/**
 * Outbound benchmark (bench/outbound/README.md): messages delivered per second from submission to
 * a remote SMTP server — Postfix's `smtp-sink` on loopback — for
 *   - MaiRust SQLite + files, with the database queue and with `queue.backend: nats`,
 *   - MaiRust PostgreSQL + S3, with both queues, when MAIRUST_BENCH_PG_URL and MAIRUST_S3_ENDPOINT are set,
 *   - a private Postfix relaying to its own smtp-sink (`relayhost = [127.0.0.1]:PORT`), fed by smtp-source.
 * MaiRust gets its messages over submission (STARTTLS + AUTH PLAIN + PIPELINING, submit-client.ts,
 * the way a mail client queues them: SPEC §3.2), each with its own sequence number; a static
 * route `*` → the sink (no DNS) takes them out. The clock runs from the first submitted message
 * until every queue record is `delivered` (MaiRust) / until the sink holds all N (Postfix).
 * Every load is checked: the sink must hold exactly N new messages (and, for MaiRust, each
 * sequence number exactly once), else the row is FAILED and the script exits 1.
 *
 *   node --import tsx bench/outbound/run.ts [messages=1000] [sessions=10]
 *   MAIRUST_BENCH_CLUSTER_MESSAGES=300   messages for PostgreSQL + S3 (slower store)
 *   MAIRUST_BENCH_NATS_URL=nats://…      NATS server for the nats rows (default nats://127.0.0.1:4222)
 *   MAIRUST_BENCH_NATS=0                 skip the nats rows
 *   MAIRUST_BENCH_PEER=0                 skip Postfix
 *   MAIRUST_BENCH_EMBEDDED=0             skip the SQLite + files rows
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { connect as natsConnect } from 'nats';
import { openDatabase, type Database } from '../../src/store/db/database.js';
import { natsNames } from '../../src/queue/nats/names.js';
import { startDnsServer } from '../../test/support/dns-server.js';
import { freePort, repoRoot, runCli } from '../../test/support/server-process.js';
import { waitForSmtpGreeting } from '../../test/support/smtp-load-client.js';
import { startMairust, type S3Settings } from '../smtp/mairust.js';
import { postfixUnavailable, postfixVersion, startPostfix } from '../smtp/postfix.js';
import { runSmtpSource, smtpSourceAvailable } from '../smtp/smtp-source.js';
import { waitForCount } from '../smtp/target.js';
import { sinkUnavailable, startSink, type Sink } from './sink.js';
import { submitAll, type SubmitMessage } from './submit-client.js';

const SIZE_BYTES = 4096;
const WARMUP_MESSAGES = 50;
/** How long delivery may lag behind submission before the load counts as stuck. */
const DELIVER_TIMEOUT_MS = 300_000;
/** After the count is reached, look again this much later: more than sent would be duplicates. */
const SETTLE_MS = 500;
const POLL_MS = 100;
const DOMAIN = 'bench.test';
const SENDER = `sender@${DOMAIN}`;
const SENDER_PASSWORD = 'bench-sender-password-1';
const RECIPIENT = 'rcpt@remote.test';

interface Row {
  system: string;
  messages: number;
  /** Messages per second acknowledged to the submitting client (queued). */
  submittedPerSecond: number;
  /** Messages per second from the first submission until all were delivered. */
  deliveredPerSecond: number;
  /** Seconds from the last acknowledged submission until the last delivery. */
  drainSeconds: number;
  received: number;
  failure?: string;
}

function positiveInt(value: string | undefined, fallback: number, name: string, max = 1_000_000): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new Error(`${name} must be a whole number between 1 and ${max}, got ${JSON.stringify(value)}`);
  return n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function commit(): string {
  // Read-only: which commit the measured code is at (the working tree may carry uncommitted work).
  const r = spawnSync('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

/** A 4 KiB message with its run tag and sequence number in the header (read back from the sink). */
function message(run: string, seq: number): SubmitMessage {
  const header = [
    `From: Bench Sender <${SENDER}>`,
    `To: <${RECIPIENT}>`,
    `Subject: outbound bench ${run} ${seq}`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <${run}.${seq}@${DOMAIN}>`,
    `MIME-Version: 1.0`,
    `Content-Type: text/plain; charset=us-ascii`,
    `X-Bench-Run: ${run}`,
    `X-Bench-Seq: ${seq}`,
  ].join('\r\n');
  const line = `Line of the outbound benchmark message ${seq}, seventy-odd characters long.\r\n`;
  const body = line.repeat(Math.ceil((SIZE_BYTES - header.length) / line.length));
  return { mailFrom: SENDER, recipients: [RECIPIENT], data: Buffer.from(`${header}\r\n\r\n${body}`) };
}

/** Outbound queue records by status (SPEC §3.3), counted in the server's database. */
async function recordCounts(db: Database): Promise<{ delivered: number; failed: number }> {
  const rows = await db.kysely.selectFrom('outbound_messages').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('status').execute();
  let delivered = 0;
  let failed = 0;
  for (const r of rows) {
    if (r.status === 'delivered') delivered += Number(r.n);
    else if (r.status === 'bounced' || r.status === 'partial') failed += Number(r.n);
  }
  return { delivered, failed };
}

interface MairustShape {
  name: string;
  messages: number;
  cluster?: { pgAdminUrl: string; s3: S3Settings };
  nats?: string;
}

/** One MaiRust shape: its own sink, server, sender account; warm-up, then the timed load. */
async function measureMairust(work: string, dnsAddress: string, shape: MairustShape, sessions: number): Promise<Row> {
  const row: Row = { system: shape.name, messages: shape.messages, submittedPerSecond: 0, deliveredPerSecond: 0, drainSeconds: 0, received: 0 };
  const dir = mkdtempSync(join(work, 'mairust-'));
  const sink = await startSink(join(work, `sink-${row.system.replace(/[^a-z0-9]+/gi, '-')}`), await freePort());
  let env: Record<string, string> = {};
  const configLines = [
    'outbound:',
    // A smarthost route: every destination goes to the sink, no MX lookup (SPEC §3.3 static routes).
    `  routes: [{ domain: "*", host: "127.0.0.1", port: ${sink.port}, tls: none }]`,
    // One account sends everything, the same text every time: without this the sending limits
    // (200/hour per user) and the spam policy (bursts, repeated content) would stop it, as they should.
    '  rate_limits: { user_per_hour: 0, user_per_day: 0, domain_per_hour: 0, tenant_per_hour: 0 }',
    '  policy: { enabled: false }',
    ...(shape.nats ? ['queue:', '  backend: nats', 'nats:', `  servers: ["${shape.nats}"]`] : []),
  ];
  const target = await startMairust({
    dir,
    dnsAddress,
    domain: DOMAIN,
    user: 'user',
    name: shape.name,
    cluster: shape.cluster,
    configLines,
    async setup(ctx) {
      env = ctx.env;
      for (const [args, input] of [
        [['user', 'add', SENDER, '--tenant', 'bench', '--password-stdin'], SENDER_PASSWORD],
        [['mailbox', 'add', SENDER, '--user', SENDER], undefined],
      ] as [string[], string | undefined][]) {
        const r = await runCli(args, ctx.env, input);
        if (r.code !== 0) throw new Error(`mairust ${args.join(' ')}: ${r.stderr}`);
      }
    },
  }).catch(async (err: Error) => {
    await sink.close();
    // The work directory is removed at the end: keep the reason in the message.
    const log = existsSync(join(dir, 'server.log')) ? readFileSync(join(dir, 'server.log'), 'utf8').slice(-1500) : '';
    throw new Error(`${err.message}\n${log}`);
  });
  const db = await openDatabase(env.MAIRUST_DATABASE_URL ?? `sqlite:${join(dir, 'mairust.db')}`);
  const submissionPort = Number(env.MAIRUST__LISTENERS__SUBMISSION__PORT);
  try {
    await waitForSmtpGreeting(submissionPort, 30_000);
    const load = async (run: string, n: number): Promise<Row> => {
      const r: Row = { ...row, messages: n };
      const before = await recordCounts(db);
      const sinkBefore = sink.count();
      let seq = 0;
      const started = performance.now();
      const sub = await submitAll({
        host: '127.0.0.1',
        port: submissionPort,
        user: SENDER,
        password: SENDER_PASSWORD,
        sessions,
        next: () => (seq < n ? message(run, seq++) : null),
      });
      const submittedAt = performance.now();
      const failures: string[] = [];
      if (sub.errors.length) failures.push(sub.errors.slice(0, 3).join('; '));
      r.submittedPerSecond = sub.accepted / (sub.ms / 1000);
      // Until every record of this load is `delivered` (or one bounced, or the timeout).
      const deadline = performance.now() + DELIVER_TIMEOUT_MS;
      let counts = before;
      let deliveredAt = performance.now();
      while (performance.now() < deadline) {
        counts = await recordCounts(db);
        deliveredAt = performance.now();
        if (counts.delivered - before.delivered >= sub.accepted || counts.failed > before.failed) break;
        await sleep(POLL_MS);
      }
      const delivered = counts.delivered - before.delivered;
      if (sub.accepted !== n) failures.push(`submitted ${sub.accepted} of ${n}`);
      if (delivered !== n) failures.push(`${delivered} of ${n} records delivered`);
      if (counts.failed > before.failed) failures.push(`${counts.failed - before.failed} records bounced`);
      r.deliveredPerSecond = n / ((deliveredAt - started) / 1000);
      r.drainSeconds = (deliveredAt - submittedAt) / 1000;
      // `delivered` is written after the sink's 250, which it sends after writing the file.
      await waitForCount(async () => sink.count(), sinkBefore + n, 10_000);
      await sleep(SETTLE_MS);
      r.received = sink.count() - sinkBefore;
      if (r.received !== n) failures.push(`the sink received ${r.received} of ${n}`);
      const seqs = sink.sequences(run);
      const distinct = new Set(seqs);
      const missing = n - [...distinct].filter((s) => s >= 0 && s < n).length;
      if (seqs.length !== n || missing !== 0) failures.push(`sink holds ${seqs.length} copies of this run, ${missing} sequence numbers missing, ${seqs.length - distinct.size} duplicates`);
      if (failures.length) r.failure = failures.join('; ');
      return r;
    };
    const warm = await load(`warm${Date.now().toString(36)}`, WARMUP_MESSAGES);
    console.error(`warm-up ${row.system}: ${warm.failure ? `FAILED: ${warm.failure}` : `${warm.deliveredPerSecond.toFixed(0)} msg/s`}`);
    return await load(`run${Date.now().toString(36)}`, shape.messages);
  } finally {
    await db.close();
    await target.close().catch((err) => console.error(`closing ${row.system}: ${(err as Error).message}`));
    await sink.close();
  }
}

/** The peer: smtp-source → private Postfix → relayhost smtp-sink; the clock stops when the sink has all N. */
async function measurePostfix(work: string, messages: number, sessions: number): Promise<Row> {
  const row: Row = { system: 'Postfix → smtp-sink (relayhost)', messages, submittedPerSecond: 0, deliveredPerSecond: 0, drainSeconds: 0, received: 0 };
  const sink = await startSink(join(work, 'sink-postfix'), await freePort());
  const port = await freePort();
  const postfix = await startPostfix({
    dir: join(work, 'postfix'),
    port,
    domain: DOMAIN,
    user: 'user',
    name: row.system,
    // Later settings win in main.cf: mail for other domains now leaves through smtp(8) to the sink.
    mainCf: [`relayhost = [127.0.0.1]:${sink.port}`, 'default_transport = smtp', 'relay_transport = smtp'],
  });
  try {
    await waitForSmtpGreeting(port, 30_000);
    const load = async (n: number): Promise<Row> => {
      const r: Row = { ...row, messages: n };
      const sinkBefore = sink.count();
      const started = performance.now();
      const run = await runSmtpSource({ messages: n, sessions, sizeBytes: SIZE_BYTES, reuse: true }, { host: '127.0.0.1', port, from: SENDER, to: RECIPIENT });
      const failures: string[] = [];
      if (run.code !== 0) failures.push(`smtp-source exited ${run.code}: ${run.output.slice(-300)}`);
      r.submittedPerSecond = n / (run.ms / 1000);
      const reached = await waitForCount(async () => sink.count(), sinkBefore + n, DELIVER_TIMEOUT_MS, POLL_MS);
      r.deliveredPerSecond = n / ((reached.at - started) / 1000);
      r.drainSeconds = (reached.at - started - run.ms) / 1000;
      await sleep(SETTLE_MS);
      r.received = sink.count() - sinkBefore;
      if (r.received !== n) failures.push(`the sink received ${r.received} of ${n}`);
      if (failures.length) r.failure = failures.join('; ');
      return r;
    };
    const warm = await load(WARMUP_MESSAGES);
    console.error(`warm-up ${row.system}: ${warm.failure ? `FAILED: ${warm.failure}` : `${warm.deliveredPerSecond.toFixed(0)} msg/s`}`);
    return await load(messages);
  } finally {
    await postfix.close();
    await sink.close();
  }
}

function table(rows: Row[]): string {
  const out = [
    '| system | messages | submitted msg/s | delivered msg/s (first submission → last delivery) | s from last submission to last delivery | sink received / sent |',
    '|---|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    const ok = r.failure ? `FAILED: ${r.failure.replace(/\|/g, '/').replace(/\s+/g, ' ').slice(0, 300)}` : `${r.received} / ${r.messages}`;
    out.push(`| ${r.system} | ${r.messages} | ${r.submittedPerSecond.toFixed(0)} | ${r.deliveredPerSecond.toFixed(0)} | ${r.drainSeconds.toFixed(1)} | ${ok} |`);
  }
  return out.join('\n');
}

function reachable(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port || 4222) });
    s.setTimeout(2000, () => (s.destroy(), resolve(false)));
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** Whether the default JetStream names (MaiRust has no namespace setting) already exist. */
async function natsDefaultsExist(url: string): Promise<boolean> {
  const nc = await natsConnect({ servers: [url] });
  try {
    const jsm = await nc.jetstreamManager();
    const { stream } = natsNames();
    return await jsm.streams.info(stream).then(() => true, () => false);
  } finally {
    await nc.close();
  }
}

/** Removes the default stream and KV bucket the nats rows created (only when they did not exist before). */
async function dropNatsDefaults(url: string): Promise<void> {
  const nc = await natsConnect({ servers: [url] });
  try {
    const jsm = await nc.jetstreamManager();
    const { stream, bucket } = natsNames();
    for (const name of [stream, `KV_${bucket}`]) await jsm.streams.delete(name).catch(() => false);
  } finally {
    await nc.close();
  }
}

async function main(): Promise<number> {
  const messages = positiveInt(process.argv[2], 1000, 'messages');
  const sessions = positiveInt(process.argv[3], 10, 'sessions', 200);
  const clusterMessages = positiveInt(process.env.MAIRUST_BENCH_CLUSTER_MESSAGES, 300, 'MAIRUST_BENCH_CLUSTER_MESSAGES');
  const why = sinkUnavailable() ?? (smtpSourceAvailable() ? null : 'smtp-source is missing (run scripts/peers/install-smtp-peers.sh)');
  if (why) {
    console.error(why);
    return 2;
  }
  const natsUrl = process.env.MAIRUST_BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';
  let useNats = process.env.MAIRUST_BENCH_NATS !== '0';
  if (useNats && !(await reachable(natsUrl))) {
    console.error(`nats rows skipped: ${natsUrl} does not answer`);
    useNats = false;
  }
  const natsExisted = useNats ? await natsDefaultsExist(natsUrl) : true;

  const work = mkdtempSync(join(tmpdir(), 'mairust-bench-outbound-'));
  chmodSync(work, 0o755); // Postfix's and smtp-sink's unprivileged processes must reach below it
  const dns = await startDnsServer({});
  const wallStart = performance.now();
  const loadBefore = loadavg();
  const rows: Row[] = [];
  const report = (r: Row) => {
    rows.push(r);
    console.error(`${r.system}: ${r.failure ? `FAILED: ${r.failure}` : `${r.deliveredPerSecond.toFixed(0)} msg/s delivered`}`);
  };
  try {
    const skipPeer = process.env.MAIRUST_BENCH_PEER === '0' ? 'MAIRUST_BENCH_PEER=0' : postfixUnavailable();
    if (skipPeer) console.error(`Postfix peer skipped: ${skipPeer}`);
    else report(await measurePostfix(work, messages, sessions));

    const shapes: MairustShape[] = [];
    if (process.env.MAIRUST_BENCH_EMBEDDED !== '0') {
      shapes.push({ name: 'MaiRust SQLite + files, database queue', messages });
      if (useNats) shapes.push({ name: 'MaiRust SQLite + files, NATS queue', messages, nats: natsUrl });
    }
    const pgAdminUrl = process.env.MAIRUST_BENCH_PG_URL;
    const s3Endpoint = process.env.MAIRUST_S3_ENDPOINT;
    if (pgAdminUrl && s3Endpoint) {
      const s3: S3Settings = {
        endpoint: s3Endpoint,
        region: process.env.MAIRUST_S3_REGION ?? 'us-east-1',
        accessKeyId: process.env.MAIRUST_S3_ACCESS_KEY_ID ?? '',
        secretAccessKey: process.env.MAIRUST_S3_SECRET_ACCESS_KEY ?? '',
      };
      shapes.push({ name: 'MaiRust PostgreSQL + S3, database queue', messages: clusterMessages, cluster: { pgAdminUrl, s3 } });
      if (useNats) shapes.push({ name: 'MaiRust PostgreSQL + S3, NATS queue', messages: clusterMessages, cluster: { pgAdminUrl, s3 }, nats: natsUrl });
    } else {
      console.error('PostgreSQL + S3 skipped: set MAIRUST_BENCH_PG_URL and MAIRUST_S3_ENDPOINT (+ MAIRUST_S3_ACCESS_KEY_ID, MAIRUST_S3_SECRET_ACCESS_KEY)');
    }
    for (const shape of shapes) {
      // A shape that cannot start is a FAILED row, not the end of the other rows.
      report(
        await measureMairust(work, dns.address, shape, sessions).catch((err: Error): Row => ({
          system: shape.name, messages: shape.messages, submittedPerSecond: 0, deliveredPerSecond: 0, drainSeconds: 0, received: 0, failure: err.message,
        })),
      );
    }

    const cpu = cpus();
    console.log(`# Outbound benchmark ${new Date().toISOString()}, commit ${commit()}`);
    console.log(
      `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, Postfix ${skipPeer ? '(skipped)' : postfixVersion()}; ` +
        `load average before ${loadBefore[0].toFixed(1)}, after ${loadavg()[0].toFixed(1)}; wall time ${((performance.now() - wallStart) / 1000).toFixed(0)} s; ` +
        `${SIZE_BYTES} B messages over ${sessions} sessions (MaiRust: submission with STARTTLS + AUTH PLAIN + PIPELINING; Postfix: smtp-source -d)`,
    );
    console.log('');
    console.log(table(rows));
    return rows.some((r) => r.failure) ? 1 : 0;
  } finally {
    await dns.close();
    if (useNats && !natsExisted) await dropNatsDefaults(natsUrl).catch((err) => console.error(`could not remove the NATS stream: ${(err as Error).message}`));
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
