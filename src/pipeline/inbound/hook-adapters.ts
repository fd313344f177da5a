/**
 * The hook manager (src/hooks, the HookRunner contract) as the pipeline's hook slots
 * (hook-slots.ts): SPEC §3.1 steps 4, 5 and 7, SPEC §6.
 *
 * Every adapter first asks the hook source whether any hook of its type is active for the tenants
 * concerned and returns at once when none is: a server without hooks pays one cached lookup per
 * message, not a parse of the message.
 *
 * Tenant isolation (SPEC §9): a message for several tenants runs ONE chain (one refusal can only
 * refuse the whole message), but a tenant's hook sees only that tenant's recipients in the payload
 * (`payload(tenantId)`), and the tags, flags, quarantine and metadata of a tenant's hook apply only
 * to that tenant's copies: each tenant's copies get the aggregate of the global hooks and its own.
 *
 * Before commit nothing is stored yet: the payload's `message_id` is the transaction's queue id and
 * its `callback_url` is null.
 */
import type { Logger } from 'pino';
import type { MailboxStateService } from '../../core/mailbox-state/service.js';
import { tenantScope } from '../../core/scope.js';
import { aggregate, type AggregateDecision } from '../../hooks/aggregate.js';
import { quarantineFolderOf, validFlagsOnly, validKeywordsOnly } from '../../hooks/apply.js';
import { compileFilter, type FilterPredicate } from '../../hooks/filter.js';
import { MAX_PLUGIN_METADATA_BYTES } from '../../hooks/metadata-store.js';
import { buildPayloadSource, filterSubjectOf } from '../../hooks/payload.js';
import { enqueuePostReceive } from '../../hooks/post-receive.js';
import type { AppliedResult, ChainInput, ChainOutcome, HookRunner, HookSource, StoredHook } from '../../hooks/runtime-types.js';
import { DEFAULT_SMTP_REPLIES } from '../../hooks/smtp-reply.js';
import type { HookType } from '../../hooks/types.js';
import type { Queue } from '../../queue/queue.js';
import type { SmtpReply } from '../../protocols/smtp/replies.js';
import type { PostReceiveEnqueuer, PreDeliveryHook, PreReceiveHook, Rejection } from './hook-slots.js';
import { prependedText, type DeliveryChoice, type InboundMessage } from './message-context.js';
import { storedBytesOf } from './stored-bytes.js';

export interface HookAdapterOptions {
  /** Resolves quarantine folders (and nothing else: the commit stage writes). */
  mailboxState: MailboxStateService;
  /** Config `hooks.quarantine_folder`, read per message (reloadable). */
  quarantineFolder: () => string;
  logger: Logger;
}

// ── Message views shared by the adapters ───────────────────────────────────────────────────────

/**
 * The message as it will be stored: our prepended fields (Received, Authentication-Results, spam
 * fields, which plugins want to read) and the received bytes minus the forged fields the header
 * checks dropped; read once per message whatever the number of hooks and mailboxes.
 */
function storedBytesNow(msg: InboundMessage): Promise<Buffer> {
  return storedBytesOf(msg, prependedText(msg));
}

/** Distinct tenants of the local recipients whose copies were not dropped, in first-seen order. */
export function recipientTenants(msg: InboundMessage): string[] {
  const out: string[] = [];
  for (const r of msg.envelope.recipients) {
    if (!r.tenantId || out.includes(r.tenantId)) continue;
    if (r.mailboxIds && r.mailboxIds.length > 0 && r.mailboxIds.every((id) => msg.dropped.has(id))) continue;
    out.push(r.tenantId);
  }
  return out;
}

/** RCPT addresses a payload for `tenantId` may show: the tenant's own, or all of them for a global hook. */
export function recipientsFor(msg: InboundMessage, tenantId: string | null): string[] {
  return msg.envelope.recipients.filter((r) => tenantId === null || r.tenantId === tenantId).map((r) => r.address);
}

/** Local mailbox ids of a tenant (each once), skipping dropped copies. */
function mailboxesOf(msg: InboundMessage, tenantId: string): string[] {
  const out: string[] = [];
  for (const r of msg.envelope.recipients) {
    if (r.tenantId !== tenantId) continue;
    for (const id of r.mailboxIds ?? []) if (!out.includes(id) && !msg.dropped.has(id)) out.push(id);
  }
  return out;
}

async function chainInput(msg: InboundMessage, type: HookType, tenantIds: readonly string[], view: { subjectRecipients: string[]; mailbox: string | null; to?: string[] }): Promise<ChainInput> {
  const raw = await storedBytesNow(msg);
  const from = msg.envelope.mailFrom ?? '';
  return {
    type,
    tenantIds,
    subject: filterSubjectOf({ envelope: { from, to: view.subjectRecipients }, raw }),
    payload: async (tenantId) =>
      buildPayloadSource({
        hookType: type,
        messageId: msg.queueId,
        tenantId,
        mailbox: view.mailbox,
        envelope: { from, to: view.to ?? recipientsFor(msg, tenantId) },
        raw,
        receivedAt: msg.receivedAt,
        clientIp: msg.session.remoteAddress || null,
        callbackUrl: null,
      }),
    messageId: msg.queueId,
  };
}

// ── Turning an outcome into choices ────────────────────────────────────────────────────────────

/** The hook SMTP reply in the SMTP layer's shape (`text` → `message`). */
export function rejectionOf(decision: AggregateDecision, action: 'reject' | 'tempfail'): Rejection {
  const smtp = decision.smtp ?? DEFAULT_SMTP_REPLIES[action];
  const reply: SmtpReply = { code: smtp.code, enhanced: smtp.enhanced, message: smtp.text };
  return { ok: false, reply };
}

/** The results that concern a tenant's copies: global hooks and the tenant's own. */
function resultsFor(results: readonly AppliedResult[], tenantId: string): AppliedResult[] {
  return results.filter((r) => r.hook.tenant_id === null || r.hook.tenant_id === tenantId);
}

/** What a tenant's copies get from a chain's results. */
interface TenantEffect {
  decision: AggregateDecision;
  keywords: string[];
  flags: string[];
  /** The last explicit (non-quarantine) folder a result named, later hooks winning. */
  folder?: string;
}

function effectOf(results: readonly AppliedResult[], log: Logger, tenantId: string): TenantEffect | null {
  if (results.length === 0) return null;
  const decision = aggregate(results.map((r) => ({ pluginId: r.pluginId, response: r.response })));
  // Plugin answers end up as IMAP keywords/flags of stored entries: an invalid one is left out
  // (logged) instead of failing the commit of the whole message.
  const k = validKeywordsOnly(decision.tags);
  const f = validFlagsOnly(decision.flags);
  if (k.refused.length || f.refused.length) log.warn({ tenant_id: tenantId, refused_tags: k.refused, refused_flags: f.refused }, 'hook tags/flags that cannot be stored were ignored');
  let folder: string | undefined;
  for (const r of results) if (r.response.folder && r.response.action !== 'quarantine') folder = r.response.folder;
  return { decision, keywords: k.keywords, flags: f.flags, folder };
}

function union(a: string[] | undefined, b: string[]): string[] | undefined {
  if (b.length === 0) return a;
  const seen = new Set((a ?? []).map((x) => x.toLowerCase()));
  return [...(a ?? []), ...b.filter((x) => !seen.has(x.toLowerCase()))];
}

/** The copy's choice after an effect; the quarantine folder is resolved in the mailbox (named, else \Junk). */
async function choiceAfter(opts: HookAdapterOptions, log: Logger, tenantId: string, mailboxId: string, effect: TenantEffect, old: DeliveryChoice | undefined): Promise<DeliveryChoice> {
  const choice: DeliveryChoice = { ...old };
  if (effect.decision.action === 'quarantine') {
    const wanted = effect.decision.folder ?? opts.quarantineFolder();
    const folder = await quarantineFolderOf(opts.mailboxState, tenantScope(tenantId), mailboxId, wanted);
    if (folder) choice.folderName = folder.name;
    else log.warn({ tenant_id: tenantId, mailbox_id: mailboxId, folder: wanted }, 'quarantine folder missing (and no \\Junk folder): copy filed as usual');
  } else if (effect.folder) {
    // An unknown name falls back to INBOX in mailbox-state (implicit keep).
    choice.folderName = effect.folder;
  }
  const keywords = union(choice.keywords, effect.keywords);
  const flags = union(choice.flags, effect.flags);
  if (keywords) choice.keywords = keywords;
  if (flags) choice.flags = flags;
  return choice;
}

/**
 * Metadata per plugin for the tenant, kept on the message until its commit writes it; each object
 * bounded like post-commit writes (SPEC §7). Used by pre_receive, pre_delivery and pre_send.
 */
export function addPluginMetadata(msg: InboundMessage, log: Logger, tenantId: string, metadata: AggregateDecision['metadata']): void {
  for (const [pluginId, data] of Object.entries(metadata)) {
    if (Object.keys(data).length === 0) continue;
    const perTenant = msg.pluginMetadata.get(tenantId) ?? {};
    const merged = { ...(perTenant[pluginId] ?? {}), ...data };
    const bytes = Buffer.byteLength(JSON.stringify(merged));
    if (bytes > MAX_PLUGIN_METADATA_BYTES) {
      log.warn({ tenant_id: tenantId, plugin_id: pluginId, bytes }, 'plugin metadata too large: ignored');
      continue;
    }
    perTenant[pluginId] = merged;
    msg.pluginMetadata.set(tenantId, perTenant);
  }
}

function logCalls(log: Logger, msg: InboundMessage, type: HookType, outcome: ChainOutcome): void {
  log.info(
    {
      queue_id: msg.queueId,
      hook_type: type,
      action: outcome.decision.action,
      decided_by: outcome.decision.decidedBy ?? undefined,
      calls: outcome.calls.map((c) => ({ hook_id: c.hookId, plugin_id: c.pluginId, outcome: c.outcome, action: c.action, ms: Math.round(c.durationMs) })),
      smtp_fallbacks: outcome.decision.smtpFallbacks,
    },
    `${type} hooks: ${outcome.decision.action}`,
  );
}

// ── The adapters ───────────────────────────────────────────────────────────────────────────────

/** pre_receive (SPEC §3.1 step 4): one chain for the message. */
export function preReceiveHookFrom(runner: HookRunner, hooks: HookSource, opts: HookAdapterOptions): PreReceiveHook {
  const log = opts.logger;
  return async (msg) => {
    const tenantIds = recipientTenants(msg);
    if (tenantIds.length === 0) return;
    if ((await hooks.active('pre_receive', tenantIds)).length === 0) return;
    const outcome = await runner.runChain(await chainInput(msg, 'pre_receive', tenantIds, { subjectRecipients: recipientsFor(msg, null), mailbox: null }));
    logCalls(log, msg, 'pre_receive', outcome);
    const action = outcome.decision.action;
    if (action === 'reject' || action === 'tempfail') return rejectionOf(outcome.decision, action);
    for (const tenantId of tenantIds) {
      const effect = effectOf(resultsFor(outcome.results, tenantId), log, tenantId);
      if (!effect) continue;
      addPluginMetadata(msg, log, tenantId, effect.decision.metadata);
      for (const mailboxId of mailboxesOf(msg, tenantId)) {
        msg.choices.set(mailboxId, await choiceAfter(opts, log, tenantId, mailboxId, effect, msg.choices.get(mailboxId)));
      }
    }
  };
}

/**
 * pre_delivery (SPEC §3.1 step 5): one chain per local mailbox, with that mailbox's tenant only.
 * `reject` drops this copy (like a Sieve discard; the others are delivered); `tempfail` defers
 * the whole message — after DATA, SMTP has one reply for all recipients (RFC 5321 §4.2.5), so a
 * per-recipient deferral is impossible and deferring all is the only answer that loses nothing.
 */
export function preDeliveryHookFrom(runner: HookRunner, hooks: HookSource, opts: HookAdapterOptions): PreDeliveryHook {
  const log = opts.logger;
  return async (msg, target) => {
    const tenantIds = [target.tenantId];
    if ((await hooks.active('pre_delivery', tenantIds)).length === 0) return;
    const to = recipientsFor(msg, target.tenantId);
    const outcome = await runner.runChain(await chainInput(msg, 'pre_delivery', tenantIds, { subjectRecipients: [target.address], mailbox: target.address, to }));
    logCalls(log, msg, 'pre_delivery', outcome);
    const action = outcome.decision.action;
    if (action === 'tempfail') return rejectionOf(outcome.decision, 'tempfail');
    if (action === 'reject') return { drop: true, reason: `rejected by plugin ${outcome.decision.decidedBy ?? '(breaker/failure policy)'}` };
    const effect = effectOf(resultsFor(outcome.results, target.tenantId), log, target.tenantId);
    if (!effect) return;
    addPluginMetadata(msg, log, target.tenantId, effect.decision.metadata);
    const old = msg.choices.get(target.mailboxId);
    const next = await choiceAfter(opts, log, target.tenantId, target.mailboxId, effect, old);
    // runPreDelivery merges this into msg.choices (tags and flags add up).
    return { folderName: next.folderName, keywords: next.keywords, flags: next.flags };
  };
}

const filterCache = new WeakMap<StoredHook, FilterPredicate>();

function filterOf(hook: StoredHook, log: Logger): FilterPredicate {
  let f = filterCache.get(hook);
  if (!f) {
    try {
      f = compileFilter(hook.filter);
    } catch (err) {
      // Stored hooks were validated; should one still not compile, run it rather than skip it silently.
      log.error({ hook_id: hook.id, err: (err as Error).message }, 'hook filter does not compile; running the hook unfiltered');
      f = () => true;
    }
    filterCache.set(hook, f);
  }
  return f;
}

/**
 * post_receive (SPEC §3.1 step 7): jobs enqueued inside each tenant's commit transaction, one per
 * hook whose filter matches that tenant's view of the message. The hook lookup and the filters
 * run before the transactions (PostReceiveEnqueuer).
 */
export function postReceiveEnqueuerFrom(queue: Queue, hooks: HookSource, opts: { logger: Logger }): PostReceiveEnqueuer {
  const log = opts.logger;
  return async (msg, tenantIds) => {
    if (tenantIds.length === 0) return null;
    const active = await hooks.active('post_receive', tenantIds);
    if (active.length === 0) return null;
    const raw = await storedBytesNow(msg);
    const from = msg.envelope.mailFrom ?? '';
    const perTenant = new Map<string, StoredHook[]>();
    for (const tenantId of tenantIds) {
      const to = recipientsFor(msg, tenantId);
      const subject = filterSubjectOf({ envelope: { from, to }, raw });
      const matching = active.filter((h) => (h.tenant_id === null || h.tenant_id === tenantId) && filterOf(h, log)(subject));
      if (matching.length) perTenant.set(tenantId, matching);
    }
    if (perTenant.size === 0) return null;
    return async (trx, copy) => {
      const list = perTenant.get(copy.tenantId);
      if (!list) return 0;
      const ids = await enqueuePostReceive(queue, trx, list, {
        tenant_id: copy.tenantId,
        message_id: copy.messageId,
        mailbox_ids: copy.mailboxIds,
        queue_id: msg.queueId,
        envelope: { from, to: copy.recipients },
        received_at: msg.receivedAt.getTime(),
        client_ip: msg.session.remoteAddress || null,
      });
      return ids.length;
    };
  };
}
