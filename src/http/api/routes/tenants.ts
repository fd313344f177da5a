/**
 * `/api/v1/admin/tenants` (SPEC §9, §11): the super-admin's tenant administration — list, create,
 * read, change (name, plan, limit overrides, retention, legal hold, MFA policy), soft delete,
 * suspend, activate, usage.
 *
 * Deletion is soft: the tenant's status becomes `deleted` and its data is purged after the 30-day
 * grace period (SPEC §9); `activate` restores it until then. A suspended tenant cannot sign in or
 * send; suspending one publishes the `account.suspended` event webhook (SPEC §11).
 *
 * A super-admin cannot suspend or delete the tenant they belong to themselves: every request of
 * theirs would be refused from then on (auth-hook.ts), leaving only emergency access.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Tenant } from '../../../core/tenancy/types.js';
import type { TenantUsage } from '../../../core/tenancy/tenants.js';
import type { TenancyService } from '../../../core/tenancy/service.js';
import type { TenantStatus } from '../../../store/db/types.js';
import { ApiError } from '../../errors.js';
import { principalOf } from '../auth-hook.js';
import type { ApiDeps } from '../deps.js';
import { keysetPage } from '../keyset-page.js';
import { auditActor, type Principal } from '../principal.js';
import { scopeOf } from '../policy.js';
import { CursorQuery, Data, DEFAULT_LIMIT, IdParam, NullableTimestamp, Page, Timestamp, errors, iso } from '../schemas.js';
import { callService } from '../service-errors.js';

/** SPEC §9: a deleted tenant's data is purged this long after the deletion. */
export const TENANT_DELETE_GRACE_DAYS = 30;
const DAY_MS = 86_400_000;

const Count = Type.Integer({ minimum: 0 });
const Bytes = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });

/** The plan keys of config `plans` (src/config/schema.ts PlanSchema), each optional. */
function limitFields<T extends TSchema>(value: () => T) {
  return {
    max_users: Type.Optional(value()),
    max_domains: Type.Optional(value()),
    storage_bytes: Type.Optional(value()),
    mailbox_storage_bytes: Type.Optional(value()),
    daily_outbound: Type.Optional(value()),
  };
}

export const PlanLimitsSchema = Type.Object(
  { max_users: Count, max_domains: Count, storage_bytes: Bytes, mailbox_storage_bytes: Bytes, daily_outbound: Count },
  { description: 'Effective limits: the plan with the tenant\'s overrides applied. Storage 0 = unlimited.' },
);

export const TenantSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  status: Type.Union([Type.Literal('active'), Type.Literal('suspended'), Type.Literal('deleted')]),
  plan: Type.String(),
  limits: Type.Object(limitFields(() => Bytes), { description: 'Per-tenant overrides of the plan (only the keys that differ).' }),
  effective_limits: PlanLimitsSchema,
  legal_hold: Type.Boolean(),
  retention_days: Type.Union([Type.Integer(), Type.Null()], { description: 'Days deleted messages are kept; null = server default.' }),
  used_bytes: Bytes,
  mfa_required: Type.Boolean({ description: 'Every user must sign in with a second factor.' }),
  created_at: Timestamp,
  updated_at: Timestamp,
  deleted_at: NullableTimestamp,
  purge_after: Type.Union([Timestamp, Type.Null()], { description: 'When a deleted tenant\'s data is purged (end of the 30-day grace period).' }),
});

export const UsageSchema = Type.Object({
  users: Count,
  domains: Count,
  mailboxes: Count,
  aliases: Count,
  used_bytes: Bytes,
  limits: PlanLimitsSchema,
});

export function tenantView(tenancy: TenancyService, t: Tenant): Static<typeof TenantSchema> {
  return {
    id: t.id,
    name: t.name,
    status: t.status,
    plan: t.plan,
    limits: { ...t.limits },
    effective_limits: tenancy.effectiveLimits(t),
    legal_hold: t.legalHold,
    retention_days: t.retentionDays,
    used_bytes: t.usedBytes,
    mfa_required: t.mfaRequired,
    created_at: iso(t.createdAt),
    updated_at: iso(t.updatedAt),
    deleted_at: iso(t.deletedAt),
    purge_after: t.status === 'deleted' && t.deletedAt !== null ? iso(t.deletedAt + TENANT_DELETE_GRACE_DAYS * DAY_MS) : null,
  };
}

export function usageView(u: TenantUsage): Static<typeof UsageSchema> {
  return { users: u.users, domains: u.domains, mailboxes: u.mailboxes, aliases: u.aliases, used_bytes: u.usedBytes, limits: u.limits };
}

const TENANT_NAME = Type.String({ minLength: 1, maxLength: 64, description: 'Letters, digits, spaces, ".", "_" or "-", starting with a letter or digit.' });
const PLAN_NAME = Type.String({ minLength: 1, maxLength: 32, description: 'One of the configured plans.' });
const StatusFilter = Type.Union([Type.Literal('active'), Type.Literal('suspended'), Type.Literal('deleted')]);

const ListQuery = Type.Object(
  { ...CursorQuery, status: Type.Optional(StatusFilter) },
  { additionalProperties: false },
);

const CreateBody = Type.Object(
  {
    name: TENANT_NAME,
    plan: Type.Optional(PLAN_NAME),
    limits: Type.Optional(Type.Object(limitFields(() => Bytes), { additionalProperties: false })),
  },
  { additionalProperties: false },
);

const PatchBody = Type.Object(
  {
    name: Type.Optional(TENANT_NAME),
    plan: Type.Optional(PLAN_NAME),
    limits: Type.Optional(
      Type.Object(limitFields(() => Type.Union([Bytes, Type.Null()])), {
        additionalProperties: false,
        description: 'Overrides to set; null removes an override (the plan\'s value applies again).',
      }),
    ),
    retention_days: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 3650 }), Type.Null()])),
    legal_hold: Type.Optional(Type.Boolean()),
    mfa_required: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);

type IdParams = Static<typeof IdParam>;

const TAGS = ['tenants'];

function refuseOwnTenant(p: Principal, tenantId: string, action: string): void {
  if (p.tenant.id === tenantId) throw new ApiError('CONFLICT', `you cannot ${action} your own tenant`);
}

export default async function tenantsRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { tenancy } = deps.app;
  const view = (t: Tenant) => tenantView(tenancy, t);

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/admin/tenants',
    {
      config: { action: 'tenants.read' },
      schema: {
        tags: TAGS,
        summary: 'List tenants',
        description: 'Ordered by name. Deleted tenants (in their grace period) are listed only with `status=deleted`.',
        querystring: ListQuery,
        response: { 200: Page(TenantSchema), ...errors() },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const { status, cursor, limit = DEFAULT_LIMIT } = request.query;
      return keysetPage(
        {
          fetch: (after, n) => callService(() => tenancy.tenants.list(scopeOf(p), { after, limit: n, status: status as TenantStatus | undefined })),
          key: (t) => t.name,
        },
        { cursor, limit },
        view,
      );
    },
  );

  app.post<{ Body: Static<typeof CreateBody> }>(
    '/admin/tenants',
    {
      config: { action: 'tenants.write' },
      schema: {
        tags: TAGS,
        summary: 'Create a tenant',
        body: CreateBody,
        response: { 201: Data(TenantSchema), ...errors(409, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const { name, plan, limits } = request.body;
      const t = await callService(() => tenancy.tenants.create(scopeOf(p), { name, plan, limits }, auditActor(p)));
      reply.code(201);
      return { data: view(t) };
    },
  );

  app.get<{ Params: IdParams }>(
    '/admin/tenants/:id',
    {
      config: { action: 'tenants.read' },
      schema: { tags: TAGS, summary: 'Get a tenant', params: IdParam, response: { 200: Data(TenantSchema), ...errors(404) } },
    },
    async (request) => {
      const p = principalOf(request);
      return { data: view(await callService(() => tenancy.tenants.get(scopeOf(p), request.params.id))) };
    },
  );

  app.patch<{ Params: IdParams; Body: Static<typeof PatchBody> }>(
    '/admin/tenants/:id',
    {
      config: { action: 'tenants.write' },
      schema: {
        tags: TAGS,
        summary: 'Change a tenant',
        description: 'Name, plan, limit overrides, retention of deleted messages, legal hold and the MFA policy.',
        params: IdParam,
        body: PatchBody,
        response: { 200: Data(TenantSchema), ...errors(404, 409, 422) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const scope = scopeOf(p);
      const actor = auditActor(p);
      const { id } = request.params;
      const b = request.body;
      let t = await callService(() => tenancy.tenants.get(scope, id));
      if (b.name !== undefined || b.plan !== undefined || b.limits !== undefined || b.retention_days !== undefined || b.legal_hold !== undefined) {
        const limits = b.limits as Record<string, number | null> | undefined;
        t = await callService(() =>
          tenancy.tenants.update(scope, id, { name: b.name, plan: b.plan, limits, retentionDays: b.retention_days, legalHold: b.legal_hold }, actor),
        );
      }
      if (b.mfa_required !== undefined) t = await callService(() => tenancy.tenants.setMfaRequired(scope, id, b.mfa_required!, actor));
      return { data: view(t) };
    },
  );

  app.delete<{ Params: IdParams }>(
    '/admin/tenants/:id',
    {
      config: { action: 'tenants.write' },
      schema: {
        tags: TAGS,
        summary: 'Delete a tenant (soft)',
        description: `The tenant's status becomes \`deleted\`; its data is purged ${TENANT_DELETE_GRACE_DAYS} days later (\`purge_after\`). \`POST …/activate\` restores it until then.`,
        params: IdParam,
        response: { 200: Data(TenantSchema), ...errors(404, 409) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const t = await callService(() => tenancy.tenants.get(scopeOf(p), request.params.id));
      refuseOwnTenant(p, t.id, 'delete');
      return { data: view(await callService(() => tenancy.tenants.setStatus(scopeOf(p), t.id, 'deleted', auditActor(p)))) };
    },
  );

  app.post<{ Params: IdParams }>(
    '/admin/tenants/:id/suspend',
    {
      config: { action: 'tenants.write' },
      schema: {
        tags: TAGS,
        summary: 'Suspend a tenant',
        description: 'Its users can no longer sign in or send; mail to it is still accepted. Publishes `account.suspended`.',
        params: IdParam,
        response: { 200: Data(TenantSchema), ...errors(404, 409) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const before = await callService(() => tenancy.tenants.get(scopeOf(p), request.params.id));
      refuseOwnTenant(p, before.id, 'suspend');
      // Suspending would also clear the deletion (deleted_at): restoring is `activate`'s job.
      if (before.status === 'deleted') throw new ApiError('CONFLICT', 'the tenant is deleted; activate it to restore it first');
      const t = await callService(() => tenancy.tenants.setStatus(scopeOf(p), before.id, 'suspended', auditActor(p)));
      if (before.status !== 'suspended') {
        await deps.events.publish('account.suspended', t.id, { tenant_id: t.id, tenant_name: t.name, suspended_at: iso(t.updatedAt) });
      }
      return { data: view(t) };
    },
  );

  app.post<{ Params: IdParams }>(
    '/admin/tenants/:id/activate',
    {
      config: { action: 'tenants.write' },
      schema: {
        tags: TAGS,
        summary: 'Activate a tenant',
        description: 'Lifts a suspension, or restores a deleted tenant within its grace period.',
        params: IdParam,
        response: { 200: Data(TenantSchema), ...errors(404) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      return { data: view(await callService(() => tenancy.tenants.setStatus(scopeOf(p), request.params.id, 'active', auditActor(p)))) };
    },
  );

  app.get<{ Params: IdParams }>(
    '/admin/tenants/:id/usage',
    {
      config: { action: 'tenants.read' },
      schema: {
        tags: TAGS,
        summary: 'A tenant\'s usage',
        description: 'Counts of users, domains, mailboxes and aliases and the bytes stored, with the effective limits.',
        params: IdParam,
        response: { 200: Data(UsageSchema), ...errors(404) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      return { data: usageView(await callService(() => tenancy.tenants.usage(scopeOf(p), request.params.id))) };
    },
  );

}
