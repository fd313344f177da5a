/**
 * `/api/v1/webhooks` (SPEC §11 "Event webhooks"): a tenant's subscriptions to the events
 * `message.received`, `message.sent`, `message.bounced`, `user.created`, `plugin.error` and
 * `account.suspended` — list, create, read, change, delete, rotate the signing secret, and send a
 * test delivery.
 *
 * The signing secret appears in two responses only: creation and rotation (SPEC §10 "never …
 * secrets … except once"); the response schemas of every other route do not even declare it.
 * Tenant admins manage their tenant's webhooks; a super-admin sees every tenant's and names the
 * tenant when creating one for another tenant. A webhook of another tenant is 404.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../auth-hook.js';
import type { ApiDeps } from '../deps.js';
import { auditActor } from '../principal.js';
import { scopeOf } from '../policy.js';
import { CursorQuery, Data, DEFAULT_LIMIT, IdParam, Page, Timestamp, decodeCursor, errors, iso, pageOf } from '../schemas.js';
import { callService } from '../service-errors.js';
import { WEBHOOK_EVENTS } from '../../../webhooks/types.js';
import { MAX_DESCRIPTION_CHARS, MAX_URL_CHARS, WebhookStore, type Webhook } from '../../../webhooks/store.js';
import { sendTestDelivery, TEST_EVENT } from '../../../webhooks/deliver.js';
import { SIGNATURE_TOLERANCE_SECONDS } from '../../../webhooks/signature.js';

const TAGS = ['webhooks'];

const EventName = Type.Union(
  WEBHOOK_EVENTS.map((e) => Type.Literal(e)),
  { description: 'An event a webhook can subscribe to.' },
);

export const WebhookSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  tenant_id: Type.String({ format: 'uuid' }),
  url: Type.String(),
  description: Type.String(),
  events: Type.Array(EventName),
  enabled: Type.Boolean({ description: 'False when turned off by an admin, or by the endpoint answering 410 Gone.' }),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const WebhookWithSecretSchema = Type.Composite([
  WebhookSchema,
  Type.Object({
    secret: Type.String({ description: 'The signing secret (`whsec_…`). Shown only in this response: store it now.' }),
  }),
]);

const TestResultSchema = Type.Object({
  delivered: Type.Boolean({ description: 'The endpoint answered 2xx.' }),
  status: Type.Union([Type.Integer(), Type.Null()], { description: 'HTTP status of the answer; null when none came.' }),
  error: Type.Union([Type.String(), Type.Null()], { description: 'Why the delivery failed (refused address, DNS, network, timeout, status).' }),
  duration_ms: Type.Integer({ minimum: 0 }),
  event_id: Type.String({ description: `The \`id\` of the \`${TEST_EVENT}\` event that was sent.` }),
});

const Url = Type.String({
  minLength: 1,
  maxLength: MAX_URL_CHARS,
  description: 'https URL (no user:password@, no #fragment). Its host must resolve to public addresses unless `webhooks.allow_private_addresses` is on.',
});
const Events = Type.Array(EventName, { minItems: 1, maxItems: WEBHOOK_EVENTS.length, uniqueItems: true });
const Description = Type.String({ maxLength: MAX_DESCRIPTION_CHARS });

const ListQuery = Type.Object(
  { ...CursorQuery, tenant_id: Type.Optional(Type.String({ format: 'uuid', description: 'Super-admins: only this tenant\'s webhooks.' })) },
  { additionalProperties: false },
);

const CreateBody = Type.Object(
  {
    url: Url,
    events: Events,
    description: Type.Optional(Description),
    enabled: Type.Optional(Type.Boolean({ default: true })),
    tenant_id: Type.Optional(Type.String({ format: 'uuid', description: 'Super-admins: the tenant the webhook belongs to (default: their own).' })),
  },
  { additionalProperties: false },
);

const PatchBody = Type.Object(
  { url: Type.Optional(Url), events: Type.Optional(Events), description: Type.Optional(Description), enabled: Type.Optional(Type.Boolean()) },
  { additionalProperties: false, minProperties: 1 },
);

type IdParams = Static<typeof IdParam>;

const SIGNING = [
  'Each delivery is a `POST` of `{"id","event","occurred_at","tenant_id","data"}` (JSON), signed like hook calls (SPEC §6):',
  '`X-MaiRust-Webhook-Id: <webhook id>`, `X-MaiRust-Timestamp: <Unix seconds>`, `X-MaiRust-Signature: sha256=<hex>` with',
  '`hex = HMAC-SHA256(secret, timestamp + "\\n" + webhook_id + "\\n" + hex(sha256(body)))`; the key is the whole `whsec_…` string.',
  `Receivers reject timestamps more than ${SIGNATURE_TOLERANCE_SECONDS / 60} minutes away and compare in constant time.`,
  'A 2xx answer is success; 410 Gone disables the webhook; anything else (or no answer within `webhooks.timeout_ms`) is retried',
  'on `webhooks.backoff_seconds` up to `webhooks.max_attempts`. The event `id` stays the same on retries.',
].join(' ');

function view(w: Webhook): Static<typeof WebhookSchema> {
  return {
    id: w.id,
    tenant_id: w.tenantId,
    url: w.url,
    description: w.description,
    events: w.events,
    enabled: w.enabled,
    created_at: iso(w.createdAt),
    updated_at: iso(w.updatedAt),
  };
}

interface Position {
  c: number;
  i: string;
}

function isPosition(v: unknown): v is Position {
  const p = v as Partial<Position> | null;
  return !!p && typeof p === 'object' && Number.isSafeInteger(p.c) && typeof p.i === 'string' && p.i.length <= 64;
}

export async function webhooksRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const config = () => deps.app.config.webhooks;
  const logger = deps.app.logger.child({ component: 'webhooks' });
  const store = new WebhookStore({ db: deps.app.db, secrets: deps.secrets, config, logger });

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/webhooks',
    {
      config: { action: 'webhooks.read' },
      schema: {
        tags: TAGS,
        summary: 'List webhooks',
        description: 'Oldest first. The signing secrets are never listed.',
        querystring: ListQuery,
        response: { 200: Page(WebhookSchema), ...errors() },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const { cursor, limit = DEFAULT_LIMIT, tenant_id } = request.query;
      const start = decodeCursor(cursor, isPosition);
      const rows = await callService(() =>
        store.list(scopeOf(p), { tenantId: tenant_id, limit: limit + 1, after: start && { createdAt: start.c, id: start.i } }),
      );
      return pageOf(rows, limit, (w): Position => ({ c: w.createdAt, i: w.id }), view);
    },
  );

  app.post<{ Body: Static<typeof CreateBody> }>(
    '/webhooks',
    {
      config: { action: 'webhooks.write' },
      schema: {
        tags: TAGS,
        summary: 'Create a webhook',
        description: `At most 20 per tenant. The response carries the signing secret, once. ${SIGNING}`,
        body: CreateBody,
        response: { 201: Data(WebhookWithSecretSchema), ...errors(404, 409, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const b = request.body;
      const w = await callService(() =>
        store.create(scopeOf(p), { tenantId: b.tenant_id ?? p.tenant.id, url: b.url, events: b.events, description: b.description, enabled: b.enabled }, auditActor(p)),
      );
      reply.code(201);
      return { data: { ...view(w), secret: w.secret } };
    },
  );

  app.get<{ Params: IdParams }>(
    '/webhooks/:id',
    {
      config: { action: 'webhooks.read' },
      schema: { tags: TAGS, summary: 'Get a webhook', params: IdParam, response: { 200: Data(WebhookSchema), ...errors(404) } },
    },
    async (request) => {
      const p = principalOf(request);
      return { data: view(await callService(() => store.get(scopeOf(p), request.params.id))) };
    },
  );

  app.patch<{ Params: IdParams; Body: Static<typeof PatchBody> }>(
    '/webhooks/:id',
    {
      config: { action: 'webhooks.write' },
      schema: {
        tags: TAGS,
        summary: 'Change a webhook',
        description: 'URL, events, description, enabled. Re-enabling a webhook that answered 410 Gone is done here.',
        params: IdParam,
        body: PatchBody,
        response: { 200: Data(WebhookSchema), ...errors(404, 422) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const b = request.body;
      const w = await callService(() =>
        store.update(scopeOf(p), request.params.id, { url: b.url, events: b.events, description: b.description, enabled: b.enabled }, auditActor(p)),
      );
      return { data: view(w) };
    },
  );

  app.delete<{ Params: IdParams }>(
    '/webhooks/:id',
    {
      config: { action: 'webhooks.write' },
      schema: {
        tags: TAGS,
        summary: 'Delete a webhook',
        description: 'Its signing secret is destroyed; events already queued for it are dropped.',
        params: IdParam,
        response: { 204: Type.Null({ description: 'Deleted.' }), ...errors(404) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      await callService(() => store.delete(scopeOf(p), request.params.id, auditActor(p)));
      return reply.code(204).send();
    },
  );

  app.post<{ Params: IdParams }>(
    '/webhooks/:id/rotate-secret',
    {
      config: { action: 'webhooks.write' },
      schema: {
        tags: TAGS,
        summary: 'Rotate a webhook\'s signing secret',
        description: 'The old secret stops working at once: every delivery from now on (retries included) is signed with the new one, returned here once.',
        params: IdParam,
        response: { 200: Data(WebhookWithSecretSchema), ...errors(404) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const w = await callService(() => store.rotateSecret(scopeOf(p), request.params.id, auditActor(p)));
      return { data: { ...view(w), secret: w.secret } };
    },
  );

  app.post<{ Params: IdParams }>(
    '/webhooks/:id/test',
    {
      config: { action: 'webhooks.write' },
      schema: {
        tags: TAGS,
        summary: 'Send a test delivery',
        description:
          `Sends one signed \`${TEST_EVENT}\` event now, also to a disabled webhook, under the same address rules and timeout as real events, ` +
          'and reports the outcome. Not retried; changes nothing (a 410 answer does not disable the webhook).',
        params: IdParam,
        response: { 200: Data(TestResultSchema), ...errors(404) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const r = await callService(() => sendTestDelivery({ store, resolver: deps.app.resolver, config, logger }, scopeOf(p), request.params.id));
      return { data: { delivered: r.delivered, status: r.status, error: r.error, duration_ms: r.durationMs, event_id: r.eventId } };
    },
  );
}

export default webhooksRoutes;
