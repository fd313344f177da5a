/**
 * Names of the JetStream objects the NATS queue adapter uses (see ../nats-queue.ts for the design).
 *
 * Everything hangs off one optional `namespace`, so several independent queues (test suites running
 * in parallel, two MaiRust installations sharing a NATS account) never see one another: a stream's
 * subjects may not overlap another stream's, so the subject prefix carries the namespace too.
 */
import { createHash } from 'node:crypto';

/** Namespaces become parts of stream, bucket and subject names: plain tokens only. */
const NAMESPACE = /^[A-Za-z0-9_-]{1,32}$/;

export interface NatsNames {
  /** The WorkQueue stream of due-work hints. */
  stream: string;
  /** The KV bucket holding the job records. */
  bucket: string;
  /** Subjects are `<subjectPrefix>.<queue>`. */
  subjectPrefix: string;
}

export function natsNames(namespace?: string): NatsNames {
  if (namespace === undefined || namespace === '') {
    return { stream: 'MAIRUST_JOBS', bucket: 'mairust_jobs', subjectPrefix: 'mairust.jobs' };
  }
  if (!NAMESPACE.test(namespace)) {
    throw new RangeError(`namespace must be 1–32 letters, digits, '_' or '-' (got ${JSON.stringify(namespace)})`);
  }
  return { stream: `MAIRUST_JOBS_${namespace}`, bucket: `mairust_jobs_${namespace}`, subjectPrefix: `mairust.${namespace}.jobs` };
}

/**
 * Queue names (validated by job-row.ts: letters, digits, '.', '_', ':', '-') are valid subject
 * tokens as they are; a '.' merely adds a token, and consumers filter on the exact subject.
 */
export function subjectFor(names: NatsNames, queue: string): string {
  return `${names.subjectPrefix}.${queue}`;
}

/**
 * Durable consumer names may not contain '.', so every character outside [A-Za-z0-9-] is written as
 * `_` + two hex digits; the mapping stays one-to-one ('_' itself is escaped too).
 */
export function consumerFor(queue: string): string {
  return `q_${queue.replace(/[^A-Za-z0-9-]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}`;
}

/** Job ids are uuids (or other plain tokens), valid KV key tokens as they are. */
const JOB_ID = /^[A-Za-z0-9_-]{1,200}$/;

export function isValidJobId(id: string): boolean {
  return typeof id === 'string' && JOB_ID.test(id);
}

export function jobKey(id: string): string {
  return `job.${id}`;
}

export const JOB_KEYS = 'job.>';

/** Dedupe keys are free text (up to 200 characters); the KV key is their SHA-256. */
export function dedupeKeyFor(dedupeKey: string): string {
  return `dedupe.${createHash('sha256').update(dedupeKey).digest('hex')}`;
}
