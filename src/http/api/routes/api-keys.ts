/**
 * API keys (SPEC §10, §11): `mk_live_…` credentials a user creates for scripts and integrations.
 *
 *  - `GET /api-keys` lists the caller's own keys; `?all=true` lists every key of the tenant (a
 *    tenant admin) or of every tenant (a super-admin) — the one place a handler calls `authorize`
 *    itself, because the action depends on a query parameter.
 *  - `POST /api-keys` creates a key and returns it **once** (`key`); only its public prefix is
 *    kept readable, the secret part is stored as a hash (ApiKeyStore).
 *  - `DELETE /api-keys/:id` revokes; `POST /api-keys/:id/rotate` issues a replacement (returned
 *    once) and revokes the old key in the same transaction.
 *
 * A key can never hold more than its creator: `admin` only for admins, `plugin` only for tenant and
 * super admins, and a key creating a key only within its own scopes (no escalation from a narrower
 * key). Keys of other users are invisible (404) except to tenant/super admins, who may revoke them;
 * rotating — which hands out a working credential of the key's owner — stays with the owner (403),
 * so an administrator cannot obtain a key acting as somebody else.
 *
 * Every change is audited (`api_key.created|revoked|rotated`) in the transaction of the change,
 * with the key's id, name, prefix and scopes, never the key.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { DB } from '../../../store/db/types.js';
import { ApiKeyStore, API_SCOPES, type ApiKey, type ApiScope, type NewApiKey } from '../../../security/credentials/api-keys.js';
import { writeAudit } from '../../../security/audit.js';
import { tenantScope } from '../../../core/scope.js';
import { ApiError } from '../../errors.js';
import type { ApiDeps } from '../deps.js';
import { principalOf } from '../auth-hook.js';
import { auditActor, type Principal } from '../principal.js';
import { ACTIONS, authorize, notFound, scopeOf } from '../policy.js';
import { CursorQuery, Data, DEFAULT_LIMIT, IdParam, NullableTimestamp, Page, Timestamp, decodeCursor, errors, iso, pageOf } from '../schemas.js';

const TAGS = ['api-keys'];

/** Live (not revoked) keys one user may hold; bounded like every count (SPEC §10 "Input"). */
export const MAX_ACTIVE_KEYS_PER_USER = 50;
/** Expiry at most this far ahead (10 years); keys without `expires_at` do not expire. */
export const MAX_EXPIRY_MS = 3650 * 86_400_000;

const ScopeSchema = Type.Union(API_SCOPES.map((s) => Type.Literal(s)));

const apiKeyProps = {
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  prefix: Type.String({ description: 'Public part of the key (`mk_live_<12 characters>`): identifies it without revealing it.' }),
  scopes: Type.Array(ScopeSchema),
  user_id: Type.String({ format: 'uuid', description: 'The key acts as this user.' }),
  tenant_id: Type.String({ format: 'uuid' }),
  created_at: Timestamp,
  expires_at: NullableTimestamp,
  last_used_at: Type.Union([Timestamp, Type.Null()], { description: 'Updated at most once a minute.' }),
  revoked_at: NullableTimestamp,
};

const ApiKeySchema = Type.Object(apiKeyProps, { title: 'ApiKey' });
const NewApiKeySchema = Type.Object(
  { ...apiKeyProps, key: Type.String({ description: 'The whole key. Shown only in this response: store it now.' }) },
  { title: 'NewApiKey' },
);

const ListQuery = Type.Object(
  {
    all: Type.Optional(Type.Boolean({ default: false, description: 'Every key of the tenant (tenant admins) or of all tenants (super-admins).' })),
    include_revoked: Type.Optional(Type.Boolean({ default: false })),
    ...CursorQuery,
  },
  { additionalProperties: false },
);

const CreateBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100, pattern: '^[^\\u0000-\\u001f\\u007f]+$', description: 'What the key is for.' }),
    scopes: Type.Array(ScopeSchema, { minItems: 1, maxItems: API_SCOPES.length, uniqueItems: true }),
    expires_at: Type.Optional(Type.String({ format: 'date-time', description: 'When the key stops working (in the future, at most 10 years ahead). Omit for no expiry.' })),
  },
  { additionalProperties: false },
);

type CursorPos = { c: number; i: string };
const isCursorPos = (v: unknown): v is CursorPos =>
  typeof v === 'object' && v !== null && Number.isSafeInteger((v as CursorPos).c) && typeof (v as CursorPos).i === 'string' && (v as CursorPos).i.length <= 64;

function toJson(k: ApiKey) {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes,
    user_id: k.userId,
    tenant_id: k.tenantId,
    created_at: iso(k.createdAt),
    expires_at: iso(k.expiresAt),
    last_used_at: iso(k.lastUsedAt),
    revoked_at: iso(k.revokedAt),
  };
}

function toNewJson(k: NewApiKey) {
  return { ...toJson(k), key: k.key };
}

/** Whether the principal may act on keys of other users (without throwing: used for row rules). */
function managesAllKeys(p: Principal): boolean {
  const rule = ACTIONS['api_keys.manage'];
  return (rule.roles as readonly string[]).includes(p.user.role) && p.scopes.has(rule.scope);
}

/** Roles allowed to hand out each scope: a key never carries more than its owner's role allows. */
function scopeAllowedForRole(scope: ApiScope, role: Principal['user']['role']): boolean {
  switch (scope) {
    case 'admin':
      return role === 'super_admin' || role === 'tenant_admin' || role === 'domain_admin';
    case 'plugin':
      return role === 'super_admin' || role === 'tenant_admin';
    default:
      return true;
  }
}

export async function apiKeysRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const now = deps.now ?? Date.now;
  const { db } = deps.app;

  /** An ApiKeyStore bound to a transaction, so a key change and its audit row commit together. */
  const storeIn = (trx: Kysely<DB>) => new ApiKeyStore({ ...db, kysely: trx }, { now });

  /** The key `id` as the principal may see it, or 404. */
  async function visibleKey(p: Principal, id: string): Promise<ApiKey> {
    const key = await deps.apiKeys.get(scopeOf(p), id);
    if (!key || (key.userId !== p.user.id && !managesAllKeys(p))) throw notFound('API key');
    return key;
  }

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/api-keys',
    {
      config: { action: 'api_keys.self' },
      schema: {
        tags: TAGS,
        summary: 'List API keys',
        description: 'The caller\'s own keys, newest first. With `all=true` (tenant admins, super-admins) every key of the tenant, or of every tenant for a super-admin. The keys themselves are never shown again.',
        querystring: ListQuery,
        response: { 200: Page(ApiKeySchema), ...errors() },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const q = request.query;
      const limit = q.limit ?? DEFAULT_LIMIT;
      const pos = decodeCursor(q.cursor, isCursorPos);
      let rows: ApiKey[];
      const opts = { includeRevoked: q.include_revoked === true, limit: limit + 1, before: pos ? { createdAt: pos.c, id: pos.i } : undefined };
      if (q.all === true) {
        authorize(p, 'api_keys.manage');
        rows = await deps.apiKeys.list(scopeOf(p), opts);
      } else {
        rows = await deps.apiKeys.list(tenantScope(p.user.tenantId), { ...opts, userId: p.user.id });
      }
      return pageOf(rows, limit, (k) => ({ c: k.createdAt, i: k.id }), toJson);
    },
  );

  app.post<{ Body: Static<typeof CreateBody> }>(
    '/api-keys',
    {
      config: { action: 'api_keys.self' },
      schema: {
        tags: TAGS,
        summary: 'Create an API key',
        description:
          'Returns the key once, in `key`. Scopes: `read`, `write` (mail changes), `send`, `admin` (administration; admins only), `plugin` (tenant and super admins only). ' +
          `A key may create keys only within its own scopes. At most ${MAX_ACTIVE_KEYS_PER_USER} live keys per user.`,
        body: CreateBody,
        response: { 201: Data(NewApiKeySchema), ...errors(409, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const body = request.body;
      const scopes = body.scopes as ApiScope[];
      const notForRole = scopes.filter((s) => !scopeAllowedForRole(s, p.user.role));
      if (notForRole.length) {
        throw new ApiError('FORBIDDEN', `role ${p.user.role} may not create keys with scope ${notForRole.join(', ')}`, { scopes: notForRole });
      }
      const beyondKey = scopes.filter((s) => !p.scopes.has(s));
      if (beyondKey.length) {
        throw new ApiError('FORBIDDEN', `an API key cannot create a key with scopes it lacks: ${beyondKey.join(', ')}`, { scopes: beyondKey });
      }
      let expiresAt: number | null = null;
      if (body.expires_at !== undefined) {
        expiresAt = Date.parse(body.expires_at);
        const t = now();
        if (!(expiresAt > t)) throw new ApiError('VALIDATION_ERROR', 'expires_at must be in the future', { field: 'expires_at' });
        if (expiresAt - t > MAX_EXPIRY_MS) throw new ApiError('VALIDATION_ERROR', 'expires_at must be at most 10 years ahead', { field: 'expires_at' });
      }
      const created = await db.kysely.transaction().execute(async (trx) => {
        const live = await trx
          .selectFrom('api_keys')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('user_id', '=', p.user.id)
          .where('revoked_at', 'is', null)
          .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now())]))
          .executeTakeFirstOrThrow();
        const current = Number(live.n);
        if (current >= MAX_ACTIVE_KEYS_PER_USER) {
          throw new ApiError('CONFLICT', `at most ${MAX_ACTIVE_KEYS_PER_USER} live API keys per user; revoke one first`, {
            limit: 'api_keys_per_user',
            max: MAX_ACTIVE_KEYS_PER_USER,
            current,
          });
        }
        const key = await storeIn(trx).create({ tenantId: p.user.tenantId, userId: p.user.id, name: body.name, scopes, expiresAt });
        await writeAudit(trx, {
          tenantId: key.tenantId,
          eventType: 'api_key.created',
          actor: auditActor(p),
          target: { type: 'api_key', id: key.id },
          metadata: { name: key.name, prefix: key.prefix, scopes: key.scopes, expires_at: iso(key.expiresAt), owner_id: key.userId },
        });
        return key;
      });
      reply.code(201);
      return { data: toNewJson(created) };
    },
  );

  app.delete<{ Params: Static<typeof IdParam> }>(
    '/api-keys/:id',
    {
      config: { action: 'api_keys.self' },
      schema: {
        tags: TAGS,
        summary: 'Revoke an API key',
        description: 'Takes effect at once. Tenant admins and super-admins may revoke keys of other users. Revoking a revoked key changes nothing.',
        params: IdParam,
        response: { 204: Type.Null({ description: 'Revoked.' }), ...errors(404) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const key = await visibleKey(p, request.params.id);
      if (key.revokedAt === null) {
        await db.kysely.transaction().execute(async (trx) => {
          if (!(await storeIn(trx).revoke(scopeOf(p), key.id))) return; // revoked concurrently
          await writeAudit(trx, {
            tenantId: key.tenantId,
            eventType: 'api_key.revoked',
            actor: auditActor(p),
            target: { type: 'api_key', id: key.id },
            metadata: { name: key.name, prefix: key.prefix, owner_id: key.userId },
          });
        });
      }
      return reply.code(204).send();
    },
  );

  app.post<{ Params: Static<typeof IdParam> }>(
    '/api-keys/:id/rotate',
    {
      config: { action: 'api_keys.self' },
      schema: {
        tags: TAGS,
        summary: 'Rotate an API key',
        description: 'Issues a new key with the same name, scopes and expiry (returned once, in `key`) and revokes the old one. Only the key\'s owner may rotate it.',
        params: IdParam,
        response: { 200: Data(NewApiKeySchema), ...errors(404, 409) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const key = await visibleKey(p, request.params.id);
      if (key.userId !== p.user.id) throw new ApiError('FORBIDDEN', 'only the owner of a key may rotate it; revoke it instead');
      if (key.revokedAt !== null) throw new ApiError('CONFLICT', 'the key is revoked; create a new one');
      // The replacement keeps the expiry, so an expired key would be replaced by an expired key.
      if (key.expiresAt !== null && key.expiresAt <= now()) throw new ApiError('CONFLICT', 'the key has expired; create a new one');
      const next = await db.kysely.transaction().execute(async (trx) => {
        const rotated = await storeIn(trx).rotate(scopeOf(p), key.id);
        if (!rotated) throw new ApiError('CONFLICT', 'the key is revoked; create a new one');
        await writeAudit(trx, {
          tenantId: key.tenantId,
          eventType: 'api_key.rotated',
          actor: auditActor(p),
          target: { type: 'api_key', id: key.id },
          metadata: { name: key.name, old_prefix: key.prefix, new_key_id: rotated.id, new_prefix: rotated.prefix, owner_id: key.userId },
        });
        return rotated;
      });
      return { data: toNewJson(next) };
    },
  );
}

export default apiKeysRoutes;
