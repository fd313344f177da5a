/**
 * `/api/v1/domains` (SPEC §9, §11): a tenant's mail domains — list, add, read, change (status,
 * catch-all mailbox), remove — with the DNS records each must publish (MX, SPF, DKIM, DMARC) and
 * a verify action that checks them against live DNS.
 *
 * Who sees what: a super-admin every domain (`tenant_id` filters), a tenant admin its tenant's, a
 * domain admin only the domains in their scope; any other domain id is 404, exactly like an id that
 * does not exist (policy.ts). Adding and removing domains is for tenant admins.
 *
 * Adding a domain also creates its DKIM key (src/emailauth/dkim-keys.ts); the private key is
 * sealed in the secret store and no response ever carries it — only the public `p=` value. The
 * domain row and the key are two transactions, so a key that failed to be created is created by
 * the next `dns-records` or `verify` call instead of failing the whole addition after the fact.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyBaseLogger } from 'fastify';
import { tenantScope } from '../../../core/scope.js';
import { NotFoundError } from '../../../core/tenancy/errors.js';
import type { Domain } from '../../../core/tenancy/types.js';
import { expectedDnsRecords } from '../../../core/domains/dns-records.js';
import { verifyDnsRecords } from '../../../core/domains/dns-verify.js';
import { createResolver, type DnsResolver } from '../../../dns/index.js';
import { DkimKeyService, type DkimKey } from '../../../emailauth/dkim-keys.js';
import { writeAudit } from '../../../security/audit.js';
import { ApiError } from '../../errors.js';
import { principalOf } from '../auth-hook.js';
import type { ApiDeps } from '../deps.js';
import { keysetPage } from '../keyset-page.js';
import { auditActor, type Principal } from '../principal.js';
import { canManageDomain, canManageMailbox, notFound, scopeOf } from '../policy.js';
import { CursorQuery, Data, DEFAULT_LIMIT, IdParam, Page, Timestamp, errors, iso } from '../schemas.js';
import { callService } from '../service-errors.js';

const Uuid = Type.String({ format: 'uuid' });
const DomainStatus = Type.Union([Type.Literal('active'), Type.Literal('disabled')]);

export const DomainSchema = Type.Object({
  id: Uuid,
  tenant_id: Uuid,
  name: Type.String({ description: 'Lower case; internationalised names as A-labels (xn--…).' }),
  status: DomainStatus,
  catch_all_mailbox_id: Type.Union([Uuid, Type.Null()], { description: 'Mailbox receiving mail for unknown addresses of the domain; null = none.' }),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const Purpose = Type.Union([Type.Literal('mx'), Type.Literal('spf'), Type.Literal('dkim'), Type.Literal('dmarc')]);

const DnsRecordFields = {
  type: Type.Union([Type.Literal('MX'), Type.Literal('TXT')]),
  name: Type.String({ description: 'Owner name, fully qualified, without the trailing dot.' }),
  value: Type.String({ description: 'Record data: `10 <host>` for MX; the full text for TXT (split it into strings of at most 255 characters where your DNS software needs that).' }),
  purpose: Purpose,
  description: Type.String(),
  selector: Type.Union([Type.String(), Type.Null()], { description: 'DKIM records: the key selector.' }),
};

export const DnsRecordSchema = Type.Object(DnsRecordFields);

const DkimKeySchema = Type.Object({
  id: Uuid,
  selector: Type.String(),
  algorithm: Type.Union([Type.Literal('rsa-sha256'), Type.Literal('ed25519-sha256')]),
  status: Type.Union([Type.Literal('active'), Type.Literal('retiring'), Type.Literal('retired')]),
  public_key: Type.String({ description: 'Base64 public key, as in the record\'s `p=` tag. The private key is never returned.' }),
  created_at: Timestamp,
});

const DnsRecordsSchema = Type.Object({
  domain_id: Uuid,
  domain: Type.String(),
  hostname: Type.String({ description: 'This server\'s host name (`server.hostname`), which the MX and SPF records name.' }),
  records: Type.Array(DnsRecordSchema),
  dkim_keys: Type.Array(DkimKeySchema),
});

const CheckStatus = Type.Union([Type.Literal('ok'), Type.Literal('missing'), Type.Literal('mismatch'), Type.Literal('error')], {
  description: '`ok`; `missing` (DNS says there is no such record); `mismatch` (records exist but are wrong); `error` (DNS did not answer: timeout, SERVFAIL — try again).',
});

const RecordCheckSchema = Type.Object({
  ...DnsRecordFields,
  status: CheckStatus,
  found: Type.Array(Type.String(), { description: 'What DNS returned for this record (TXT strings joined).' }),
  message: Type.String(),
});

const VerifySchema = Type.Object({
  domain_id: Uuid,
  domain: Type.String(),
  verified: Type.Boolean({ description: 'Every record is `ok`.' }),
  checked_at: Timestamp,
  records: Type.Array(RecordCheckSchema),
});

const ListQuery = Type.Object(
  { ...CursorQuery, tenant_id: Type.Optional(Type.String({ format: 'uuid', description: 'Super-admins: only this tenant\'s domains. Others always see their own tenant only.' })) },
  { additionalProperties: false },
);

const CreateBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 253, description: 'The domain; Unicode names are stored as A-labels.' }),
    tenant_id: Type.Optional(Type.String({ format: 'uuid', description: 'Super-admins: the tenant to add the domain to (required for them). Others add to their own tenant.' })),
  },
  { additionalProperties: false },
);

const PatchBody = Type.Object(
  {
    status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled')], { description: 'A disabled domain accepts no mail.' })),
    catch_all_mailbox_id: Type.Optional(Type.Union([Uuid, Type.Null()], { description: 'A mailbox of the same tenant (which you manage), or null to remove the catch-all.' })),
  },
  { additionalProperties: false, minProperties: 1 },
);

type IdParams = Static<typeof IdParam>;

const TAGS = ['domains'];

export function domainView(d: Domain): Static<typeof DomainSchema> {
  return {
    id: d.id,
    tenant_id: d.tenantId,
    name: d.name,
    status: d.status,
    catch_all_mailbox_id: d.catchAllMailboxId,
    created_at: iso(d.createdAt),
    updated_at: iso(d.updatedAt),
  };
}

function dkimKeyView(k: DkimKey): Static<typeof DkimKeySchema> {
  return { id: k.id, selector: k.selector, algorithm: k.algorithm, status: k.status, public_key: k.publicKey, created_at: iso(k.createdAt) };
}

export async function domainsRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { tenancy, db } = deps.app;
  const dkim = deps.dkim;
  const hostname = () => deps.app.config.server.hostname;

  // Verification asks DNS afresh: it exists to confirm a change the administrator has just made,
  // which the shared resolver's cache (up to cache_ttl_seconds, negative answers up to
  // negative_cache_ttl_seconds) could hide, and differently on each cluster node. Same servers
  // and timeouts as every other lookup (config `dns`), no cache.
  let verifyResolver: DnsResolver | undefined;
  const freshResolver = () => (verifyResolver ??= createResolver({ ...deps.app.config.dns, cache_ttl_seconds: 0, negative_cache_ttl_seconds: 0 }));

  /** The domain if the principal may see it; 404 otherwise (other tenants' ids, a domain admin's other domains). */
  async function visibleDomain(p: Principal, id: string): Promise<Domain> {
    const d = await callService(() => tenancy.domains.get(scopeOf(p), id));
    if (!canManageDomain(p, d)) throw notFound('domain');
    return d;
  }

  /** The domain's active keys, creating the first one if the domain has none yet (see the header). */
  /** Keys to publish: active ones and those retiring after a rotation (both in DNS during the overlap). */
  async function keysFor(p: Principal, d: Domain): Promise<DkimKey[]> {
    const keys = await dkim.publishedKeys(scopeOf(p), d.id);
    if (keys.some((k) => k.status === 'active')) return keys;
    return [...keys, await callService(() => dkim.ensureKey(scopeOf(p), d))];
  }

  function recordsFor(d: Domain, keys: DkimKey[]) {
    return expectedDnsRecords({ domain: d.name, hostname: hostname(), dkimKeys: keys }).map((r) => ({ ...r, selector: r.selector ?? null }));
  }

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/domains',
    {
      config: { action: 'domains.read' },
      schema: {
        tags: TAGS,
        summary: 'List domains',
        description: 'Ordered by name. Domain admins see only the domains they manage.',
        querystring: ListQuery,
        response: { 200: Page(DomainSchema), ...errors() },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const { cursor, limit = DEFAULT_LIMIT, tenant_id } = request.query;
      const scope = scopeOf(p);
      return keysetPage(
        {
          fetch: (after, n) => callService(() => tenancy.domains.list(scope, { after, limit: n, tenantId: tenant_id })),
          key: (d) => d.name,
          visible: p.user.role === 'domain_admin' ? (d) => canManageDomain(p, d) : undefined,
        },
        { cursor, limit },
        domainView,
      );
    },
  );

  app.post<{ Body: Static<typeof CreateBody> }>(
    '/domains',
    {
      config: { action: 'domains.create' },
      schema: {
        tags: TAGS,
        summary: 'Add a domain',
        description: 'Also creates the domain\'s DKIM key (RSA-2048, selector `mr<yyyymm>`); `GET /domains/{id}/dns-records` lists what to publish.',
        body: CreateBody,
        response: { 201: Data(DomainSchema), ...errors(404, 409, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const { name, tenant_id } = request.body;
      const d = await callService(() => tenancy.domains.add(scopeOf(p), { name, tenantId: tenant_id }, auditActor(p)), { domain: 'name' });
      await createFirstKey(request.log, p, d);
      reply.code(201);
      return { data: domainView(d) };
    },
  );

  async function createFirstKey(log: FastifyBaseLogger, p: Principal, d: Domain): Promise<void> {
    try {
      await dkim.ensureKey(scopeOf(p), d);
    } catch (err) {
      // The domain exists; its key is created on the next dns-records/verify call (keysFor).
      log.error({ err, domain_id: d.id }, 'creating the DKIM key of a new domain failed');
    }
  }

  app.get<{ Params: IdParams }>(
    '/domains/:id',
    {
      config: { action: 'domains.read' },
      schema: { tags: TAGS, summary: 'Get a domain', params: IdParam, response: { 200: Data(DomainSchema), ...errors(404) } },
    },
    async (request) => {
      const p = principalOf(request);
      return { data: domainView(await visibleDomain(p, request.params.id)) };
    },
  );

  app.patch<{ Params: IdParams; Body: Static<typeof PatchBody> }>(
    '/domains/:id',
    {
      config: { action: 'domains.update' },
      schema: {
        tags: TAGS,
        summary: 'Change a domain',
        description: 'Status (`active`/`disabled`) and the catch-all mailbox.',
        params: IdParam,
        body: PatchBody,
        response: { 200: Data(DomainSchema), ...errors(404, 409, 422) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const scope = scopeOf(p);
      let d = await visibleDomain(p, request.params.id);
      const { status, catch_all_mailbox_id: catchAll } = request.body;
      if (catchAll !== undefined && catchAll !== null) {
        // A mailbox the caller cannot see is reported like one that does not exist, as a field error.
        const mailbox = await tenancy.mailboxes.get(scope, catchAll).catch((err: unknown) => {
          if (err instanceof NotFoundError) return null;
          throw err;
        });
        if (!mailbox || !canManageMailbox(p, mailbox)) {
          throw new ApiError('VALIDATION_ERROR', 'catch-all mailbox not found', {
            field: 'catch_all_mailbox_id',
            errors: [{ path: '/catch_all_mailbox_id', message: 'mailbox not found' }],
          });
        }
      }
      // Validated above so that a bad mailbox leaves the status unchanged as well.
      if (catchAll !== undefined) d = await callService(() => tenancy.domains.setCatchAll(scope, d.id, catchAll, auditActor(p)), { mailbox: 'catch_all_mailbox_id' });
      if (status !== undefined) d = await callService(() => tenancy.domains.setStatus(scope, d.id, status, auditActor(p)));
      return { data: domainView(d) };
    },
  );

  app.delete<{ Params: IdParams }>(
    '/domains/:id',
    {
      config: { action: 'domains.delete' },
      schema: {
        tags: TAGS,
        summary: 'Remove a domain',
        description: 'Refused (409) while mailboxes or aliases use the domain. Its DKIM keys are destroyed with it.',
        params: IdParam,
        response: { 204: Type.Null({ description: 'Removed.' }), ...errors(404, 409) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const d = await visibleDomain(p, request.params.id);
      await callService(() => tenancy.domains.remove(scopeOf(p), d.id, auditActor(p)));
      // The key rows went with the domain (ON DELETE CASCADE); their sealed private keys are swept here.
      await dkim.deleteOrphanedSecrets(tenantScope(d.tenantId)).catch((err: unknown) => {
        request.log.error({ err, domain_id: d.id }, 'deleting the DKIM private keys of a removed domain failed; the next removal in the tenant retries');
      });
      return reply.code(204).send();
    },
  );

  app.get<{ Params: IdParams }>(
    '/domains/:id/dns-records',
    {
      config: { action: 'domains.read' },
      schema: {
        tags: TAGS,
        summary: 'DNS records to publish',
        description: 'MX, SPF, one DKIM record per active key, and DMARC, for `server.hostname`.',
        params: IdParam,
        response: { 200: Data(DnsRecordsSchema), ...errors(404) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const d = await visibleDomain(p, request.params.id);
      const keys = await keysFor(p, d);
      return { data: { domain_id: d.id, domain: d.name, hostname: hostname(), records: recordsFor(d, keys), dkim_keys: keys.map(dkimKeyView) } };
    },
  );

  app.post<{ Params: IdParams }>(
    '/domains/:id/verify',
    {
      config: { action: 'domains.update' },
      schema: {
        tags: TAGS,
        summary: 'Check the published DNS records',
        description:
          'Looks up every record of `dns-records` and grades it. SPF passes when the domain has exactly one `v=spf1` record that reaches `mx`, `a:<hostname>` or an `ip4:`/`ip6:` range holding the server\'s address with a pass qualifier before any `all` (`include:` and `redirect=` are not followed). Audited as `domain.verified`.',
        params: IdParam,
        response: { 200: Data(VerifySchema), ...errors(404) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const d = await visibleDomain(p, request.params.id);
      const keys = await keysFor(p, d);
      const expected = expectedDnsRecords({ domain: d.name, hostname: hostname(), dkimKeys: keys });
      const result = await verifyDnsRecords(freshResolver(), { domain: d.name, hostname: hostname(), records: expected });
      const checkedAt = (deps.now ?? Date.now)();
      await writeAudit(db, {
        tenantId: d.tenantId,
        eventType: 'domain.verified',
        actor: auditActor(p),
        target: { type: 'domain', id: d.id },
        metadata: { name: d.name, verified: result.verified, records: result.records.map((r) => ({ purpose: r.purpose, name: r.name, status: r.status })) },
      });
      return {
        data: {
          domain_id: d.id,
          domain: d.name,
          verified: result.verified,
          checked_at: iso(checkedAt),
          records: result.records.map((r) => ({ ...r, selector: r.selector ?? null })),
        },
      };
    },
  );
}

export default domainsRoutes;
