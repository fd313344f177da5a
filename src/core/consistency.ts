/**
 * Consistency between metadata and blobs (SPEC §4 "Consistency", `mairust db check [--fix]`).
 *
 * - Orphan blob: in the blob store, referenced by no `messages` row. Left behind by a crash between
 *   a purge's commit and its blob delete, or by a delivery that wrote its blob and then failed before
 *   committing. Harmless but wasted space; `fix` deletes them. A blob younger than `minOrphanAgeMs`
 *   is not called an orphan: its delivery may be committing right now (blob first, rows second —
 *   "durable before acknowledged"), and deleting it would lose a message about to be acknowledged.
 * - Missing blob: a `messages` row whose blob is absent. Reported, never deleted automatically:
 *   silently losing the metadata (who sent what, when) is worse than a body that cannot be shown.
 *   The operator chooses: restore the blob from a backup (same key), or delete the message through
 *   the API/IMAP — the purge job then removes its row once retention has passed.
 *
 * Memory stays bounded: blobs are streamed from `list()` and checked against the database a page at
 * a time, and message rows are walked in key order a page at a time.
 */
import type { Database } from '../store/db/database.js';
import type { BlobStat, BlobStore } from '../store/blob/blob-store.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const PAGE = 500;
const STAT_CONCURRENCY = 8;
/** Longest list of problems returned; the counts are always complete. */
const MAX_REPORTED = 10_000;
export const DEFAULT_MIN_ORPHAN_AGE_MS = 60 * 60 * 1000;

export interface ConsistencyLogger {
  warn(obj: object, msg?: string): void;
}

export interface ConsistencyDeps {
  db: Database;
  blobs: BlobStore;
  logger?: ConsistencyLogger;
}

export interface ConsistencyOptions {
  /** Delete orphan blobs. Missing blobs are never "fixed". */
  fix: boolean;
  /** Unreferenced blobs younger than this are left alone (default 1 h). */
  minOrphanAgeMs?: number;
  /** The clock (ms); tests move it. */
  now?: number;
}

export interface MissingBlob {
  messageId: string;
  blobKey: string;
}

export interface ConsistencyReport {
  /** Orphan blob keys (at most 10 000 listed; see `orphanBlobCount`). */
  orphanBlobs: string[];
  orphanBlobCount: number;
  /** Rows whose blob is absent (at most 10 000 listed; see `missingBlobCount`). */
  missingBlobs: MissingBlob[];
  missingBlobCount: number;
  /** Unreferenced blobs not yet old enough (or of unknown age) to be called orphans. */
  recentUnreferencedBlobs: number;
  blobsChecked: number;
  blobKeysChecked: number;
  fixed: { orphanBlobsDeleted: number };
}

/** Problems that are still there after the check (what `db check` exits 1 for). */
export function remainingProblems(report: ConsistencyReport): number {
  return report.orphanBlobCount - report.fixed.orphanBlobsDeleted + report.missingBlobCount;
}

/**
 * The latest moment the blob can have been written: its modification time when the adapter reports
 * one, else the end of the UTC day in its key (`newBlobKey`: kind/YYYY/MM/DD/random); null = unknown.
 */
function latestWriteTime(stat: BlobStat): number | null {
  const modified = (stat as BlobStat & { modifiedAt?: unknown }).modifiedAt;
  if (typeof modified === 'number' && Number.isFinite(modified)) return modified;
  const m = /^[a-z0-9][a-z0-9-]*\/(\d{4})\/(\d{2})\/(\d{2})\//.exec(stat.key);
  if (!m) return null;
  const dayStart = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return Number.isNaN(dayStart) ? null : dayStart + DAY_MS;
}

export async function checkConsistency(deps: ConsistencyDeps, opts: ConsistencyOptions): Promise<ConsistencyReport> {
  const minAge = opts.minOrphanAgeMs ?? DEFAULT_MIN_ORPHAN_AGE_MS;
  if (!Number.isFinite(minAge) || minAge < 0) throw new RangeError(`db check: minOrphanAgeMs must be ≥ 0 (got ${minAge})`);
  const now = opts.now ?? Date.now();
  const report: ConsistencyReport = {
    orphanBlobs: [],
    orphanBlobCount: 0,
    missingBlobs: [],
    missingBlobCount: 0,
    recentUnreferencedBlobs: 0,
    blobsChecked: 0,
    blobKeysChecked: 0,
    fixed: { orphanBlobsDeleted: 0 },
  };
  await findOrphanBlobs(deps, report, { fix: opts.fix, minAge, now });
  await findMissingBlobs(deps, report);
  return report;
}

async function findOrphanBlobs(deps: ConsistencyDeps, report: ConsistencyReport, o: { fix: boolean; minAge: number; now: number }): Promise<void> {
  let page: BlobStat[] = [];
  const flush = async () => {
    const stats = page;
    page = [];
    if (stats.length === 0) return;
    report.blobsChecked += stats.length;
    const rows = await deps.db.kysely
      .selectFrom('messages')
      .select('blob_key')
      .distinct()
      .where('blob_key', 'in', stats.map((s) => s.key))
      .execute();
    const referenced = new Set(rows.map((r) => r.blob_key));
    for (const stat of stats) {
      if (referenced.has(stat.key)) continue;
      const written = latestWriteTime(stat);
      // With no minimum age every unreferenced blob counts; otherwise its age must be provable.
      const oldEnough = o.minAge === 0 || (written !== null && o.now - written >= o.minAge);
      if (!oldEnough) {
        report.recentUnreferencedBlobs++;
        continue;
      }
      report.orphanBlobCount++;
      if (report.orphanBlobs.length < MAX_REPORTED) report.orphanBlobs.push(stat.key);
      if (o.fix) {
        await deps.blobs.delete(stat.key);
        report.fixed.orphanBlobsDeleted++;
      }
    }
  };
  // Only message blobs (`msg/…`, newBlobKey): other kinds (plugin archives) have their own owners.
  for await (const stat of deps.blobs.list('msg/')) {
    page.push(stat);
    if (page.length >= PAGE) await flush();
  }
  await flush();
}

async function findMissingBlobs(deps: ConsistencyDeps, report: ConsistencyReport): Promise<void> {
  const { db, blobs } = deps;
  let after: string | null = null;
  for (;;) {
    let q = db.kysely.selectFrom('messages').select('blob_key').distinct().orderBy('blob_key').limit(PAGE);
    if (after !== null) q = q.where('blob_key', '>', after);
    const keys = (await q.execute()).map((r) => r.blob_key);
    if (keys.length === 0) return;
    after = keys[keys.length - 1];
    report.blobKeysChecked += keys.length;

    const absent = await mapLimit(keys, STAT_CONCURRENCY, async (key) => ((await blobs.stat(key)) === null ? key : null));
    const absentKeys = absent.filter((k): k is string => k !== null);
    if (absentKeys.length > 0) {
      // Read the rows after the stat: a row the purge removed meanwhile (rows first, then blob) is
      // no longer there and so is not reported as a false "missing".
      const rows = await db.kysely.selectFrom('messages').select(['id', 'blob_key']).where('blob_key', 'in', absentKeys).orderBy('id').execute();
      for (const r of rows) {
        report.missingBlobCount++;
        if (report.missingBlobs.length < MAX_REPORTED) report.missingBlobs.push({ messageId: r.id, blobKey: r.blob_key });
        deps.logger?.warn({ component: 'db-check', message_id: r.id, blob_key: r.blob_key }, 'message blob is missing');
      }
    }
    if (keys.length < PAGE) return;
  }
}

/** `fn` over `items` with at most `limit` calls in flight; results in input order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
