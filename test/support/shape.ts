/**
 * Which shape an integration suite runs against. `scripts/test.sh` runs test/integration once with
 * MAIRUST_TEST_SHAPE=embedded (SQLite + fs) and once with MAIRUST_TEST_SHAPE=cluster (PostgreSQL +
 * S3). In the cluster shape a missing PostgreSQL or S3 server is an error, never a skip.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/store/db/database.js';
import { migrateUp } from '../../src/store/db/migrator.js';

export type Shape = 'embedded' | 'cluster';
export const shape: Shape = process.env.MAIRUST_TEST_SHAPE === 'cluster' ? 'cluster' : 'embedded';

/** Admin connection used to create and drop per-suite databases. */
export const pgAdminUrl = process.env.MAIRUST_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export function tempDir(prefix = 'mairust-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface TestDatabase {
  db: Database;
  /** URL another process can open (for multi-process tests). */
  url: string;
  drop(): Promise<void>;
}

function pgUrlFor(name: string): string {
  const u = new URL(pgAdminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

/** A fresh, migrated database of the current shape. */
export async function freshDatabase(opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const migrate = opts.migrate ?? true;
  if (shape === 'embedded') {
    const dir = tempDir();
    const url = `sqlite:${join(dir.path, 'test.db')}`;
    const db = await openDatabase(url);
    if (migrate) await migrateUp(db);
    return { db, url, drop: async () => { await db.close(); dir.remove(); } };
  }
  const name = `mairust_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: pgAdminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = pgUrlFor(name);
  const db = await openDatabase(url, { poolMax: 10 });
  if (migrate) await migrateUp(db);
  return {
    db,
    url,
    drop: async () => {
      await db.close();
      const c = new pg.Client({ connectionString: pgAdminUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** S3 settings for the cluster shape; throws (fails the suite) when they are missing. */
export function s3TestSettings() {
  const endpoint = process.env.MAIRUST_S3_ENDPOINT;
  if (!endpoint) throw new Error('MAIRUST_S3_ENDPOINT is not set: start the S3 server with scripts/s3/swift-start.sh');
  return {
    endpoint,
    region: process.env.MAIRUST_S3_REGION ?? 'us-east-1',
    accessKeyId: process.env.MAIRUST_S3_ACCESS_KEY_ID ?? 'test:tester',
    secretAccessKey: process.env.MAIRUST_S3_SECRET_ACCESS_KEY ?? 'testing',
  };
}
