/**
 * The IMAP load generator: seeds mailboxes over APPEND and runs the two scenarios of bench/imap
 * against any IMAP server with implicit TLS (run.ts points it at Dovecot and MaiRust in turn).
 *
 *  - seed: every user's INBOX gets the same `messages` messages (messages.ts), over one connection
 *    per user, all users at once; afterwards every INBOX must hold exactly that many.
 *  - operations: `sessions` concurrent sessions, session i logged in as user i mod users, each
 *    looping SELECT INBOX → FETCH 1:50 (FLAGS ENVELOPE) → UID FETCH <random> BODY.PEEK[] →
 *    SEARCH SUBJECT <random word> → STORE <random> +FLAGS (\Seen) → NOOP, one command at a time
 *    (a closed loop: the next command goes when the previous completion is in). Counted: commands
 *    completed inside the measured window (after a warm-up), latency from the write of the
 *    command to its tagged completion. Every answer is checked (EXISTS = messages, 50 FETCH
 *    responses, the body literal has the message's RFC822.SIZE, SEARCH returns exactly the hits
 *    the generator predicts); an answer that fails a check counts as an error, not as an operation.
 *  - idle: `idle` sessions each LOGIN, SELECT INBOX, IDLE (RFC 2177); the server's memory is
 *    sampled before the first and after the last is idling → KiB per idle connection.
 *
 * Standalone, against any IMAP server with implicit TLS whose users are --user-format with %d =
 * 1…users and passwords --password (%d likewise), as run.ts provisions them:
 *   node --import tsx bench/imap/load.ts --port 993 [--host 127.0.0.1] [--users 20] [--messages 500]
 *     [--sessions 50] [--duration 30] [--idle 1000] [--seed 1] [--password bench-password-%d]
 *     [--user-format u%d@bench.test]
 *     [--scenario seed,ops,idle] [--pid <server pid for memory/CPU>]
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ImapClient, type Reply } from './client.js';
import { benchMessage, expectedSubjectHits, prng, SUBJECT_WORDS } from './messages.js';
import { cpuSeconds, rssKiB, pssKiB, type MemorySample } from './proc.js';

export interface BenchUser {
  login: string;
  password: string;
  /** 0-based; selects the user's messages in messages.ts. */
  index: number;
}

export interface Target {
  name: string;
  host: string;
  port: number;
  users: BenchUser[];
  /** Memory of the server processes that grow with connections. */
  memory(): MemorySample;
  /** CPU seconds the server has used so far (all its processes). */
  cpuSeconds(): number;
  /** Memory of the whole server (every process), for context; default `memory()`. */
  footprint?(): MemorySample;
  /** A garbage-collected server: runs a full collection (for the memory readings of scenario 2). */
  collectGarbage?(): Promise<void>;
}

export interface LoadSettings {
  seed: number;
  messages: number;
}

const log = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function connect(target: Target, user: BenchUser): Promise<ImapClient> {
  const c = await ImapClient.connect({ host: target.host, port: target.port, tls: true });
  try {
    await c.login(user.login, user.password);
  } catch (err) {
    c.destroy();
    throw err;
  }
  return c;
}

/** Runs `fn` over `items` with at most `limit` at a time; the first failure rejects. */
async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  });
  await Promise.all(workers);
}

function existsOf(r: Reply): number {
  for (const u of r.untagged) {
    const m = /^\* (\d+) EXISTS/i.exec(u.text);
    if (m) return Number(m[1]);
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// Seeding

export interface SeedResult {
  messages: number;
  bytes: number;
  seconds: number;
}

/**
 * APPENDs messages 0…messages−1 of every user in order (so UID k holds message k−1 on a fresh
 * INBOX). With LITERAL+ up to 8 APPENDs are in flight per connection; without, one at a time.
 */
export async function seed(target: Target, s: LoadSettings): Promise<SeedResult> {
  const t0 = performance.now();
  let bytes = 0;
  let done = 0;
  const total = s.messages * target.users.length;
  const progress = setInterval(() => log(`${target.name}: appended ${done}/${total}`), 10_000);
  try {
    await pool(target.users, target.users.length, async (user) => {
      const c = await connect(target, user);
      try {
        const window = c.capabilities.has('LITERAL+') ? 8 : 1;
        const inFlight = new Set<Promise<void>>();
        for (let i = 0; i < s.messages; i++) {
          const m = benchMessage(s.seed, user.index, i, user.login);
          bytes += m.bytes.length;
          const p: Promise<void> = c.append('INBOX', m.bytes, m.flags, m.internalDate).then((r) => {
            inFlight.delete(p);
            if (r.status !== 'OK') throw new Error(`${target.name}: APPEND for ${user.login} #${i}: ${r.status} ${r.text}`);
            done++;
          });
          inFlight.add(p);
          if (inFlight.size >= window) await Promise.race(inFlight);
        }
        await Promise.all(inFlight);
        const status = await c.ok('STATUS INBOX (MESSAGES)');
        const n = Number(/MESSAGES (\d+)/i.exec(status.untagged.map((u) => u.text).join(' '))?.[1] ?? -1);
        if (n !== s.messages) throw new Error(`${target.name}: ${user.login} INBOX holds ${n} messages after seeding, expected ${s.messages}`);
      } finally {
        await c.logout();
      }
    });
  } finally {
    clearInterval(progress);
  }
  return { messages: total, bytes, seconds: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// Scenario 1: operations per second

export const COMMANDS = ['SELECT', 'FETCH 1:50', 'UID FETCH BODY[]', 'SEARCH', 'STORE', 'NOOP'] as const;
export type CommandName = (typeof COMMANDS)[number];

export interface CommandStats {
  count: number;
  errors: number;
  /** Milliseconds, one per counted command. */
  latencies: number[];
}

export interface OpsResult {
  sessions: number;
  seconds: number;
  totalOps: number;
  perCommand: Record<CommandName, CommandStats>;
  /** Sessions that ended early (connection lost, a command rejected). */
  failedSessions: number;
  /** The first few check failures, for the report. */
  problems: string[];
  serverCpuSeconds: number;
  clientCpuSeconds: number;
}

export interface OpsSettings extends LoadSettings {
  sessions: number;
  durationSeconds: number;
  warmupSeconds: number;
}

/** Nearest-rank percentile of an unsorted list (sorted in place). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  values.sort((a, b) => a - b);
  return values[Math.min(values.length - 1, Math.max(0, Math.ceil((p / 100) * values.length) - 1))];
}

export async function operations(target: Target, s: OpsSettings): Promise<OpsResult> {
  const perCommand = Object.fromEntries(COMMANDS.map((c) => [c, { count: 0, errors: 0, latencies: [] as number[] }])) as Record<CommandName, CommandStats>;
  const problems: string[] = [];
  const problem = (p: string) => {
    if (problems.length < 10) problems.push(p);
  };
  // The SEARCH answers the generator predicts, per user and word (computed once, on demand).
  const hits = new Map<string, number>();
  const expectedHits = (user: BenchUser, word: string) => {
    const key = `${user.index} ${word}`;
    let n = hits.get(key);
    if (n === undefined) hits.set(key, (n = expectedSubjectHits(s.seed, user.index, s.messages, word)));
    return n;
  };

  // Log in every session first (not measured), then open the window for all at once.
  log(`${target.name}: opening ${s.sessions} sessions`);
  const clients: { c: ImapClient; user: BenchUser; sizes: Map<number, number>; uids: number[] }[] = [];
  await pool(
    Array.from({ length: s.sessions }, (_, i) => i),
    25,
    async (i) => {
      const user = target.users[i % target.users.length];
      const c = await connect(target, user);
      await c.ok('SELECT INBOX');
      // uid → RFC822.SIZE, to check every body fetched later.
      const r = await c.ok('UID FETCH 1:* (RFC822.SIZE)');
      const sizes = new Map<number, number>();
      for (const u of r.untagged) {
        const uid = /UID (\d+)/i.exec(u.text);
        const size = /RFC822\.SIZE (\d+)/i.exec(u.text);
        if (uid && size) sizes.set(Number(uid[1]), Number(size[1]));
      }
      if (sizes.size !== s.messages) throw new Error(`${target.name}: ${user.login} has ${sizes.size} messages, expected ${s.messages}`);
      clients[i] = { c, user, sizes, uids: [...sizes.keys()] };
    },
  );

  const start = performance.now();
  const windowStart = start + s.warmupSeconds * 1000;
  const windowEnd = windowStart + s.durationSeconds * 1000;
  let stopping = false;
  let failedSessions = 0;
  let cpuAtStart = 0;
  let clientAtStart = process.cpuUsage();
  const startTimer = setTimeout(() => {
    cpuAtStart = target.cpuSeconds();
    clientAtStart = process.cpuUsage();
  }, s.warmupSeconds * 1000);
  let cpuAtEnd = 0;
  let clientAtEnd: NodeJS.CpuUsage = process.cpuUsage();
  const endTimer = setTimeout(() => {
    cpuAtEnd = target.cpuSeconds();
    clientAtEnd = process.cpuUsage(clientAtStart);
    stopping = true;
  }, (s.warmupSeconds + s.durationSeconds) * 1000);

  await Promise.all(
    clients.map(async ({ c, user, sizes, uids }, i) => {
      const rnd = prng(s.seed * 7919 + i);
      const timed = async (name: CommandName, line: string, check: (r: Reply) => string | null) => {
        const t0 = performance.now();
        const r = await c.command(line);
        const t1 = performance.now();
        if (t0 < windowStart || t1 > windowEnd) return r; // warm-up or after the window: not counted
        const stats = perCommand[name];
        const wrong = r.status !== 'OK' ? `${r.status} ${r.text}` : check(r);
        if (wrong) {
          stats.errors++;
          problem(`${name} (${user.login}): ${wrong.slice(0, 200)}`);
        } else {
          stats.count++;
          stats.latencies.push(t1 - t0);
        }
        return r;
      };
      try {
        while (!stopping) {
          let exists = -1;
          await timed('SELECT', 'SELECT INBOX', (r) => {
            exists = existsOf(r);
            return exists === s.messages ? null : `EXISTS ${exists}, expected ${s.messages}`;
          });
          if (exists < 1) exists = s.messages;
          const want = Math.min(50, exists);
          await timed('FETCH 1:50', 'FETCH 1:50 (FLAGS ENVELOPE)', (r) => {
            const n = r.untagged.filter((u) => / FETCH /i.test(u.text) && /ENVELOPE/i.test(u.text)).length;
            return n === want ? null : `${n} FETCH responses with ENVELOPE, expected ${want}`;
          });
          const uid = uids[Math.floor(rnd() * uids.length)];
          await timed('UID FETCH BODY[]', `UID FETCH ${uid} BODY.PEEK[]`, (r) => {
            const f = r.untagged.find((u) => / FETCH /i.test(u.text) && /BODY\[\]/i.test(u.text));
            const got = f?.literals[f.literals.length - 1];
            return got === sizes.get(uid) ? null : `UID ${uid}: body of ${got} octets, RFC822.SIZE ${sizes.get(uid)}`;
          });
          const word = SUBJECT_WORDS[Math.floor(rnd() * SUBJECT_WORDS.length)];
          await timed('SEARCH', `SEARCH SUBJECT ${word}`, (r) => {
            const line = r.untagged.find((u) => /^\* SEARCH\b/i.test(u.text));
            if (!line) return 'no SEARCH response';
            const n = (line.text.slice('* SEARCH'.length).match(/\d+/g) ?? []).length;
            const want = expectedHits(user, word);
            return n === want ? null : `SUBJECT ${word}: ${n} hits, expected ${want}`;
          });
          const seq = 1 + Math.floor(rnd() * exists);
          await timed('STORE', `STORE ${seq} +FLAGS (\\Seen)`, () => null);
          await timed('NOOP', 'NOOP', () => null);
        }
      } catch (err) {
        failedSessions++;
        problem(`session ${i} (${user.login}) ended: ${(err as Error).message}`);
      }
    }),
  );
  clearTimeout(startTimer);
  clearTimeout(endTimer);
  await Promise.all(clients.map(({ c }) => c.logout()));
  const totalOps = COMMANDS.reduce((n, c) => n + perCommand[c].count, 0);
  return {
    sessions: s.sessions,
    seconds: s.durationSeconds,
    totalOps,
    perCommand,
    failedSessions,
    problems,
    serverCpuSeconds: cpuAtEnd - cpuAtStart,
    clientCpuSeconds: (clientAtEnd.user + clientAtEnd.system) / 1e6,
  };
}

// ---------------------------------------------------------------------------------------------
// Scenario 2: memory per idle IDLE connection

export interface IdleResult {
  requested: number;
  idling: number;
  /** Lowest readings over a few seconds, without intervening. */
  before: MemorySample;
  after: MemorySample;
  /** Readings right after a forced full GC (targets with `collectGarbage` only). */
  beforeGc?: MemorySample;
  afterGc?: MemorySample;
  /** (after − before) / idling, KiB: after a forced GC where the target has one, else the lowest readings. */
  rssPerConnectionKiB: number;
  pssPerConnectionKiB: number;
  /** The same from the lowest readings without a forced GC. */
  rssPerConnectionNoGcKiB: number;
  /** The whole server (`footprint`) before the first session and with all of them idling. */
  serverBefore: MemorySample;
  serverAfter: MemorySample;
  openSeconds: number;
  problems: string[];
}

export interface IdleSettings {
  idle: number;
  /** Pause before each memory reading, so the server finishes its work (default 8 s). */
  settleMs?: number;
  /** Each reading is the lowest of samples taken every 250 ms for this long (default 4 s). */
  sampleMs?: number;
}

/**
 * The lowest total of samples over `ms`: a garbage-collected server (Node) holds garbage for a
 * while after work and frees it in steps (V8 collects more eagerly once allocation stops); the
 * low point is the memory that is really in use. A server without a collector reads the same
 * every time.
 */
async function lowestMemory(target: Target, ms: number): Promise<MemorySample> {
  let low = target.memory();
  for (let t = 0; t < ms; t += 250) {
    await sleep(250);
    const m = target.memory();
    if (m.rssKiB < low.rssKiB) low = m;
  }
  return low;
}

async function afterGc(target: Target): Promise<MemorySample | undefined> {
  if (!target.collectGarbage) return undefined;
  await target.collectGarbage();
  await sleep(500); // let freed pages go back to the kernel before reading
  return target.memory();
}

export async function idleSessions(target: Target, s: IdleSettings): Promise<IdleResult> {
  const settle = s.settleMs ?? 8000;
  const sampleMs = s.sampleMs ?? 4000;
  await sleep(settle);
  const before = await lowestMemory(target, sampleMs);
  const beforeGc = await afterGc(target);
  const footprint = () => (target.footprint ? target.footprint() : target.memory());
  const serverBefore = footprint();
  const problems: string[] = [];
  const sessions: { c: ImapClient; done(): Promise<Reply> }[] = [];
  const t0 = performance.now();
  let opened = 0;
  const progress = setInterval(() => log(`${target.name}: ${opened}/${s.idle} sessions idling`), 10_000);
  try {
    await pool(
      Array.from({ length: s.idle }, (_, i) => i),
      50,
      async (i) => {
        const user = target.users[i % target.users.length];
        try {
          const c = await connect(target, user);
          await c.ok('SELECT INBOX');
          const idle = await c.idle();
          sessions.push({ c, done: idle.done });
          opened++;
        } catch (err) {
          if (problems.length < 10) problems.push(`session ${i} (${user.login}): ${(err as Error).message}`);
        }
      },
    );
  } finally {
    clearInterval(progress);
  }
  const openSeconds = (performance.now() - t0) / 1000;
  await sleep(settle);
  const after = await lowestMemory(target, sampleMs);
  const afterGcSample = await afterGc(target);
  const serverAfter = footprint();
  const idling = sessions.filter((x) => !x.c.closed).length;
  if (idling < sessions.length) problems.push(`${sessions.length - idling} sessions were closed while idling`);
  // Leave IDLE and log out, 50 at a time (a real client's DONE, then LOGOUT).
  await pool(sessions, 50, async ({ c, done }) => {
    try {
      if (!c.closed) await done();
    } catch {
      /* counted above */
    }
    await c.logout();
  });
  const n = Math.max(1, idling);
  const b = beforeGc ?? before;
  const a = afterGcSample ?? after;
  return {
    requested: s.idle,
    idling,
    before,
    after,
    beforeGc,
    afterGc: afterGcSample,
    rssPerConnectionKiB: (a.rssKiB - b.rssKiB) / n,
    pssPerConnectionKiB: (a.pssKiB - b.pssKiB) / n,
    rssPerConnectionNoGcKiB: (after.rssKiB - before.rssKiB) / n,
    serverBefore,
    serverAfter,
    openSeconds,
    problems,
  };
}

// ---------------------------------------------------------------------------------------------
// Standalone use

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      users: { type: 'string', default: '20' },
      messages: { type: 'string', default: '500' },
      sessions: { type: 'string', default: '50' },
      duration: { type: 'string', default: '30' },
      warmup: { type: 'string', default: '3' },
      idle: { type: 'string', default: '1000' },
      seed: { type: 'string', default: '1' },
      password: { type: 'string', default: 'bench-password-%d' },
      'user-format': { type: 'string', default: 'u%d@bench.test' },
      scenario: { type: 'string', default: 'seed,ops,idle' },
      pid: { type: 'string' },
    },
    strict: true,
  });
  if (!a.port) throw new Error('--port is required');
  const num = (v: string | undefined) => Number(v);
  const pid = a.pid ? Number(a.pid) : 0;
  const target: Target = {
    name: `${a.host}:${a.port}`,
    host: a.host!,
    port: num(a.port),
    users: Array.from({ length: num(a.users) }, (_, i) => ({ login: a['user-format']!.replace('%d', String(i + 1)), password: a.password!.replace('%d', String(i + 1)), index: i })),
    memory: () => (pid ? { rssKiB: rssKiB(pid), pssKiB: pssKiB(pid), processes: 1 } : { rssKiB: 0, pssKiB: 0, processes: 0 }),
    cpuSeconds: () => (pid ? cpuSeconds(pid) : 0),
  };
  const settings = { seed: num(a.seed), messages: num(a.messages) };
  const scenarios = new Set(a.scenario!.split(','));
  if (scenarios.has('seed')) console.log(JSON.stringify(await seed(target, settings)));
  if (scenarios.has('ops')) {
    const r = await operations(target, { ...settings, sessions: num(a.sessions), durationSeconds: num(a.duration), warmupSeconds: num(a.warmup) });
    const summary = Object.fromEntries(
      COMMANDS.map((c) => {
        const st = r.perCommand[c];
        return [c, { count: st.count, errors: st.errors, p50: percentile(st.latencies, 50), p95: percentile(st.latencies, 95) }];
      }),
    );
    console.log(JSON.stringify({ opsPerSecond: r.totalOps / r.seconds, ...summary, failedSessions: r.failedSessions, problems: r.problems }, null, 2));
  }
  if (scenarios.has('idle')) console.log(JSON.stringify(await idleSessions(target, { idle: num(a.idle) }), null, 2));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
