/**
 * IMAP benchmark: Dovecot and MaiRust side by side in one run (bench/imap/README.md).
 *
 *   bash bench/imap/run.sh [--users 20] [--messages 500] [--sessions 50] [--duration 30]
 *        [--warmup 3] [--idle 1000] [--seed 1] [--servers dovecot,mairust]
 *        [--password-cost light|production] [--work DIR] [--keep]
 *
 * run.sh installs Dovecot if missing and raises the open-file limit, then runs this file. Order:
 * start both servers, seed both, scenario 1 on each back to back, scenario 2 on each back to back,
 * so the two servers share the machine's state of the moment. Progress goes to stderr, the
 * results (Markdown tables for the README) to stdout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_PASSWORD_PARAMS, type PasswordHashParams } from '../../src/security/passwords.js';
import { COMMANDS, idleSessions, operations, percentile, seed, type BenchUser, type IdleResult, type OpsResult, type SeedResult } from './load.js';
import { startDovecot, startMairust, type RunningTarget } from './targets.js';

const { values: args } = parseArgs({
  options: {
    users: { type: 'string', default: '20' },
    messages: { type: 'string', default: '500' },
    sessions: { type: 'string', default: '50' },
    duration: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '3' },
    idle: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    servers: { type: 'string', default: 'dovecot,mairust' },
    'password-cost': { type: 'string', default: 'light' },
    work: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
  strict: true,
});

function whole(name: string, min: number): number {
  const v = (args as unknown as Record<string, string | undefined>)[name];
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number ≥ ${min} (got ${v})`);
  return n;
}

const USERS = whole('users', 1);
const MESSAGES = whole('messages', 50);
const SESSIONS = whole('sessions', 1);
const DURATION = whole('duration', 1);
const WARMUP = whole('warmup', 0);
const IDLE = whole('idle', 0);
const SEED = whole('seed', 0);
const SERVERS = args.servers!.split(',').map((s) => s.trim());
for (const s of SERVERS) if (s !== 'dovecot' && s !== 'mairust') throw new Error(`--servers: unknown server ${s}`);

/** Light: Argon2id m = 4 MiB, t = 1, p = 1 (≈ 5 ms); production: SPEC §10 (m = 64 MiB, t = 3, p = 4). */
const COST: PasswordHashParams =
  args['password-cost'] === 'production'
    ? { ...DEFAULT_PASSWORD_PARAMS }
    : args['password-cost'] === 'light'
      ? { memoryCost: 4096, timeCost: 1, parallelism: 1 }
      : (() => {
          throw new Error('--password-cost must be light or production');
        })();

const log = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const load1 = () => loadavg()[0].toFixed(1);

interface ServerResults {
  target: RunningTarget;
  seed?: SeedResult;
  ops?: OpsResult;
  opsLoad?: string;
  idle?: IdleResult;
  idleLoad?: string;
}

async function main(): Promise<void> {
  const ownWork = !args.work;
  const work = args.work ?? mkdtempSync(join(tmpdir(), 'mairust-bench-imap-'));
  const users: BenchUser[] = Array.from({ length: USERS }, (_, i) => ({ login: `u${i + 1}@bench.test`, password: `bench-password-${i + 1}`, index: i }));
  const started = new Date();
  const results: ServerResults[] = [];
  const skipped: string[] = [];
  try {
    for (const name of SERVERS) {
      log(`starting ${name}`);
      try {
        const target =
          name === 'dovecot'
            ? await startDovecot(join(work, 'dovecot'), users, COST)
            : await startMairust(join(work, 'mairust'), users, COST, Math.max(IDLE, SESSIONS));
        log(`${target.version} on 127.0.0.1:${target.port} (pid ${target.pid})`);
        results.push({ target });
      } catch (err) {
        // MaiRust's IMAP may not be wired into `serve` yet: report it instead of failing the run.
        log(`${name} could not be started: ${(err as Error).message}`);
        skipped.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    const settings = { seed: SEED, messages: MESSAGES };
    for (const r of results) {
      log(`${r.target.name}: seeding ${USERS} × ${MESSAGES} messages over APPEND`);
      r.seed = await seed(r.target, settings);
      log(`${r.target.name}: seeded in ${r.seed.seconds.toFixed(1)} s`);
    }
    for (const r of results) {
      const before = load1();
      log(`${r.target.name}: scenario 1, ${SESSIONS} sessions, ${WARMUP} s warm-up + ${DURATION} s`);
      r.ops = await operations(r.target, { ...settings, sessions: SESSIONS, durationSeconds: DURATION, warmupSeconds: WARMUP });
      r.opsLoad = `${before} → ${load1()}`;
      log(`${r.target.name}: ${(r.ops.totalOps / DURATION).toFixed(0)} ops/s`);
    }
    if (IDLE > 0) {
      for (const r of results) {
        const before = load1();
        log(`${r.target.name}: scenario 2, ${IDLE} idle sessions`);
        r.idle = await idleSessions(r.target, { idle: IDLE });
        r.idleLoad = `${before} → ${load1()}`;
        log(`${r.target.name}: ${r.idle.rssPerConnectionKiB.toFixed(1)} KiB RSS per idle connection`);
      }
    }
  } finally {
    for (const r of results) await r.target.close().catch((err) => log(`stopping ${r.target.name}: ${(err as Error).message}`));
    // A --work directory belongs to the caller (run.sh removes it, or keeps it with --keep).
    if (ownWork && !args.keep) rmSync(work, { recursive: true, force: true });
    else if (ownWork) log(`work directory kept: ${work}`);
  }
  process.stdout.write(report(results, skipped, started));
  const broken = results.some((r) => r.ops && (r.ops.failedSessions > 0 || COMMANDS.some((c) => r.ops!.perCommand[c].errors > 0)));
  if (broken) process.exitCode = 1;
}

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '–');
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–');
const mib = (kib: number) => (kib / 1024).toFixed(1);

function report(results: ServerResults[], skipped: string[], started: Date): string {
  const out: string[] = [];
  const cpu = cpus();
  out.push(
    `Run ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC — ${USERS} users × ${MESSAGES} messages (seed ${SEED}), ` +
      `scenario 1: ${SESSIONS} sessions, ${WARMUP} s warm-up + ${DURATION} s; scenario 2: ${IDLE} idle sessions; ` +
      `password hash Argon2id m=${COST.memoryCost} KiB t=${COST.timeCost} p=${COST.parallelism}.`,
    `Machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? '?'}, ${Math.round(totalmem() / 2 ** 20)} MiB RAM, Node ${process.version}. ` +
      `Servers: ${results.map((r) => r.target.version).join('; ')}. Load generator: this one Node process, on the same 2 cores.`,
    '',
  );
  for (const s of skipped) out.push(`Not measured — ${s}`, '');
  if (results.length === 0) return `${out.join('\n')}\n`;

  out.push('Seeding (APPEND, one connection per user, all users at once):', '');
  out.push('| server | messages | MiB | seconds | messages/s |', '|---|---:|---:|---:|---:|');
  for (const r of results) {
    if (!r.seed) continue;
    out.push(`| ${r.target.name} | ${r.seed.messages} | ${mib(r.seed.bytes / 1024)} | ${f1(r.seed.seconds)} | ${f0(r.seed.messages / r.seed.seconds)} |`);
  }
  out.push('');

  const withOps = results.filter((r) => r.ops);
  if (withOps.length) {
    out.push(`Scenario 1 — commands per second and latency (ms), ${SESSIONS} concurrent session${SESSIONS === 1 ? '' : 's'}:`, '');
    out.push(
      `| command | ${withOps.map((r) => `${r.target.name} ops/s | p50 | p95`).join(' | ')} |`,
      `|---|${withOps.map(() => '---:|---:|---:').join('|')}|`,
    );
    for (const c of COMMANDS) {
      const cells = withOps.map((r) => {
        const st = r.ops!.perCommand[c];
        const lat = [...st.latencies];
        const err = st.errors ? ` (${st.errors} errors)` : '';
        return `${f0(st.count / DURATION)}${err} | ${f1(percentile(lat, 50))} | ${f1(percentile(lat, 95))}`;
      });
      out.push(`| ${c} | ${cells.join(' | ')} |`);
    }
    out.push(
      `| **all** | ${withOps
        .map((r) => {
          const all = COMMANDS.flatMap((c) => r.ops!.perCommand[c].latencies);
          return `**${f0(r.ops!.totalOps / DURATION)}** | ${f1(percentile(all, 50))} | ${f1(percentile(all, 95))}`;
        })
        .join(' | ')} |`,
    );
    out.push('');
    out.push('| | ' + withOps.map((r) => r.target.name).join(' | ') + ' |', '|---|' + withOps.map(() => '---:').join('|') + '|');
    out.push(`| server CPU ms per command | ${withOps.map((r) => f1((r.ops!.serverCpuSeconds * 1000) / Math.max(1, r.ops!.totalOps))).join(' | ')} |`);
    out.push(`| server CPU (cores busy) | ${withOps.map((r) => (r.ops!.serverCpuSeconds / DURATION).toFixed(2)).join(' | ')} |`);
    out.push(`| load generator CPU (cores busy) | ${withOps.map((r) => (r.ops!.clientCpuSeconds / DURATION).toFixed(2)).join(' | ')} |`);
    out.push(`| sessions failed | ${withOps.map((r) => r.ops!.failedSessions).join(' | ')} |`);
    out.push(`| load average (1 min) before → after | ${withOps.map((r) => r.opsLoad).join(' | ')} |`);
    out.push('');
    for (const r of withOps) for (const p of r.ops!.problems) out.push(`- ${r.target.name}: ${p}`);
    if (withOps.some((r) => r.ops!.problems.length)) out.push('');
  }

  const withIdle = results.filter((r) => r.idle);
  if (withIdle.length) {
    out.push(`Scenario 2 — memory per idle connection (LOGIN, SELECT INBOX, IDLE), ${IDLE} sessions:`, '');
    out.push(
      '| server | idling | processes counted (after) | RSS before MiB | RSS after MiB | **RSS KiB per connection** | PSS KiB per connection | RSS KiB per connection without forced GC | whole server PSS MiB before → after | seconds to open all | load average before → after |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|',
    );
    for (const r of withIdle) {
      const i = r.idle!;
      const b = i.beforeGc ?? i.before;
      const a = i.afterGc ?? i.after;
      const noGc = i.beforeGc ? f1(i.rssPerConnectionNoGcKiB) : 'no GC';
      out.push(
        `| ${r.target.name} | ${i.idling} / ${i.requested} | ${a.processes} | ${mib(b.rssKiB)} | ${mib(a.rssKiB)} | **${f1(i.rssPerConnectionKiB)}** | ${f1(i.pssPerConnectionKiB)} | ${noGc} | ${mib(i.serverBefore.pssKiB)} → ${mib(i.serverAfter.pssKiB)} | ${f1(i.openSeconds)} | ${r.idleLoad} |`,
      );
    }
    out.push('');
    for (const r of withIdle) for (const p of r.idle!.problems) out.push(`- ${r.target.name}: ${p}`);
  }
  return `${out.join('\n')}\n`;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
