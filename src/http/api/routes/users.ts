/**
 * `/api/v1/users` (SPEC §9, §11): user administration.
 *
 * Who manages whom is `canManageUser` (policy.ts): a super-admin everyone, a tenant admin everyone
 * of its tenant but super-admins, a domain admin the plain users whose login is in one of its
 * domains. Users the caller cannot manage are invisible — listed nowhere and 404 by id — so
 * their existence cannot be probed. Creating follows the same rule: a domain admin creates only
 * plain users in its own domains, and only a super-admin creates super-admins.
 *
 * Nobody changes their own role, status or domain scope, or deletes themselves, here: an admin
 * cannot lock themselves out by accident (the service separately keeps the last super-admin).
 *
 * A password reset returns the generated password once and signs the user out everywhere
 * (sessions and bearer tokens), so whoever held the old password loses access (SPEC §10);
 * disabling a user ends its sessions and tokens as well.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { tryParseAddress } from '../../../core/tenancy/addresses.js';
import { NotFoundError } from '../../../core/tenancy/errors.js';
import { LOGIN_EMAIL } from '../../../core/tenancy/roles.js';
import type { TenancyService } from '../../../core/tenancy/service.js';
import type { User, UserRole } from '../../../core/tenancy/types.js';
import { PASSWORD_MAX_BYTES } from '../../../security/passwords.js';
import { principalOf } from '../auth-hook.js';
import type { ApiDeps } from '../deps.js';
import { keysetPage } from '../keyset-page.js';
import { auditActor, type Principal } from '../principal.js';
import { canManageUser, notFound, requireAllowed, scopeOf } from '../policy.js';
import { CursorQuery, Data, DEFAULT_LIMIT, IdParam, NullableTimestamp, Page, Timestamp, errors, iso } from '../schemas.js';
import { callService } from '../service-errors.js';
import { MfaService } from '../../../security/mfa.js';

const Role = Type.Union([Type.Literal('super_admin'), Type.Literal('tenant_admin'), Type.Literal('domain_admin'), Type.Literal('user')]);
const Status = Type.Union([Type.Literal('active'), Type.Literal('disabled')]);
const Uuid = Type.String({ format: 'uuid' });
/** RFC 5321 §4.5.3.1.3: an address is at most 254 octets. */
const Email = Type.String({ minLength: 3, maxLength: 254 });
const DisplayName = Type.String({ maxLength: 256 });
const Locale = Type.String({ minLength: 2, maxLength: 35, description: 'A language tag such as `en` or `ja`.' });
const DomainScope = Type.Array(Uuid, { maxItems: 1000, description: 'domain_admin only: ids of the domains it manages.' });

export const UserSchema = Type.Object({
  id: Uuid,
  tenant_id: Uuid,
  email: Type.String(),
  display_name: Type.String(),
  role: Role,
  domain_scope: Type.Array(Uuid),
  status: Status,
  locale: Type.String(),
  created_at: Timestamp,
  updated_at: Timestamp,
  last_login_at: NullableTimestamp,
});

export function userView(u: User): Static<typeof UserSchema> {
  return {
    id: u.id,
    tenant_id: u.tenantId,
    email: u.email,
    display_name: u.displayName,
    role: u.role,
    domain_scope: [...u.domainScope],
    status: u.status,
    locale: u.locale,
    created_at: iso(u.createdAt),
    updated_at: iso(u.updatedAt),
    last_login_at: iso(u.lastLoginAt),
  };
}

/** Names of the domains a domain admin manages (canManageUser compares logins by domain name). */
export async function adminDomainNames(tenancy: TenancyService, p: Principal): Promise<string[]> {
  if (p.user.role !== 'domain_admin') return [];
  const names: string[] = [];
  for (const id of p.user.domainScope) {
    try {
      names.push((await tenancy.domains.get(scopeOf(p), id)).name);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err; // removed meanwhile: manages nothing there
    }
  }
  return names;
}

/** The user if the principal may manage it, else NOT_FOUND (indistinguishable from a missing id). */
export async function manageableUser(tenancy: TenancyService, p: Principal, id: string, domainNames?: string[]): Promise<User> {
  const u = await callService(() => tenancy.users.get(scopeOf(p), id));
  if (!canManageUser(p, u, domainNames ?? (await adminDomainNames(tenancy, p)))) throw notFound('user');
  return u;
}

const ListQuery = Type.Object(
  {
    ...CursorQuery,
    role: Type.Optional(Role),
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 254, description: 'Only users whose e-mail starts with this (case-insensitive).' })),
    tenant_id: Type.Optional(Type.String({ format: 'uuid', description: 'Super-admins: only this tenant\'s users.' })),
  },
  { additionalProperties: false },
);

const CreateBody = Type.Object(
  {
    email: Email,
    password: Type.String({ maxLength: PASSWORD_MAX_BYTES, description: 'At least 12 characters.' }),
    role: Type.Optional(Role),
    display_name: Type.Optional(DisplayName),
    domain_scope: Type.Optional(DomainScope),
    locale: Type.Optional(Locale),
    tenant_id: Type.Optional(Type.String({ format: 'uuid', description: 'Required for super-admins: the tenant to add the user to.' })),
  },
  { additionalProperties: false },
);

const PatchBody = Type.Object(
  {
    display_name: Type.Optional(DisplayName),
    role: Type.Optional(Role),
    domain_scope: Type.Optional(DomainScope),
    status: Type.Optional(Status),
    locale: Type.Optional(Locale),
  },
  { additionalProperties: false, minProperties: 1 },
);

const ResetResult = Type.Object({
  user: UserSchema,
  password: Type.String({ description: 'The new password. Shown only in this response.' }),
});

type IdParams = Static<typeof IdParam>;
const TAGS = ['users'];

function domainOf(email: string): string | null {
  return tryParseAddress(email, LOGIN_EMAIL)?.domain ?? null;
}

export default async function usersRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { tenancy } = deps.app;

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/users',
    {
      config: { action: 'users.read' },
      schema: {
        tags: TAGS,
        summary: 'List users',
        description: 'The users you manage, ordered by e-mail.',
        querystring: ListQuery,
        response: { 200: Page(UserSchema), ...errors() },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const { role, q, tenant_id, cursor, limit = DEFAULT_LIMIT } = request.query;
      const names = await adminDomainNames(tenancy, p);
      const prefix = q?.trim().toLowerCase();
      const filtered = p.user.role !== 'super_admin' || !!prefix;
      return keysetPage(
        {
          fetch: (after, n) => callService(() => tenancy.users.list(scopeOf(p), { after, limit: n, role: role as UserRole | undefined, tenantId: tenant_id })),
          key: (u) => u.email,
          visible: filtered ? (u) => canManageUser(p, u, names) && (!prefix || u.email.startsWith(prefix)) : undefined,
        },
        { cursor, limit },
        userView,
      );
    },
  );

  app.post<{ Body: Static<typeof CreateBody> }>(
    '/users',
    {
      config: { action: 'users.write' },
      schema: {
        tags: TAGS,
        summary: 'Create a user',
        description: 'Domain admins create plain users in their own domains; tenant admins cannot create super-admins. Publishes `user.created`.',
        body: CreateBody,
        response: { 201: Data(UserSchema), ...errors(404, 409, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const b = request.body;
      if (p.user.role === 'domain_admin') {
        requireAllowed((b.role ?? 'user') === 'user', 'a domain admin may only create users with the role "user"');
        const domain = domainOf(b.email);
        // An unparsable address is the service's 422 to report.
        if (domain !== null) requireAllowed((await adminDomainNames(tenancy, p)).includes(domain), `you do not administer the domain "${domain}"`);
      }
      const u = await callService(() =>
        tenancy.users.add(
          scopeOf(p),
          { tenantId: b.tenant_id, email: b.email, password: b.password, role: b.role, displayName: b.display_name, domainScope: b.domain_scope, locale: b.locale },
          auditActor(p),
        ),
      );
      await deps.events.publish('user.created', u.tenantId, { user_id: u.id, email: u.email, role: u.role });
      reply.code(201);
      return { data: userView(u) };
    },
  );

  app.get<{ Params: IdParams }>(
    '/users/:id',
    {
      config: { action: 'users.read' },
      schema: { tags: TAGS, summary: 'Get a user', params: IdParam, response: { 200: Data(UserSchema), ...errors(404) } },
    },
    async (request) => {
      const p = principalOf(request);
      return { data: userView(await manageableUser(tenancy, p, request.params.id)) };
    },
  );

  app.patch<{ Params: IdParams; Body: Static<typeof PatchBody> }>(
    '/users/:id',
    {
      config: { action: 'users.write' },
      schema: {
        tags: TAGS,
        summary: 'Change a user',
        description: 'Display name, role, domain scope (domain admins), status and locale.',
        params: IdParam,
        body: PatchBody,
        response: { 200: Data(UserSchema), ...errors(404, 409, 422) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const b = request.body;
      const u = await manageableUser(tenancy, p, request.params.id);
      if (u.id === p.user.id) {
        requireAllowed(b.role === undefined && b.status === undefined && b.domain_scope === undefined, 'you cannot change your own role, status or domain scope');
      }
      if (p.user.role === 'domain_admin') requireAllowed(b.role === undefined || b.role === 'user', 'a domain admin may only manage users with the role "user"');
      const updated = await callService(() =>
        tenancy.users.update(
          scopeOf(p),
          u.id,
          { displayName: b.display_name, role: b.role, domainScope: b.domain_scope, status: b.status, locale: b.locale },
          auditActor(p),
        ),
      );
      // A disabled account is refused on every request anyway (auth-hook.ts); ending its sessions
      // and tokens too means re-enabling it does not bring them back to life.
      if (u.status === 'active' && updated.status === 'disabled') {
        await deps.sessions.revokeAllForUser(u.id);
        await deps.tokens.revokeAllForUser(u.id);
      }
      return { data: userView(updated) };
    },
  );

  app.delete<{ Params: IdParams }>(
    '/users/:id',
    {
      config: { action: 'users.write' },
      schema: {
        tags: TAGS,
        summary: 'Delete a user',
        description: 'Mailboxes the user owned are kept, without an owner.',
        params: IdParam,
        response: { 204: Type.Null({ description: 'Deleted.' }), ...errors(404, 409) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const u = await manageableUser(tenancy, p, request.params.id);
      requireAllowed(u.id !== p.user.id, 'you cannot delete yourself');
      await callService(() => tenancy.users.remove(scopeOf(p), u.id, auditActor(p)));
      return reply.code(204).send();
    },
  );

  app.post<{ Params: IdParams }>(
    '/users/:id/reset-password',
    {
      config: { action: 'users.write' },
      schema: {
        tags: TAGS,
        summary: 'Reset a user\'s password',
        description: 'Sets a generated password, returned once in this response, and signs the user out of every session and bearer token.',
        params: IdParam,
        response: { 200: Data(ResetResult), ...errors(404) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const u = await manageableUser(tenancy, p, request.params.id);
      const { password } = await callService(() => tenancy.users.resetPassword(scopeOf(p), u.id, auditActor(p)));
      // Whoever knew the old password is signed out; an admin resetting their own keeps this credential.
      const self = u.id === p.user.id;
      await deps.sessions.revokeAllForUser(u.id, self && p.via === 'session' ? p.credentialId : undefined);
      await deps.tokens.revokeAllForUser(u.id, self && p.via === 'bearer' ? p.credentialId : undefined);
      // The password is in this body only: never cached by an intermediary.
      reply.header('cache-control', 'no-store');
      return { data: { user: userView(u), password } };
    },
  );

  app.post<{ Params: IdParams }>(
    '/users/:id/mfa/reset',
    {
      config: { action: 'users.write' },
      schema: {
        tags: TAGS,
        summary: "Remove a user's TOTP enrolment",
        description:
          'For a user who lost both the authenticator and the recovery codes: the enrolment is deleted (audited as `user.mfa_reset`) and the user is signed out everywhere; ' +
          'they sign in with the password and enrol again. `removed` is false when there was no enrolment.',
        params: IdParam,
        response: { 200: Data(Type.Object({ removed: Type.Boolean() })), ...errors(404) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const u = await manageableUser(tenancy, p, request.params.id);
      requireAllowed(u.id !== p.user.id, 'your own second factor is turned off with POST /api/v1/auth/totp/disable');
      const mfa = new MfaService({ db: deps.app.db, secrets: deps.secrets, now: deps.now });
      const removed = await mfa.reset({ id: u.id, tenantId: u.tenantId, email: u.email }, auditActor(p));
      if (removed) {
        await deps.sessions.revokeAllForUser(u.id);
        await deps.tokens.revokeAllForUser(u.id);
      }
      return { data: { removed } };
    },
  );

}
