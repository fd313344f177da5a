/**
 * The outbound queue record (SPEC §3.3 "Queue is inspectable and manageable: list, show, retry now,
 * delete/bounce, hold/release"; migration 0012): one `outbound_messages` row per message with remote
 * recipients, one `outbound_recipients` row per remote recipient, `outbound_attempts` per attempt.
 *
 * The record is the truth about what was delivered: the worker marks a recipient `delivered` right
 * after the server's 2xx and only ever sends to `pending`/`deferred` recipients, so a job that runs
 * twice (at-least-once queue) never delivers a recipient twice. The `outbound` job only says "look
 * at record X now"; its backoff is the retry schedule.
 *
 * Created inside the commit transaction (with the job), so a record exists exactly when its
 * message does.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../store/db/database.js';
import { newId, now as dbNow } from '../store/db/database.js';
import type { DB, OutboundMessagesTable, OutboundRecipientsTable, OutboundAttemptsTable, OutboundStatus } from '../store/db/types.js';
import type { Queue } from '../queue/queue.js';
import { inScope, type Scope } from '../core/scope.js';
import { ConflictError, NotFoundError, ValidationError } from '../core/tenancy/errors.js';
import { writeAudit, type AuditActor } from '../security/audit.js';
import type { OutboundConfig } from '../config/sections/outbound.js';

export const OUTBOUND_QUEUE = 'outbound';

/** The payload of an `outbound` job: which record to work on (JSON in queue_jobs.payload_json). */
export interface OutboundJobPayload {
  /** outbound_messages.id (for submissions: the pipeline's queue id). */
  outboundId: string;
  tenantId: string;
}

/** Config keys of the retry schedule (SPEC §3.3: 5 min, 15 min, 30 min, 1 h, 2 h, 4 h … up to 5 days). */
export type RetryConfig = Pick<OutboundConfig, 'retry_schedule_seconds' | 'max_queue_hours'>;

export const DEFAULT_RETRY: RetryConfig = { retry_schedule_seconds: [300, 900, 1800, 3600, 7200, 14400], max_queue_hours: 120 };

/**
 * The job's backoff and attempt count: as many attempts as fit into `max_queue_hours` on the
 * schedule (its last entry repeating). The worker bounces what is left at the last attempt or once
 * the record is older than `max_queue_hours`, whichever comes first.
 */
export function retryPlan(cfg: RetryConfig = DEFAULT_RETRY): { backoffSeconds: number[]; maxAttempts: number } {
  const schedule = cfg.retry_schedule_seconds.length ? cfg.retry_schedule_seconds : DEFAULT_RETRY.retry_schedule_seconds;
  const limit = cfg.max_queue_hours * 3600;
  let total = 0;
  let attempts = 1;
  while (attempts < 1000) {
    const next = schedule[Math.min(attempts - 1, schedule.length - 1)];
    if (total + next > limit) break;
    total += next;
    attempts++;
  }
  return { backoffSeconds: [...schedule], maxAttempts: attempts };
}

/** Lower-case domain of an address (the destination); the part after the last `@`. */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return (at >= 0 ? address.slice(at + 1) : address).toLowerCase();
}

export interface NewOutboundRecord {
  id: string;
  tenantId: string;
  messageId: string;
  userId: string | null;
  /** '' = the null sender (DSNs). */
  mailFrom: string;
  recipients: string[];
  size: number;
  /** The policy decision (SPEC §8 "every decision explained"), stored as JSON. */
  policy?: unknown;
  /** Run the first attempt no earlier than this many ms from now (a soft-limited message waits). */
  delayMs?: number;
  retry?: RetryConfig;
}

/**
 * Writes the record, its recipients and the job inside `trx` (a transaction of the queue's
 * database). Returns the job id; call `queue.wake(OUTBOUND_QUEUE)` after the commit.
 */
export async function createOutboundRecord(queue: Queue, trx: Kysely<DB>, rec: NewOutboundRecord): Promise<string> {
  if (!queue.enqueueIn) throw new Error(`the ${queue.kind} queue cannot enqueue inside a database transaction`);
  const plan = retryPlan(rec.retry);
  const delayMs = Math.max(0, Math.round(rec.delayMs ?? 0));
  const payload: OutboundJobPayload = { outboundId: rec.id, tenantId: rec.tenantId };
  // One job per record: a retried transaction (deadlock retry) never queues it twice.
  const jobId = await queue.enqueueIn(trx, OUTBOUND_QUEUE, payload, { dedupeKey: `outbound:${rec.id}`, delayMs, ...plan });
  const existing = await trx.selectFrom('outbound_messages').select('id').where('id', '=', rec.id).executeTakeFirst();
  if (existing) return jobId;
  const at = dbNow();
  await trx
    .insertInto('outbound_messages')
    .values({
      id: rec.id,
      tenant_id: rec.tenantId,
      message_id: rec.messageId,
      user_id: rec.userId,
      mail_from: rec.mailFrom,
      status: 'queued',
      held: 0,
      size: rec.size,
      policy_json: rec.policy === undefined || rec.policy === null ? null : JSON.stringify(rec.policy),
      job_id: jobId,
      attempts: 0,
      next_attempt_at: at + delayMs,
      delay_warned: 0,
      created_at: at,
      updated_at: at,
    })
    .execute();
  const seen = new Set<string>();
  for (const address of rec.recipients) {
    const key = address.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    await trx
      .insertInto('outbound_recipients')
      .values({ id: newId(), outbound_id: rec.id, tenant_id: rec.tenantId, address, domain: domainOf(address), status: 'pending', attempts: 0, last_code: null, last_reply: null, last_attempt_at: null, finished_at: null })
      .execute();
  }
  return jobId;
}

// ── Reading ────────────────────────────────────────────────────────────────────────────────────

export interface OutboundRecord {
  id: string;
  tenantId: string;
  messageId: string;
  userId: string | null;
  mailFrom: string;
  status: OutboundStatus;
  held: boolean;
  size: number;
  policy: unknown;
  jobId: string | null;
  attempts: number;
  nextAttemptAt: number | null;
  delayWarned: boolean;
  createdAt: number;
  updatedAt: number;
  /** Recipients per status. */
  counts: Record<string, number>;
}

export interface OutboundRecipient {
  id: string;
  address: string;
  domain: string;
  status: OutboundRecipientsTable['status'];
  attempts: number;
  lastCode: number | null;
  lastReply: string | null;
  lastAttemptAt: number | null;
  finishedAt: number | null;
}

export interface OutboundAttempt {
  id: string;
  domain: string;
  at: number;
  mxHost: string | null;
  address: string | null;
  tls: string | null;
  result: string;
  transcript: string[];
}

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function parseJson(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function toRecord(row: OutboundMessagesTable, counts: Record<string, number> = {}): OutboundRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    messageId: row.message_id,
    userId: row.user_id,
    mailFrom: row.mail_from,
    status: row.status,
    held: num(row.held) !== 0,
    size: num(row.size),
    policy: parseJson(row.policy_json),
    jobId: row.job_id,
    attempts: num(row.attempts),
    nextAttemptAt: numOrNull(row.next_attempt_at),
    delayWarned: num(row.delay_warned) !== 0,
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
    counts,
  };
}

export function toRecipient(r: OutboundRecipientsTable): OutboundRecipient {
  return {
    id: r.id,
    address: r.address,
    domain: r.domain,
    status: r.status,
    attempts: num(r.attempts),
    lastCode: numOrNull(r.last_code),
    lastReply: r.last_reply,
    lastAttemptAt: numOrNull(r.last_attempt_at),
    finishedAt: numOrNull(r.finished_at),
  };
}

function toAttempt(a: OutboundAttemptsTable): OutboundAttempt {
  return { id: a.id, domain: a.domain, at: num(a.at), mxHost: a.mx_host, address: a.address, tls: a.tls, result: a.result, transcript: a.transcript.split('\n') };
}

const STATUSES: readonly OutboundStatus[] = ['queued', 'delivering', 'delivered', 'bounced', 'partial', 'deleted'];
export const MAX_LIST = 100;

export interface ListFilter {
  status?: OutboundStatus;
  /** Only records with a recipient at this domain. */
  domain?: string;
  /** System scope only: one tenant. */
  tenantId?: string;
  /** Newest first; keyset position of the last row of the previous page. */
  before?: { createdAt: number; id: string };
  limit?: number;
}

/** Who changes a record and how it notifies the sender; see DsnSender (dsn.ts). */
export interface RecordDeps {
  db: Database;
  queue: Queue;
  config?: () => RetryConfig;
  /** Bounces for `delete(..., { bounce: true })`. */
  bounce?: (record: OutboundRecord, recipients: OutboundRecipient[], reason: string) => Promise<void>;
  now?: () => number;
}

/** List/show/hold/release/retry/delete/stats of queue records, always through a scope (SPEC §9). */
export class OutboundRecords {
  constructor(private readonly deps: RecordDeps) {}

  private get k(): Kysely<DB> {
    return this.deps.db.kysely;
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  private async countsOf(ids: string[]): Promise<Map<string, Record<string, number>>> {
    const out = new Map<string, Record<string, number>>();
    if (ids.length === 0) return out;
    const rows = await this.k
      .selectFrom('outbound_recipients')
      .select(['outbound_id', 'status', (eb) => eb.fn.countAll().as('n')])
      .where('outbound_id', 'in', ids)
      .groupBy(['outbound_id', 'status'])
      .execute();
    for (const r of rows) {
      const c = out.get(r.outbound_id) ?? {};
      c[r.status] = Number(r.n);
      out.set(r.outbound_id, c);
    }
    return out;
  }

  async list(scope: Scope, filter: ListFilter = {}): Promise<OutboundRecord[]> {
    const limit = filter.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST + 1) throw new ValidationError(`limit must be from 1 to ${MAX_LIST}`, { field: 'limit' });
    if (filter.status !== undefined && !STATUSES.includes(filter.status)) throw new ValidationError(`status must be one of ${STATUSES.join(', ')}`, { field: 'status' });
    let q = this.k.selectFrom('outbound_messages').selectAll().where(inScope(scope));
    if (filter.tenantId) q = q.where('tenant_id', '=', filter.tenantId);
    if (filter.status) q = q.where('status', '=', filter.status);
    if (filter.domain) {
      const d = filter.domain.toLowerCase();
      q = q.where((eb) => eb.exists(eb.selectFrom('outbound_recipients').select('outbound_recipients.id').whereRef('outbound_recipients.outbound_id', '=', 'outbound_messages.id').where('outbound_recipients.domain', '=', d)));
    }
    if (filter.before) {
      const b = filter.before;
      q = q.where((eb) => eb.or([eb('created_at', '<', b.createdAt), eb.and([eb('created_at', '=', b.createdAt), eb('id', '<', b.id)])]));
    }
    const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
    const counts = await this.countsOf(rows.map((r) => r.id));
    return rows.map((r) => toRecord(r, counts.get(r.id) ?? {}));
  }

  /** NotFoundError for a missing record and for one outside the scope alike (SPEC §9). */
  async get(scope: Scope, id: string): Promise<OutboundRecord> {
    const row = await this.k.selectFrom('outbound_messages').selectAll().where(inScope(scope)).where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError(`queue entry "${id}" not found`);
    return toRecord(row, (await this.countsOf([id])).get(id) ?? {});
  }

  async show(scope: Scope, id: string): Promise<{ record: OutboundRecord; recipients: OutboundRecipient[]; attempts: OutboundAttempt[] }> {
    const record = await this.get(scope, id);
    const recipients = await this.k.selectFrom('outbound_recipients').selectAll().where('outbound_id', '=', id).orderBy('address').execute();
    const attempts = await this.k.selectFrom('outbound_attempts').selectAll().where('outbound_id', '=', id).orderBy('at').orderBy('id').execute();
    return { record, recipients: recipients.map(toRecipient), attempts: attempts.map(toAttempt) };
  }

  /** Held records are not delivered: a due job finishes without sending (SPEC §3.3 hold/release). */
  async hold(scope: Scope, id: string, actor: AuditActor): Promise<OutboundRecord> {
    const rec = await this.get(scope, id);
    if (isFinished(rec.status)) throw new ConflictError(`queue entry "${id}" is ${rec.status}; only waiting entries can be held`);
    await this.k.updateTable('outbound_messages').set({ held: 1, updated_at: this.now() }).where('id', '=', id).execute();
    await writeAudit(this.deps.db, { tenantId: rec.tenantId, eventType: 'outbound.held', actor, target: { type: 'outbound_message', id } });
    return this.get(scope, id);
  }

  async release(scope: Scope, id: string, actor: AuditActor): Promise<OutboundRecord> {
    const rec = await this.get(scope, id);
    if (!rec.held) throw new ConflictError(`queue entry "${id}" is not held`);
    await this.k.updateTable('outbound_messages').set({ held: 0, updated_at: this.now() }).where('id', '=', id).execute();
    if (!isFinished(rec.status)) await this.runNow(rec);
    await writeAudit(this.deps.db, { tenantId: rec.tenantId, eventType: 'outbound.released', actor, target: { type: 'outbound_message', id } });
    return this.get(scope, id);
  }

  /** Makes the next attempt due now (SPEC §3.3 "retry now"). */
  async retryNow(scope: Scope, id: string, actor: AuditActor): Promise<OutboundRecord> {
    const rec = await this.get(scope, id);
    if (rec.held) throw new ConflictError(`queue entry "${id}" is held; release it to deliver it`);
    if (isFinished(rec.status)) throw new ConflictError(`queue entry "${id}" is ${rec.status}; nothing is left to deliver`);
    await this.runNow(rec);
    await writeAudit(this.deps.db, { tenantId: rec.tenantId, eventType: 'outbound.retried', actor, target: { type: 'outbound_message', id } });
    return this.get(scope, id);
  }

  /**
   * The waiting job is made due now; a job that finished (a held record's job completes without
   * sending) or died is replaced by a new one with the current retry schedule.
   */
  private async runNow(rec: OutboundRecord): Promise<void> {
    const job = rec.jobId ? await this.deps.queue.get(rec.jobId) : null;
    if (job && job.status === 'running') return; // an attempt is under way; it reads the record afresh
    if (job && job.status === 'ready' && (await this.deps.queue.retryNow(job.id))) {
      await this.k.updateTable('outbound_messages').set({ next_attempt_at: this.now(), updated_at: this.now() }).where('id', '=', rec.id).execute();
      return;
    }
    if (job) await this.deps.queue.delete(job.id);
    const plan = retryPlan(this.deps.config?.() ?? DEFAULT_RETRY);
    const payload: OutboundJobPayload = { outboundId: rec.id, tenantId: rec.tenantId };
    const jobId = await this.deps.queue.enqueue(OUTBOUND_QUEUE, payload, plan);
    await this.k.updateTable('outbound_messages').set({ job_id: jobId, next_attempt_at: this.now(), updated_at: this.now() }).where('id', '=', rec.id).execute();
  }

  /**
   * Removes the entry from delivery: recipients not yet delivered become `cancelled`, or `bounced`
   * with a DSN to the sender when `bounce` is set (SPEC §3.3 "delete/bounce"). Delivered
   * recipients and the attempt history stay, for the record.
   */
  async delete(scope: Scope, id: string, opts: { bounce: boolean }, actor: AuditActor): Promise<OutboundRecord> {
    const rec = await this.get(scope, id);
    if (rec.status === 'deleted') throw new NotFoundError(`queue entry "${id}" not found`);
    const at = this.now();
    const open = await this.k.selectFrom('outbound_recipients').selectAll().where('outbound_id', '=', id).where('status', 'in', ['pending', 'deferred']).execute();
    const reason = 'deleted from the queue by an administrator';
    await this.k
      .updateTable('outbound_recipients')
      .set(opts.bounce ? { status: 'bounced', last_reply: `550 5.0.0 ${reason}`, finished_at: at } : { status: 'cancelled', finished_at: at })
      .where('outbound_id', '=', id)
      .where('status', 'in', ['pending', 'deferred'])
      .execute();
    await this.k.updateTable('outbound_messages').set({ status: 'deleted', held: 0, next_attempt_at: null, updated_at: at }).where('id', '=', id).execute();
    if (rec.jobId) await this.deps.queue.delete(rec.jobId);
    if (opts.bounce && open.length && this.deps.bounce) {
      const bounced = open.map((r) => toRecipient({ ...r, status: 'bounced', last_reply: `550 5.0.0 ${reason}`, finished_at: at }));
      await this.deps.bounce(rec, bounced, reason);
    }
    await writeAudit(this.deps.db, { tenantId: rec.tenantId, eventType: 'outbound.deleted', actor, target: { type: 'outbound_message', id }, metadata: { bounce: opts.bounce, recipients: open.length } });
    return this.get(scope, id);
  }

  /** Records per status (and how many are held), for `queue stats` and the metrics. */
  async stats(scope: Scope, tenantId?: string): Promise<{ status: string; count: number }[]> {
    let q = this.k.selectFrom('outbound_messages').select(['status', (eb) => eb.fn.countAll().as('n')]).where(inScope(scope));
    if (tenantId) q = q.where('tenant_id', '=', tenantId);
    const rows = await q.groupBy('status').orderBy('status').execute();
    let hq = this.k.selectFrom('outbound_messages').select((eb) => eb.fn.countAll().as('n')).where(inScope(scope)).where('held', '<>', 0).where('status', 'in', ['queued', 'delivering']);
    if (tenantId) hq = hq.where('tenant_id', '=', tenantId);
    const held = Number((await hq.executeTakeFirst())?.n ?? 0);
    return [...rows.map((r) => ({ status: r.status, count: Number(r.n) })), { status: 'held', count: held }];
  }
}

export function isFinished(status: OutboundStatus): boolean {
  return status === 'delivered' || status === 'bounced' || status === 'partial' || status === 'deleted';
}
