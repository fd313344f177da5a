/**
 * `GET /api/v1/admin/audit-logs` (SPEC §10 "admins only", §11 "offset only for logs, max 10 000"):
 * the audit trail, newest first, for tenant admins (their tenant's rows) and super-admins (every
 * row, including system rows without a tenant; `tenant_id` narrows to one tenant).
 *
 * Items have the SPEC §10 shape `{id, timestamp, event_type, actor{type,id,email,ip},
 * target{type,id}, metadata, tenant_id}`. Filters: `event_type` exact (`user.created`) or a prefix
 * (`user.*`), `actor_id`, `target_type`, `target_id`, `since`/`until` (inclusive, ISO 8601).
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { queryAudit, auditEventJson } from '../../../security/audit-query.js';
import { ApiError } from '../../errors.js';
import type { ApiDeps } from '../deps.js';
import { principalOf } from '../auth-hook.js';
import { scopeOf } from '../policy.js';
import { DEFAULT_LIMIT, OffsetPaginationSchema, OffsetQuery, Timestamp, errors } from '../schemas.js';

const TAGS = ['audit-logs'];

const AuditEventSchema = Type.Object(
  {
    id: Type.Integer(),
    timestamp: Timestamp,
    event_type: Type.String({ description: 'Dotted `<object>.<verb>`, e.g. `user.created`.' }),
    actor: Type.Object({
      type: Type.String({ description: '`user`, `api_key`, `cli` or `system`.' }),
      id: Type.Optional(Type.String()),
      email: Type.Optional(Type.String()),
      ip: Type.Optional(Type.String()),
    }),
    target: Type.Object({ type: Type.String(), id: Type.String() }),
    metadata: Type.Record(Type.String(), Type.Unknown()),
    tenant_id: Type.Union([Type.String(), Type.Null()], { description: 'null for system events (settings, super-admin actions without a tenant).' }),
  },
  { title: 'AuditEvent' },
);

const IdText = (description: string) => Type.String({ minLength: 1, maxLength: 200, pattern: '^[\\x21-\\x7e]+$', description });

const ListQuery = Type.Object(
  {
    event_type: Type.Optional(
      Type.String({
        maxLength: 100,
        pattern: '^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*(\\.\\*)?$',
        description: 'Exact type (`user.created`) or a prefix ending in `.*` (`user.*`).',
      }),
    ),
    actor_id: Type.Optional(IdText('Id of the acting user or API key.')),
    target_type: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '^[a-z][a-z0-9_]*$' })),
    target_id: Type.Optional(IdText('Id of the changed object.')),
    since: Type.Optional(Type.String({ format: 'date-time', description: 'Events at or after this time.' })),
    until: Type.Optional(Type.String({ format: 'date-time', description: 'Events at or before this time.' })),
    tenant_id: Type.Optional(Type.String({ format: 'uuid', description: 'Super-admins only: events of one tenant.' })),
    ...OffsetQuery,
  },
  { additionalProperties: false },
);

const Response = Type.Object({ data: Type.Array(AuditEventSchema), pagination: OffsetPaginationSchema });

export async function auditLogsRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/admin/audit-logs',
    {
      config: { action: 'audit.read' },
      schema: {
        tags: TAGS,
        summary: 'List audit events',
        description: 'Newest first; offset paging (`limit` ≤ 100, `offset` ≤ 10 000). Tenant admins see their tenant\'s events only.',
        querystring: ListQuery,
        response: { 200: Response, ...errors() },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const q = request.query;
      if (q.tenant_id !== undefined && p.user.role !== 'super_admin') {
        throw new ApiError('FORBIDDEN', 'only a super-admin may filter by tenant_id', { field: 'tenant_id' });
      }
      const since = q.since === undefined ? undefined : Date.parse(q.since);
      const until = q.until === undefined ? undefined : Date.parse(q.until);
      if (since !== undefined && until !== undefined && since > until) {
        throw new ApiError('INVALID_REQUEST', 'since must not be after until', { field: 'since' });
      }
      const limit = q.limit ?? DEFAULT_LIMIT;
      const offset = q.offset ?? 0;
      const page = await queryAudit(
        deps.app.db,
        scopeOf(p),
        { eventType: q.event_type, actorId: q.actor_id, targetType: q.target_type, targetId: q.target_id, since, until, tenantId: q.tenant_id },
        { limit, offset },
      );
      return { data: page.records.map(auditEventJson), pagination: { offset, limit, has_more: page.hasMore } };
    },
  );
}

export default auditLogsRoutes;
