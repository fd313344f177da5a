/**
 * `/api/v1/queue` (SPEC §3.3 "Queue is inspectable and manageable: list, show, retry now,
 * delete/bounce, hold/release (CLI + API)", §11 resource `queue`): the outbound queue records.
 *
 * Tenant admins see and manage their tenant's entries; a super-admin sees every tenant's and may
 * filter by tenant. An entry of another tenant answers exactly like one that does not exist (404).
 * `show` carries the recipients, each attempt with its SMTP transcript (SPEC §5.2) and the policy
 * decision that let the message out (SPEC §8 "every decision explained").
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../auth-hook.js';
import type { ApiDeps } from '../deps.js';
import { auditActor } from '../principal.js';
import { scopeOf } from '../policy.js';
import { Data, DEFAULT_LIMIT, MAX_LIMIT, NullableTimestamp, Timestamp, decodeCursor, errors, iso, pageOf } from '../schemas.js';
import { callService } from '../service-errors.js';
import type { OutboundAttempt, OutboundRecipient, OutboundRecord } from '../../../outbound/records.js';
import { outboundRecords } from '../../../app/outbound.js';

const TAGS = ['queue'];
const STATUSES = ['queued', 'delivering', 'delivered', 'bounced', 'partial', 'deleted'] as const;

const QueueId = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9-]+$', description: 'The queue id (the Received ID of the message).' }) }, { additionalProperties: false });
type QueueIdParams = Static<typeof QueueId>;

export const QueueEntrySchema = Type.Object({
  id: Type.String(),
  tenant_id: Type.String(),
  message_id: Type.String(),
  user_id: Type.Union([Type.String(), Type.Null()]),
  mail_from: Type.String({ description: "Envelope sender; '' for the null sender (a DSN)." }),
  status: Type.Union(STATUSES.map((s) => Type.Literal(s))),
  held: Type.Boolean(),
  size: Type.Integer(),
  attempts: Type.Integer(),
  next_attempt_at: NullableTimestamp,
  recipients: Type.Record(Type.String(), Type.Integer(), { description: 'Recipients per status (pending, deferred, delivered, bounced, cancelled).' }),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const RecipientSchema = Type.Object({
  address: Type.String(),
  domain: Type.String(),
  status: Type.String(),
  attempts: Type.Integer(),
  last_code: Type.Union([Type.Integer(), Type.Null()]),
  last_reply: Type.Union([Type.String(), Type.Null()]),
  last_attempt_at: NullableTimestamp,
  finished_at: NullableTimestamp,
});

const AttemptSchema = Type.Object({
  domain: Type.String(),
  at: Timestamp,
  mx_host: Type.Union([Type.String(), Type.Null()]),
  address: Type.Union([Type.String(), Type.Null()]),
  tls: Type.Union([Type.String(), Type.Null()]),
  result: Type.String(),
  transcript: Type.Array(Type.String(), { description: 'C:/S: lines of the SMTP conversation (AUTH redacted, no message data).' }),
});

const DetailSchema = Type.Composite([
  QueueEntrySchema,
  Type.Object({
    recipient_list: Type.Array(RecipientSchema),
    attempt_list: Type.Array(AttemptSchema),
    policy: Type.Unknown({ description: 'The outbound policy decision with its signals (SPEC §8), or null.' }),
  }),
]);

const ListQuery = Type.Object(
  {
    cursor: Type.Optional(Type.String({ maxLength: 512 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT })),
    status: Type.Optional(Type.Union(STATUSES.map((s) => Type.Literal(s)))),
    domain: Type.Optional(Type.String({ minLength: 1, maxLength: 253, description: 'Only entries with a recipient at this domain.' })),
    tenant_id: Type.Optional(Type.String({ format: 'uuid', description: "Super-admins: only this tenant's entries." })),
  },
  { additionalProperties: false },
);

const DeleteQuery = Type.Object({ bounce: Type.Optional(Type.Boolean({ default: false, description: 'Send a DSN to the sender for the recipients not yet delivered.' })) }, { additionalProperties: false });

const StatsSchema = Type.Array(Type.Object({ status: Type.String(), count: Type.Integer() }));

function view(r: OutboundRecord): Static<typeof QueueEntrySchema> {
  return {
    id: r.id,
    tenant_id: r.tenantId,
    message_id: r.messageId,
    user_id: r.userId,
    mail_from: r.mailFrom,
    status: r.status,
    held: r.held,
    size: r.size,
    attempts: r.attempts,
    next_attempt_at: iso(r.nextAttemptAt),
    recipients: r.counts,
    created_at: iso(r.createdAt),
    updated_at: iso(r.updatedAt),
  };
}

function recipientView(r: OutboundRecipient): Static<typeof RecipientSchema> {
  return { address: r.address, domain: r.domain, status: r.status, attempts: r.attempts, last_code: r.lastCode, last_reply: r.lastReply, last_attempt_at: iso(r.lastAttemptAt), finished_at: iso(r.finishedAt) };
}

function attemptView(a: OutboundAttempt): Static<typeof AttemptSchema> {
  return { domain: a.domain, at: iso(a.at), mx_host: a.mxHost, address: a.address, tls: a.tls, result: a.result, transcript: a.transcript };
}

interface Position {
  c: number;
  i: string;
}

function isPosition(v: unknown): v is Position {
  const p = v as Partial<Position> | null;
  return !!p && typeof p === 'object' && Number.isSafeInteger(p.c) && typeof p.i === 'string' && p.i.length <= 64;
}

export async function queueRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const a = deps.app;
  const logger = a.logger.child({ component: 'outbound' });
  const records = outboundRecords(a, logger);

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/queue',
    {
      config: { action: 'queue.read' },
      schema: { tags: TAGS, summary: 'List outbound queue entries', description: 'Newest first.', querystring: ListQuery, response: { 200: Type.Object({ data: Type.Array(QueueEntrySchema), pagination: Type.Object({ cursor: Type.Union([Type.String(), Type.Null()]), has_more: Type.Boolean() }) }), ...errors(422) } },
    },
    async (request) => {
      const p = principalOf(request);
      const { cursor, limit = DEFAULT_LIMIT, status, domain, tenant_id } = request.query;
      const start = decodeCursor(cursor, isPosition);
      const rows = await callService(() => records.list(scopeOf(p), { status, domain, tenantId: tenant_id, limit: limit + 1, before: start && { createdAt: start.c, id: start.i } }));
      return pageOf(rows, limit, (r): Position => ({ c: r.createdAt, i: r.id }), view);
    },
  );

  app.get(
    '/queue/stats',
    {
      config: { action: 'queue.read' },
      schema: { tags: TAGS, summary: 'Count outbound queue entries per status', description: '`held` counts waiting entries on hold.', response: { 200: Data(StatsSchema), ...errors() } },
    },
    async (request) => {
      const p = principalOf(request);
      return { data: await callService(() => records.stats(scopeOf(p))) };
    },
  );

  app.get<{ Params: QueueIdParams }>(
    '/queue/:id',
    {
      config: { action: 'queue.read' },
      schema: { tags: TAGS, summary: 'Get an outbound queue entry', description: 'With its recipients, every attempt with its SMTP transcript, and the policy decision.', params: QueueId, response: { 200: Data(DetailSchema), ...errors(404) } },
    },
    async (request) => {
      const p = principalOf(request);
      const d = await callService(() => records.show(scopeOf(p), request.params.id));
      return { data: { ...view(d.record), recipient_list: d.recipients.map(recipientView), attempt_list: d.attempts.map(attemptView), policy: d.record.policy } };
    },
  );

  const action = (path: string, summary: string, description: string, run: (id: string, p: ReturnType<typeof principalOf>) => Promise<OutboundRecord>) =>
    app.post<{ Params: QueueIdParams }>(
      `/queue/:id/${path}`,
      {
        config: { action: 'queue.write' },
        schema: { tags: TAGS, summary, description, params: QueueId, response: { 200: Data(QueueEntrySchema), ...errors(404, 409) } },
      },
      async (request) => {
        const p = principalOf(request);
        return { data: view(await callService(() => run(request.params.id, p))) };
      },
    );
  action('retry', 'Retry an outbound queue entry now', 'Makes the next attempt due now. 409 when it is held or finished.', (id, p) => records.retryNow(scopeOf(p), id, auditActor(p)));
  action('hold', 'Hold an outbound queue entry', 'A held entry is not delivered until released.', (id, p) => records.hold(scopeOf(p), id, auditActor(p)));
  action('release', 'Release a held outbound queue entry', 'Delivery resumes at once.', (id, p) => records.release(scopeOf(p), id, auditActor(p)));

  app.delete<{ Params: QueueIdParams; Querystring: Static<typeof DeleteQuery> }>(
    '/queue/:id',
    {
      config: { action: 'queue.write' },
      schema: {
        tags: TAGS,
        summary: 'Delete an outbound queue entry',
        description: 'Recipients not yet delivered are cancelled, or bounced with a DSN to the sender when `bounce=true` (never for a null sender). The entry stays listed as `deleted`.',
        params: QueueId,
        querystring: DeleteQuery,
        response: { 200: Data(QueueEntrySchema), ...errors(404) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      return { data: view(await callService(() => records.delete(scopeOf(p), request.params.id, { bounce: request.query.bounce ?? false }, auditActor(p)))) };
    },
  );
}

export default queueRoutes;
