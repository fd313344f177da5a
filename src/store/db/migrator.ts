/**
 * Versioned migrations (docs/adr/0002-additive-migrations.md).
 *
 * Each migration is `src/store/db/migrations/NNNN_name.ts` exporting `up` (and `down` where a
 * rollback is possible). Migrations receive the dialect because a few constructs differ (text index,
 * column types for large integers); everything else is written once with Kysely's schema builder.
 * The applied versions live in `mairust_migrations`; each migration runs in its own transaction
 * (both dialects have transactional DDL), so a failed one leaves nothing half-applied.
 */
import type { Kysely } from 'kysely';
import type { Database, Dialect } from './database.js';
import { migrations } from './migrations/index.js';

export interface Migration {
  version: number;
  name: string;
  up(db: Kysely<any>, dialect: Dialect): Promise<void>;
  down?(db: Kysely<any>, dialect: Dialect): Promise<void>;
}

export interface MigrationStatus {
  version: number;
  name: string;
  applied: boolean;
}

async function ensureTable(db: Database): Promise<void> {
  await db.kysely.schema
    .createTable('mairust_migrations')
    .ifNotExists()
    .addColumn('version', 'integer', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('applied_at', 'bigint', (c) => c.notNull())
    .execute();
}

async function appliedVersions(db: Database): Promise<Set<number>> {
  await ensureTable(db);
  const rows = await db.kysely.selectFrom('mairust_migrations').select('version').execute();
  return new Set(rows.map((r) => Number(r.version)));
}

export async function migrationStatus(db: Database, list: Migration[] = migrations): Promise<MigrationStatus[]> {
  const applied = await appliedVersions(db);
  return list.map((m) => ({ version: m.version, name: m.name, applied: applied.has(m.version) }));
}

/** Applies every pending migration in order; returns the ones applied. */
export async function migrateUp(db: Database, list: Migration[] = migrations): Promise<Migration[]> {
  const done: Migration[] = [];
  // PostgreSQL: two nodes starting at once must not both migrate; an advisory lock serialises them.
  if (db.dialect === 'postgres') {
    return db.kysely.connection().execute(async (conn) => {
      const { sql } = await import('kysely');
      await sql`SELECT pg_advisory_lock(7414531)`.execute(conn);
      try {
        return await applyPending({ ...db, kysely: conn as Kysely<any> } as Database, list, done);
      } finally {
        await sql`SELECT pg_advisory_unlock(7414531)`.execute(conn);
      }
    });
  }
  return applyPending(db, list, done);
}

async function applyPending(db: Database, list: Migration[], done: Migration[]): Promise<Migration[]> {
  const applied = await appliedVersions(db);
  for (const m of [...list].sort((a, b) => a.version - b.version)) {
    if (applied.has(m.version)) continue;
    await db.kysely.transaction().execute(async (trx) => {
      await m.up(trx, db.dialect);
      await trx.insertInto('mairust_migrations').values({ version: m.version, name: m.name, applied_at: Date.now() }).execute();
    });
    done.push(m);
  }
  return done;
}

/** Rolls back the newest applied migration; refuses when it has no `down`. */
export async function migrateDown(db: Database, list: Migration[] = migrations): Promise<Migration | null> {
  const applied = await appliedVersions(db);
  const last = [...list].sort((a, b) => b.version - a.version).find((m) => applied.has(m.version));
  if (!last) return null;
  if (!last.down) throw new Error(`migration ${last.version}_${last.name} cannot be rolled back (no down step)`);
  await db.kysely.transaction().execute(async (trx) => {
    await last.down!(trx, db.dialect);
    await trx.deleteFrom('mairust_migrations').where('version', '=', last.version).execute();
  });
  return last;
}
