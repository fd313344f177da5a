/**
 * Event webhooks (SPEC §11): MaiRust → external HTTPS endpoints, signed like hook calls (SPEC §6).
 * Producers call `publish`; one queue job per matching subscription delivers it with retries.
 */
import type { Kysely } from 'kysely';
import type { DB } from '../store/db/types.js';

export const WEBHOOK_EVENTS = ['message.received', 'message.sent', 'message.bounced', 'user.created', 'plugin.error', 'account.suspended'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export interface EventPublisher {
  /**
   * Queues `event` for every enabled webhook of `tenantId` subscribed to it. With `trx` the jobs
   * commit with the change that caused the event; never throws for delivery problems.
   */
  publish(event: WebhookEvent, tenantId: string, data: Record<string, unknown>, trx?: Kysely<DB>): Promise<void>;
}
