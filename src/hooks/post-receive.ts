/**
 * `post_receive` hooks (SPEC §3.1 step 7, §6): after the commit, asynchronously, through the queue.
 *
 * One job per (hook, stored message), written in the commit transaction (`enqueuePostReceive`, the
 * pattern of the outbound hand-off), so a crash between commit and enqueue cannot lose it and a
 * rolled-back message leaves no job behind. The job carries what the payload needs besides the
 * stored bytes (envelope, client address); the bytes are read back from the blob store.
 *
 * Outcomes of one attempt (the job's retry policy is the hook's `retry`: max_attempts 3,
 * backoff 30 s / 2 min / 10 min by default; a dead job is the SPEC's `permanent-failed`):
 *  - ok → the result's writes (already stripped of ungranted ones by the manager) are applied
 *    through mailbox-state (apply.ts) so IMAP sessions see them; `quarantine` moves the message to
 *    the quarantine folder. `reject`/`tempfail` mean nothing after the commit: logged.
 *  - timeout / error → the attempt fails and the queue retries; on the last attempt the failure is
 *    also published as the `plugin.error` webhook event and written to the plugin's log.
 *  - breaker open → `on_open: skip` ends the job (logged); otherwise it is retried like a failure.
 *  - plugin unavailable (uninstalled, disabled, not enabled for the tenant), hook deleted or
 *    disabled → done, logged: retrying cannot make it available.
 * Apply errors caused by the plugin's answer (an unknown folder, a bad keyword) are logged and end
 * the job; storage errors fail the attempt so the queue retries.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { NotFoundError } from '../core/mailbox-state/errors.js';
import type { MailboxStateService } from '../core/mailbox-state/service.js';
import { tenantScope } from '../core/scope.js';
import type { PluginDirectory } from '../plugins/types.js';
import type { Job, Queue } from '../queue/queue.js';
import { errorText } from '../queue/errors.js';
import type { Database } from '../store/db/database.js';
import type { DB } from '../store/db/types.js';
import type { EventPublisher } from '../webhooks/types.js';
import { applyPluginWrites, ApplyError, type AppliedWrites } from './apply.js';
import { buildPayloadSource } from './payload.js';
import type { AppliedResult, HookRunner, HookSource, StoredHook } from './runtime-types.js';

export const POST_RECEIVE_QUEUE = 'post_receive';

/** The payload of one `post_receive` job (JSON in queue_jobs.payload_json; small: no message bytes). */
export interface PostReceiveJob {
  hook_id: string;
  tenant_id: string;
  /** The stored message (the tenant's row). */
  message_id: string;
  /** Mailboxes of the tenant that received a copy. */
  mailbox_ids: string[];
  /** The pipeline's queue id, to follow a message through the logs. */
  queue_id: string | null;
  /** Envelope as the tenant's hooks may see it: the tenant's own recipients only (SPEC §9). */
  envelope: { from: string; to: string[] };
  /** ms since the epoch. */
  received_at: number;
  client_ip: string | null;
}

/** The job minus the hook: what the pipeline knows about one tenant's stored copy. */
export type PostReceiveJobBase = Omit<PostReceiveJob, 'hook_id'>;

/** SPEC §6 default retry policy, for a hook stored without one (validateHookConfig always sets it). */
const DEFAULT_RETRY = { max_attempts: 3, backoff_seconds: [30, 120, 600] };

/**
 * Enqueues one job per hook inside `trx` (the commit transaction); call `wakePostReceive` after the
 * commit. Hooks of other tenants are skipped (defence in depth: the caller asked for the tenant's).
 * Returns the job ids.
 */
export async function enqueuePostReceive(queue: Queue, trx: Kysely<DB>, hooks: readonly StoredHook[], job: PostReceiveJobBase): Promise<string[]> {
  const own = hooks.filter((h) => h.type === 'post_receive' && h.enabled && (h.tenant_id === null || h.tenant_id === job.tenant_id));
  if (own.length === 0) return [];
  if (!queue.enqueueIn) throw new Error(`the ${queue.kind} queue cannot enqueue inside a database transaction`);
  const ids: string[] = [];
  for (const hook of own) {
    const retry = hook.retry ?? DEFAULT_RETRY;
    const payload: PostReceiveJob = { ...job, hook_id: hook.id };
    ids.push(
      await queue.enqueueIn(trx, POST_RECEIVE_QUEUE, payload, {
        maxAttempts: retry.max_attempts,
        backoffSeconds: [...retry.backoff_seconds],
        // One job per hook and message: a retried commit transaction never queues it twice.
        dedupeKey: `post_receive:${hook.id}:${job.message_id}`,
      }),
    );
  }
  return ids;
}

export function wakePostReceive(queue: Queue): void {
  queue.wake?.(POST_RECEIVE_QUEUE);
}

export interface PostReceiveWorkerDeps {
  queue: Queue;
  runner: HookRunner;
  hooks: HookSource;
  mailboxState: MailboxStateService;
  db: Database;
  /** `plugin.error` is published when a job fails for good. */
  events?: EventPublisher;
  /** Where plugin log lines go (the registry); optional so the worker can run without one. */
  plugins?: Pick<PluginDirectory, 'log'>;
  /** Config `hooks.quarantine_folder`, read per job (reloadable). */
  quarantineFolder: () => string;
  logger: Logger;
  concurrency?: number;
}

/** A failed attempt the queue should retry (or dead-letter after the last one). */
export class PostReceiveAttemptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PostReceiveAttemptError';
  }
}

/** Reads the stored message; stream errors (blob store down) fail the attempt and the queue retries. */
async function readStored(mailboxState: MailboxStateService, tenantId: string, messageId: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of await mailboxState.openMessage(tenantScope(tenantId), messageId)) parts.push(Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array));
  return Buffer.concat(parts);
}

/**
 * Starts the workers. The Queue port stops every worker of a queue together (`queue.stop`, which
 * drains and hands unfinished jobs back without counting the attempt); the returned function only
 * makes this node start no further hook call: a job claimed after it waits, without calling the
 * plugin or failing, until `queue.stop` hands it back — so stopping never burns a job's attempts.
 */
export function startPostReceiveWorker(deps: PostReceiveWorkerDeps): () => void {
  const log = deps.logger.bindings().component === undefined ? deps.logger.child({ component: 'post_receive' }) : deps.logger;
  let stopped = false;
  deps.queue.work<PostReceiveJob>(
    POST_RECEIVE_QUEUE,
    async (job, signal) => {
      if (stopped) {
        await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
        throw new PostReceiveAttemptError('post_receive worker stopped');
      }
      await runPostReceiveJob({ ...deps, logger: log }, job, signal);
    },
    { concurrency: deps.concurrency ?? 2 },
  );
  return () => {
    stopped = true;
  };
}

/** One attempt of one job (exported for tests and for a manual run). */
export async function runPostReceiveJob(deps: PostReceiveWorkerDeps, job: Job<PostReceiveJob>, signal?: AbortSignal): Promise<AppliedWrites | null> {
  const p = job.payload;
  const log = deps.logger.child({ job_id: job.id, hook_id: p.hook_id, message_id: p.message_id, tenant_id: p.tenant_id, attempt: job.attempts });
  const hook = await deps.hooks.get(p.hook_id);
  if (!hook || !hook.enabled || hook.type !== 'post_receive') {
    log.info({ reason: !hook ? 'deleted' : !hook.enabled ? 'disabled' : 'type changed' }, 'post_receive hook gone; job dropped');
    return null;
  }
  if (hook.tenant_id !== null && hook.tenant_id !== p.tenant_id) {
    log.warn({ hook_tenant_id: hook.tenant_id }, 'post_receive hook now belongs to another tenant; job dropped');
    return null;
  }

  const payload = async () => {
    const raw = await readStored(deps.mailboxState, p.tenant_id, p.message_id);
    return buildPayloadSource({
      hookType: 'post_receive',
      messageId: p.message_id,
      tenantId: p.tenant_id,
      mailbox: p.envelope.to.length === 1 ? p.envelope.to[0] : null,
      envelope: p.envelope,
      raw,
      receivedAt: new Date(p.received_at),
      clientIp: p.client_ip,
      callbackUrl: null,
    });
  };

  let outcome;
  try {
    outcome = await deps.runner.runOne(hook, p.tenant_id, payload, { messageId: p.message_id, signal });
  } catch (err) {
    // The message may have been deleted meanwhile: nothing left to run the hook on.
    if (err instanceof NotFoundError) {
      log.info('message gone; post_receive job dropped');
      return null;
    }
    throw err;
  }
  const { record, result } = outcome;
  const lastAttempt = job.attempts >= job.maxAttempts;

  switch (record.outcome) {
    case 'ok':
      return result ? applyResult(deps, log, hook, p, result) : null;
    case 'filtered':
      log.debug('post_receive hook filtered out');
      return null;
    case 'unavailable':
      log.info({ plugin_id: hook.plugin_id }, 'plugin unavailable; post_receive job dropped');
      return null;
    case 'open':
      // The manager applied on_open (and `required`): no action means the call was skipped.
      if (record.action === undefined) {
        log.info({ plugin_id: hook.plugin_id }, 'circuit breaker open; post_receive hook skipped');
        return null;
      }
      return fail(deps, log, hook, p, job, lastAttempt, `circuit breaker open for plugin ${hook.plugin_id}`);
    case 'timeout':
      return fail(deps, log, hook, p, job, lastAttempt, record.error ?? `timeout after ${hook.timeout_ms} ms`);
    case 'error':
    default:
      return fail(deps, log, hook, p, job, lastAttempt, record.error ?? 'plugin error');
  }
}

async function fail(deps: PostReceiveWorkerDeps, log: Logger, hook: StoredHook, p: PostReceiveJob, job: Job<PostReceiveJob>, lastAttempt: boolean, error: string): Promise<never> {
  const text = `hook ${hook.id} (plugin ${hook.plugin_id}): ${error}`.slice(0, 1000);
  if (lastAttempt) {
    log.error({ plugin_id: hook.plugin_id, attempts: job.attempts, err: error }, 'post_receive hook failed permanently');
    await deps.plugins
      ?.log({ pluginId: hook.plugin_id, tenantId: p.tenant_id, level: 'error', hookId: hook.id, messageId: p.message_id, message: `post_receive permanently failed after ${job.attempts} attempts: ${error}` })
      .catch(() => {});
    await deps.events
      ?.publish('plugin.error', p.tenant_id, { plugin_id: hook.plugin_id, hook_id: hook.id, message_id: p.message_id, error: error.slice(0, 1000) })
      .catch((err) => log.warn({ err: errorText(err) }, 'plugin.error event not published'));
  } else {
    log.warn({ plugin_id: hook.plugin_id, attempts: job.attempts, max_attempts: job.maxAttempts, err: error }, 'post_receive hook failed; will retry');
  }
  throw new PostReceiveAttemptError(text);
}

async function applyResult(deps: PostReceiveWorkerDeps, log: Logger, hook: StoredHook, p: PostReceiveJob, result: AppliedResult): Promise<AppliedWrites | null> {
  const r = result.response;
  if (r.action === 'reject' || r.action === 'tempfail') {
    // The message was accepted with 250 before this hook ran: there is nobody to refuse it to.
    log.info({ plugin_id: result.pluginId, action: r.action }, `post_receive plugin answered ${r.action}; meaningless after delivery, ignored`);
  }
  const quarantine = r.action === 'quarantine';
  const write = {
    tags: r.tags,
    flags: r.flags,
    folder: r.folder,
    metadata: r.metadata,
    quarantine,
  };
  if (!quarantine && !r.folder && !(r.tags?.length) && !(r.flags?.length) && !(r.metadata && Object.keys(r.metadata).length)) return null;
  try {
    const applied = await applyPluginWrites(deps, {
      tenantId: p.tenant_id,
      messageId: p.message_id,
      pluginId: result.pluginId,
      write,
      quarantineFolder: deps.quarantineFolder(),
    });
    log.info({ plugin_id: result.pluginId, action: r.action, tags: applied.tags, flags: applied.flags, moved_to: applied.movedTo, metadata: applied.metadata !== null }, 'post_receive result applied');
    return applied;
  } catch (err) {
    if (!(err instanceof ApplyError)) throw err;
    // The plugin's answer cannot be applied (unknown folder, bad keyword, message gone): retrying gives the same.
    log.warn({ plugin_id: result.pluginId, err: err.message, code: err.code }, 'post_receive result not applied');
    await deps.plugins
      ?.log({ pluginId: result.pluginId, tenantId: p.tenant_id, level: 'warn', hookId: hook.id, messageId: p.message_id, message: `post_receive result not applied: ${err.message}` })
      .catch(() => {});
    return null;
  }
}

// ── Inspection ──────────────────────────────────────────────────────────────────────────────────

export type HookJobStatus = 'pending' | 'retrying' | 'running' | 'succeeded' | 'permanent-failed';

export interface HookJobInfo {
  job_id: string;
  hook_id: string;
  message_id: string;
  tenant_id: string;
  status: HookJobStatus;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  run_at: number;
  finished_at: number | null;
}

/** Jobs looked at per listHookJobs call: the queue filters only by queue and status, so we page and filter here. */
export const HOOK_JOBS_SCAN_LIMIT = 10_000;
const PAGE = 1000;

function statusOf(job: Job): HookJobStatus {
  switch (job.status) {
    case 'running':
      return 'running';
    case 'done':
      return 'succeeded';
    case 'dead':
      return 'permanent-failed';
    default:
      return job.attempts > 0 ? 'retrying' : 'pending';
  }
}

/**
 * post_receive jobs, newest first, optionally of one hook. Looks at HOOK_JOBS_SCAN_LIMIT jobs at
 * most, in queue order (done jobs are purged by the queue's maintenance, so the table stays small).
 */
export async function listHookJobs(queue: Queue, opts: { hookId?: string; limit: number }): Promise<HookJobInfo[]> {
  const limit = Math.max(1, Math.min(Math.floor(opts.limit) || 1, 1000));
  const found: Job[] = [];
  let cursor: string | undefined;
  let scanned = 0;
  // The queue lists oldest first; keep a window of the newest matches while paging.
  do {
    const page = await queue.list({ queue: POST_RECEIVE_QUEUE, limit: PAGE, cursor });
    scanned += page.jobs.length;
    for (const j of page.jobs) {
      const payload = j.payload as Partial<PostReceiveJob> | null;
      if (opts.hookId !== undefined && payload?.hook_id !== opts.hookId) continue;
      found.push(j);
      if (found.length > limit) found.shift();
    }
    cursor = page.cursor ?? undefined;
  } while (cursor && scanned < HOOK_JOBS_SCAN_LIMIT);
  return found.reverse().map((j) => {
    const payload = (j.payload ?? {}) as Partial<PostReceiveJob>;
    return {
      job_id: j.id,
      hook_id: String(payload.hook_id ?? ''),
      message_id: String(payload.message_id ?? ''),
      tenant_id: String(payload.tenant_id ?? ''),
      status: statusOf(j),
      attempts: j.attempts,
      max_attempts: j.maxAttempts,
      last_error: j.lastError,
      run_at: j.runAt,
      finished_at: j.finishedAt,
    };
  });
}
