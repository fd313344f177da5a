/**
 * `/api/v1/mailboxes` (SPEC §1, §9, §11): deliverable addresses on the tenant's domains.
 *
 * What a caller sees: plain users their own mailboxes; admins the mailboxes of the domains they
 * administer (a domain admin: its domain scope), plus their own. Anything else is 404, exactly
 * like an id that does not exist (SPEC §9 "cannot infer"). Changing one (quota, owner, removal)
 * needs administration of its domain (`canManageMailbox`): a domain admin's own mailbox on a
 * domain it does not run is visible but 403.
 *
 * An owner given as `user_id` must be a user the caller manages (or the caller): a domain admin
 * cannot hand a mailbox to, or probe the ids of, users outside its domains.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { tryParseAddress } from '../../../core/tenancy/addresses.js';
import { NotFoundError } from '../../../core/tenancy/errors.js';
import type { TenancyService } from '../../../core/tenancy/service.js';
import type { Mailbox } from '../../../core/tenancy/types.js';
import { ApiError } from '../../errors.js';
import { principalOf } from '../auth-hook.js';
import type { ApiDeps } from '../deps.js';
import { keysetPage } from '../keyset-page.js';
import { auditActor, type Principal } from '../principal.js';
import { canManageDomain, canManageMailbox, notFound, requireAllowed, scopeOf } from '../policy.js';
import { CursorQuery, Data, DEFAULT_LIMIT, IdParam, Page, Timestamp, errors, iso } from '../schemas.js';
import { callService, mapServiceError } from '../service-errors.js';
import { manageableUser } from './users.js';

const Uuid = Type.String({ format: 'uuid' });
const Bytes = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });

export const MailboxSchema = Type.Object({
  id: Uuid,
  tenant_id: Uuid,
  domain_id: Uuid,
  user_id: Type.Union([Uuid, Type.Null()], { description: 'The owning user; null for a shared mailbox.' }),
  address: Type.String(),
  quota_bytes: Type.Integer({ minimum: 0, description: 'Storage limit; 0 = unlimited.' }),
  used_bytes: Type.Integer({ minimum: 0, description: 'Storage used.' }),
  legal_hold: Type.Boolean(),
  status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export function mailboxView(m: Mailbox): Static<typeof MailboxSchema> {
  return {
    id: m.id,
    tenant_id: m.tenantId,
    domain_id: m.domainId,
    user_id: m.userId,
    address: m.address,
    quota_bytes: m.quotaBytes,
    used_bytes: m.usedBytes,
    legal_hold: m.legalHold,
    status: m.status,
    created_at: iso(m.createdAt),
    updated_at: iso(m.updatedAt),
  };
}

function canSee(p: Principal, m: Mailbox): boolean {
  return m.userId === p.user.id || (p.user.role !== 'user' && canManageMailbox(p, m));
}

/** The mailbox if the principal may see it, else NOT_FOUND. */
async function visibleMailbox(tenancy: TenancyService, p: Principal, id: string): Promise<Mailbox> {
  const m = await callService(() => tenancy.mailboxes.get(scopeOf(p), id));
  if (!canSee(p, m)) throw notFound('mailbox');
  return m;
}

/** The mailbox if the principal administers it; 404 if it cannot see it, 403 if it only sees it. */
async function manageableMailbox(tenancy: TenancyService, p: Principal, id: string): Promise<Mailbox> {
  const m = await visibleMailbox(tenancy, p, id);
  requireAllowed(canManageMailbox(p, m), 'you do not administer this mailbox\'s domain');
  return m;
}

/** The owner id for a mailbox: the caller or a user it manages, else NOT_FOUND. */
async function ownerFor(tenancy: TenancyService, p: Principal, userId: string): Promise<string> {
  if (userId === p.user.id) return userId;
  return (await manageableUser(tenancy, p, userId)).id;
}

const ListQuery = Type.Object(
  {
    ...CursorQuery,
    domain_id: Type.Optional(Uuid),
    user_id: Type.Optional(Uuid),
    tenant_id: Type.Optional(Type.String({ format: 'uuid', description: 'Super-admins: only this tenant\'s mailboxes.' })),
  },
  { additionalProperties: false },
);

const CreateBody = Type.Object(
  {
    address: Type.String({ minLength: 3, maxLength: 254, description: 'local-part@domain on one of your domains.' }),
    user_id: Type.Optional(Uuid),
    quota_bytes: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Default: the plan\'s mailbox quota; 0 = unlimited.' })),
  },
  { additionalProperties: false },
);

const PatchBody = Type.Object(
  {
    quota_bytes: Type.Optional(Bytes),
    user_id: Type.Optional(Type.Union([Uuid, Type.Null()], { description: 'New owner; null makes it a shared mailbox.' })),
  },
  { additionalProperties: false, minProperties: 1 },
);

const DeleteQuery = Type.Object(
  { force: Type.Optional(Type.Boolean({ default: false, description: 'Also when it still holds messages (they are removed).' })) },
  { additionalProperties: false },
);

type IdParams = Static<typeof IdParam>;
const TAGS = ['mailboxes'];

export default async function mailboxesRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { tenancy } = deps.app;

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/mailboxes',
    {
      config: { action: 'mailboxes.read' },
      schema: {
        tags: TAGS,
        summary: 'List mailboxes',
        description: 'Users: their own mailboxes. Admins: those of the domains they administer (and their own). Ordered by address.',
        querystring: ListQuery,
        response: { 200: Page(MailboxSchema), ...errors() },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const { domain_id, user_id, tenant_id, cursor, limit = DEFAULT_LIMIT } = request.query;
      let userId = user_id;
      if (p.user.role === 'user') {
        if (user_id !== undefined && user_id !== p.user.id) return { data: [], pagination: { cursor: null, has_more: false } };
        userId = p.user.id;
      }
      // Everything the query returns is visible, except for a domain admin outside one of its domains.
      const filtered = p.user.role === 'domain_admin' && !(domain_id !== undefined && canManageDomain(p, { id: domain_id }));
      return keysetPage(
        {
          fetch: (after, n) =>
            callService(() => tenancy.mailboxes.list(scopeOf(p), { after, limit: n, domainId: domain_id, userId, tenantId: tenant_id })),
          key: (m) => m.address,
          visible: filtered ? (m) => canSee(p, m) : undefined,
        },
        { cursor, limit },
        mailboxView,
      );
    },
  );

  app.post<{ Body: Static<typeof CreateBody> }>(
    '/mailboxes',
    {
      config: { action: 'mailboxes.write' },
      schema: {
        tags: TAGS,
        summary: 'Create a mailbox',
        description: 'With its special folders (INBOX, Sent, Drafts, Junk, Trash, Archive).',
        body: CreateBody,
        response: { 201: Data(MailboxSchema), ...errors(404, 409, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const b = request.body;
      const domainName = tryParseAddress(b.address)?.domain;
      if (domainName !== undefined && p.user.role === 'domain_admin') {
        // A domain outside the admin's scope is answered like an unknown one (the service's words).
        const d = await tenancy.domains.get(scopeOf(p), domainName).catch((err: unknown) => {
          if (err instanceof NotFoundError) return null;
          throw mapServiceError(err);
        });
        if (!d || !canManageDomain(p, d)) throw new ApiError('NOT_FOUND', `domain "${domainName}" not found`, { field: 'address' });
      }
      const owner = b.user_id === undefined ? undefined : await ownerFor(tenancy, p, b.user_id);
      const m = await callService(() => tenancy.mailboxes.add(scopeOf(p), { address: b.address, user: owner, quotaBytes: b.quota_bytes }, auditActor(p)));
      reply.code(201);
      return { data: mailboxView(m) };
    },
  );

  app.get<{ Params: IdParams }>(
    '/mailboxes/:id',
    {
      config: { action: 'mailboxes.read' },
      schema: {
        tags: TAGS,
        summary: 'Get a mailbox',
        description: 'Including its quota (`quota_bytes`) and the storage it uses (`used_bytes`).',
        params: IdParam,
        response: { 200: Data(MailboxSchema), ...errors(404) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      return { data: mailboxView(await visibleMailbox(tenancy, p, request.params.id)) };
    },
  );

  app.patch<{ Params: IdParams; Body: Static<typeof PatchBody> }>(
    '/mailboxes/:id',
    {
      config: { action: 'mailboxes.write' },
      schema: {
        tags: TAGS,
        summary: 'Change a mailbox',
        description: 'Its quota and its owner.',
        params: IdParam,
        body: PatchBody,
        response: { 200: Data(MailboxSchema), ...errors(404, 422) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const b = request.body;
      let m = await manageableMailbox(tenancy, p, request.params.id);
      if (b.user_id !== undefined) {
        const owner = b.user_id === null ? null : await ownerFor(tenancy, p, b.user_id);
        m = await callService(() => tenancy.mailboxes.setOwner(scopeOf(p), m.id, owner, auditActor(p)));
      }
      if (b.quota_bytes !== undefined) m = await callService(() => tenancy.mailboxes.setQuota(scopeOf(p), m.id, b.quota_bytes!, auditActor(p)));
      return { data: mailboxView(m) };
    },
  );

  app.delete<{ Params: IdParams; Querystring: Static<typeof DeleteQuery> }>(
    '/mailboxes/:id',
    {
      config: { action: 'mailboxes.write' },
      schema: {
        tags: TAGS,
        summary: 'Delete a mailbox',
        description: 'With its folders. A mailbox still holding messages needs `force=true` (409 otherwise); one under legal hold cannot be deleted (409). Aliases left without a target are deleted with it.',
        params: IdParam,
        querystring: DeleteQuery,
        response: { 204: Type.Null({ description: 'Deleted.' }), ...errors(404, 409) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const m = await manageableMailbox(tenancy, p, request.params.id);
      await callService(() => tenancy.mailboxes.remove(scopeOf(p), m.id, { force: request.query.force === true }, auditActor(p)));
      return reply.code(204).send();
    },
  );
}
