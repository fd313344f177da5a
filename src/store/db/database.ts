/**
 * The `Database` port: one Kysely instance over SQLite (embedded) or PostgreSQL (cluster).
 * Nothing outside src/store/db knows which dialect is in use except through `db.dialect`,
 * and only where SQL genuinely differs (text index, locking).
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import type { DB } from './types.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Database {
  readonly kysely: Kysely<DB>;
  readonly dialect: Dialect;
  /** The URL with any password removed: safe for logs and health output. */
  readonly safeUrl: string;
  /** PostgreSQL only: the pool, for LISTEN/NOTIFY clients. */
  readonly pgPool?: pg.Pool;
  /** Round-trip check; resolves with latency in ms, rejects when unreachable. */
  ping(): Promise<number>;
  close(): Promise<void>;
}

export class DatabaseUnavailableError extends Error {
  readonly code = 'DATABASE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatabaseUnavailableError';
  }
}

export function newId(): string {
  return randomUUID();
}

export function now(): number {
  return Date.now();
}

// PostgreSQL int8 (bigint) and numeric come back as strings by default; our values (ms timestamps,
// MODSEQs, byte counts) stay below 2^53, so numbers are exact and far easier to handle.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => Number(v));

export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, '$1***@');
}

export interface OpenOptions {
  /** Directory used for a bare `sqlite:` URL. */
  dataDir?: string;
  poolMax?: number;
  statementTimeoutMs?: number;
}

export function parseDatabaseUrl(url: string, dataDir = './data'): { dialect: Dialect; target: string } {
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return { dialect: 'postgres', target: url };
  if (url.startsWith('sqlite:')) {
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '') path = resolve(dataDir, 'mairust.db');
    return { dialect: 'sqlite', target: path };
  }
  throw new Error(`database.url must start with sqlite: or postgres:// (got ${redactUrl(url)})`);
}

export async function openDatabase(url: string, opts: OpenOptions = {}): Promise<Database> {
  const { dialect, target } = parseDatabaseUrl(url, opts.dataDir);
  return dialect === 'sqlite' ? openSqlite(target) : openPostgres(target, opts);
}

function openSqlite(path: string): Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const raw = new SqliteDatabase(path);
  // WAL lets the CLI read and write while the server runs; synchronous=FULL fsyncs the WAL at every
  // commit, which "durable before acknowledged" (ARCHITECTURE §1.5) needs — NORMAL could lose the last
  // commits on power loss.
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = FULL');
  raw.pragma('foreign_keys = ON');
  raw.pragma('busy_timeout = 10000');
  const kysely = new Kysely<DB>({ dialect: new SqliteDialect({ database: raw }) });
  return {
    kysely,
    dialect: 'sqlite',
    safeUrl: `sqlite:${path}`,
    async ping() {
      const t = performance.now();
      raw.prepare('SELECT 1').get();
      return performance.now() - t;
    },
    async close() {
      await kysely.destroy();
    },
  };
}

async function openPostgres(url: string, opts: OpenOptions): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolMax ?? 10,
    connectionTimeoutMillis: 5000,
    statement_timeout: opts.statementTimeoutMs ?? 30000,
  });
  // An idle client losing its connection (server restart) must not crash the process;
  // the pool replaces it and /health/ready reports the outage meanwhile.
  pool.on('error', () => {});
  // A client checked out for a query when the server goes away also emits 'error' (after failing
  // its queries, which report the outage to their callers); without a listener that event would
  // end the process. The pool discards such a client when it is released with the error.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  const kysely = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  const db: Database = {
    kysely,
    dialect: 'postgres',
    safeUrl: redactUrl(url),
    pgPool: pool,
    async ping() {
      const t = performance.now();
      await sql`SELECT 1`.execute(kysely);
      return performance.now() - t;
    },
    async close() {
      await kysely.destroy();
    },
  };
  try {
    await db.ping();
  } catch (err) {
    await db.close().catch(() => {});
    throw new DatabaseUnavailableError(`cannot reach PostgreSQL at ${redactUrl(url)}: ${(err as Error).message}`, { cause: err });
  }
  return db;
}
