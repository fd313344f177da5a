/**
 * `/api/v1/admin/outbound/…` (SPEC §8 "API"): the outbound spam policy's state — statistics,
 * accounts by level (suspended ones in particular), manual suspension and unsuspension, and the
 * whitelist of accounts with raised limits (newsletters).
 *
 * Tenant admins see and act on their tenant only: another tenant's user or whitelist entry is 404
 * (SPEC §9). Super-admins see every tenant. Every change is audited by the service
 * (src/outbound/policy/accounts.ts); a suspension also publishes `account.suspended`.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../auth-hook.js';
import type { ApiDeps } from '../deps.js';
import { auditActor } from '../principal.js';
import { scopeOf } from '../policy.js';
import { Data, IdParam, NullableTimestamp, Timestamp, errors, iso } from '../schemas.js';
import { callService } from '../service-errors.js';
import { ApiError } from '../../errors.js';
import { createOutboundPolicy } from '../../../outbound/policy/engine.js';
import type { AccountView, WhitelistView } from '../../../outbound/policy/accounts.js';

const TAGS = ['outbound'];

export const OutboundAccountSchema = Type.Object({
  user_id: Type.String({ format: 'uuid' }),
  tenant_id: Type.String({ format: 'uuid' }),
  email: Type.Union([Type.String(), Type.Null()]),
  level: Type.Union([Type.Literal('normal'), Type.Literal('soft'), Type.Literal('hard')], { description: 'SPEC §8 level of the account.' }),
  suspended: Type.Boolean({ description: 'Sending refused with `550 5.7.1`; receiving continues.' }),
  suspended_at: NullableTimestamp,
  suspended_reason: Type.Union([Type.String(), Type.Null()]),
  auto_reenable_at: Type.Union([Timestamp, Type.Null()], { description: 'When an automatic suspension lifts itself (`policy.auto_reenable_after_hours`).' }),
  last_score: Type.Union([Type.Number(), Type.Null()]),
  updated_at: Timestamp,
});

const WhitelistSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  tenant_id: Type.String({ format: 'uuid' }),
  user_id: Type.String({ format: 'uuid' }),
  email: Type.Union([Type.String(), Type.Null()]),
  profile: Type.String(),
  hourly_limit: Type.Integer(),
  daily_limit: Type.Integer(),
  note: Type.String(),
  created_at: Timestamp,
});

const StatsSchema = Type.Object({
  accounts: Type.Object({ suspended: Type.Integer(), soft: Type.Integer(), hard: Type.Integer(), tracked: Type.Integer() }),
  whitelisted: Type.Integer(),
  events_last_24h: Type.Record(Type.String(), Type.Integer(), { description: 'Policy events of the last 24 h by kind (`suspended`, `soft_limited`, `domain_limited`, `unsuspended`, `reported`).' }),
  messages_last_24h: Type.Integer({ description: 'Messages queued for remote delivery in the last 24 h.' }),
});

const AccountsQuery = Type.Object(
  {
    status: Type.Optional(Type.Union([Type.Literal('suspended'), Type.Literal('soft'), Type.Literal('normal'), Type.Literal('all')], { default: 'all' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  },
  { additionalProperties: false },
);

const AddWhitelistBody = Type.Object(
  {
    user: Type.String({ minLength: 1, maxLength: 320, description: 'The user, by id or e-mail address.' }),
    profile: Type.String({ minLength: 1, maxLength: 32, description: 'A profile of `outbound.rate_limits.whitelist_profiles` (e.g. `newsletter`).' }),
    note: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);

function accountView(a: AccountView): Static<typeof OutboundAccountSchema> {
  return {
    user_id: a.userId,
    tenant_id: a.tenantId,
    email: a.email,
    level: a.level,
    suspended: a.suspended,
    suspended_at: iso(a.suspendedAt),
    suspended_reason: a.suspendedReason,
    auto_reenable_at: iso(a.autoReenableAt),
    last_score: a.lastScore,
    updated_at: iso(a.updatedAt),
  };
}

function whitelistView(w: WhitelistView): Static<typeof WhitelistSchema> {
  return { id: w.id, tenant_id: w.tenantId, user_id: w.userId, email: w.email, profile: w.profile, hourly_limit: w.hourlyLimit, daily_limit: w.dailyLimit, note: w.note, created_at: iso(w.createdAt) };
}

/** Optional `{ "reason": "…" }` of a suspension (the body may be absent). */
function reasonOf(body: unknown): string {
  if (body === undefined || body === null || body === '') return '';
  const reason = (body as { reason?: unknown }).reason;
  if (typeof body !== 'object' || (reason !== undefined && (typeof reason !== 'string' || reason.length > 500))) {
    throw new ApiError('VALIDATION_ERROR', 'body must be {"reason": "<at most 500 characters>"}', { errors: [{ path: '/reason', message: 'must be a string of at most 500 characters' }] });
  }
  return (reason as string | undefined) ?? '';
}

export async function outboundRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  // The policy state is shared through the database; this engine is used for its account service.
  const policy = createOutboundPolicy({
    db: deps.app.db,
    counter: deps.rateCounter,
    tenancy: deps.app.tenancy,
    config: () => deps.app.config.outbound,
    events: deps.events,
    logger: deps.app.logger.child({ component: 'outbound-policy' }),
    metrics: deps.app.metrics.registry,
  });
  const accounts = policy.accounts;

  app.get(
    '/admin/outbound/stats',
    {
      config: { action: 'outbound.read' },
      schema: { tags: TAGS, summary: 'Outbound policy statistics', description: 'Accounts by level, whitelisted accounts, policy events and queued messages of the last 24 h.', response: { 200: Data(StatsSchema), ...errors() } },
    },
    async (request) => {
      const s = await callService(() => accounts.stats(scopeOf(principalOf(request))));
      return { data: { accounts: s.accounts, whitelisted: s.whitelisted, events_last_24h: s.eventsLast24h, messages_last_24h: s.messagesLast24h } };
    },
  );

  app.get<{ Querystring: Static<typeof AccountsQuery> }>(
    '/admin/outbound/accounts',
    {
      config: { action: 'outbound.read' },
      schema: {
        tags: TAGS,
        summary: 'List sending accounts by policy level',
        description: 'Accounts the policy engine has state for, most recently changed first. `status=suspended` lists the suspended ones.',
        querystring: AccountsQuery,
        response: { 200: Data(Type.Array(OutboundAccountSchema)), ...errors() },
      },
    },
    async (request) => {
      const rows = await callService(() => accounts.list(scopeOf(principalOf(request)), { status: request.query.status, limit: request.query.limit }));
      return { data: rows.map(accountView) };
    },
  );

  for (const action of ['suspend', 'unsuspend'] as const) {
    app.post<{ Params: Static<typeof IdParam> }>(
      `/admin/outbound/accounts/:id/${action}`,
      {
        config: { action: 'outbound.write' },
        schema: {
          tags: TAGS,
          summary: action === 'suspend' ? 'Suspend sending from an account' : 'Lift a suspension',
          description:
            action === 'suspend'
              ? 'Sending is refused with `550 5.7.1 Sending from this account is temporarily suspended. Please contact your administrator.`; receiving continues. Optional body `{"reason": "…"}`. Publishes `account.suspended`. 409 when already suspended.'
              : 'Sending is allowed again at once, with fresh per-user rate counts. 409 when not suspended.',
          params: IdParam,
          response: { 200: Data(OutboundAccountSchema), ...errors(404, 409, 422) },
        },
      },
      async (request) => {
        const p = principalOf(request);
        const a =
          action === 'suspend'
            ? await callService(() => accounts.suspend(scopeOf(p), request.params.id, reasonOf(request.body), auditActor(p)))
            : await callService(() => accounts.unsuspend(scopeOf(p), request.params.id, auditActor(p)));
        return { data: accountView(a) };
      },
    );
  }

  app.get(
    '/admin/outbound/whitelist',
    {
      config: { action: 'outbound.read' },
      schema: { tags: TAGS, summary: 'List whitelisted accounts', description: 'Accounts with raised sending limits, oldest first.', response: { 200: Data(Type.Array(WhitelistSchema)), ...errors() } },
    },
    async (request) => {
      const rows = await callService(() => accounts.listWhitelist(scopeOf(principalOf(request))));
      return { data: rows.map(whitelistView) };
    },
  );

  app.post<{ Body: Static<typeof AddWhitelistBody> }>(
    '/admin/outbound/whitelist',
    {
      config: { action: 'outbound.write' },
      schema: {
        tags: TAGS,
        summary: 'Whitelist an account',
        description: "The account gets the profile's hourly and daily limits (SPEC §8), and identical content is not scored for it. 409 when already whitelisted.",
        body: AddWhitelistBody,
        response: { 201: Data(WhitelistSchema), ...errors(404, 409, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const b = request.body;
      const w = await callService(() => accounts.addWhitelist(scopeOf(p), b.user, b.profile, b.note ?? '', auditActor(p)));
      reply.code(201);
      return { data: whitelistView(w) };
    },
  );

  app.delete<{ Params: Static<typeof IdParam> }>(
    '/admin/outbound/whitelist/:id',
    {
      config: { action: 'outbound.write' },
      schema: { tags: TAGS, summary: 'Remove a whitelist entry', description: 'The account falls back to the normal limits.', params: IdParam, response: { 204: Type.Null({ description: 'Removed.' }), ...errors(404) } },
    },
    async (request, reply) => {
      const p = principalOf(request);
      await callService(() => accounts.removeWhitelist(scopeOf(p), request.params.id, auditActor(p)));
      return reply.code(204).send();
    },
  );
}

export default outboundRoutes;
