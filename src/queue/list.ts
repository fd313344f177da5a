/**
 * Paging through jobs for inspection (`mairust queue list`): oldest first, ordered by (created_at, id)
 * so a keyset cursor never skips or repeats a job while new ones are added.
 */
import type { Kysely } from 'kysely';
import type { DB, JobStatus } from '../store/db/types.js';
import type { Job } from './queue.js';
import { toJob } from './job-row.js';

export const MAX_LIST_LIMIT = 1000;
export const DEFAULT_LIST_LIMIT = 50;
const STATUSES: readonly JobStatus[] = ['ready', 'running', 'done', 'dead'];

export interface ListFilter {
  queue?: string;
  status?: JobStatus;
  limit?: number;
  cursor?: string;
}

export async function listJobs(db: Kysely<DB>, filter: ListFilter): Promise<{ jobs: Job[]; cursor: string | null }> {
  const limit = filter.limit ?? DEFAULT_LIST_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new RangeError(`limit must be an integer from 1 to ${MAX_LIST_LIMIT} (got ${String(limit)})`);
  }
  if (filter.status !== undefined && !STATUSES.includes(filter.status)) {
    throw new RangeError(`status must be one of ${STATUSES.join(', ')} (got ${JSON.stringify(filter.status)})`);
  }
  let q = db.selectFrom('queue_jobs').selectAll();
  if (filter.queue !== undefined) q = q.where('queue', '=', filter.queue);
  if (filter.status !== undefined) q = q.where('status', '=', filter.status);
  if (filter.cursor) {
    const c = decodeCursor(filter.cursor);
    q = q.where((eb) => eb.or([eb('created_at', '>', c.createdAt), eb.and([eb('created_at', '=', c.createdAt), eb('id', '>', c.id)])]));
  }
  // One row more than asked tells whether another page exists without a COUNT.
  const rows = await q.orderBy('created_at').orderBy('id').limit(limit + 1).execute();
  const page = rows.slice(0, limit);
  return { jobs: page.map((r) => toJob(r, true)), cursor: rows.length > limit ? encodeCursor(page[page.length - 1]) : null };
}

/** Opaque to callers: the last row's (created_at, id), base64url so it survives a command line. */
export function encodeCursor(row: { created_at: number; id: string }): string {
  return Buffer.from(JSON.stringify([Number(row.created_at), row.id])).toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: number; id: string } {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && Number.isFinite(v[0]) && typeof v[1] === 'string') return { createdAt: v[0], id: v[1] };
  } catch {
    // reported below
  }
  throw new RangeError('invalid cursor: pass back the cursor returned by the previous list call');
}
