/**
 * Job records in the JetStream KV bucket: one key `job.<id>` per job, whose value is the JSON of the
 * same row the database adapter stores (job-row.ts builds it, `toJob` reads it) plus `notified_at`.
 *
 * Every change is a compare-and-set on the key's revision (`kv.update(key, value, revision)`):
 * `mutate` reads the record, lets a pure function decide the new one from what it read, and writes
 * it only if nobody wrote in between, re-reading and deciding again on a conflict. That is how the
 * fenced SQL of ../claim.ts is expressed here: a claim, a lease renewal or a result is applied only
 * while the record still says what the caller expects, so two workers can never both claim one job.
 */
import type { KV, KvEntry } from 'nats';
import type { JobRow } from '../claim.js';
import { JOB_KEYS, jobKey } from './names.js';

/**
 * `notified_at`: when a message (a due-work hint) for the record's current state was last published,
 * or null when none was (a delayed job before it is due). The scheduler publishes due jobs whose
 * hint is missing or long overdue (see ./scheduler.ts).
 */
export type JobRecord = JobRow & { notified_at: number | null };

/** How often `mutate` re-reads and retries after losing a compare-and-set race. */
const MUTATE_TRIES = 20;
/** A full read of the bucket that has not caught up by then is reported as an error, not awaited forever. */
const SNAPSHOT_TIMEOUT_MS = 30_000;

/** JetStream's "wrong last sequence" error: the compare-and-set lost the race. */
export function isRevisionConflict(err: unknown): boolean {
  return (err as { api_error?: { err_code?: number } } | null)?.api_error?.err_code === 10071;
}

export function encodeRecord(r: JobRecord): Uint8Array {
  return Buffer.from(JSON.stringify(r));
}

/** A value that is not a job record (damaged, or written by something else) reads as null. */
export function decodeRecord(value: Uint8Array): JobRecord | null {
  try {
    const r = JSON.parse(Buffer.from(value).toString('utf8')) as JobRecord;
    if (typeof r !== 'object' || r === null || typeof r.id !== 'string' || typeof r.queue !== 'string') return null;
    if (r.notified_at === undefined) r.notified_at = null;
    return r;
  } catch {
    return null;
  }
}

function livePut(e: KvEntry | null): e is KvEntry {
  return e !== null && e.operation === 'PUT';
}

export class RecordStore {
  constructor(readonly kv: KV) {}

  async read(id: string): Promise<{ record: JobRecord; revision: number } | null> {
    const e = await this.kv.get(jobKey(id));
    if (!livePut(e)) return null;
    const record = decodeRecord(e.value);
    return record ? { record, revision: e.revision } : null;
  }

  /** Writes a new record; false when the key already holds one. */
  async create(record: JobRecord): Promise<boolean> {
    try {
      await this.kv.create(jobKey(record.id), encodeRecord(record));
      return true;
    } catch (err) {
      if (isRevisionConflict(err)) return false;
      throw err;
    }
  }

  /**
   * Applies `change` atomically: `change` gets the current record and returns the next one, or null
   * to leave it alone (the record is not in the state the caller expects). Returns the written
   * record, or null when there was no record or `change` declined.
   */
  async mutate(id: string, change: (r: JobRecord) => JobRecord | null): Promise<JobRecord | null> {
    for (let i = 0; i < MUTATE_TRIES; i++) {
      const cur = await this.read(id);
      if (!cur) return null;
      const next = change(cur.record);
      if (!next) return null;
      try {
        await this.kv.update(jobKey(id), encodeRecord(next), cur.revision);
        return next;
      } catch (err) {
        if (!isRevisionConflict(err)) throw err;
        // Someone wrote in between: decide again on what they wrote.
      }
    }
    throw new Error(`job ${id} kept changing under us; giving up after ${MUTATE_TRIES} tries`);
  }

  /** Deletes the record when `accept` agrees with what it holds (compare-and-set on the revision). */
  async remove(id: string, accept: (r: JobRecord | null) => boolean = () => true): Promise<JobRecord | null | false> {
    for (let i = 0; i < MUTATE_TRIES; i++) {
      const e = await this.kv.get(jobKey(id));
      if (!livePut(e)) return false;
      const record = decodeRecord(e.value);
      if (!accept(record)) return false;
      try {
        await this.kv.delete(jobKey(id), { previousSeq: e.revision });
        return record;
      } catch (err) {
        if (!isRevisionConflict(err)) throw err;
      }
    }
    throw new Error(`job ${id} kept changing under us; giving up after ${MUTATE_TRIES} tries`);
  }

  /**
   * Every job record as of now (for list, stats, purge): an ordered read of the bucket's latest
   * values that ends once it has caught up with the bucket, so a write made before the call is seen.
   */
  async snapshot(): Promise<JobRecord[]> {
    let iter: Awaited<ReturnType<KV['watch']>> | undefined;
    let caughtUp = false;
    // No `ignoreDeletes`: the client counts only delivered entries towards "caught up", so a bucket
    // whose newest entry is a delete marker would never report it. Markers are skipped below.
    iter = await this.kv.watch({
      key: JOB_KEYS,
      initializedFn: () => {
        // May run inside `watch()` already (nothing to wait for): then stop right after it returns.
        if (iter) iter.stop();
        else caughtUp = true;
      },
    });
    if (caughtUp) iter.stop();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      iter?.stop();
    }, SNAPSHOT_TIMEOUT_MS);
    const out: JobRecord[] = [];
    try {
      for await (const e of iter) {
        if (e.operation !== 'PUT') continue;
        const r = decodeRecord(e.value);
        if (r) out.push(r);
      }
    } finally {
      clearTimeout(timer);
    }
    if (timedOut) throw new Error(`reading the job records of jobs bucket timed out after ${SNAPSHOT_TIMEOUT_MS} ms`);
    return out;
  }
}
