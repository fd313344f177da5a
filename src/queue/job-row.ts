/**
 * A job as stored (`queue_jobs` row) and as handed out (`Job`): building a new row from an enqueue
 * call, with every limit checked before anything touches the database, and reading a row back.
 */
import { newId } from '../store/db/database.js';
import type { EnqueueOptions, Job } from './queue.js';
import { validateBackoff, validateMaxAttempts } from './backoff.js';
import type { JobRow } from './claim.js';

/**
 * Payloads describe work (ids, blob keys, addresses), never message bodies, which belong in the blob
 * store. 256 KiB leaves room for large recipient lists while keeping rows small.
 */
export const MAX_PAYLOAD_BYTES = 256 * 1024;
export const MAX_DEDUPE_KEY_CHARS = 200;
/** Longest allowed enqueue delay: a year. Anything later is almost certainly a unit mistake (s vs ms). */
export const MAX_DELAY_MS = 365 * 24 * 3600 * 1000;
/**
 * Queue names travel as NOTIFY payloads and show up in metrics labels, so they are short plain tokens
 * (e.g. `outbound`, `hooks.post_receive`).
 */
const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/;

export function validateQueueName(queue: string): void {
  if (typeof queue !== 'string' || !QUEUE_NAME.test(queue)) {
    throw new RangeError(`queue name must be 1–100 characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit (got ${JSON.stringify(queue)})`);
  }
}

/** What a job gets when its enqueue call does not say: the queue's current settings. */
export interface JobDefaults {
  maxAttempts: number;
  backoffSeconds: readonly number[];
}

/**
 * Validates an enqueue call and returns the row to insert (status `ready`, due at `at + delayMs`).
 * Throws a RangeError/TypeError naming the limit; it never touches the database, so a refused job
 * cannot abort a caller's PostgreSQL transaction (see `DatabaseQueue.enqueueIn`).
 */
export function newJobRow(queue: string, payload: unknown, opts: EnqueueOptions, defaults: JobDefaults, at: number): JobRow {
  validateQueueName(queue);
  const json = JSON.stringify(payload);
  if (json === undefined) throw new TypeError('job payload must be a JSON value (got undefined or a function)');
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_PAYLOAD_BYTES) {
    throw new RangeError(`job payload is ${bytes} bytes; at most ${MAX_PAYLOAD_BYTES} are allowed (put large data in the blob store and enqueue its key)`);
  }
  const delayMs = opts.delayMs ?? 0;
  if (!Number.isFinite(delayMs) || delayMs < 0 || delayMs > MAX_DELAY_MS) {
    throw new RangeError(`delayMs must be from 0 to ${MAX_DELAY_MS} (got ${String(delayMs)})`);
  }
  const maxAttempts = validateMaxAttempts(opts.maxAttempts ?? defaults.maxAttempts);
  const backoff = validateBackoff(opts.backoffSeconds ?? defaults.backoffSeconds);
  const dedupeKey = opts.dedupeKey ?? null;
  if (dedupeKey !== null && (typeof dedupeKey !== 'string' || dedupeKey.length === 0 || dedupeKey.length > MAX_DEDUPE_KEY_CHARS)) {
    throw new RangeError(`dedupeKey must be a non-empty string of at most ${MAX_DEDUPE_KEY_CHARS} characters`);
  }
  if (opts.id !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(opts.id)) {
    throw new RangeError('id must be a lower-case UUID');
  }
  return {
    id: opts.id ?? newId(),
    queue,
    payload_json: json,
    status: 'ready',
    attempts: 0,
    max_attempts: maxAttempts,
    backoff_json: JSON.stringify(backoff),
    run_at: at + Math.round(delayMs),
    locked_by: null,
    locked_until: null,
    last_error: null,
    dedupe_key: dedupeKey,
    created_at: at,
    updated_at: at,
    finished_at: null,
  };
}

/**
 * Row → Job. PostgreSQL returns bigint columns as numbers (see database.ts) and SQLite as numbers
 * already; `Number()` keeps both exact below 2^53.
 *
 * `lenient`: inspection (list/show) must still work for a damaged row, so an unreadable payload comes
 * back as its raw text; a worker passes false and treats the throw as a failed attempt.
 */
export function toJob(row: JobRow, lenient: boolean): Job {
  let payload: unknown;
  try {
    payload = JSON.parse(row.payload_json);
  } catch (err) {
    if (!lenient) throw new Error(`job ${row.id} has an unreadable payload: ${(err as Error).message}`);
    payload = row.payload_json;
  }
  return {
    id: row.id,
    queue: row.queue,
    payload,
    status: row.status,
    attempts: Number(row.attempts),
    maxAttempts: Number(row.max_attempts),
    runAt: Number(row.run_at),
    lastError: row.last_error,
    lockedBy: row.locked_by,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
  };
}
