/**
 * Hand-off of submitted mail for remote recipients to the outbound queue (SPEC §3.2 step 3,
 * §3.3). The job is written inside the transaction that stores the message row, so it exists
 * exactly when the message does: no `250` for a job that a crash could lose, and no job that
 * points at a message that was never committed. Delivery itself is the outbound issue's worker;
 * until it exists the jobs wait visibly in `mairust queue list`.
 */
import type { Kysely } from 'kysely';
import type { Queue } from '../../queue/queue.js';
import type { DB } from '../../store/db/types.js';

export const OUTBOUND_QUEUE = 'outbound';

/** The payload of an `outbound` job (JSON in queue_jobs.payload_json). */
export interface OutboundJob {
  /** Tenant of the stored message (the row to read with a tenant scope). */
  tenantId: string;
  messageId: string;
  /** Envelope sender; null is never used for submissions (refused at MAIL FROM). */
  mailFrom: string | null;
  /** Remote recipients, as given in RCPT TO. */
  recipients: string[];
  /** The submitting user, for rate limits and the outbound policy (SPEC §8). */
  userId: string;
  /** The pipeline's queue id (the Received ID clause), to follow a message through the logs. */
  queueId: string;
}

/** Enqueues inside `trx`; call `wakeOutbound` after the commit. Returns the job id. */
export async function enqueueOutbound(queue: Queue, trx: Kysely<DB>, job: OutboundJob): Promise<string> {
  if (!queue.enqueueIn) throw new Error(`the ${queue.kind} queue cannot enqueue inside a database transaction`);
  // One job per stored message: a retried transaction (deadlock retry) never queues it twice.
  return queue.enqueueIn(trx, OUTBOUND_QUEUE, job, { dedupeKey: `outbound:${job.messageId}` });
}

export function wakeOutbound(queue: Queue): void {
  queue.wake?.(OUTBOUND_QUEUE);
}
