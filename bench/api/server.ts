/**
 * The system under test for the API benchmark: a data directory and database of one shape, the
 * application context, and the REST API listening on loopback — wired like `mairust serve` and
 * test/support/api.ts (openApp → buildApiDeps → createHttpServer → mountApi), in this process.
 *
 * Shapes:
 *  - embedded: SQLite file in the data directory (WAL, synchronous=FULL, as the server runs it);
 *  - postgres: a fresh database on a PostgreSQL server (default postgres://postgres@127.0.0.1:5432,
 *    env MAIRUST_BENCH_PG_URL), dropped afterwards unless kept.
 * Both keep blobs on the local filesystem (`<data dir>/blobs`), so the shapes differ only in the
 * metadata database.
 *
 * Config differences from a default install, on purpose: rate limits raised to their maximum
 * (1 000 000/min; the counters are still written on every request, as in production), and the log
 * at `info` into a file in the data directory (one access-log line per request, as in production).
 */
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { openApp, type AppContext } from '../../src/app/context.js';
import { buildApiDeps, mountApi } from '../../src/app/api.js';
import type { ApiDeps } from '../../src/http/api/deps.js';
import { createHttpServer } from '../../src/http/server.js';
import { createHealth } from '../../src/observability/health.js';

export type BenchShape = 'embedded' | 'postgres';

export interface BenchSystem {
  shape: BenchShape;
  dataDir: string;
  app: AppContext;
  deps: ApiDeps;
  server: FastifyInstance;
  url: string;
  /** Bytes of the metadata database (SQLite file + WAL, or pg_database_size). */
  databaseBytes(): Promise<number>;
  /** Stops the server and the app; removes the data and drops the database unless `keep`. */
  close(keep: boolean): Promise<void>;
}

const MAX_RATE = 1_000_000;

function pgUrl(base: string, database: string): string {
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.toString();
}

/** The SQLite database with its WAL and shared-memory files. */
function sqliteBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) if (name.startsWith('mairust.db')) total += statSync(join(dir, name)).size;
  return total;
}

/**
 * `reuseDir`: the data directory of an earlier run kept with --keep (its config.yaml names the
 * database); nothing is created, and nothing is removed at the end.
 */
export async function startSystem(shape: BenchShape, opts: { pgAdminUrl: string; baseDir?: string; reuseDir?: string }): Promise<BenchSystem> {
  const reused = opts.reuseDir !== undefined;
  const dataDir = opts.reuseDir ?? mkdtempSync(join(opts.baseDir ?? tmpdir(), `mairust-bench-api-${shape}-`));
  let databaseUrl = `sqlite:${join(dataDir, 'mairust.db')}`;
  let pgName: string | undefined;
  if (reused) {
    const kept = (parse(readFileSync(join(dataDir, 'config.yaml'), 'utf8')) as { database: { url: string } }).database.url;
    if ((shape === 'postgres') !== kept.startsWith('postgres')) throw new Error(`${dataDir} holds a ${kept.startsWith('postgres') ? 'postgres' : 'embedded'} run, not ${shape}`);
    databaseUrl = kept;
    if (shape === 'postgres') pgName = new URL(kept).pathname.slice(1);
  } else if (shape === 'postgres') {
    pgName = `mairust_bench_${randomBytes(5).toString('hex')}`;
    const admin = new pg.Client({ connectionString: opts.pgAdminUrl });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${pgName}`);
    } finally {
      await admin.end();
    }
    databaseUrl = pgUrl(opts.pgAdminUrl, pgName);
  }
  const config = {
    server: { data_dir: dataDir, hostname: 'mail.bench.test' },
    database: { url: databaseUrl },
    storage: { backend: 'fs' },
    api: {
      rate_limit: {
        per_user_per_minute: MAX_RATE,
        admin_per_ip_per_minute: MAX_RATE,
        anonymous_per_ip_per_minute: MAX_RATE,
        plugin_per_token_per_minute: MAX_RATE,
      },
    },
    log: { level: 'info' },
    // PostgreSQL is the multi-node shape: the server refuses to invent a master key for it.
    ...(shape === 'postgres' ? { security: { master_key: randomBytes(32).toString('base64') } } : {}),
  };
  const configPath = join(dataDir, 'config.yaml');
  if (!reused) writeFileSync(configPath, stringify(config));
  const logFd = openSync(join(dataDir, 'server.log'), 'a');
  const dropDatabase = async () => {
    if (!pgName || reused) return;
    const admin = new pg.Client({ connectionString: opts.pgAdminUrl });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${pgName} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  };
  let app: AppContext | undefined;
  let deps: ApiDeps;
  let server: FastifyInstance;
  try {
    app = await openApp({ configPath, env: {}, logDestination: logFd });
    deps = await buildApiDeps(app, { emergencyToken: '' });
    const a = app;
    const health = createHealth({ database: () => a.db.ping(), blob_store: () => a.blobs.ping(), queue: () => a.queue.ping() });
    server = createHttpServer({ logger: app.logger, metrics: app.metrics, health, bodyLimitBytes: app.config.api.body_limit_bytes });
    await mountApi(server, deps);
    await server.listen({ host: '127.0.0.1', port: 0 });
  } catch (err) {
    // Leave nothing behind when the start fails (a created database, a temp directory).
    await app?.close().catch(() => {});
    closeSync(logFd);
    await dropDatabase().catch(() => {});
    if (!reused) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const { port } = server.server.address() as { port: number };
  const started = app;

  return {
    shape,
    dataDir,
    app: started,
    deps,
    server,
    url: `http://127.0.0.1:${port}`,
    async databaseBytes() {
      if (shape === 'embedded') {
        return sqliteBytes(dataDir);
      }
      const r = await started.db.kysely.selectNoFrom((eb) => eb.fn<string>('pg_database_size', [eb.val(pgName!)]).as('size')).executeTakeFirstOrThrow();
      return Number(r.size);
    },
    async close(keep) {
      await server.close();
      await deps.rateCounter.close();
      await started.close();
      closeSync(logFd);
      if (keep || reused) return;
      await dropDatabase();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
