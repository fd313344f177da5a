/**
 * Hook benchmark (bench/hooks/README.md): what one synchronous `pre_receive` hook (SPEC §6) costs
 * MaiRust in accepted-and-stored messages per second, next to what a policy service costs Postfix
 * (SMTP access policy delegation, `check_policy_service` in smtpd_recipient_restrictions).
 * Postfix's `smtp-source`, 20 concurrent sessions, 4 KiB messages, reused connections (`-d`), for
 *   - MaiRust SQLite + files without hooks,
 *   - the same with one pre_receive hook → an HTTP plugin on 127.0.0.1 (own process, verifies the
 *     signature, answers allow),
 *   - the same with one pre_receive hook → a script plugin (a node script MaiRust starts per call),
 *   - Postfix → Maildir without a policy service,
 *   - Postfix → Maildir with `check_policy_service inet:127.0.0.1:PORT` (own process, action=DUNNO).
 * Every load checks that exactly the number sent was stored and that the plugin / policy server
 * answered exactly that many requests (and, for MaiRust, that its metrics count that many hook
 * calls and no error or timeout): a load whose hook was skipped is printed as FAILED, exit 1.
 *
 *   node --import tsx bench/hooks/run.ts [messages=1000] [rounds=2] [serial-messages=200]
 * After the 20-session load, each round also sends `serial-messages` over one session (0 = skip):
 * nothing queues then, so "added ms per message" there is the hook's latency as a client sees it.
 *   MAIRUST_BENCH_PEER=0                   skip Postfix
 *   MAIRUST_BENCH_SCRIPT_TIMEOUT_MS=3000   the script hook's timeout_ms (default: none set, so SPEC §6's
 *                                          2 s; 3 s is the pre_receive maximum)
 * The rounds run every system back to back (the second round in reverse order), so a system and
 * its baseline share the machine's state of the moment.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { startDnsServer } from '../../test/support/dns-server.js';
import { freePort, repoRoot } from '../../test/support/server-process.js';
import { waitForSmtpGreeting } from '../../test/support/smtp-load-client.js';
import { startMairust, type MairustTarget } from '../smtp/mairust.js';
import { postfixUnavailable, postfixVersion, startPostfix } from '../smtp/postfix.js';
import { runSmtpSource, smtpSourceAvailable, type SourceLoad } from '../smtp/smtp-source.js';
import { waitForCount, type BenchTarget } from '../smtp/target.js';
import { startHelper, type HelperProcess } from './helper-process.js';
import { hookMetrics, metricsDelta, type HookMetrics } from './metrics.js';
import { httpPlugin, scriptPlugin, type PluginBench, type PluginCounter } from './plugins.js';

/** The measured load: 20 concurrent sessions (throughput), 4 KiB, reused connections. */
const LOAD: Omit<SourceLoad, 'messages'> = { sessions: 20, sizeBytes: 4096, reuse: true };
/** The same one session at a time: nothing queues, so the added time is the hook's latency. */
const SERIAL_LOAD: Omit<SourceLoad, 'messages'> = { ...LOAD, sessions: 1 };
const WARMUP_MESSAGES = 100;
const STORE_TIMEOUT_MS = 120_000;
const SETTLE_MS = 500;
const SENDER = 'bench@sender.test';
const DOMAIN = 'bench.test';
const USER = 'user';

/** One system under measurement; `baseline` names the system it is compared with. */
interface Entry {
  key: string;
  target: BenchTarget;
  baseline?: string;
  /** Requests the plugin / policy server answered so far (`refused`: failed verification). */
  seen?: () => Promise<{ answered: number; refused: number }>;
  /** MaiRust's metrics of the hook's plugin. */
  metrics?: () => Promise<HookMetrics>;
  /** `mairust hook reset-breaker` for the hook (after a failed load). */
  resetBreaker?: () => Promise<void>;
  close?: () => Promise<void>;
}

interface Row {
  round: number;
  sessions: number;
  key: string;
  system: string;
  messages: number;
  acceptedPerSecond: number;
  storedPerSecond: number;
  stored: number;
  /** Requests the plugin / policy server answered during the load. */
  seen?: number;
  /** Mean wall time of one hook call as MaiRust measured it (ms). */
  hookMeanMs?: number;
  failure?: string;
}

function positiveInt(value: string | undefined, fallback: number, name: string, max = 1_000_000): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new Error(`${name} must be a whole number between 1 and ${max}, got ${JSON.stringify(value)}`);
  return n;
}

async function measure(entry: Entry, round: number, load: Omit<SourceLoad, 'messages'>, messages: number): Promise<Row> {
  const { target } = entry;
  const row: Row = { round, sessions: load.sessions, key: entry.key, system: target.name, messages, acceptedPerSecond: 0, storedPerSecond: 0, stored: 0 };
  const before = await target.storedCount();
  const seenBefore = await entry.seen?.();
  const metricsBefore = await entry.metrics?.();
  const started = performance.now();
  const run = await runSmtpSource({ ...load, messages }, { host: target.host, port: target.port, from: SENDER, to: target.recipient });
  const failures: string[] = [];
  if (run.code === 0) {
    const reached = await waitForCount(() => target.storedCount(), before + messages, STORE_TIMEOUT_MS);
    row.acceptedPerSecond = messages / (run.ms / 1000);
    row.storedPerSecond = messages / ((reached.at - started) / 1000);
  } else {
    // smtp-source stops at the first reply that is not 2xx; the counts below still say how far it got.
    failures.push(`smtp-source exited ${run.code} after ${(run.ms / 1000).toFixed(1)} s: ${run.output.slice(-200)}`);
  }
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  row.stored = (await target.storedCount()) - before;
  if (row.stored !== messages) failures.push(`stored ${row.stored} of ${messages}`);
  if (entry.seen && seenBefore) {
    const now = await entry.seen();
    row.seen = now.answered - seenBefore.answered;
    if (row.seen !== messages) failures.push(`the plugin/policy server answered ${row.seen} requests for ${messages} messages`);
    if (now.refused !== seenBefore.refused) failures.push(`${now.refused - seenBefore.refused} requests failed verification`);
  }
  if (entry.metrics && metricsBefore) {
    const d = metricsDelta(await entry.metrics(), metricsBefore);
    if (d.calls !== messages) failures.push(`MaiRust counted ${d.calls} hook calls`);
    if (d.errors !== 0 || d.timeouts !== 0) failures.push(`${d.errors} hook errors, ${d.timeouts} timeouts`);
    if (d.durationCount > 0) row.hookMeanMs = (d.durationSum / d.durationCount) * 1000;
  }
  if (failures.length) {
    row.failure = failures.join('; ');
    // Failures or timeouts may have opened the hook's circuit breaker (strict profile: 3 in a row);
    // close it so the next load measures the hook again instead of skipping it for 60 s.
    await entry.resetBreaker?.();
  }
  return row;
}

/** Milliseconds of the system's time per message at this concurrency (the inverse of its rate). */
const msPerMessage = (perSecond: number) => 1000 / perSecond;

function fmt(n: number | undefined, digits = 0): string {
  return n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(digits);
}

function roundTable(rows: Row[]): string {
  const out = [
    '| round | sessions | system | messages | accepted msg/s | accepted and stored msg/s | ms per message | added ms per message | hook call mean ms (MaiRust) | stored / sent | hook requests seen |',
    '|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|',
  ];
  for (const r of rows) {
    const base = rows.find((b) => b.round === r.round && b.sessions === r.sessions && b.key === BASELINE[r.key]);
    const added = base && !r.failure && !base.failure ? msPerMessage(r.storedPerSecond) - msPerMessage(base.storedPerSecond) : undefined;
    const ok = r.failure ? `FAILED: ${r.failure.replace(/\|/g, '/').replace(/\s+/g, ' ')}` : `${r.stored} / ${r.messages}`;
    out.push(
      `| ${r.round} | ${r.sessions} | ${r.system} | ${r.messages} | ${fmt(r.acceptedPerSecond)} | ${fmt(r.storedPerSecond)} | ${fmt(msPerMessage(r.storedPerSecond), 2)} | ${base ? fmt(added, 2) : '—'} | ${fmt(r.hookMeanMs, 1)} | ${ok} | ${r.seen ?? '—'} |`,
    );
  }
  return out.join('\n');
}

/** Mean over the rounds, per system: rate, ms per message, added ms against the baseline, and the slowdown. */
function summaryTable(rows: Row[], order: string[], sessions: number): string {
  rows = rows.filter((r) => r.sessions === sessions);
  const out = ['| system | rounds | accepted and stored msg/s (mean) | ms per message | added ms per message | throughput vs. baseline | hook call mean ms (MaiRust) |', '|---|---:|---:|---:|---:|---:|---:|'];
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (const key of order) {
    const mine = rows.filter((r) => r.key === key && !r.failure);
    if (mine.length === 0) continue;
    const rate = mean(mine.map((r) => r.storedPerSecond));
    const baseKey = BASELINE[key];
    const base = baseKey ? rows.filter((r) => r.key === baseKey && !r.failure) : [];
    const baseRate = base.length ? mean(base.map((r) => r.storedPerSecond)) : undefined;
    const added = baseRate ? msPerMessage(rate) - msPerMessage(baseRate) : undefined;
    const ratio = baseRate ? `${((rate / baseRate) * 100).toFixed(0)} %` : '—';
    const hook = mine.filter((r) => r.hookMeanMs !== undefined).map((r) => r.hookMeanMs!);
    out.push(`| ${mine[0]!.system} | ${mine.length} | ${fmt(rate)} | ${fmt(msPerMessage(rate), 2)} | ${baseKey ? fmt(added, 2) : '—'} | ${ratio} | ${hook.length ? fmt(mean(hook), 1) : '—'} |`);
  }
  return out.join('\n');
}

const BASELINE: Record<string, string> = { 'mairust-http': 'mairust', 'mairust-script': 'mairust', 'postfix-policy': 'postfix' };

function commit(): string {
  // Read-only: which commit the measured code is at (the working tree may carry uncommitted work).
  const r = spawnSync('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

async function main(): Promise<number> {
  const messages = positiveInt(process.argv[2], 1000, 'messages');
  const rounds = positiveInt(process.argv[3], 2, 'rounds', 20);
  const serialMessages = process.argv[4] === '0' ? 0 : positiveInt(process.argv[4], 200, 'serial-messages');
  const loads: { load: Omit<SourceLoad, 'messages'>; messages: number }[] = [{ load: LOAD, messages }];
  if (serialMessages > 0) loads.push({ load: SERIAL_LOAD, messages: serialMessages });
  if (!smtpSourceAvailable()) {
    console.error('smtp-source is missing: run scripts/peers/install-smtp-peers.sh (as root)');
    return 2;
  }
  const work = mkdtempSync(join(tmpdir(), 'mairust-bench-hooks-'));
  chmodSync(work, 0o755); // Postfix's unprivileged daemons must reach their queue below it
  const dns = await startDnsServer({ 'sender.test': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] } });
  const entries: Entry[] = [];
  const helpers: HelperProcess<unknown>[] = [];
  const wallStart = performance.now();
  const loadBefore = loadavg();
  try {
    const skipPeer = process.env.MAIRUST_BENCH_PEER === '0' ? 'MAIRUST_BENCH_PEER=0' : postfixUnavailable();
    if (skipPeer) {
      console.error(`Postfix peer skipped: ${skipPeer}`);
    } else {
      const port = await freePort();
      console.error(`Postfix on port ${port}`);
      entries.push({ key: 'postfix', target: await startPostfix({ dir: join(work, 'postfix'), port, domain: DOMAIN, user: USER }) });
      await waitForSmtpGreeting(port, 30_000);

      const policyPort = await freePort();
      const policy = await startHelper<{ requests: number; connections: number }>('./policy-server.ts', { BENCH_POLICY_PORT: String(policyPort) });
      helpers.push(policy);
      const pport = await freePort();
      const withPolicy = await startPostfix({
        dir: join(work, 'postfix-policy'),
        port: pport,
        domain: DOMAIN,
        user: USER,
        name: 'Postfix → Maildir + policy service',
        // SMTPD_POLICY_README: the policy server is asked at RCPT TO, once per recipient (one per
        // message here). DUNNO falls through to the end of the list, which permits.
        mainCf: [`smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:${policyPort}`],
      });
      entries.push({
        key: 'postfix-policy',
        target: withPolicy,
        seen: async () => ({ answered: (await policy.count()).requests, refused: 0 }),
      });
      await waitForSmtpGreeting(pport, 30_000);
    }

    const plain = await startMairust({ dir: mkdtempSync(join(work, 'plain-')), dnsAddress: dns.address, domain: DOMAIN, user: USER, name: 'MaiRust SQLite + files, no hooks' });
    entries.push({ key: 'mairust', target: plain });
    console.error(`${plain.name}: SMTP port ${plain.port}, HTTP port ${plain.httpPort}`);

    const hooked = async (key: string, label: string, plugin: PluginBench): Promise<void> => {
      const dir = mkdtempSync(join(work, `${key}-`));
      const target: MairustTarget = await startMairust({ dir, dnsAddress: dns.address, domain: DOMAIN, user: USER, name: label, configLines: plugin.configLines, setup: plugin.setup });
      const counter: PluginCounter = plugin.counter();
      console.error(`${label}: SMTP port ${target.port}, HTTP port ${target.httpPort}`);
      entries.push({
        key,
        target,
        seen: () => counter.answered(),
        metrics: () => hookMetrics(target.httpPort, plugin.pluginId),
        resetBreaker: () => plugin.resetBreaker(),
        close: () => counter.close(),
      });
    };
    // The plugins' own files live outside the servers' data directories.
    await hooked('mairust-http', 'MaiRust + pre_receive → HTTP plugin', httpPlugin(join(work, 'http-plugin-src')));
    const scriptTimeout = process.env.MAIRUST_BENCH_SCRIPT_TIMEOUT_MS ? positiveInt(process.env.MAIRUST_BENCH_SCRIPT_TIMEOUT_MS, 2000, 'MAIRUST_BENCH_SCRIPT_TIMEOUT_MS', 3000) : undefined;
    const scriptLabel = `MaiRust + pre_receive → script plugin${scriptTimeout ? ` (timeout ${scriptTimeout} ms)` : ''}`;
    await hooked('mairust-script', scriptLabel, scriptPlugin(join(work, 'script-plugin-src'), { timeoutMs: scriptTimeout }));

    for (const e of entries) {
      const warm = await measure(e, 0, LOAD, WARMUP_MESSAGES);
      // A failed warm-up is reported, not fatal: the timed loads check (and report) the same again.
      console.error(`warm-up ${e.target.name}: ${warm.failure ? `FAILED: ${warm.failure}` : `${warm.storedPerSecond.toFixed(0)} msg/s`}`);
    }
    const rows: Row[] = [];
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 1 ? entries : [...entries].reverse();
      for (const { load, messages: n } of loads) {
        for (const e of order) {
          const row = await measure(e, round, load, n);
          rows.push(row);
          console.error(`round ${round} | ${load.sessions} sessions | ${row.system}: ${row.failure ?? `${row.storedPerSecond.toFixed(0)} msg/s stored`}`);
        }
      }
    }
    rows.sort((a, b) => a.round - b.round || b.sessions - a.sessions || entries.findIndex((e) => e.key === a.key) - entries.findIndex((e) => e.key === b.key));
    const cpu = cpus();
    console.log(`# Hook benchmark ${new Date().toISOString()}, commit ${commit()}`);
    console.log(
      `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, Postfix ${skipPeer ? '(skipped)' : postfixVersion()}; ` +
        `load average before ${loadBefore[0].toFixed(1)}, after ${loadavg()[0].toFixed(1)}; wall time ${((performance.now() - wallStart) / 1000).toFixed(0)} s; ` +
        `${rounds} rounds of ${messages} messages over ${LOAD.sessions} sessions` +
        (serialMessages ? ` and ${serialMessages} over 1 session` : '') +
        `, ${LOAD.sizeBytes} B each, reused connections (-d)`,
    );
    for (const { load } of loads) {
      console.log('');
      console.log(`${load.sessions} session${load.sessions === 1 ? '' : 's'}:`);
      console.log('');
      console.log(summaryTable(rows, entries.map((e) => e.key), load.sessions));
    }
    console.log('');
    console.log(roundTable(rows));
    return rows.some((r) => r.failure) ? 1 : 0;
  } finally {
    for (const e of entries.reverse()) {
      await e.target.close().catch((err) => console.error(`closing ${e.target.name}: ${(err as Error).message}`));
      await e.close?.().catch(() => {});
    }
    for (const h of helpers) await h.close().catch(() => {});
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
