/**
 * The state changes of a job record, as pure functions for `RecordStore.mutate`: each returns the
 * next record, or null when the record is not in the state the change requires. They mirror the
 * fenced statements of ../claim.ts one for one, so both adapters share one life cycle:
 *
 *   ready ──claim──▶ running ──complete──▶ done
 *     ▲                 │ fail (attempts left) ──▶ ready at run_at + backoff
 *     │                 │ fail (none left, or permanent) ──▶ dead
 *     └──release/retry──┘ lease expired on the last attempt ──▶ dead
 */
import { MAX_ERROR_CHARS, type Lease } from '../claim.js';
import type { JobRecord } from './records.js';

/** Ready and due, or running under an expired lease with attempts left (a crashed worker's job). */
export function isClaimable(r: JobRecord, at: number): boolean {
  if (r.status === 'ready') return Number(r.run_at) <= at;
  return r.status === 'running' && r.locked_until !== null && Number(r.locked_until) < at && Number(r.attempts) < Number(r.max_attempts);
}

export function isExpiredOnLastAttempt(r: JobRecord, at: number): boolean {
  return r.status === 'running' && r.locked_until !== null && Number(r.locked_until) < at && Number(r.attempts) >= Number(r.max_attempts);
}

/** The fence: same job, still running, same worker, same attempt (see ../claim.ts). */
function holds(r: JobRecord, lease: Lease): boolean {
  return r.status === 'running' && r.locked_by === lease.workerId && Number(r.attempts) === lease.attempts;
}

export const claim = (workerId: string, leaseMs: number, at: number) => (r: JobRecord): JobRecord | null =>
  isClaimable(r, at)
    ? { ...r, status: 'running', locked_by: workerId, locked_until: at + leaseMs, attempts: Number(r.attempts) + 1, updated_at: at }
    : null;

export const renew = (lease: Lease, leaseMs: number, at: number) => (r: JobRecord): JobRecord | null =>
  holds(r, lease) ? { ...r, locked_until: at + leaseMs, updated_at: at } : null;

export const complete = (lease: Lease, at: number) => (r: JobRecord): JobRecord | null =>
  holds(r, lease) ? { ...r, status: 'done', locked_by: null, locked_until: null, updated_at: at, finished_at: at } : null;

/**
 * `retryAt` null: dead. Otherwise ready again at `retryAt`; `notified_at` says whether the caller
 * arranges the hint itself (an immediate retry re-delivers the message at once) or leaves it to the
 * scheduler (a delayed one).
 */
export const fail = (lease: Lease, args: { error: string; retryAt: number | null; now: number; notifiedAt: number | null }) => (r: JobRecord): JobRecord | null => {
  if (!holds(r, lease)) return null;
  const error = args.error.length > MAX_ERROR_CHARS ? `${args.error.slice(0, MAX_ERROR_CHARS - 1)}…` : args.error;
  const base = { ...r, locked_by: null, locked_until: null, last_error: error, updated_at: args.now };
  return args.retryAt === null
    ? { ...base, status: 'dead', finished_at: args.now }
    : { ...base, status: 'ready', run_at: args.retryAt, notified_at: args.notifiedAt };
};

/** Graceful stop hands the job back due now; the attempt is not counted (this node went away). */
export const release = (lease: Lease, at: number) => (r: JobRecord): JobRecord | null =>
  holds(r, lease)
    ? { ...r, status: 'ready', locked_by: null, locked_until: null, run_at: at, attempts: Number(r.attempts) - 1, updated_at: at, notified_at: at }
    : null;

export const deadLetterExpired = (at: number) => (r: JobRecord): JobRecord | null =>
  isExpiredOnLastAttempt(r, at)
    ? {
        ...r,
        status: 'dead',
        locked_by: null,
        locked_until: null,
        last_error: 'lease expired on the last attempt: the worker stopped responding',
        updated_at: at,
        finished_at: at,
      }
    : null;

/** `mairust queue retry`: a waiting or dead job becomes due now; a dead one gets its attempts back. */
export const retryNow = (at: number) => (r: JobRecord): JobRecord | null =>
  r.status === 'ready' || r.status === 'dead'
    ? { ...r, status: 'ready', run_at: at, attempts: r.status === 'dead' ? 0 : Number(r.attempts), finished_at: null, updated_at: at, notified_at: at }
    : null;

/** Marks a hint as published now (the scheduler's claim on publishing it: one node wins). */
export const noted = (expect: (r: JobRecord) => boolean, at: number) => (r: JobRecord): JobRecord | null =>
  expect(r) ? { ...r, notified_at: at } : null;
