/**
 * `/api/v1/aliases` (SPEC §1, §11): extra addresses delivering into 1–100 mailboxes of the same
 * tenant.
 *
 * Admins see and change the aliases of the domains they administer; any other alias is 404. A
 * domain admin's aliases may only deliver into mailboxes it administers: a target outside its
 * domains is reported exactly like a mailbox that does not exist, so it can neither route mail
 * to other domains' mailboxes nor probe which addresses exist there.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { tryParseAddress } from '../../../core/tenancy/addresses.js';
import { MAX_ALIAS_TARGETS } from '../../../core/tenancy/aliases.js';
import { NotFoundError } from '../../../core/tenancy/errors.js';
import type { TenancyService } from '../../../core/tenancy/service.js';
import type { Alias } from '../../../core/tenancy/types.js';
import { ApiError } from '../../errors.js';
import { principalOf } from '../auth-hook.js';
import type { ApiDeps } from '../deps.js';
import { keysetPage } from '../keyset-page.js';
import { auditActor, type Principal } from '../principal.js';
import { canManageDomain, canManageMailbox, notFound, scopeOf } from '../policy.js';
import { CursorQuery, Data, DEFAULT_LIMIT, IdParam, Page, Timestamp, errors, iso } from '../schemas.js';
import { callService, mapServiceError, type FieldNames } from '../service-errors.js';

const Uuid = Type.String({ format: 'uuid' });

export const AliasSchema = Type.Object({
  id: Uuid,
  tenant_id: Uuid,
  domain_id: Uuid,
  address: Type.String(),
  targets: Type.Array(Type.Object({ mailbox_id: Uuid, address: Type.String() })),
  created_at: Timestamp,
});

export function aliasView(a: Alias): Static<typeof AliasSchema> {
  return {
    id: a.id,
    tenant_id: a.tenantId,
    domain_id: a.domainId,
    address: a.address,
    targets: a.targets.map((t) => ({ mailbox_id: t.mailboxId, address: t.address })),
    created_at: iso(a.createdAt),
  };
}

// The service names a malformed target address `target`; the body's field is `targets`.
const FIELDS: FieldNames = { target: 'targets' };

const Targets = Type.Array(Type.String({ minLength: 1, maxLength: 254 }), {
  minItems: 1,
  maxItems: MAX_ALIAS_TARGETS,
  description: `Mailbox addresses or ids of the same tenant (1–${MAX_ALIAS_TARGETS}).`,
});

const ListQuery = Type.Object(
  {
    ...CursorQuery,
    domain_id: Type.Optional(Uuid),
    tenant_id: Type.Optional(Type.String({ format: 'uuid', description: 'Super-admins: only this tenant\'s aliases.' })),
  },
  { additionalProperties: false },
);

const CreateBody = Type.Object(
  { address: Type.String({ minLength: 3, maxLength: 254, description: 'local-part@domain on one of your domains.' }), targets: Targets },
  { additionalProperties: false },
);

const TargetsBody = Type.Object({ targets: Targets }, { additionalProperties: false });

type IdParams = Static<typeof IdParam>;
const TAGS = ['aliases'];

function canSee(p: Principal, a: Pick<Alias, 'domainId'>): boolean {
  return canManageDomain(p, { id: a.domainId });
}

async function visibleAlias(tenancy: TenancyService, p: Principal, id: string): Promise<Alias> {
  const a = await callService(() => tenancy.aliases.get(scopeOf(p), id));
  if (!canSee(p, a)) throw notFound('alias');
  return a;
}

/**
 * Domain admins: every target must be a mailbox they administer. Others: the service checks that
 * the targets are mailboxes of the alias's tenant. Same answer as the service for unknown ones.
 */
async function checkTargets(tenancy: TenancyService, p: Principal, targets: string[]): Promise<void> {
  if (p.user.role !== 'domain_admin') return;
  const unknown: string[] = [];
  for (const ref of new Set(targets)) {
    const m = await tenancy.mailboxes.get(scopeOf(p), ref).catch((err: unknown) => {
      if (err instanceof NotFoundError) return null;
      throw mapServiceError(err, FIELDS);
    });
    if (!m || !canManageMailbox(p, m)) unknown.push(ref);
  }
  if (unknown.length) {
    const message = `unknown target mailbox(es): ${unknown.join(', ')}`;
    throw new ApiError('VALIDATION_ERROR', message, { field: 'targets', unknown, errors: [{ path: '/targets', message }] });
  }
}

export default async function aliasesRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { tenancy } = deps.app;

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/aliases',
    {
      config: { action: 'aliases.read' },
      schema: {
        tags: TAGS,
        summary: 'List aliases',
        description: 'Those of the domains you administer, ordered by address.',
        querystring: ListQuery,
        response: { 200: Page(AliasSchema), ...errors() },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const { domain_id, tenant_id, cursor, limit = DEFAULT_LIMIT } = request.query;
      const filtered = p.user.role === 'domain_admin' && !(domain_id !== undefined && canManageDomain(p, { id: domain_id }));
      return keysetPage(
        {
          fetch: (after, n) => callService(() => tenancy.aliases.list(scopeOf(p), { after, limit: n, domainId: domain_id, tenantId: tenant_id })),
          key: (a) => a.address,
          visible: filtered ? (a) => canSee(p, a) : undefined,
        },
        { cursor, limit },
        aliasView,
      );
    },
  );

  app.post<{ Body: Static<typeof CreateBody> }>(
    '/aliases',
    {
      config: { action: 'aliases.write' },
      schema: {
        tags: TAGS,
        summary: 'Create an alias',
        body: CreateBody,
        response: { 201: Data(AliasSchema), ...errors(404, 409, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const b = request.body;
      const domainName = tryParseAddress(b.address)?.domain;
      if (domainName !== undefined && p.user.role === 'domain_admin') {
        const d = await tenancy.domains.get(scopeOf(p), domainName).catch((err: unknown) => {
          if (err instanceof NotFoundError) return null;
          throw mapServiceError(err);
        });
        if (!d || !canManageDomain(p, d)) throw new ApiError('NOT_FOUND', `domain "${domainName}" not found`, { field: 'address' });
      }
      await checkTargets(tenancy, p, b.targets);
      const a = await callService(() => tenancy.aliases.add(scopeOf(p), { address: b.address, targets: b.targets }, auditActor(p)), FIELDS);
      reply.code(201);
      return { data: aliasView(a) };
    },
  );

  app.get<{ Params: IdParams }>(
    '/aliases/:id',
    {
      config: { action: 'aliases.read' },
      schema: { tags: TAGS, summary: 'Get an alias', params: IdParam, response: { 200: Data(AliasSchema), ...errors(404) } },
    },
    async (request) => {
      const p = principalOf(request);
      return { data: aliasView(await visibleAlias(tenancy, p, request.params.id)) };
    },
  );

  app.put<{ Params: IdParams; Body: Static<typeof TargetsBody> }>(
    '/aliases/:id/targets',
    {
      config: { action: 'aliases.write' },
      schema: {
        tags: TAGS,
        summary: 'Replace an alias\'s targets',
        params: IdParam,
        body: TargetsBody,
        response: { 200: Data(AliasSchema), ...errors(404, 409, 422) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const a = await visibleAlias(tenancy, p, request.params.id);
      await checkTargets(tenancy, p, request.body.targets);
      return { data: aliasView(await callService(() => tenancy.aliases.setTargets(scopeOf(p), a.id, request.body.targets, auditActor(p)), FIELDS)) };
    },
  );

  app.delete<{ Params: IdParams }>(
    '/aliases/:id',
    {
      config: { action: 'aliases.write' },
      schema: { tags: TAGS, summary: 'Delete an alias', params: IdParam, response: { 204: Type.Null({ description: 'Deleted.' }), ...errors(404) } },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const a = await visibleAlias(tenancy, p, request.params.id);
      await callService(() => tenancy.aliases.remove(scopeOf(p), a.id, auditActor(p)));
      return reply.code(204).send();
    },
  );
}
