/**
 * REST API benchmark (SPEC §12 targets: API p95 < 200 ms, message body fetch p95 < 500 ms).
 *
 *   node --import tsx bench/api/run.ts [--shape embedded|postgres|both] [--messages 100000]
 *        [--duration 10] [--connections 10] [--warmup 2] [--distinct 2000] [--batch 1000]
 *        [--pg-url postgres://postgres@127.0.0.1:5432/postgres] [--keep] [--reuse <kept data dir>] [--no-readme]
 *
 * Per shape: seeds one mailbox with `--messages` messages (seed.ts), starts the API in this process
 * (server.ts), mints a bearer token for the mailbox's owner, and runs autocannon (in a worker
 * thread, load.ts) against four cases, each after a short unrecorded warm-up:
 *
 *   list-first  GET /api/v1/messages?mailbox_id=…&limit=50                 (newest 50)
 *   list-deep   GET /api/v1/messages?mailbox_id=…&limit=50&cursor=…        (cursor at the middle)
 *   get         GET /api/v1/messages/:id          (random id of all messages: summary + parsed body)
 *   raw         GET /api/v1/messages/:id/raw      (random id: the .eml streamed from the blob store)
 *
 * Prints p50/p95/p99 latency and requests/s per case and writes the table into bench/api/README.md
 * between the shape's markers (unless --no-readme).
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadSeeded, seedMailbox } from './seed.js';
import { startSystem, type BenchShape, type BenchSystem } from './server.js';
import { runLoad, type LoadResult } from './load.js';

const { values: args } = parseArgs({
  options: {
    shape: { type: 'string', default: 'both' },
    messages: { type: 'string', default: '100000' },
    distinct: { type: 'string', default: '2000' },
    batch: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    'pg-url': { type: 'string', default: process.env.MAIRUST_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    keep: { type: 'boolean', default: false },
    reuse: { type: 'string' },
    'no-readme': { type: 'boolean', default: false },
  },
  strict: true,
});

function positiveInt(name: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number (got ${value})`);
  return n;
}

const MESSAGES = positiveInt('messages', args.messages);
const DISTINCT = positiveInt('distinct', args.distinct);
const BATCH = positiveInt('batch', args.batch);
const DURATION = positiveInt('duration', args.duration);
const CONNECTIONS = positiveInt('connections', args.connections);
const WARMUP = Number(args.warmup);
if (!Number.isInteger(WARMUP) || WARMUP < 0) throw new Error('--warmup must be a whole number of seconds');
const SHAPES: BenchShape[] =
  args.shape === 'both' ? ['embedded', 'postgres'] : args.shape === 'embedded' || args.shape === 'postgres' ? [args.shape] : [];
if (SHAPES.length === 0) throw new Error('--shape must be embedded, postgres or both');
if (args.reuse !== undefined && SHAPES.length !== 1) throw new Error('--reuse needs --shape embedded or --shape postgres');

const README = new URL('./README.md', import.meta.url);

interface Case {
  name: string;
  what: string;
  /** SPEC §12 p95 target in ms. */
  targetMs: number;
  paths: string[];
}

interface CaseResult extends Case {
  result: LoadResult;
  loadBefore: number;
  loadAfter: number;
}

const log = (line: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);

async function getJson(sys: BenchSystem, token: string, path: string): Promise<any> {
  const res = await fetch(sys.url + path, { headers: { authorization: `Bearer ${token}` } });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${body.slice(0, 300)}`);
  return JSON.parse(body);
}

/** The cursor after `position` messages, found the way a client would: by paging. */
async function cursorAt(sys: BenchSystem, token: string, base: string, position: number): Promise<string> {
  let cursor: string | null = null;
  let seen = 0;
  while (seen < position) {
    const limit = Math.min(100, position - seen);
    const page: any = await getJson(sys, token, `${base}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    seen += page.data.length;
    cursor = page.pagination.cursor;
    if (!cursor) throw new Error(`the list ended after ${seen} messages, before ${position}`);
  }
  return cursor!;
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const ms = (v: number) => (Number.isFinite(v) ? (v < 10 ? v.toFixed(1) : v.toFixed(0)) : '–');
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

function table(results: CaseResult[]): string {
  const lines = [
    '| case | requests/s | p50 ms | p95 ms | p99 ms | max ms | SPEC §12 p95 target | verdict | non-2xx / errors | mean response | load avg (before → after) |',
    '|---|---:|---:|---:|---:|---:|---|---|---:|---:|---|',
  ];
  for (const r of results) {
    const x = r.result;
    const bad = x.non2xx + x.errors + x.timeouts;
    const verdict = bad > 0 ? 'INVALID (failed requests)' : x.p95 < r.targetMs ? 'met' : 'MISSED';
    lines.push(
      `| ${r.name} — ${r.what} | ${x.requestsPerSecond.toFixed(0)} | ${ms(x.p50)} | ${ms(x.p95)} | ${ms(x.p99)} | ${ms(x.max)} | < ${r.targetMs} ms | ${verdict} | ${bad} | ${(x.meanResponseBytes / 1024).toFixed(1)} KiB | ${r.loadBefore.toFixed(1)} → ${r.loadAfter.toFixed(1)} |`,
    );
  }
  return lines.join('\n');
}

async function benchShape(shape: BenchShape): Promise<string> {
  log(`── shape ${shape}: starting (${args.reuse ? `reusing ${args.reuse}` : `${MESSAGES} messages`})`);
  const sys = await startSystem(shape, { pgAdminUrl: args['pg-url']!, reuseDir: args.reuse });
  try {
    const seeded = args.reuse ? await loadSeeded(sys.app) : await seedMailbox(sys.app, { messages: MESSAGES, distinct: DISTINCT, batch: BATCH, log });
    const total = seeded.entryIds.length;
    const dbBytes = await sys.databaseBytes();
    log(`${args.reuse ? 'reused' : `seeded in ${seeded.seconds.toFixed(0)} s`}: ${total} messages, ${mib(seeded.bytes)}, database ${mib(dbBytes)}, kinds ${JSON.stringify(seeded.kinds)}`);

    const { accessToken } = await sys.deps.tokens.issue({ tenantId: seeded.tenantId, userId: seeded.userId });
    const listBase = `/api/v1/messages?mailbox_id=${seeded.mailboxId}`;
    const first: any = await getJson(sys, accessToken, `${listBase}&limit=50`);
    if (first.data.length !== Math.min(50, total)) throw new Error(`first page has ${first.data.length} messages`);
    const deepPosition = Math.floor(total / 2);
    log(`paging to position ${deepPosition} for the deep cursor …`);
    const deep = total > 100 ? await cursorAt(sys, accessToken, listBase, deepPosition) : null;
    const ids = shuffled(seeded.entryIds, 42);
    // One sanity request per case before loading it.
    await getJson(sys, accessToken, `/api/v1/messages/${ids[0]}`);
    const raw = await fetch(`${sys.url}/api/v1/messages/${ids[0]}/raw`, { headers: { authorization: `Bearer ${accessToken}` } });
    if (raw.status !== 200) throw new Error(`raw: ${raw.status}`);
    await raw.arrayBuffer();

    const cases: Case[] = [
      { name: 'list-first', what: 'newest 50', targetMs: 200, paths: [`${listBase}&limit=50`] },
      ...(deep ? [{ name: 'list-deep', what: `50 after a cursor at ${deepPosition}`, targetMs: 200, paths: [`${listBase}&limit=50&cursor=${encodeURIComponent(deep)}`] }] : []),
      { name: 'get', what: 'random message, parsed', targetMs: 500, paths: ids.map((id) => `/api/v1/messages/${id}`) },
      { name: 'raw', what: 'random message, .eml', targetMs: 500, paths: ids.map((id) => `/api/v1/messages/${id}/raw`) },
    ];
    const results: CaseResult[] = [];
    for (const [k, c] of cases.entries()) {
      const job = { url: sys.url, paths: c.paths, token: accessToken, connections: CONNECTIONS, seed: 1000 + k };
      if (WARMUP > 0) await runLoad({ ...job, durationSeconds: WARMUP });
      const loadBefore = loadavg()[0];
      log(`${c.name}: ${CONNECTIONS} connections for ${DURATION} s …`);
      const result = await runLoad({ ...job, durationSeconds: DURATION });
      const loadAfter = loadavg()[0];
      results.push({ ...c, result, loadBefore, loadAfter });
      log(`${c.name}: ${result.requestsPerSecond.toFixed(0)} req/s, p50 ${ms(result.p50)} ms, p95 ${ms(result.p95)} ms, p99 ${ms(result.p99)} ms, non-2xx ${result.non2xx}, errors ${result.errors} ${JSON.stringify(result.statusCounts)}`);
    }

    const cpu = cpus();
    const header = [
      `Run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — shape **${shape}** (${shape === 'embedded' ? 'SQLite' : 'PostgreSQL'} metadata, blobs on the local fs), ` +
        `${total.toLocaleString('en')} messages in one mailbox` +
        (args.reuse ? ` (reused data), ` : ` (${Math.min(DISTINCT, total).toLocaleString('en')} distinct contents), seeded in ${seeded.seconds.toFixed(0)} s, `) +
        `${mib(seeded.bytes)} of mail, database ${mib(dbBytes)}.`,
      `autocannon: ${CONNECTIONS} connections, ${DURATION} s per case after a ${WARMUP} s warm-up. Machine: ${cpu.length} × ${cpu[0]?.model.trim()}, ${mib(totalmem())} RAM, Node ${process.version}.`,
    ].join('\n');
    return `${header}\n\n${table(results)}`;
  } finally {
    await sys.close(args.keep!);
    if (args.keep) log(`kept ${sys.dataDir}`);
  }
}

function writeReadme(shape: BenchShape, section: string): void {
  const start = `<!-- results:${shape}:start -->`;
  const end = `<!-- results:${shape}:end -->`;
  const text = readFileSync(README, 'utf8');
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a === -1 || b === -1 || b < a) throw new Error(`README has no ${start} … ${end} markers`);
  writeFileSync(README, `${text.slice(0, a + start.length)}\n${section}\n${text.slice(b)}`);
}

for (const shape of SHAPES) {
  const section = await benchShape(shape);
  process.stdout.write(`\n${section}\n\n`);
  if (!args['no-readme']) {
    writeReadme(shape, section);
    log(`results written to bench/api/README.md (${shape})`);
  }
}
