/**
 * Filtered, offset-paged reads of the audit trail for `GET /api/v1/admin/audit-logs` (SPEC §10,
 * §11: logs are the one list paged by offset, at most 10 000 deep).
 *
 * The actor and target are stored as JSON text (`actor_json`, `target_json`, written only by
 * `writeAudit`, which always serialises them with `JSON.stringify` in a fixed key order:
 * `{"type","id","email","ip"}` and `{"type","id"}`). Filtering on them therefore matches the exact
 * serialised fragment with LIKE, which works alike on SQLite and PostgreSQL; the LIKE wildcards in
 * the searched value are escaped, so `_` in an id matches only `_`. A fragment such as `"id":"x"`
 * cannot occur inside another JSON string value, because JSON.stringify escapes the quotes there.
 */
import { Kysely, sql, type Expression, type ExpressionBuilder, type SqlBool } from 'kysely';
import type { Database } from '../store/db/database.js';
import type { DB } from '../store/db/types.js';
import { inScope, type Scope } from '../core/scope.js';
import type { AuditActor, AuditRecord, AuditTarget } from './audit.js';

export interface AuditFilter {
  /** Exact event type (`user.created`) or a prefix written `user.*` (every `user.…` event). */
  eventType?: string;
  actorId?: string;
  targetType?: string;
  targetId?: string;
  /** Inclusive bounds on the row's timestamp (ms). */
  since?: number;
  until?: number;
  /** Narrows a system scope to one tenant (super-admins). */
  tenantId?: string;
}

export interface AuditPage {
  records: AuditRecord[];
  hasMore: boolean;
}

/** Escapes LIKE's wildcards (and the escape character itself) in a literal fragment. */
export function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

type Eb = ExpressionBuilder<DB, 'audit_log'>;

function like(column: 'actor_json' | 'target_json' | 'event_type', pattern: string): Expression<SqlBool> {
  // ESCAPE is spelled out: SQLite has no default escape character, PostgreSQL's is the backslash.
  return sql<SqlBool>`${sql.ref(column)} like ${pattern} escape '\\'`;
}

function kyselyOf(db: Database | Kysely<DB>): Kysely<DB> {
  return db instanceof Kysely ? db : db.kysely;
}

/** The where-clauses of a filter (tenant scope excluded). */
function conditions(eb: Eb, f: AuditFilter): Expression<SqlBool>[] {
  const out: Expression<SqlBool>[] = [];
  if (f.eventType !== undefined) {
    if (f.eventType.endsWith('.*')) out.push(like('event_type', `${escapeLike(f.eventType.slice(0, -1))}%`));
    else out.push(eb('event_type', '=', f.eventType));
  }
  if (f.actorId !== undefined) {
    // The id is followed either by the next member or by the end of the object.
    const frag = `"id":${JSON.stringify(f.actorId)}`;
    out.push(eb.or([like('actor_json', `%${escapeLike(frag)},%`), like('actor_json', `%${escapeLike(frag)}}`)]));
  }
  if (f.targetType !== undefined) out.push(like('target_json', `${escapeLike(`{"type":${JSON.stringify(f.targetType)},`)}%`));
  if (f.targetId !== undefined) out.push(like('target_json', `%${escapeLike(`,"id":${JSON.stringify(f.targetId)}}`)}`));
  if (f.since !== undefined) out.push(eb('timestamp', '>=', f.since));
  if (f.until !== undefined) out.push(eb('timestamp', '<=', f.until));
  if (f.tenantId !== undefined) out.push(eb('tenant_id', '=', f.tenantId));
  return out;
}

/**
 * One page of the scope's audit rows matching `filter`, newest first (by id: the insertion order).
 * A tenant scope never sees rows of other tenants nor system (null-tenant) rows.
 */
export async function queryAudit(
  db: Database | Kysely<DB>,
  scope: Scope,
  filter: AuditFilter,
  page: { limit: number; offset: number },
): Promise<AuditPage> {
  let q = kyselyOf(db).selectFrom('audit_log').selectAll().where(inScope(scope));
  q = q.where((eb) => {
    const c = conditions(eb, filter);
    return c.length ? eb.and(c) : sql<SqlBool>`1 = 1`;
  });
  const rows = await q
    .orderBy('id', 'desc')
    .limit(page.limit + 1)
    .offset(page.offset)
    .execute();
  const hasMore = rows.length > page.limit;
  return { records: (hasMore ? rows.slice(0, page.limit) : rows).map(toRecord), hasMore };
}

/** Audit rows with an id above `afterId`, oldest first (the file sink's export order). */
export async function auditRowsAfter(db: Database | Kysely<DB>, afterId: number, limit: number): Promise<AuditRecord[]> {
  const rows = await kyselyOf(db).selectFrom('audit_log').selectAll().where('id', '>', afterId).orderBy('id', 'asc').limit(limit).execute();
  return rows.map(toRecord);
}

/** Audit rows with the given ids (ids that do not exist are simply absent). */
export async function auditRowsById(db: Database | Kysely<DB>, ids: readonly number[]): Promise<AuditRecord[]> {
  if (ids.length === 0) return [];
  const rows = await kyselyOf(db).selectFrom('audit_log').selectAll().where('id', 'in', [...ids]).orderBy('id', 'asc').execute();
  return rows.map(toRecord);
}

export function toRecord(r: {
  id: number | string; tenant_id: string | null; timestamp: number | string; event_type: string;
  actor_json: string; target_json: string; metadata_json: string;
}): AuditRecord {
  return {
    id: Number(r.id),
    tenantId: r.tenant_id,
    timestamp: Number(r.timestamp),
    eventType: r.event_type,
    actor: JSON.parse(r.actor_json) as AuditActor,
    target: JSON.parse(r.target_json) as AuditTarget,
    metadata: JSON.parse(r.metadata_json) as Record<string, unknown>,
  };
}

/** The SPEC §10 JSON shape of one audit event (the API's items and the file sink's lines). */
export interface AuditEventJson {
  id: number;
  timestamp: string;
  event_type: string;
  actor: AuditActor;
  target: AuditTarget;
  metadata: Record<string, unknown>;
  tenant_id: string | null;
}

export function auditEventJson(r: AuditRecord): AuditEventJson {
  return {
    id: r.id,
    timestamp: new Date(r.timestamp).toISOString(),
    event_type: r.eventType,
    actor: r.actor,
    target: r.target,
    metadata: r.metadata,
    tenant_id: r.tenantId,
  };
}
