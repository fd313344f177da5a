/**
 * Benchmark (not a test): SQLite text-index deletes and re-indexing, by scan (before migration
 * 0006) and through the rowid map `message_text_rowid` (after).
 *
 *   node --import tsx bench/text-index.ts [messages=20000]
 *
 * Builds a fresh SQLite database in a temporary directory with N messages indexed through
 * `writeTextIndex`, then times, on disjoint sets of messages:
 *  - deleting 500 ids in one call: the pre-0006 statement (`DELETE … WHERE message_id IN (…)`,
 *    which reads every FTS row) against `deleteTextIndex`;
 *  - deleting ids one call each (what discarding a single message does);
 *  - re-indexing a message: pre-0006 scan delete + insert against `writeTextIndex`.
 * Every timed operation runs in its own transaction, as in the server. Results go to stdout.
 */
import { join } from 'node:path';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { sql, type Kysely } from 'kysely';
import { openDatabase, newId } from '../src/store/db/database.js';
import { migrateUp } from '../src/store/db/migrator.js';
import type { DB } from '../src/store/db/types.js';
import { deleteTextIndex, searchText, writeTextIndex, type TextIndexRow } from '../src/core/search/text-index.js';
import { tenantScope } from '../src/core/scope.js';

const N = Number(process.argv[2] ?? 20_000);
if (!Number.isInteger(N) || N < 2_000) throw new Error(`messages must be an integer of at least 2000 (got ${process.argv[2]})`);
const BATCH = 500;
const SINGLES = 20;
const REINDEX = 50;

/** Deterministic pseudo-random numbers (mulberry32), so every run indexes the same text. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(42);
const WORDS = ['会議', '議事録', '見積書', '報告', '予定', '確認', 'お願い', 'meeting', 'report', 'invoice', 'schedule', 'project', 'update', 'review', 'budget', 'team'];
const words = (n: number) => Array.from({ length: n }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(' ');

function textRow(messageId: string, tenantId: string, n: number): TextIndexRow {
  return {
    messageId,
    tenantId,
    subject: `${words(4)} #${n}`,
    addresses: `user${n % 97}@example.jp\nteam${n % 13}@example.com`,
    body: words(120), // ≈ 1 KB of mixed Japanese and English, a short mail
  };
}

const ms = (t0: number) => performance.now() - t0;
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The pre-0006 delete: one statement per chunk, reading every FTS row for the UNINDEXED column. */
async function scanDelete(k: Kysely<DB>, ids: string[]): Promise<void> {
  await k.transaction().execute(async (trx) => {
    await trx.deleteFrom('message_text').where('message_id', 'in', ids).execute();
    // Not part of what the old code did, but keeps the map consistent for the rest of the run.
    await trx.deleteFrom('message_text_rowid').where('message_id', 'in', ids).execute();
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mairust-bench-'));
  const db = await openDatabase(`sqlite:${join(dir, 'bench.db')}`);
  try {
    await migrateUp(db);
    const k = db.kysely;
    const now = Date.now();
    const tenantId = newId();
    await k.insertInto('tenants').values({ id: tenantId, name: 'bench', status: 'active', plan: 'default', limits_json: '{}', legal_hold: 0, retention_days: null, used_bytes: 0, created_at: now, updated_at: now, deleted_at: null }).execute();

    const ids = Array.from({ length: N }, () => newId());
    let t0 = performance.now();
    for (let i = 0; i < N; i += 1000) {
      await k.transaction().execute(async (trx) => {
        for (let j = i; j < Math.min(i + 1000, N); j++) {
          await trx
            .insertInto('messages')
            .values({
              id: ids[j], tenant_id: tenantId, blob_key: `blob-${ids[j]}`, size: 1000, sha256: '0'.repeat(64), message_id_header: null, subject: null,
              from_addr: null, to_addrs: null, cc_addrs: null, date_header: null, preview: null, has_attachments: 0, attachments_json: '[]',
              structure_json: null, auth_results: null, spam_score: null, thread_id: null, received_at: now + j, created_at: now,
            })
            .execute();
          await writeTextIndex(trx, db.dialect, textRow(ids[j], tenantId, j));
        }
      });
    }
    const indexSeconds = ms(t0) / 1000;
    await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(k);
    const dbBytes = statSync(join(dir, 'bench.db')).size;

    // Disjoint sets, taken from across the table (not only the newest rows).
    const shuffled = [...ids];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
    }
    let next = 0;
    const take = (n: number) => shuffled.slice(next, (next += n));

    const results: [string, string, string][] = [];

    // 1. 500 ids in one call.
    const beforeBatch: number[] = [];
    const afterBatch: number[] = [];
    for (let round = 0; round < 3; round++) {
      const a = take(BATCH);
      t0 = performance.now();
      await scanDelete(k, a);
      beforeBatch.push(ms(t0));
      const b = take(BATCH);
      t0 = performance.now();
      await k.transaction().execute((trx) => deleteTextIndex(trx, db.dialect, b));
      afterBatch.push(ms(t0));
    }
    results.push([`delete ${BATCH} ids in one call (median of 3)`, `${fmt(median(beforeBatch))} ms`, `${fmt(median(afterBatch))} ms`]);

    // 2. One id per call.
    const beforeSingle: number[] = [];
    const afterSingle: number[] = [];
    for (let i = 0; i < SINGLES; i++) {
      const [a] = take(1);
      t0 = performance.now();
      await scanDelete(k, [a]);
      beforeSingle.push(ms(t0));
      const [b] = take(1);
      t0 = performance.now();
      await k.transaction().execute((trx) => deleteTextIndex(trx, db.dialect, [b]));
      afterSingle.push(ms(t0));
    }
    results.push([`delete 1 id per call (median of ${SINGLES})`, `${fmt(median(beforeSingle))} ms`, `${fmt(median(afterSingle))} ms`]);

    // 3. Re-indexing a message that is already indexed.
    const beforeWrite: number[] = [];
    const afterWrite: number[] = [];
    for (let i = 0; i < REINDEX; i++) {
      const [a] = take(1);
      t0 = performance.now();
      await k.transaction().execute(async (trx) => {
        await trx.deleteFrom('message_text').where('message_id', '=', a).execute();
        await trx.insertInto('message_text').values({ message_id: a, tenant_id: tenantId, subject: `reindexed ${i}`, addresses: '', body: words(120) }).execute();
      });
      beforeWrite.push(ms(t0));
      const [b] = take(1);
      t0 = performance.now();
      await k.transaction().execute((trx) => writeTextIndex(trx, db.dialect, { ...textRow(b, tenantId, i), subject: `reindexed ${i}` }));
      afterWrite.push(ms(t0));
    }
    results.push([`re-index 1 message (median of ${REINDEX})`, `${fmt(median(beforeWrite))} ms`, `${fmt(median(afterWrite))} ms`]);

    // Sanity: deleted messages are gone, re-indexed ones found once.
    const left = Number((await sql<{ n: number }>`SELECT count(*) AS n FROM message_text_rowid`.execute(k)).rows[0].n);
    const hits = await searchText(db, tenantScope(tenantId), { query: 'reindexed', limit: 10_000 });
    if (hits.length !== 2 * REINDEX) throw new Error(`expected ${2 * REINDEX} re-indexed messages, search found ${hits.length}`);

    console.log(`SQLite ${(await sql<{ v: string }>`SELECT sqlite_version() AS v`.execute(k)).rows[0].v}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`);
    console.log(`indexed ${N} messages in ${indexSeconds.toFixed(1)} s; database ${(dbBytes / 1e6).toFixed(0)} MB; ${left} messages left in the index`);
    console.log('');
    console.log('| operation | before (scan) | after (rowid map) |');
    console.log('|---|---:|---:|');
    for (const [op, before, after] of results) console.log(`| ${op} | ${before} | ${after} |`);
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
