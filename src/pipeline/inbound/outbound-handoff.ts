/**
 * Hand-off of submitted mail for remote recipients to the outbound queue (SPEC §3.2 step 3,
 * §3.3). The queue record (outbound_messages + outbound_recipients, src/outbound/records.ts) and
 * its `outbound` job are written inside the transaction that stores the message row, so they exist
 * exactly when the message does: no `250` for a job that a crash could lose, and no job that points
 * at a message that was never committed. The worker is src/outbound/delivery/worker.ts.
 */
import type { Kysely } from 'kysely';
import type { Queue } from '../../queue/queue.js';
import type { DB } from '../../store/db/types.js';
import { createOutboundRecord, OUTBOUND_QUEUE, type RetryConfig } from '../../outbound/records.js';

export { OUTBOUND_QUEUE };

/** What the commit stage hands over for one submission with remote recipients. */
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
  /** The pipeline's queue id (the Received ID clause): also the queue record's id. */
  queueId: string;
  /** Size of the stored message in bytes. */
  size?: number;
  /** The policy decision, stored with the record (SPEC §8 "every decision explained"). */
  policy?: unknown;
  /** A soft-limited message waits this long before its first attempt (SPEC §8). */
  delayMs?: number;
  /** Retry schedule in force (config `outbound`); the defaults of SPEC §3.3 otherwise. */
  retry?: RetryConfig;
}

/** Writes the queue record and its job inside `trx`; call `wakeOutbound` after the commit. Returns the job id. */
export async function enqueueOutbound(queue: Queue, trx: Kysely<DB>, job: OutboundJob): Promise<string> {
  return createOutboundRecord(queue, trx, {
    id: job.queueId,
    tenantId: job.tenantId,
    messageId: job.messageId,
    userId: job.userId,
    mailFrom: job.mailFrom ?? '',
    recipients: job.recipients,
    size: job.size ?? 0,
    policy: job.policy,
    delayMs: job.delayMs,
    retry: job.retry,
  });
}

export function wakeOutbound(queue: Queue): void {
  queue.wake?.(OUTBOUND_QUEUE);
}
