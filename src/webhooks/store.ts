/**
 * Event webhook subscriptions (SPEC §11): CRUD over the `webhooks` table, scoped to a tenant like
 * every tenant-owned row (SPEC §9): a webhook of another tenant is "not found".
 *
 * - The signing secret (`whsec_…`) is generated here, sealed in the SecretStore (SPEC §10: the
 *   row holds only the secret's id) and returned exactly twice in its life: by `create` and by
 *   `rotateSecret`. Nothing else returns it (SPEC §10 "never … secrets … except once").
 * - URLs are validated when they are stored (https; no credentials; ≤ 2048 characters). Whether
 *   the host is a public address is decided again at each delivery, on the resolved addresses
 *   (./egress.ts), because DNS can change after the check.
 * - At most MAX_WEBHOOKS_PER_TENANT subscriptions per tenant; every change is audited in its
 *   transaction (SPEC §10).
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { WebhooksConfig } from '../config/sections/api.js';
import { inScope, systemScope, type Scope } from '../core/scope.js';
import { ConflictError, LimitExceededError, NotFoundError, ValidationError } from '../core/tenancy/errors.js';
import { newId, now, type Database } from '../store/db/database.js';
import type { DB, WebhooksTable } from '../store/db/types.js';
import { systemActor, writeAudit, type AuditActor } from '../security/audit.js';
import type { SecretStore } from '../security/secrets/types.js';
import { bareHost, nonPublicReason } from './egress.js';
import { WEBHOOK_EVENTS, type WebhookEvent } from './types.js';

export const MAX_WEBHOOKS_PER_TENANT = 20;
export const MAX_URL_CHARS = 2048;
export const MAX_DESCRIPTION_CHARS = 500;
export const SECRET_PREFIX = 'whsec_';
/** Largest page `list` returns. */
export const MAX_LIST_LIMIT = 1000;

export interface Webhook {
  id: string;
  tenantId: string;
  url: string;
  description: string;
  events: WebhookEvent[];
  enabled: boolean;
  createdAt: number;
  updatedAt: number;
}

/** A webhook with its signing secret: only from `create` and `rotateSecret`. */
export interface WebhookWithSecret extends Webhook {
  secret: string;
}

export interface CreateWebhookInput {
  /** Required with the system scope; with a tenant scope it must be absent or the scope's tenant. */
  tenantId?: string;
  url: string;
  events: string[];
  description?: string;
  enabled?: boolean;
}

export interface UpdateWebhookInput {
  url?: string;
  events?: string[];
  description?: string;
  enabled?: boolean;
}

export interface ListWebhooksOptions {
  /** System scope: only this tenant's webhooks. */
  tenantId?: string;
  /** Keyset position: rows after (created_at, id). */
  after?: { createdAt: number; id: string };
  /** 1–1000, default 100. */
  limit?: number;
}

export interface WebhookStoreDeps {
  db: Database;
  secrets: SecretStore;
  /** Read on every call: `webhooks.*` keys are reloadable. */
  config: () => WebhooksConfig;
  logger?: Logger;
}

const CONTROL = /[\u0000-\u001f\u007f]/;

/** A new signing secret: 32 random bytes, base64url, behind a recognisable prefix. */
export function newWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64url');
}

/** Origin and path of a URL, without query or fragment: safe for logs and audit rows. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '[invalid url]';
  }
}

function isLoopbackLiteral(host: string): boolean {
  return isIP(host) !== 0 && /^loopback/.test(nonPublicReason(host) ?? '');
}

/**
 * Checks and normalises a webhook URL (WHATWG URL serialisation). With `allowPrivate` off, https is
 * required and IP literals must be public; with it on, plain http is accepted for loopback
 * literals only (local receivers in tests and development).
 */
export function validateWebhookUrl(raw: unknown, allowPrivate: boolean): string {
  const field = { field: 'url' };
  if (typeof raw !== 'string' || raw.length === 0) throw new ValidationError('url is required', field);
  if (raw.length > MAX_URL_CHARS) throw new ValidationError(`url is longer than ${MAX_URL_CHARS} characters`, { ...field, max: MAX_URL_CHARS });
  if (CONTROL.test(raw)) throw new ValidationError('url contains control characters', field);
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ValidationError('url is not a valid absolute URL', field);
  }
  if (u.username || u.password) throw new ValidationError('url must not contain credentials (user:password@); use the signature to authenticate', field);
  if (u.hash) throw new ValidationError('url must not contain a fragment (#…)', field);
  const host = bareHost(u.hostname);
  if (u.protocol === 'http:') {
    if (!(allowPrivate && isLoopbackLiteral(host))) {
      throw new ValidationError('url must use https (plain http only to a loopback address, with webhooks.allow_private_addresses)', field);
    }
  } else if (u.protocol !== 'https:') {
    throw new ValidationError('url must use https', field);
  }
  if (!host) throw new ValidationError('url has no host', field);
  if (!allowPrivate && isIP(host) !== 0) {
    const why = nonPublicReason(host);
    if (why !== null) throw new ValidationError(`url points to ${host}, which is ${why}`, field);
  }
  const href = u.href;
  if (href.length > MAX_URL_CHARS) throw new ValidationError(`url is longer than ${MAX_URL_CHARS} characters`, { ...field, max: MAX_URL_CHARS });
  return href;
}

export function validateEvents(raw: unknown): WebhookEvent[] {
  const field = { field: 'events' };
  if (!Array.isArray(raw) || raw.length === 0) throw new ValidationError('events must list at least one event', { ...field, allowed: [...WEBHOOK_EVENTS] });
  if (raw.length > WEBHOOK_EVENTS.length) throw new ValidationError(`events has at most ${WEBHOOK_EVENTS.length} entries`, field);
  const unknown = raw.filter((e) => typeof e !== 'string' || !(WEBHOOK_EVENTS as readonly string[]).includes(e));
  if (unknown.length) throw new ValidationError(`unknown event(s): ${unknown.map(String).join(', ')}`, { ...field, unknown, allowed: [...WEBHOOK_EVENTS] });
  // Stored in the order of WEBHOOK_EVENTS, without duplicates.
  return WEBHOOK_EVENTS.filter((e) => raw.includes(e));
}

function validateDescription(raw: unknown): string {
  if (raw === undefined) return '';
  if (typeof raw !== 'string') throw new ValidationError('description must be a string', { field: 'description' });
  if (raw.length > MAX_DESCRIPTION_CHARS) {
    throw new ValidationError(`description is longer than ${MAX_DESCRIPTION_CHARS} characters`, { field: 'description', max: MAX_DESCRIPTION_CHARS });
  }
  if (CONTROL.test(raw)) throw new ValidationError('description contains control characters', { field: 'description' });
  return raw;
}

export function parseEvents(json: string): WebhookEvent[] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? WEBHOOK_EVENTS.filter((e) => v.includes(e)) : [];
  } catch {
    return [];
  }
}

export function toWebhook(r: WebhooksTable): Webhook {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    url: r.url,
    description: r.description,
    events: parseEvents(r.events_json),
    enabled: Number(r.enabled) === 1,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class WebhookStore {
  constructor(private readonly deps: WebhookStoreDeps) {}

  private get db(): Kysely<DB> {
    return this.deps.db.kysely;
  }

  async create(scope: Scope, input: CreateWebhookInput, actor: AuditActor = systemActor): Promise<WebhookWithSecret> {
    const tenantId = targetTenant(scope, input.tenantId);
    const url = validateWebhookUrl(input.url, this.deps.config().allow_private_addresses);
    const events = validateEvents(input.events);
    const description = validateDescription(input.description);
    if (input.enabled !== undefined && typeof input.enabled !== 'boolean') throw new ValidationError('enabled must be a boolean', { field: 'enabled' });
    const secret = newWebhookSecret();
    return this.db.transaction().execute(async (trx) => {
      await this.lockTenant(trx, scope, tenantId);
      const { n } = await trx
        .selectFrom('webhooks')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('tenant_id', '=', tenantId)
        .executeTakeFirstOrThrow();
      if (Number(n) >= MAX_WEBHOOKS_PER_TENANT) throw new LimitExceededError('webhooks', MAX_WEBHOOKS_PER_TENANT, Number(n));
      const secretId = await this.deps.secrets.put({ tenantId, kind: 'webhook', plaintext: secret }, trx);
      const at = now();
      const row: WebhooksTable = {
        id: newId(),
        tenant_id: tenantId,
        url,
        description,
        events_json: JSON.stringify(events),
        secret_id: secretId,
        enabled: input.enabled === false ? 0 : 1,
        created_at: at,
        updated_at: at,
      };
      await trx.insertInto('webhooks').values(row).execute();
      await writeAudit(trx, {
        tenantId,
        eventType: 'webhook.created',
        actor,
        target: { type: 'webhook', id: row.id },
        metadata: { url: redactUrl(url), events, enabled: row.enabled === 1 },
      });
      return { ...toWebhook(row), secret };
    });
  }

  async list(scope: Scope, opts: ListWebhooksOptions = {}): Promise<Webhook[]> {
    const limit = opts.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new ValidationError(`limit must be an integer from 1 to ${MAX_LIST_LIMIT}`, { field: 'limit' });
    }
    const after = opts.after;
    const rows = await this.db
      .selectFrom('webhooks')
      .selectAll()
      .where(inScope(scope))
      .$if(opts.tenantId !== undefined, (q) => q.where('tenant_id', '=', opts.tenantId!))
      .$if(after !== undefined, (q) =>
        q.where((eb) =>
          eb.or([eb('created_at', '>', after!.createdAt), eb.and([eb('created_at', '=', after!.createdAt), eb('id', '>', after!.id)])]),
        ),
      )
      .orderBy('created_at')
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toWebhook);
  }

  async get(scope: Scope, id: string): Promise<Webhook> {
    return toWebhook(await this.row(this.db, scope, id));
  }

  async update(scope: Scope, id: string, input: UpdateWebhookInput, actor: AuditActor = systemActor): Promise<Webhook> {
    const set: Partial<WebhooksTable> = {};
    if (input.url !== undefined) set.url = validateWebhookUrl(input.url, this.deps.config().allow_private_addresses);
    if (input.events !== undefined) set.events_json = JSON.stringify(validateEvents(input.events));
    if (input.description !== undefined) set.description = validateDescription(input.description);
    if (input.enabled !== undefined) {
      if (typeof input.enabled !== 'boolean') throw new ValidationError('enabled must be a boolean', { field: 'enabled' });
      set.enabled = input.enabled ? 1 : 0;
    }
    return this.db.transaction().execute(async (trx) => {
      const before = await this.row(trx, scope, id, true);
      const changed = (Object.keys(set) as (keyof WebhooksTable)[]).filter((k) => set[k] !== before[k]);
      if (changed.length === 0) return toWebhook(before);
      const after: WebhooksTable = { ...before, ...set, updated_at: now() };
      await trx
        .updateTable('webhooks')
        .set({ ...set, updated_at: after.updated_at })
        .where(inScope(scope))
        .where('id', '=', before.id)
        .execute();
      const w = toWebhook(after);
      await writeAudit(trx, {
        tenantId: before.tenant_id,
        eventType: 'webhook.updated',
        actor,
        target: { type: 'webhook', id: before.id },
        metadata: {
          changed: changed.map((k) => (k === 'events_json' ? 'events' : k)),
          url: redactUrl(w.url),
          events: w.events,
          enabled: w.enabled,
        },
      });
      return w;
    });
  }

  async delete(scope: Scope, id: string, actor: AuditActor = systemActor): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const row = await this.row(trx, scope, id, true);
      await trx.deleteFrom('webhooks').where(inScope(scope)).where('id', '=', row.id).execute();
      await this.deps.secrets.delete(row.secret_id, trx);
      await writeAudit(trx, {
        tenantId: row.tenant_id,
        eventType: 'webhook.deleted',
        actor,
        target: { type: 'webhook', id: row.id },
        metadata: { url: redactUrl(row.url) },
      });
    });
  }

  /**
   * Replaces the signing secret at once and returns the new one (shown once). Deliveries signed
   * from now on — including retries of events queued earlier — use the new secret.
   */
  async rotateSecret(scope: Scope, id: string, actor: AuditActor = systemActor): Promise<WebhookWithSecret> {
    const secret = newWebhookSecret();
    return this.db.transaction().execute(async (trx) => {
      const row = await this.row(trx, scope, id, true);
      await this.deps.secrets.replace(row.secret_id, secret, trx);
      const at = now();
      await trx.updateTable('webhooks').set({ updated_at: at }).where(inScope(scope)).where('id', '=', row.id).execute();
      await writeAudit(trx, { tenantId: row.tenant_id, eventType: 'webhook.secret_rotated', actor, target: { type: 'webhook', id: row.id } });
      return { ...toWebhook({ ...row, updated_at: at }), secret };
    });
  }

  /**
   * Turns a webhook off on the endpoint's behalf (HTTP 410 Gone: "this resource is gone for
   * good", RFC 9110 §15.5.11). Returns false when it was already off or no longer exists.
   */
  async disable(scope: Scope, id: string, reason: string, actor: AuditActor = systemActor): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('webhooks')
        .set({ enabled: 0, updated_at: now() })
        .where(inScope(scope))
        .where('id', '=', id)
        .where('enabled', '=', 1)
        .returning(['tenant_id', 'url'])
        .executeTakeFirst();
      if (!r) return false;
      await writeAudit(trx, {
        tenantId: r.tenant_id,
        eventType: 'webhook.disabled',
        actor,
        target: { type: 'webhook', id },
        metadata: { reason, url: redactUrl(r.url) },
      });
      this.deps.logger?.warn({ webhookId: id, tenantId: r.tenant_id, reason }, 'webhook disabled');
      return true;
    });
  }

  /** What a delivery needs: the row (system scope, by id) and its secret; null when deleted. */
  async forDelivery(id: string): Promise<{ webhook: Webhook; secret: Buffer } | null> {
    const row = await this.db.selectFrom('webhooks').selectAll().where(inScope(systemScope)).where('id', '=', id).executeTakeFirst();
    if (!row) return null;
    return { webhook: toWebhook(row), secret: await this.deps.secrets.get(row.secret_id) };
  }

  private async row(db: Kysely<DB>, scope: Scope, id: string, forUpdate = false): Promise<WebhooksTable> {
    const row = UUID.test(id)
      ? await db
          .selectFrom('webhooks')
          .selectAll()
          .where(inScope(scope))
          .where('id', '=', id)
          .$if(forUpdate && this.deps.db.dialect === 'postgres', (q) => q.forUpdate())
          .executeTakeFirst()
      : undefined;
    if (!row) throw new NotFoundError('webhook not found');
    return row;
  }

  /**
   * Reads (on PostgreSQL: locks) the tenant so two concurrent creations cannot both pass the
   * 20-webhook count; SQLite serialises writers anyway. A deleted tenant takes no new webhooks.
   */
  private async lockTenant(trx: Kysely<DB>, scope: Scope, tenantId: string): Promise<void> {
    const t = await trx
      .selectFrom('tenants')
      .select(['id', 'status'])
      .where(inScope(scope, 'id'))
      .where('id', '=', tenantId)
      .$if(this.deps.db.dialect === 'postgres', (q) => q.forUpdate())
      .executeTakeFirst();
    if (!t) throw new NotFoundError('tenant not found');
    if (t.status === 'deleted') throw new ConflictError('the tenant is deleted');
  }
}

/** Enabled webhooks of `tenantId` subscribed to `event` (the publisher's lookup); `db` may be a transaction. */
export async function webhookSubscribers(db: Kysely<DB>, tenantId: string, event: WebhookEvent): Promise<{ id: string }[]> {
  // At most 20 rows per tenant: filtering the events in code keeps the SQL portable.
  const rows = await db
    .selectFrom('webhooks')
    .select(['id', 'events_json'])
    .where('tenant_id', '=', tenantId)
    .where('enabled', '=', 1)
    .orderBy('id')
    .execute();
  return rows.filter((r) => parseEvents(r.events_json).includes(event)).map((r) => ({ id: r.id }));
}

/** A tenant scope acts on its own tenant (naming another is "not found"); the system scope names one. */
function targetTenant(scope: Scope, tenantId: string | undefined): string {
  if (scope.kind === 'tenant') {
    if (tenantId !== undefined && tenantId !== scope.tenantId) throw new NotFoundError('tenant not found');
    return scope.tenantId;
  }
  if (!tenantId) throw new ValidationError('tenant_id is required', { field: 'tenant_id' });
  return tenantId;
}
