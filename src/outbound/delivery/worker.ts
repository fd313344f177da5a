/**
 * The `outbound` queue's worker (SPEC §3.3, §5.2): delivers a queue record's remote recipients.
 *
 * Per job (one attempt of one record):
 *  - the record decides: gone, finished or held → the job ends without sending (release makes a
 *    new job); only `pending`/`deferred` recipients are sent to, so a job that runs twice (a worker
 *    died after the remote `250`, at-least-once queue) never delivers a recipient twice — each
 *    recipient is written the moment its transaction's reply is in;
 *  - per destination domain: resolve (null MX RFC 7505 / permanent DNS error → bounce; temporary →
 *    defer), then the hosts in order and each host's addresses: a connection failure or a refused
 *    greeting moves on to the next address/host (RFC 5321 §5.1); a transaction that reached MAIL
 *    is final for this attempt: 2xx delivered, 5xx bounced, 4xx deferred (RFC 5321 §4.2.1);
 *  - TLS required (require_tls_domains, MTA-STS enforce) but not available on any host → deferred
 *    or bounced per `require_tls_action`; SMTPUTF8 needed (RFC 6531: non-ASCII envelope or header)
 *    but not offered → bounced with that reason (the client refuses to downgrade);
 *  - every attempt's transcript goes to outbound_attempts (SPEC §5.2);
 *  - deferred recipients left → the handler throws, and the queue retries on the job's backoff
 *    (`retry_schedule_seconds`); at the last attempt, or once the record is older than
 *    `max_queue_hours`, what is left is bounced (SPEC §3.3 "up to 5 days"); one delay DSN after
 *    `delay_warning_hours` when set;
 *  - bounces → one RFC 3464 DSN per attempt to the envelope sender (dsn.ts; never for `<>`).
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Kysely } from 'kysely';
import type { MailboxStateService } from '../../core/mailbox-state/service.js';
import { tenantScope, type Scope } from '../../core/scope.js';
import type { OutboundConfig } from '../../config/sections/outbound.js';
import type { Job, Queue } from '../../queue/queue.js';
import { backoffDelayMs } from '../../queue/backoff.js';
import type { Database } from '../../store/db/database.js';
import { newId } from '../../store/db/database.js';
import type { DB, OutboundMessagesTable, OutboundRecipientsTable, OutboundStatus } from '../../store/db/types.js';
import type { ClientSendResult, DestinationHost, DestinationResolver, SmtpClientPool, SmtpClientReply } from '../types.js';
import type { DsnRecipient, DsnSender } from '../dsn.js';
import { statusOf } from '../dsn.js';
import { OUTBOUND_QUEUE, type OutboundJobPayload } from '../records.js';
import type { OutboundMetrics } from './metrics.js';

export interface OutboundWorkerDeps {
  queue: Queue;
  db: Database;
  /** Reads the stored message (tenant-scoped) that is sent. */
  mailboxState: MailboxStateService;
  resolver: DestinationResolver;
  pool: SmtpClientPool;
  /** Read per attempt: the section is reloadable. */
  config: () => OutboundConfig;
  /** `server.hostname`: the EHLO name when `outbound.ehlo_name` is empty. */
  hostname: string;
  dsn: DsnSender;
  logger: Logger;
  metrics?: OutboundMetrics;
  /** Clock for ages (max_queue_hours, delay warnings); tests move it. */
  now?: () => number;
}

/** A deferred attempt: the queue retries the job on its backoff. */
export class DeliveryDeferredError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeliveryDeferredError';
  }
}

type Outcome = 'delivered' | 'bounced' | 'deferred';

interface RecipientResult {
  row: OutboundRecipientsTable;
  outcome: Outcome;
  code: number | null;
  reply: string;
  remoteMta: string | null;
}

const NON_ASCII = /[^\x00-\x7f]/;

function replyText(r: SmtpClientReply): string {
  return `${r.code} ${r.enhanced ? `${r.enhanced} ` : ''}${r.text}`.trim();
}

/** Whether the header section has non-ASCII octets (needs SMTPUTF8, RFC 6532) and the body 8-bit ones (8BITMIME, RFC 6152). */
export async function scanMessage(stream: Readable): Promise<{ headerNonAscii: boolean; bodyEightBit: boolean }> {
  let inHeader = true;
  let carry = Buffer.alloc(0);
  let headerNonAscii = false;
  let bodyEightBit = false;
  const high = (b: Buffer) => b.some((x) => x > 0x7f);
  for await (const chunk of stream) {
    let b = chunk as Buffer;
    if (inHeader) {
      const joined = Buffer.concat([carry, b]);
      const end = joined.indexOf('\r\n\r\n');
      if (end < 0) {
        if (high(b)) headerNonAscii = true;
        carry = joined.subarray(Math.max(0, joined.length - 3));
        continue;
      }
      if (high(joined.subarray(0, end))) headerNonAscii = true;
      inHeader = false;
      b = joined.subarray(end + 4);
    }
    if (!bodyEightBit && high(b)) bodyEightBit = true;
  }
  return { headerNonAscii, bodyEightBit };
}

export interface OutboundWorker {
  /** Runs one job (what the queue calls; tests call it to run a job twice). */
  handle(job: Job<OutboundJobPayload>, signal?: AbortSignal): Promise<void>;
}

/** Starts consuming the `outbound` queue (`outbound.workers` at a time) and returns the handler. */
export function startOutboundWorker(deps: OutboundWorkerDeps, opts: { consume?: boolean } = {}): OutboundWorker {
  const worker: OutboundWorker = { handle: (job, signal) => deliverJob(deps, job, signal ?? new AbortController().signal) };
  if (opts.consume ?? true) deps.queue.work<OutboundJobPayload>(OUTBOUND_QUEUE, (job, signal) => worker.handle(job, signal), { concurrency: deps.config().workers });
  return worker;
}

function clock(deps: OutboundWorkerDeps): number {
  return deps.now?.() ?? Date.now();
}

async function deliverJob(deps: OutboundWorkerDeps, job: Job<OutboundJobPayload>, signal: AbortSignal): Promise<void> {
  const k = deps.db.kysely;
  const payload = job.payload as OutboundJobPayload & { queueId?: string };
  const id = payload.outboundId ?? payload.queueId;
  const log = deps.logger.child({ outbound_id: id, job_id: job.id });
  const row = await k.selectFrom('outbound_messages').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) {
    log.warn('outbound job without its queue record: nothing to deliver');
    return;
  }
  if (isDone(row.status)) return;
  if (Number(row.held) !== 0) {
    // SPEC §3.3 hold: the job ends here; release enqueues a new one.
    await k.updateTable('outbound_messages').set({ next_attempt_at: null, updated_at: clock(deps) }).where('id', '=', id).execute();
    log.info('queue entry is held: not delivered');
    return;
  }
  const cfg = deps.config();
  const startedAt = clock(deps);
  const scope = tenantScope(row.tenant_id);
  const open = await openRecipients(k, id);
  await k.updateTable('outbound_messages').set({ status: 'delivering', attempts: Number(row.attempts) + 1, updated_at: startedAt }).where('id', '=', id).where('status', '<>', 'deleted').execute();

  const age = startedAt - Number(row.created_at);
  const maxAgeMs = cfg.max_queue_hours * 3600_000;
  const expired = age >= maxAgeMs;
  const bounced: RecipientResult[] = [];

  if (!expired && open.length) {
    const scan = await scanMessage(await deps.mailboxState.openMessage(scope, row.message_id));
    const needsSmtputf8 = scan.headerNonAscii || NON_ASCII.test(row.mail_from) || open.some((r) => NON_ASCII.test(r.address));
    const byDomain = new Map<string, OutboundRecipientsTable[]>();
    for (const r of open) byDomain.set(r.domain, [...(byDomain.get(r.domain) ?? []), r]);
    for (const [domain, rcpts] of byDomain) {
      if (signal.aborted) break;
      const results = await deliverDomain(deps, { row, scope, domain, rcpts, cfg, needsSmtputf8, eightBit: scan.bodyEightBit, signal });
      for (const r of results) {
        await writeRecipient(deps, r);
        if (r.outcome === 'bounced') bounced.push(r);
      }
    }
  }

  // Out of time (SPEC §3.3 "up to 5 days"): what is left bounces with "delivery time expired".
  let left = await openRecipients(k, id);
  const lastAttempt = job.attempts >= job.maxAttempts;
  if (left.length && (expired || lastAttempt) && !signal.aborted) {
    for (const r of left) {
      const result: RecipientResult = {
        row: r,
        outcome: 'bounced',
        code: r.last_code === null ? 550 : Number(r.last_code),
        reply: `550 5.4.7 delivery time expired after ${Math.round(age / 3600_000)} h; last reply: ${r.last_reply ?? 'none'}`,
        remoteMta: null,
      };
      await writeRecipient(deps, result, { keepLastReply: true });
      bounced.push({ ...result, reply: r.last_reply ? `${r.last_reply} (delivery time expired)` : result.reply });
    }
    left = [];
  }

  if (bounced.length) {
    await notify(deps, log, row, 'failed', bounced.map((b) => dsnRecipient(b, 'failed', b.reply.includes('expired') ? '5.4.7' : statusOf(b.reply, '5.0.0'))));
  }
  const now = clock(deps);
  if (left.length && cfg.delay_warning_hours > 0 && Number(row.delay_warned) === 0 && now - Number(row.created_at) >= cfg.delay_warning_hours * 3600_000) {
    await k.updateTable('outbound_messages').set({ delay_warned: 1 }).where('id', '=', id).execute();
    await notify(
      deps,
      log,
      row,
      'delayed',
      left.map((r) => ({ address: r.address, action: 'delayed', status: statusOf(r.last_reply, '4.0.0'), diagnostic: r.last_reply, lastAttemptAt: r.last_attempt_at === null ? null : Number(r.last_attempt_at) })),
      Number(row.created_at) + maxAgeMs,
    );
  }

  if (left.length) {
    const next = now + backoffDelayMs(cfg.retry_schedule_seconds, Math.max(1, job.attempts));
    await k.updateTable('outbound_messages').set({ status: 'queued', next_attempt_at: next, updated_at: now }).where('id', '=', id).where('status', '<>', 'deleted').execute();
    // The queue retries the job on its backoff (the retry schedule).
    throw new DeliveryDeferredError(`${left.length} recipient(s) deferred: ${left[0].last_reply ?? 'no reply'}`);
  }
  await finish(k, id, now);
}

function isDone(status: OutboundStatus): boolean {
  return status === 'delivered' || status === 'bounced' || status === 'partial' || status === 'deleted';
}

function openRecipients(k: Kysely<DB>, id: string): Promise<OutboundRecipientsTable[]> {
  return k.selectFrom('outbound_recipients').selectAll().where('outbound_id', '=', id).where('status', 'in', ['pending', 'deferred']).orderBy('domain').orderBy('address').execute();
}

/** Final status from the recipients: delivered, bounced, or partial (some of each). */
async function finish(k: Kysely<DB>, id: string, now: number): Promise<void> {
  const rows = await k.selectFrom('outbound_recipients').select('status').where('outbound_id', '=', id).execute();
  const delivered = rows.filter((r) => r.status === 'delivered').length;
  const failed = rows.filter((r) => r.status === 'bounced' || r.status === 'cancelled').length;
  const status: OutboundStatus = delivered > 0 && failed === 0 ? 'delivered' : delivered === 0 ? 'bounced' : 'partial';
  await k.updateTable('outbound_messages').set({ status, next_attempt_at: null, updated_at: now }).where('id', '=', id).where('status', '<>', 'deleted').execute();
}

function dsnRecipient(r: RecipientResult, action: DsnRecipient['action'], status: string): DsnRecipient {
  return { address: r.row.address, action, status, remoteMta: r.remoteMta, diagnostic: r.reply, lastAttemptAt: Date.now() };
}

async function notify(deps: OutboundWorkerDeps, log: Logger, row: OutboundMessagesTable, kind: 'failed' | 'delayed', recipients: DsnRecipient[], until?: number): Promise<void> {
  try {
    const outcome = await deps.dsn.send({
      tenantId: row.tenant_id,
      outboundId: row.id,
      messageId: row.message_id,
      mailFrom: row.mail_from,
      arrivedAt: Number(row.created_at),
      recipients,
      willRetryUntil: until ?? null,
    });
    log.info({ kind, outcome, recipients: recipients.length }, 'delivery status notification');
  } catch (err) {
    // The recipients' state is already written; a lost DSN must not make the job deliver again.
    log.error({ kind, err: (err as Error).message }, 'delivery status notification could not be sent');
  }
}

async function writeRecipient(deps: OutboundWorkerDeps, r: RecipientResult, opts: { keepLastReply?: boolean } = {}): Promise<void> {
  const at = clock(deps);
  const k = deps.db.kysely;
  const finished = r.outcome === 'deferred' ? null : at;
  const set = {
    status: r.outcome,
    attempts: Number(r.row.attempts) + (opts.keepLastReply ? 0 : 1),
    last_code: r.code,
    last_reply: opts.keepLastReply ? r.row.last_reply ?? r.reply : r.reply,
    last_attempt_at: opts.keepLastReply ? r.row.last_attempt_at : at,
    finished_at: finished,
  };
  // A delivered recipient is the truth whatever happened meanwhile; other outcomes never
  // overwrite a recipient an admin cancelled or bounced during the attempt.
  let q = k.updateTable('outbound_recipients').set(set).where('id', '=', r.row.id);
  q = r.outcome === 'delivered' ? q.where('status', '<>', 'delivered') : q.where('status', 'in', ['pending', 'deferred']);
  await q.execute();
  deps.metrics?.deliveries.inc({ result: r.outcome });
}

interface DomainJob {
  row: OutboundMessagesTable;
  scope: Scope;
  domain: string;
  rcpts: OutboundRecipientsTable[];
  cfg: OutboundConfig;
  needsSmtputf8: boolean;
  eightBit: boolean;
  signal: AbortSignal;
}

async function recordAttempt(deps: OutboundWorkerDeps, d: DomainJob, a: { host: string | null; address: string | null; tls: string | null; result: string; transcript: string[] }): Promise<void> {
  await deps.db.kysely
    .insertInto('outbound_attempts')
    .values({ id: newId(), outbound_id: d.row.id, domain: d.domain, at: clock(deps), mx_host: a.host, address: a.address, tls: a.tls, result: a.result, transcript: a.transcript.join('\n').slice(0, 256 * 1024) })
    .execute();
}

function all(d: DomainJob, outcome: Outcome, code: number, reply: string, remoteMta: string | null = null): RecipientResult[] {
  return d.rcpts.map((row) => ({ row, outcome, code, reply, remoteMta }));
}

/** The stages where the server never saw our envelope: another address or host may do better. */
function tryNext(res: ClientSendResult, tls: string): boolean {
  if (!res.error) return false;
  if (res.stage === 'connect' || res.stage === 'greeting') return true;
  if (res.stage === 'starttls' && tls === 'required') return true;
  return res.error.temporary && (res.stage === 'ehlo' || res.stage === 'starttls');
}

async function deliverDomain(deps: OutboundWorkerDeps, d: DomainJob): Promise<RecipientResult[]> {
  let dest;
  try {
    dest = await deps.resolver.resolve(d.domain);
  } catch (err) {
    dest = { kind: 'error' as const, domain: d.domain, temporary: true, message: (err as Error).message };
  }
  if (dest.kind === 'null-mx') {
    // RFC 7505 §4.2: a null MX means the domain accepts no mail; fail at once.
    const reply = `556 5.1.10 ${d.domain} does not accept mail (null MX, RFC 7505)`;
    await recordAttempt(deps, d, { host: null, address: null, tls: null, result: 'bounced', transcript: [`resolve ${d.domain}: null MX`] });
    return all(d, 'bounced', 556, reply);
  }
  if (dest.kind === 'error') {
    const reply = dest.temporary ? `451 4.4.3 cannot resolve ${d.domain}: ${dest.message}` : `550 5.1.2 no mail host for ${d.domain}: ${dest.message}`;
    await recordAttempt(deps, d, { host: null, address: null, tls: null, result: dest.temporary ? 'deferred' : 'bounced', transcript: [`resolve ${d.domain}: ${dest.message}`] });
    return all(d, dest.temporary ? 'deferred' : 'bounced', dest.temporary ? 451 : 550, reply);
  }
  const requireTls = d.cfg.require_tls_domains.some((x) => x.toLowerCase() === d.domain);
  let lastFailure = `451 4.4.4 no host of ${d.domain} could be reached`;
  let tlsMissing = false;
  for (const host of dest.hosts) {
    for (const address of host.addresses) {
      if (d.signal.aborted) return all(d, 'deferred', 451, '451 4.3.0 delivery interrupted (worker stopping)');
      const tls = requireTls && host.tls !== 'implicit' ? 'required' : host.tls;
      const res = await send(deps, d, host, address, tls);
      const outcome = tryNext(res, tls) ? 'error' : undefined;
      const results = outcome ? null : perRecipient(d, res, host);
      const summary = results ? summarise(results) : 'error';
      await recordAttempt(deps, d, { host: host.host, address, tls: res.tls?.protocol ?? 'none', result: summary, transcript: res.transcript.length ? res.transcript : [res.error?.message ?? ''] });
      if (results) return results;
      tlsMissing = res.stage === 'starttls' && tls === 'required';
      lastFailure = res.error?.reply ? replyText(res.error.reply) : `451 4.4.1 ${host.host} [${address}]: ${res.error?.message ?? 'no answer'}`;
      if (tlsMissing) lastFailure = `TLS is required for ${d.domain} but ${host.host} [${address}] did not provide it: ${res.error?.message ?? ''}`.trim();
    }
  }
  if (tlsMissing) {
    const bounce = d.cfg.require_tls_action === 'bounce';
    // RFC 5248 registry: X.7.10 "Encryption needed".
    return all(d, bounce ? 'bounced' : 'deferred', bounce ? 550 : 451, `${bounce ? '550 5.7.10' : '451 4.7.10'} ${lastFailure}`);
  }
  return all(d, 'deferred', 451, lastFailure.startsWith('4') || lastFailure.startsWith('5') ? lastFailure.replace(/^5/, '4') : `451 4.4.1 ${lastFailure}`);
}

async function send(deps: OutboundWorkerDeps, d: DomainJob, host: DestinationHost, address: string, tls: DestinationHost['tls']): Promise<ClientSendResult> {
  try {
    return await deps.pool.send({
      host: host.host,
      address,
      port: host.port,
      heloName: d.cfg.ehlo_name || deps.hostname,
      tls,
      verifyCertificate: host.verifyCertificate,
      auth: host.auth,
      mailFrom: d.row.mail_from,
      recipients: d.rcpts.map((r) => r.address),
      message: () => deps.mailboxState.openMessage(d.scope, d.row.message_id),
      size: Number(d.row.size),
      needsSmtputf8: d.needsSmtputf8,
      eightBit: d.eightBit,
      timeouts: { connectMs: d.cfg.connect_timeout_ms, commandMs: d.cfg.command_timeout_ms, dataMs: d.cfg.command_timeout_ms },
      signal: d.signal,
    });
  } catch (err) {
    // A client bug or a refused input: like a connection failure, try elsewhere / later.
    return { stage: 'connect', error: { temporary: true, reply: null, message: (err as Error).message }, recipients: [], dataReply: null, tls: null, transcript: [`error: ${(err as Error).message}`] };
  }
}

function summarise(results: RecipientResult[]): string {
  const kinds = new Set(results.map((r) => r.outcome));
  return kinds.size === 1 ? [...kinds][0] : 'partial';
}

/** Per recipient: 2xx delivered, 5xx bounced, 4xx deferred (RFC 5321 §4.2.1). */
function perRecipient(d: DomainJob, res: ClientSendResult, host: DestinationHost): RecipientResult[] {
  const remoteMta = host.host;
  const err = res.error;
  const utf8 = d.needsSmtputf8 && err && !err.temporary && /smtputf8/i.test(err.message);
  return d.rcpts.map((row, i) => {
    const r = res.recipients[i] ?? res.recipients.find((x) => x.address === row.address);
    if (r?.delivered) {
      const reply = res.dataReply ? replyText(res.dataReply) : '250 accepted';
      return { row, outcome: 'delivered', code: res.dataReply?.code ?? 250, reply, remoteMta };
    }
    if (utf8) {
      // RFC 6531 §3.2: no SMTPUTF8, no delivery of this message to this host (a downgrade is not done).
      return { row, outcome: 'bounced', code: 553, reply: `553 5.6.7 ${host.host} does not support SMTPUTF8, which this message needs (non-ASCII address or header): ${err!.message}`, remoteMta };
    }
    const reply = r?.rcptReply && r.rcptReply.code >= 400 ? r.rcptReply : res.dataReply && res.dataReply.code >= 400 ? res.dataReply : err?.reply ?? null;
    if (reply) return { row, outcome: reply.code >= 500 ? 'bounced' : 'deferred', code: reply.code, reply: replyText(reply), remoteMta };
    if (err) return { row, outcome: err.temporary ? 'deferred' : 'bounced', code: err.temporary ? 451 : 550, reply: `${err.temporary ? '451 4.0.0' : '550 5.0.0'} ${err.message}`, remoteMta };
    return { row, outcome: 'deferred', code: 451, reply: '451 4.0.0 no reply for this recipient', remoteMta };
  });
}
