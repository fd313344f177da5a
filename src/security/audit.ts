/**
 * The audit trail (SPEC §10): an append-only table of who changed what. Each row has
 * `timestamp`, `event_type`, `actor{type,id,email,ip}`, `target{type,id}` and `metadata`.
 *
 * Callers pass their open transaction so the audit row commits (or rolls back) together with the
 * change it describes: an admin change without its audit row cannot exist.
 */
import { Kysely } from 'kysely';
import type { Database } from '../store/db/database.js';
import type { DB } from '../store/db/types.js';
import { inScope, type Scope } from '../core/scope.js';

export type AuditActorType = 'user' | 'cli' | 'system' | 'api_key' | 'plugin';

export interface AuditActor {
  type: AuditActorType;
  id?: string;
  email?: string;
  ip?: string;
}

export interface AuditTarget {
  type: string;
  id: string;
}

export interface AuditEntry {
  /** null for events that belong to no tenant (system settings, a failed login for an unknown name). */
  tenantId: string | null;
  /** Dotted `<object>.<verb>`, e.g. `tenant.created`, `user.password_changed`. */
  eventType: string;
  actor: AuditActor;
  target: AuditTarget;
  /** Non-secret facts about the change; keys that look like secrets are redacted. */
  metadata?: Record<string, unknown>;
}

export interface AuditRecord extends Required<Omit<AuditEntry, 'metadata'>> {
  id: number;
  timestamp: number;
  metadata: Record<string, unknown>;
}

export const systemActor: AuditActor = Object.freeze({ type: 'system' });
export const cliActor: AuditActor = Object.freeze({ type: 'cli' });

const EVENT_TYPE = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
// Defence in depth: a caller that passes a password or hash by mistake still does not persist it.
const SECRET_KEY = /pass(word)?|secret|token|hash|private|credential/i;
const MAX_METADATA_BYTES = 16 * 1024;

/** Recursively replaces the values of secret-looking keys with "[redacted]". */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? '[redacted]' : redactSecrets(v, depth + 1);
  return out;
}

function kyselyOf(db: Database | Kysely<DB>): Kysely<DB> {
  return db instanceof Kysely ? db : db.kysely;
}

/** Appends one audit row. Pass the transaction (`trx`) of the change being audited. */
export async function writeAudit(db: Database | Kysely<DB>, entry: AuditEntry): Promise<void> {
  if (!EVENT_TYPE.test(entry.eventType)) throw new Error(`audit event type "${entry.eventType}" must look like "object.verb"`);
  const actor: AuditActor = { type: entry.actor.type };
  if (entry.actor.id !== undefined) actor.id = entry.actor.id;
  if (entry.actor.email !== undefined) actor.email = entry.actor.email;
  if (entry.actor.ip !== undefined) actor.ip = entry.actor.ip;
  let metadata = JSON.stringify(redactSecrets(entry.metadata ?? {}));
  if (Buffer.byteLength(metadata) > MAX_METADATA_BYTES) metadata = JSON.stringify({ truncated: true });
  await kyselyOf(db)
    .insertInto('audit_log')
    .values({
      tenant_id: entry.tenantId,
      timestamp: Date.now(),
      event_type: entry.eventType,
      actor_json: JSON.stringify(actor),
      target_json: JSON.stringify({ type: entry.target.type, id: entry.target.id }),
      metadata_json: metadata,
    })
    .execute();
}

export interface AuditQuery {
  eventType?: string;
  targetId?: string;
  /** Only rows with an id below this (newest-first paging). */
  beforeId?: number;
  /** Default 100, at most 1000. */
  limit?: number;
}

/** Reads audit rows of the scope, newest first. A tenant scope never sees system (null-tenant) rows. */
export async function listAudit(db: Database | Kysely<DB>, scope: Scope, q: AuditQuery = {}): Promise<AuditRecord[]> {
  const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
  let query = kyselyOf(db).selectFrom('audit_log').selectAll().where(inScope(scope)).orderBy('id', 'desc').limit(limit);
  if (q.eventType) query = query.where('event_type', '=', q.eventType);
  if (q.beforeId !== undefined) query = query.where('id', '<', q.beforeId);
  if (q.targetId) query = query.where('target_json', 'like', `%"id":${JSON.stringify(q.targetId)}%`);
  const rows = await query.execute();
  return rows.map((r) => ({
    id: Number(r.id),
    tenantId: r.tenant_id,
    timestamp: Number(r.timestamp),
    eventType: r.event_type,
    actor: JSON.parse(r.actor_json) as AuditActor,
    target: JSON.parse(r.target_json) as AuditTarget,
    metadata: JSON.parse(r.metadata_json) as Record<string, unknown>,
  }));
}
