/**
 * SMTP benchmark (issue 3; bench/smtp/README.md): accepted-and-stored messages per second with
 * Postfix's `smtp-source`, 20 concurrent sessions, 4 KiB and 100 KiB messages, with a new
 * connection per message and with connection reuse (`-d`), for
 *   - MaiRust embedded (SQLite + files),
 *   - MaiRust cluster shape (PostgreSQL + S3) when MAIRUST_BENCH_PG_URL and MAIRUST_S3_ENDPOINT are set,
 *   - a private Postfix instance delivering into Maildir on the same machine, in the same run.
 * Every load goes to every system back to back, so they share the machine's state of the moment.
 * After every load the script checks that the mailbox holds exactly the messages sent: a run that
 * lost (or doubled) mail is reported as FAILED and the script exits 1.
 *
 *   node --import tsx bench/smtp/run.ts [messages=1000]
 *   MAIRUST_BENCH_CLUSTER_MESSAGES=300   messages per load for PostgreSQL + S3 (slower store)
 *   MAIRUST_BENCH_PEER=0                 skip Postfix
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { startDnsServer } from '../../test/support/dns-server.js';
import { freePort } from '../../test/support/server-process.js';
import { waitForSmtpGreeting } from '../../test/support/smtp-load-client.js';
import { startMairust } from './mairust.js';
import { postfixUnavailable, postfixVersion, startPostfix } from './postfix.js';
import { runSmtpSource, smtpSourceAvailable, type SourceLoad } from './smtp-source.js';
import { waitForCount, type BenchTarget } from './target.js';

const SESSIONS = 20;
const LOADS: Omit<SourceLoad, 'messages'>[] = [
  { sessions: SESSIONS, sizeBytes: 4096, reuse: false },
  { sessions: SESSIONS, sizeBytes: 4096, reuse: true },
  { sessions: SESSIONS, sizeBytes: 102_400, reuse: false },
  { sessions: SESSIONS, sizeBytes: 102_400, reuse: true },
];
/** Untimed messages first, so start-up work (JIT, caches, first files) is not measured. */
const WARMUP_MESSAGES = 100;
/** Postfix delivers after it accepted; this is how long delivery may lag behind. */
const STORE_TIMEOUT_MS = 120_000;
/** After the count is reached, look again this much later: more than sent would be duplicates. */
const SETTLE_MS = 500;
const SENDER = 'bench@sender.test';
const DOMAIN = 'bench.test';
const USER = 'user';

interface Entry {
  target: BenchTarget;
  messages: number;
}

interface Row {
  load: string;
  system: string;
  messages: number;
  acceptedPerSecond: number;
  storedPerSecond: number;
  stored: number;
  failure?: string;
}

function positiveInt(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1 || n > 1_000_000) throw new Error(`${name} must be a whole number between 1 and 1000000, got ${JSON.stringify(value)}`);
  return n;
}

function loadLabel(load: Omit<SourceLoad, 'messages'>): string {
  const size = load.sizeBytes >= 1024 ? `${load.sizeBytes / 1024} KiB` : `${load.sizeBytes} B`;
  return `${size}, ${load.reuse ? 'reused connections (-d)' : 'new connection per message'}`;
}

/** Sends `messages` with smtp-source and checks that exactly that many more are stored. */
async function measure(entry: Entry, load: Omit<SourceLoad, 'messages'>, messages = entry.messages): Promise<Row> {
  const { target } = entry;
  const row: Row = { load: loadLabel(load), system: target.name, messages, acceptedPerSecond: 0, storedPerSecond: 0, stored: 0 };
  const before = await target.storedCount();
  const started = performance.now();
  const run = await runSmtpSource({ ...load, messages }, { host: target.host, port: target.port, from: SENDER, to: target.recipient });
  if (run.code !== 0) {
    row.failure = `smtp-source exited ${run.code}: ${run.output.slice(-500)}`;
    return row;
  }
  const reached = await waitForCount(() => target.storedCount(), before + messages, STORE_TIMEOUT_MS);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  row.stored = (await target.storedCount()) - before;
  row.acceptedPerSecond = messages / (run.ms / 1000);
  row.storedPerSecond = messages / ((reached.at - started) / 1000);
  if (row.stored !== messages) row.failure = `stored ${row.stored} of ${messages}`;
  return row;
}

function table(rows: Row[]): string {
  const out = [
    '| load (20 sessions) | system | messages | accepted msg/s | accepted and stored msg/s | stored / sent |',
    '|---|---|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    const ok = r.failure ? `FAILED: ${r.failure.replace(/\|/g, '/').replace(/\s+/g, ' ')}` : `${r.stored} / ${r.messages}`;
    out.push(`| ${r.load} | ${r.system} | ${r.messages} | ${r.acceptedPerSecond.toFixed(0)} | ${r.storedPerSecond.toFixed(0)} | ${ok} |`);
  }
  return out.join('\n');
}

async function main(): Promise<number> {
  const messages = positiveInt(process.argv[2], 1000, 'messages');
  const clusterMessages = positiveInt(process.env.MAIRUST_BENCH_CLUSTER_MESSAGES, 300, 'MAIRUST_BENCH_CLUSTER_MESSAGES');
  if (!smtpSourceAvailable()) {
    console.error('smtp-source is missing: run scripts/peers/install-smtp-peers.sh (as root)');
    return 2;
  }
  const work = mkdtempSync(join(tmpdir(), 'mairust-bench-smtp-'));
  chmodSync(work, 0o755); // Postfix's unprivileged daemons must reach their queue below it
  const dns = await startDnsServer({ 'sender.test': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] } });
  const entries: Entry[] = [];
  const wallStart = performance.now();
  const loadBefore = loadavg();
  try {
    const skipPeer = process.env.MAIRUST_BENCH_PEER === '0' ? 'MAIRUST_BENCH_PEER=0' : postfixUnavailable();
    if (skipPeer) {
      console.error(`Postfix peer skipped: ${skipPeer}`);
    } else {
      const port = await freePort();
      const postfix = await startPostfix({ dir: join(work, 'postfix'), port, domain: DOMAIN, user: USER });
      entries.push({ target: postfix, messages });
      await waitForSmtpGreeting(port, 30_000);
    }
    entries.push({ target: await startMairust({ dir: mkdtempSync(join(work, 'embedded-')), dnsAddress: dns.address, domain: DOMAIN, user: USER }), messages });
    const pgAdminUrl = process.env.MAIRUST_BENCH_PG_URL;
    const s3Endpoint = process.env.MAIRUST_S3_ENDPOINT;
    if (pgAdminUrl && s3Endpoint) {
      const s3 = {
        endpoint: s3Endpoint,
        region: process.env.MAIRUST_S3_REGION ?? 'us-east-1',
        accessKeyId: process.env.MAIRUST_S3_ACCESS_KEY_ID ?? '',
        secretAccessKey: process.env.MAIRUST_S3_SECRET_ACCESS_KEY ?? '',
      };
      const target = await startMairust({ dir: mkdtempSync(join(work, 'cluster-')), dnsAddress: dns.address, domain: DOMAIN, user: USER, cluster: { pgAdminUrl, s3 } });
      entries.push({ target, messages: clusterMessages });
    } else {
      console.error('PostgreSQL + S3 skipped: set MAIRUST_BENCH_PG_URL and MAIRUST_S3_ENDPOINT (+ MAIRUST_S3_ACCESS_KEY_ID, MAIRUST_S3_SECRET_ACCESS_KEY)');
    }

    for (const e of entries) {
      const warm = await measure(e, { sessions: SESSIONS, sizeBytes: 4096, reuse: true }, WARMUP_MESSAGES);
      if (warm.failure) throw new Error(`warm-up of ${e.target.name} failed: ${warm.failure}`);
    }
    const rows: Row[] = [];
    for (const load of LOADS) {
      for (const e of entries) {
        const row = await measure(e, load);
        rows.push(row);
        console.error(`${row.load} | ${row.system}: ${row.failure ?? `${row.storedPerSecond.toFixed(0)} msg/s stored`}`);
      }
    }
    const cpu = cpus();
    console.log(`# SMTP benchmark ${new Date().toISOString()}`);
    console.log(
      `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, Postfix ${postfixVersion()}; ` +
        `load average before ${loadBefore[0].toFixed(1)}, after ${loadavg()[0].toFixed(1)}; wall time ${((performance.now() - wallStart) / 1000).toFixed(0)} s`,
    );
    console.log('');
    console.log(table(rows));
    return rows.some((r) => r.failure) ? 1 : 0;
  } finally {
    for (const e of entries.reverse()) await e.target.close().catch((err) => console.error(`closing ${e.target.name}: ${(err as Error).message}`));
    await dns.close();
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
