/**
 * DKIM key management (SPEC §3.2 step 3, §11 "domains … DKIM", §13 admin "domains (DKIM)"):
 *
 *   GET  /domains/:id/dkim-keys          every key of the domain (active, retiring, retired) + its DNS record
 *   POST /domains/:id/dkim-keys          a new active key ({algorithm}: rsa-sha256 | ed25519-sha256)
 *   POST /domains/:id/dkim-keys/rotate   new active key; the previous active keys become `retiring`
 *   POST /dkim-keys/:id/retire           withdraw a key (never the domain's last active one: 409)
 *
 * Action `domains.update` (a domain admin for their domains); the domain or key is looked up in
 * the caller's tenant scope, so another tenant's id is 404 like an unknown one. Every change is
 * audited by DkimKeyService in its transaction. Responses carry the public key and the TXT record
 * to publish — never the private key (sealed in the secret store, SPEC §10).
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Domain } from '../../../core/tenancy/types.js';
import { DKIM_ALGORITHMS, publicRecord, type DkimKey } from '../../../emailauth/dkim-keys.js';
import { principalOf } from '../auth-hook.js';
import type { ApiDeps } from '../deps.js';
import { auditActor, type Principal } from '../principal.js';
import { canManageDomain, notFound, scopeOf } from '../policy.js';
import { Data, IdParam, NullableTimestamp, Timestamp, errors, iso } from '../schemas.js';
import { callService } from '../service-errors.js';

const Algorithm = Type.Union(DKIM_ALGORITHMS.map((a) => Type.Literal(a)), { description: '`rsa-sha256` (RSA-2048) or `ed25519-sha256` (RFC 8463).' });

export const DkimKeyViewSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  domain_id: Type.String({ format: 'uuid' }),
  selector: Type.String(),
  algorithm: Algorithm,
  status: Type.Union([Type.Literal('active'), Type.Literal('retiring'), Type.Literal('retired')], {
    description: '`active` signs (the newest active key) and is published; `retiring` no longer signs but stays published for mail in transit; `retired` is withdrawn.',
  }),
  public_key: Type.String({ description: 'Base64, as in the `p=` tag. The private key is never returned.' }),
  dns_record: Type.Object({
    type: Type.Literal('TXT'),
    name: Type.String({ description: '`<selector>._domainkey.<domain>`' }),
    value: Type.String({ description: 'The full TXT value; split into strings of at most 255 characters where your DNS software needs that.' }),
  }),
  published: Type.Boolean({ description: 'Whether the record must be in DNS now (active and retiring keys).' }),
  created_at: Timestamp,
  retired_at: NullableTimestamp,
});

const CreateBody = Type.Object({ algorithm: Type.Optional(Algorithm) }, { additionalProperties: false });
const RotateBody = Type.Object({ algorithm: Type.Optional(Algorithm) }, { additionalProperties: false });

type IdParams = Static<typeof IdParam>;
const TAGS = ['domains'];

export function dkimKeyView(k: DkimKey, domainName: string): Static<typeof DkimKeyViewSchema> {
  return {
    id: k.id,
    domain_id: k.domainId,
    selector: k.selector,
    algorithm: k.algorithm,
    status: k.status,
    public_key: k.publicKey,
    dns_record: { type: 'TXT', name: `${k.selector}._domainkey.${domainName}`, value: publicRecord(k) },
    published: k.status !== 'retired',
    created_at: iso(k.createdAt),
    retired_at: iso(k.retiredAt),
  };
}

export async function dkimRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { tenancy } = deps.app;
  const dkim = deps.dkim;

  async function visibleDomain(p: Principal, id: string): Promise<Domain> {
    const d = await callService(() => tenancy.domains.get(scopeOf(p), id));
    if (!canManageDomain(p, d)) throw notFound('domain');
    return d;
  }

  app.get<{ Params: IdParams }>(
    '/domains/:id/dkim-keys',
    {
      config: { action: 'domains.update' },
      schema: {
        tags: TAGS,
        summary: 'List the DKIM keys of a domain',
        description: 'Every key, oldest first, with the TXT record each needs while it is published.',
        params: IdParam,
        response: { 200: Data(Type.Array(DkimKeyViewSchema)), ...errors(404) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const d = await visibleDomain(p, request.params.id);
      const keys = await callService(() => dkim.keysOf(scopeOf(p), d.id));
      return { data: keys.map((k) => dkimKeyView(k, d.name)) };
    },
  );

  app.post<{ Params: IdParams; Body: Static<typeof CreateBody> }>(
    '/domains/:id/dkim-keys',
    {
      config: { action: 'domains.update' },
      schema: {
        tags: TAGS,
        summary: 'Generate a DKIM key',
        description: 'A new active key with a new selector (`mr<yyyymm>`); the newest active key signs. Publish its record first, or use `rotate`. Audited as `dkim.key_generated`.',
        params: IdParam,
        body: CreateBody,
        response: { 201: Data(DkimKeyViewSchema), ...errors(404, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const d = await visibleDomain(p, request.params.id);
      const key = await callService(() => dkim.generate(scopeOf(p), d, request.body?.algorithm ?? 'rsa-sha256', auditActor(p)));
      reply.code(201);
      return { data: dkimKeyView(key, d.name) };
    },
  );

  app.post<{ Params: IdParams; Body: Static<typeof RotateBody> }>(
    '/domains/:id/dkim-keys/rotate',
    {
      config: { action: 'domains.update' },
      schema: {
        tags: TAGS,
        summary: 'Rotate the DKIM key',
        description:
          'Creates a new active key (the algorithm of the newest active key unless given) and moves the previously active keys to `retiring`: they no longer sign but must stay published until mail signed with them has been delivered; retire them later. Audited as `dkim.key_rotated`.',
        params: IdParam,
        body: Type.Optional(RotateBody),
        response: { 201: Data(Type.Object({ key: DkimKeyViewSchema, retiring: Type.Array(DkimKeyViewSchema) })), ...errors(404, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const d = await visibleDomain(p, request.params.id);
      const r = await callService(() => dkim.rotate(scopeOf(p), d, auditActor(p), request.body?.algorithm));
      reply.code(201);
      return { data: { key: dkimKeyView(r.key, d.name), retiring: r.retiring.map((k) => dkimKeyView(k, d.name)) } };
    },
  );

  app.post<{ Params: IdParams }>(
    '/dkim-keys/:id/retire',
    {
      config: { action: 'domains.update' },
      schema: {
        tags: TAGS,
        summary: 'Retire a DKIM key',
        description: 'The key no longer signs and its record may be removed from DNS. The domain\'s only active key cannot be retired (409): rotate first. Audited as `dkim.key_retired`.',
        params: IdParam,
        response: { 200: Data(DkimKeyViewSchema), ...errors(404, 409) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const scope = scopeOf(p);
      const key = await callService(() => dkim.get(scope, request.params.id));
      // The key's domain decides (a domain admin manages only the keys of their domains).
      const d = await visibleDomain(p, key.domainId).catch(() => {
        throw notFound('DKIM key');
      });
      const retired = await callService(() => dkim.retire(scope, key.id, auditActor(p)));
      return { data: dkimKeyView(retired, d.name) };
    },
  );
}

export default dkimRoutes;
