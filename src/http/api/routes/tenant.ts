/**
 * `/api/v1/tenant` (SPEC §9): the caller's own tenant, for its tenant admins — read it, see its
 * usage against the plan, and set the one policy a tenant decides for itself: whether every user
 * must sign in with a second factor (SPEC §10). Plan, limits, retention and status stay with the
 * super-admin (`/admin/tenants`).
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../auth-hook.js';
import type { ApiDeps } from '../deps.js';
import { auditActor } from '../principal.js';
import { scopeOf } from '../policy.js';
import { Data, errors } from '../schemas.js';
import { callService } from '../service-errors.js';
import { TenantSchema, UsageSchema, tenantView, usageView } from './tenants.js';

const PatchBody = Type.Object(
  { mfa_required: Type.Boolean({ description: 'Every user of the tenant must sign in with TOTP.' }) },
  { additionalProperties: false },
);

const TAGS = ['tenant'];

export default async function tenantRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { tenancy } = deps.app;

  app.get(
    '/tenant',
    {
      config: { action: 'tenant.read' },
      schema: { tags: TAGS, summary: 'Your tenant', response: { 200: Data(TenantSchema), ...errors() } },
    },
    async (request) => {
      const p = principalOf(request);
      return { data: tenantView(tenancy, await callService(() => tenancy.tenants.get(scopeOf(p), p.tenant.id))) };
    },
  );

  app.patch<{ Body: Static<typeof PatchBody> }>(
    '/tenant',
    {
      config: { action: 'tenant.write' },
      schema: {
        tags: TAGS,
        summary: 'Change your tenant\'s MFA policy',
        body: PatchBody,
        response: { 200: Data(TenantSchema), ...errors(422) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const t = await callService(() => tenancy.tenants.setMfaRequired(scopeOf(p), p.tenant.id, request.body.mfa_required, auditActor(p)));
      return { data: tenantView(tenancy, t) };
    },
  );

  app.get(
    '/tenant/usage',
    {
      config: { action: 'tenant.read' },
      schema: {
        tags: TAGS,
        summary: 'Your tenant\'s usage',
        description: 'Counts of users, domains, mailboxes and aliases and the bytes stored, with the effective limits.',
        response: { 200: Data(UsageSchema), ...errors() },
      },
    },
    async (request) => {
      const p = principalOf(request);
      return { data: usageView(await callService(() => tenancy.tenants.usage(scopeOf(p), p.tenant.id))) };
    },
  );
}
