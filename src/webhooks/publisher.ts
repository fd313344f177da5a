/**
 * The producer side of event webhooks (SPEC §11): `publish(event, tenantId, data)` finds the
 * tenant's enabled subscriptions to `event` and enqueues one delivery job per subscription on the
 * `webhook` queue, with the retry policy of `webhooks.max_attempts` / `webhooks.backoff_seconds`.
 *
 * The event gets its id and time here, once: every retry of every subscription's delivery carries
 * the same `id` and `occurred_at`, so receivers can de-duplicate (delivery is at-least-once).
 *
 * With `trx`, the jobs are written in the caller's transaction (`queue.enqueueIn`), so an event
 * exists exactly when the change that caused it commits. The caller then wakes the workers after
 * its commit: `queue.wake?.(WEBHOOK_QUEUE)` (see Queue.enqueueIn); without that the jobs still run
 * at the next poll.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { WebhooksConfig } from '../config/sections/api.js';
import { newId, now, type Database } from '../store/db/database.js';
import type { DB } from '../store/db/types.js';
import type { Queue } from '../queue/queue.js';
import { errorText } from '../queue/errors.js';
import { webhookSubscribers } from './store.js';
import { WEBHOOK_EVENTS, type EventPublisher, type WebhookEvent } from './types.js';

export const WEBHOOK_QUEUE = 'webhook';

/**
 * Event data is a small description (ids, addresses, a subject), never a message body: the whole
 * delivery must fit a queue payload (256 KiB) and a receiver's patience.
 */
export const MAX_EVENT_DATA_BYTES = 64 * 1024;

/** The payload of one `webhook` job. */
export interface WebhookJobPayload {
  webhook_id: string;
  tenant_id: string;
  event: WebhookEvent;
  /** The event's id (UUID), the same for every subscription and every attempt. */
  event_id: string;
  /** ms since the epoch. */
  occurred_at: number;
  data: Record<string, unknown>;
}

export interface WebhookPublisherDeps {
  db: Database;
  queue: Queue;
  /** Read on every publish: `webhooks.*` keys are reloadable. */
  config: () => WebhooksConfig;
  logger?: Logger;
}

export class WebhookPublisher implements EventPublisher {
  private readonly log: Logger | undefined;

  constructor(private readonly deps: WebhookPublisherDeps) {
    // The composition root may hand over a logger already bound to this component.
    this.log = deps.logger && deps.logger.bindings().component === undefined ? deps.logger.child({ component: 'webhooks' }) : deps.logger;
  }

  /**
   * Never throws for problems of the event itself (unknown event, data too large: logged and
   * dropped). Without `trx`, storage errors are logged and swallowed too: a lost notification must
   * not fail the change that already happened. With `trx`, a storage error is rethrown — the
   * caller's transaction is broken by it anyway (PostgreSQL aborts it), and reporting it is the
   * only honest answer.
   */
  async publish(event: WebhookEvent, tenantId: string, data: Record<string, unknown>, trx?: Kysely<DB>): Promise<void> {
    if (!(WEBHOOK_EVENTS as readonly string[]).includes(event)) {
      this.log?.error({ event, tenantId }, 'unknown webhook event; not published');
      return;
    }
    let size: number;
    try {
      size = Buffer.byteLength(JSON.stringify(data ?? {}));
    } catch (err) {
      this.log?.error({ event, tenantId, err: errorText(err) }, 'webhook event data is not serialisable; not published');
      return;
    }
    if (size > MAX_EVENT_DATA_BYTES) {
      this.log?.error({ event, tenantId, bytes: size, max: MAX_EVENT_DATA_BYTES }, 'webhook event data too large; not published');
      return;
    }
    try {
      await this.enqueueAll(event, tenantId, data ?? {}, trx);
    } catch (err) {
      if (trx) throw err;
      this.log?.error({ event, tenantId, err: errorText(err) }, 'could not queue webhook deliveries');
    }
  }

  private async enqueueAll(event: WebhookEvent, tenantId: string, data: Record<string, unknown>, trx: Kysely<DB> | undefined): Promise<void> {
    const { queue } = this.deps;
    const subs = await webhookSubscribers(trx ?? this.deps.db.kysely, tenantId, event);
    if (subs.length === 0) return;
    if (trx && !queue.enqueueIn) throw new Error(`the ${queue.kind} queue cannot enqueue inside a database transaction`);
    const cfg = this.deps.config();
    const opts = { maxAttempts: cfg.max_attempts, backoffSeconds: [...cfg.backoff_seconds] };
    const eventId = newId();
    const occurredAt = now();
    for (const s of subs) {
      const payload: WebhookJobPayload = { webhook_id: s.id, tenant_id: tenantId, event, event_id: eventId, occurred_at: occurredAt, data };
      if (trx) await queue.enqueueIn!(trx, WEBHOOK_QUEUE, payload, opts);
      else await queue.enqueue(WEBHOOK_QUEUE, payload, opts);
    }
    this.log?.debug({ event, tenantId, eventId, subscriptions: subs.length }, 'webhook event queued');
  }
}
