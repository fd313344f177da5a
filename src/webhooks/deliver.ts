/**
 * The consumer side of event webhooks (SPEC §11): the `webhook` queue's handler POSTs one signed
 * event to one subscription.
 *
 *   body     {"id","event","occurred_at","tenant_id","data"} (JSON; `id` is the event id, the same
 *            on every retry, so receivers can de-duplicate)
 *   headers  X-MaiRust-Webhook-Id, X-MaiRust-Timestamp, X-MaiRust-Signature (./signature.ts),
 *            X-MaiRust-Event, X-MaiRust-Attempt
 *
 * Outcomes:
 *   - 2xx: delivered (the job is done);
 *   - 410 Gone: the endpoint says it is gone for good (RFC 9110 §15.5.11): the webhook is disabled
 *     (audited) and the job fails permanently;
 *   - any other status, a redirect (never followed), a timeout (`webhooks.timeout_ms` for the
 *     whole HTTP exchange, TLS included), a connection, TLS or DNS failure: the job fails and the
 *     queue retries it on `webhooks.backoff_seconds` until `webhooks.max_attempts`, then
 *     dead-letters it;
 *   - a destination that resolves to a loopback/private/link-local/unique-local address while
 *     `webhooks.allow_private_addresses` is off is refused before connecting (./egress.ts); that
 *     is a permanent failure.
 * The last outcome of a delivery is what the queue keeps in the job row (`status`, `attempts`,
 * `last_error`, `finished_at`); no webhook column records it.
 *
 * Permanent failures throw an error with `permanent = true`, which the queue worker dead-letters at
 * once (src/queue/errors.ts isPermanentError) instead of spending the remaining attempts.
 */
import type { Logger } from 'pino';
import type { WebhooksConfig } from '../config/sections/api.js';
import type { DnsResolver } from '../dns/index.js';
import { tenantScope, type Scope } from '../core/scope.js';
import { newId, now } from '../store/db/database.js';
import type { Job, Queue } from '../queue/queue.js';
import { errorText } from '../queue/errors.js';
import { bareHost, EgressRefusedError, pinnedPostOptions, resolveEgress } from './egress.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, WEBHOOK_ID_HEADER, signWebhook } from './signature.js';
import { redactUrl, type WebhookStore } from './store.js';
import { WEBHOOK_QUEUE, type WebhookJobPayload } from './publisher.js';
import { WEBHOOK_EVENTS } from './types.js';

export const USER_AGENT = 'MaiRust-Webhooks/1';
/** Response bytes read (and discarded) before the connection is cut: only the status matters. */
const MAX_RESPONSE_BYTES = 64 * 1024;
/** The event of `POST /webhooks/:id/test`; never queued, never subscribed to. */
export const TEST_EVENT = 'webhook.test';

export interface WebhookDeliveryDeps {
  store: WebhookStore;
  /** The application's resolver: destinations are resolved (and checked) through it. */
  resolver: DnsResolver;
  /** Read on every delivery: `webhooks.*` keys are reloadable. */
  config: () => WebhooksConfig;
  logger?: Logger;
}

/** A failed delivery. `permanent`: retrying cannot help. */
export class WebhookDeliveryError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly permanent: boolean,
  ) {
    super(message);
    this.name = 'WebhookDeliveryError';
  }
}

export interface DeliveryEnvelope {
  eventId: string;
  event: string;
  occurredAt: number;
  tenantId: string;
  data: Record<string, unknown>;
}

/** The request body (SPEC §11 event): exactly these five fields. */
export function deliveryBody(e: DeliveryEnvelope): string {
  return JSON.stringify({ id: e.eventId, event: e.event, occurred_at: new Date(e.occurredAt).toISOString(), tenant_id: e.tenantId, data: e.data });
}

export interface PostTarget {
  webhookId: string;
  url: string;
  secret: Buffer;
}

export interface PostResult {
  status: number;
  durationMs: number;
}

/**
 * One signed POST of `body` to `target.url`: egress check on the resolved addresses, connection
 * pinned to the checked address, `timeoutMs` for the HTTP exchange (the lookup has the resolver's
 * own timeout). Resolves with the HTTP status of any answer; rejects on refusal
 * (EgressRefusedError), DNS or network failure, timeout, or `signal`.
 */
export async function postSigned(
  deps: Pick<WebhookDeliveryDeps, 'resolver'>,
  target: PostTarget,
  body: string,
  opts: { allowPrivate: boolean; timeoutMs: number; event: string; attempt: number; signal?: AbortSignal },
): Promise<PostResult> {
  const started = performance.now();
  const u = new URL(target.url);
  const host = bareHost(u.hostname);
  const pinned = await resolveEgress(deps.resolver, host, opts.allowPrivate);
  const { timestamp, signature } = signWebhook({ secret: target.secret, id: target.webhookId, body });
  const payload = Buffer.from(body, 'utf8');
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  // The socket goes to the address that was checked above (no rebinding).
  const { mod, options } = pinnedPostOptions(u, host, pinned, signal);
  const status = await new Promise<number>((resolve, reject) => {
    const req = mod.request(
      {
        ...options,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': String(payload.length),
          'User-Agent': USER_AGENT,
          [WEBHOOK_ID_HEADER]: target.webhookId,
          [TIMESTAMP_HEADER]: timestamp,
          [SIGNATURE_HEADER]: signature,
          'X-MaiRust-Event': opts.event,
          'X-MaiRust-Attempt': String(opts.attempt),
        },
      },
      (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > MAX_RESPONSE_BYTES) res.destroy();
        });
        res.on('error', () => undefined);
        res.on('close', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', (err) => {
      if (signal.aborted) {
        const reason: unknown = signal.reason;
        if (timeout.aborted) reject(new Error(`no answer within ${opts.timeoutMs} ms`));
        else reject(reason instanceof Error ? reason : err);
        return;
      }
      const code = (err as { code?: string }).code;
      reject(new Error(`connection to ${u.host} failed: ${code ?? err.message}`));
    });
    req.end(payload);
  });
  return { status, durationMs: Math.round(performance.now() - started) };
}

/** Classifies an HTTP status: null when delivered. */
function failureFor(status: number, url: string): WebhookDeliveryError | null {
  if (status >= 200 && status < 300) return null;
  if (status === 410) return new WebhookDeliveryError(`${redactUrl(url)} answered HTTP 410 Gone; the webhook was disabled`, status, true);
  if (status >= 300 && status < 400) return new WebhookDeliveryError(`${redactUrl(url)} answered HTTP ${status}; redirects are not followed`, status, false);
  return new WebhookDeliveryError(`${redactUrl(url)} answered HTTP ${status}`, status, false);
}

function isPayload(p: unknown): p is WebhookJobPayload {
  const o = p as Partial<WebhookJobPayload> | null;
  return (
    !!o &&
    typeof o.webhook_id === 'string' &&
    typeof o.tenant_id === 'string' &&
    typeof o.event_id === 'string' &&
    typeof o.occurred_at === 'number' &&
    (WEBHOOK_EVENTS as readonly string[]).includes(o.event as string) &&
    !!o.data &&
    typeof o.data === 'object'
  );
}

/**
 * Delivers one `webhook` job. Resolves when the event was delivered or need not be any more (the
 * webhook was deleted, disabled or unsubscribed since); throws otherwise (see the file comment).
 */
export async function deliverWebhookJob(deps: WebhookDeliveryDeps, job: Job<WebhookJobPayload>, signal?: AbortSignal): Promise<void> {
  const log = deps.logger;
  const p = job.payload;
  if (!isPayload(p)) throw new WebhookDeliveryError('malformed webhook job payload', null, true);
  const found = await deps.store.forDelivery(p.webhook_id);
  const ctx = { jobId: job.id, webhookId: p.webhook_id, tenantId: p.tenant_id, event: p.event, eventId: p.event_id, attempt: job.attempts };
  if (!found || found.webhook.tenantId !== p.tenant_id) {
    log?.info(ctx, 'webhook no longer exists; event dropped');
    return;
  }
  const { webhook, secret } = found;
  if (!webhook.enabled || !webhook.events.includes(p.event)) {
    log?.info(ctx, webhook.enabled ? 'webhook no longer subscribed to the event; event dropped' : 'webhook is disabled; event dropped');
    return;
  }
  const cfg = deps.config();
  const body = deliveryBody({ eventId: p.event_id, event: p.event, occurredAt: p.occurred_at, tenantId: p.tenant_id, data: p.data });
  let result: PostResult;
  try {
    result = await postSigned(deps, { webhookId: webhook.id, url: webhook.url, secret }, body, {
      allowPrivate: cfg.allow_private_addresses,
      timeoutMs: cfg.timeout_ms,
      event: p.event,
      attempt: job.attempts,
      signal,
    });
  } catch (err) {
    // Lease lost or the queue stopping: not this endpoint's fault; let the queue's reason through.
    if (signal?.aborted) throw signal.reason;
    const permanent = err instanceof EgressRefusedError;
    log?.warn({ ...ctx, url: redactUrl(webhook.url), err: errorText(err), permanent }, 'webhook delivery failed');
    throw new WebhookDeliveryError(`attempt ${job.attempts} of ${job.maxAttempts}: ${errorText(err)}`, null, permanent);
  }
  const failure = failureFor(result.status, webhook.url);
  if (!failure) {
    log?.info({ ...ctx, status: result.status, durationMs: result.durationMs }, 'webhook delivered');
    return;
  }
  if (failure.status === 410) await deps.store.disable(tenantScope(webhook.tenantId), webhook.id, 'endpoint answered HTTP 410 Gone');
  log?.warn({ ...ctx, url: redactUrl(webhook.url), status: result.status, permanent: failure.permanent }, 'webhook delivery failed');
  throw new WebhookDeliveryError(`attempt ${job.attempts} of ${job.maxAttempts}: ${failure.message}`, failure.status, failure.permanent);
}

export interface TestDeliveryResult {
  delivered: boolean;
  /** HTTP status of the answer; null when no answer came (refused, DNS, network, timeout). */
  status: number | null;
  error: string | null;
  durationMs: number;
  eventId: string;
}

/**
 * `POST /webhooks/:id/test`: one synchronous, signed `webhook.test` delivery, also to a disabled
 * webhook, with the same egress rules and timeout as real events. It reports the outcome and
 * changes nothing (a 410 here does not disable the webhook) and is never retried.
 */
export async function sendTestDelivery(deps: WebhookDeliveryDeps, scope: Scope, id: string): Promise<TestDeliveryResult> {
  const webhook = await deps.store.get(scope, id);
  const found = await deps.store.forDelivery(webhook.id);
  if (!found) return { delivered: false, status: null, error: 'webhook was deleted', durationMs: 0, eventId: '' };
  const cfg = deps.config();
  const eventId = newId();
  const body = deliveryBody({
    eventId,
    event: TEST_EVENT,
    occurredAt: now(),
    tenantId: webhook.tenantId,
    data: { message: 'This is a test delivery from MaiRust.', webhook_id: webhook.id },
  });
  const started = performance.now();
  try {
    const r = await postSigned(deps, { webhookId: webhook.id, url: webhook.url, secret: found.secret }, body, {
      allowPrivate: cfg.allow_private_addresses,
      timeoutMs: cfg.timeout_ms,
      event: TEST_EVENT,
      attempt: 1,
    });
    const failure = failureFor(r.status, webhook.url);
    const error = failure ? (r.status === 410 ? `${redactUrl(webhook.url)} answered HTTP 410 Gone` : failure.message) : null;
    return { delivered: failure === null, status: r.status, error, durationMs: r.durationMs, eventId };
  } catch (err) {
    return { delivered: false, status: null, error: errorText(err), durationMs: Math.round(performance.now() - started), eventId };
  }
}

export interface WebhookWorkerDeps extends WebhookDeliveryDeps {
  queue: Queue;
  /** Deliveries in flight on this node (default 4). */
  concurrency?: number;
}

/**
 * Consumes the `webhook` queue on this node. The returned function pauses it and resolves once
 * the deliveries in flight have finished (each is bounded by `webhooks.timeout_ms`). The queue
 * port stops workers per queue object, not per name, so a job claimed after the pause is held —
 * not failed, no attempt spent — until the queue itself stops and hands it back
 * (`queue.stop()`, as the server does at shutdown) or the node dies and its lease expires.
 */
export function startWebhookWorker(deps: WebhookWorkerDeps): () => Promise<void> {
  const inFlight = new Set<Promise<void>>();
  let paused = false;
  deps.queue.work<WebhookJobPayload>(
    WEBHOOK_QUEUE,
    async (job, signal) => {
      if (paused) {
        await new Promise<never>((_, reject) => {
          if (signal.aborted) reject(signal.reason);
          else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
      }
      const run = deliverWebhookJob(deps, job, signal);
      const settled = run.then(
        () => undefined,
        () => undefined,
      );
      inFlight.add(settled);
      try {
        await run;
      } finally {
        inFlight.delete(settled);
      }
    },
    { concurrency: deps.concurrency ?? 4 },
  );
  return async () => {
    paused = true;
    await Promise.all([...inFlight]);
  };
}
