/**
 * Retry schedules (SPEC §2 "Queue in the first release", §3.1 step 7: post_receive retries after
 * 30 s, 2 min, 10 min). A schedule is a list of delays in seconds: entry 0 is the wait before the
 * second attempt, entry 1 before the third, and so on; the last entry repeats for every later attempt,
 * so a short list still covers a long `maxAttempts` (SPEC §3.3: "… 2 h, 4 h … up to 5 days").
 *
 * Pure functions only: the queue adapter stores the schedule with each job and asks here when to run
 * it again.
 */

/** More entries than this is a configuration mistake, not a schedule. */
export const MAX_BACKOFF_ENTRIES = 100;
/** One delay may not exceed 30 days: a job waiting longer is better dead-lettered and looked at. */
export const MAX_BACKOFF_SECONDS = 30 * 24 * 3600;
/** Attempts per job; the config schema allows the same range for `queue.default_max_attempts`. */
export const MAX_ATTEMPTS_LIMIT = 1000;

/** Throws a RangeError naming the first bad entry; returns the schedule unchanged when it is valid. */
export function validateBackoff(schedule: readonly number[]): readonly number[] {
  if (!Array.isArray(schedule) || schedule.length === 0) {
    throw new RangeError('backoff schedule must be a non-empty list of delays in seconds');
  }
  if (schedule.length > MAX_BACKOFF_ENTRIES) {
    throw new RangeError(`backoff schedule has ${schedule.length} entries; at most ${MAX_BACKOFF_ENTRIES} are allowed`);
  }
  schedule.forEach((s, i) => {
    if (typeof s !== 'number' || !Number.isFinite(s) || s < 0) {
      throw new RangeError(`backoff schedule entry ${i} must be a number of seconds >= 0 (got ${String(s)})`);
    }
    if (s > MAX_BACKOFF_SECONDS) {
      throw new RangeError(`backoff schedule entry ${i} is ${s} s; at most ${MAX_BACKOFF_SECONDS} s (30 days) is allowed`);
    }
  });
  return schedule;
}

export function validateMaxAttempts(maxAttempts: number): number {
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > MAX_ATTEMPTS_LIMIT) {
    throw new RangeError(`maxAttempts must be an integer from 1 to ${MAX_ATTEMPTS_LIMIT} (got ${String(maxAttempts)})`);
  }
  return maxAttempts;
}

/**
 * Milliseconds to wait after attempt `failedAttempt` (1-based) failed, before the next one.
 * Attempt 1 failing uses entry 0; attempts past the end of the schedule reuse its last entry.
 */
export function backoffDelayMs(schedule: readonly number[], failedAttempt: number): number {
  validateBackoff(schedule);
  if (!Number.isInteger(failedAttempt) || failedAttempt < 1) {
    throw new RangeError(`failedAttempt must be an integer >= 1 (got ${String(failedAttempt)})`);
  }
  const index = Math.min(failedAttempt - 1, schedule.length - 1);
  return Math.round(schedule[index] * 1000);
}

/** Reads a schedule stored as JSON with a job; a damaged value falls back to `fallback`. */
export function parseBackoff(json: string, fallback: readonly number[]): readonly number[] {
  try {
    const parsed: unknown = JSON.parse(json);
    if (Array.isArray(parsed)) return validateBackoff(parsed as number[]);
  } catch {
    // fall through: a job must still be retried (or dead-lettered) even if its schedule is unreadable
  }
  return fallback;
}
