/**
 * Stage `commit` (SPEC §3.1 step 6, §3.2 step 3): makes the message durable, and only then does
 * the pipeline answer `250`.
 *
 *  1. The stored bytes (our prepended fields + the message as received) go to the blob store
 *     ONCE, whatever the number of recipients and tenants, while the MIME structure parser reads
 *     the same bytes (so its offsets index the stored blob, which IMAP will read).
 *  2. Per tenant, one transaction (mailbox-state `storeAndDeliver`): the tenant's message row and
 *     one folder entry per recipient mailbox (INBOX, Junk, or a pre_delivery hook's folder); for
 *     a submission also the Sent copy of the sender and the `outbound` job for remote recipients.
 *
 * Failure rules ("nothing half-stored"):
 *  - blob store error → nothing written; 451 4.3.0.
 *  - database error before any tenant committed → the blob is deleted (best effort; if that fails
 *    too it is an orphan that `mairust db check --fix` removes); 451 4.3.0. Never a row without
 *    its blob: rows are written only after the blob is durable.
 *  - database error after another tenant committed (a message for several tenants): 451 4.3.0
 *    and the committed tenant keeps its copy, so the client's retry gives it a duplicate. RFC 5321
 *    §6.1 prefers a duplicate to a loss; one transaction over several tenants would break the
 *    per-tenant lock order of mailbox-state (db.ts) and is not worth it for this rare case.
 *
 * Hooks (SPEC §6): copies a pre_delivery hook dropped are not planned (like a Sieve discard; when
 * every copy was dropped the message is accepted and nothing is stored). In each tenant's
 * transaction the metadata pre_receive plugins wrote for the tenant is stored with the message
 * row, and the tenant's post_receive jobs are enqueued (so they exist exactly when the message
 * does); the post_receive workers are woken after the commit.
 *
 * Quota at commit (the RCPT-time check can be overtaken by concurrent deliveries or a message
 * larger than its declared SIZE): mailboxes over quota are skipped and the others receive the
 * message. Only when no recipient can take it at all is the whole message refused with
 * 452 4.2.2, so the client retries later. A per-recipient answer after DATA would need LMTP
 * (RFC 2033 §4.2); with SMTP the alternatives are refusing everyone (and duplicating for the
 * others on retry) or accepting — we accept, log every skipped mailbox, and leave the bounce
 * (an RFC 3464 DSN to the sender) to the outbound/DSN work.
 */
import type { Kysely } from 'kysely';
import { extractMessageMeta } from '../../mail/extract.js';
import type { DB } from '../../store/db/types.js';
import { structureTee } from '../../mail/mime/index.js';
import { QuotaExceededError } from '../../core/mailbox-state/errors.js';
import type { DeliveryTarget } from '../../core/mailbox-state/types.js';
import { tenantScope } from '../../core/scope.js';
import { REPLIES } from '../../protocols/smtp/replies.js';
import { newBlobKey, type PutResult } from '../../store/blob/blob-store.js';
import type { InboundPipelineDeps } from './deps.js';
import type { Rejection } from './hook-slots.js';
import { prependedText, type CommitOutcome, type InboundMessage } from './message-context.js';
import { enqueueOutbound, wakeOutbound } from './outbound-handoff.js';
import { PluginMetadataTooLargeError, writePluginMetadataIn } from '../../hooks/metadata-store.js';
import { wakePostReceive } from '../../hooks/post-receive.js';
import { sentMailboxFor } from './sender.js';
import type { InboundStage } from './stages.js';
import { storedChunks, storedSize } from './stored-bytes.js';

interface PlannedTarget {
  kind: 'recipient' | 'sent';
  mailboxId: string;
  target: DeliveryTarget;
}

interface TenantPlan {
  tenantId: string;
  targets: PlannedTarget[];
  /** The submission's outbound job lives on this tenant's row (it needs a row even without targets). */
  outbound: boolean;
}

export function commitStage(deps: InboundPipelineDeps): InboundStage {
  return {
    name: 'commit',
    async run(msg) {
      const r = await commitMessage(deps, msg);
      if ('ok' in r) return r;
      msg.committed = r;
    },
  };
}

const SEEN = '\\Seen';

/** Local targets per tenant: one copy per mailbox, even when several RCPTs reach it (alias + own address). */
async function planTargets(deps: InboundPipelineDeps, msg: InboundMessage): Promise<Map<string, TenantPlan>> {
  const plans = new Map<string, TenantPlan>();
  const planOf = (tenantId: string) => {
    let p = plans.get(tenantId);
    if (!p) plans.set(tenantId, (p = { tenantId, targets: [], outbound: false }));
    return p;
  };
  const seen = new Set<string>();
  for (const r of msg.envelope.recipients) {
    if (!r.tenantId || !r.mailboxIds) continue;
    for (const mailboxId of r.mailboxIds) {
      if (seen.has(mailboxId)) continue;
      seen.add(mailboxId);
      if (msg.dropped.has(mailboxId)) {
        deps.logger.info({ queue_id: msg.queueId, mailbox_id: mailboxId, reason: msg.dropped.get(mailboxId) }, 'copy dropped by a pre_delivery hook: not delivered');
        continue;
      }
      const choice = msg.choices.get(mailboxId);
      const target: DeliveryTarget = { mailboxId, flags: choice?.flags, keywords: choice?.keywords };
      if (choice?.folderName) {
        // A hook's explicit choice wins over the Junk filing: hooks are the administrator's rules.
        target.folderName = choice.folderName;
      } else if (msg.junk) {
        const junk = await deps.mailboxState.findSpecialFolder(tenantScope(r.tenantId), mailboxId, '\\Junk');
        if (junk) target.folderId = junk.id;
      }
      planOf(r.tenantId).targets.push({ kind: 'recipient', mailboxId, target });
    }
  }
  const user = msg.session.listener === 'submission' ? msg.session.user : undefined;
  if (user) {
    const scope = tenantScope(user.tenantId);
    const mailboxId = await sentMailboxFor(deps.tenancy, user, msg.envelope.mailFrom);
    const sent = mailboxId ? await deps.mailboxState.findSpecialFolder(scope, mailboxId, '\\Sent') : null;
    if (mailboxId && sent) planOf(user.tenantId).targets.push({ kind: 'sent', mailboxId, target: { mailboxId, folderId: sent.id, flags: [SEEN] } });
    if (msg.envelope.recipients.some((r) => !r.tenantId)) planOf(user.tenantId).outbound = true;
  }
  return plans;
}

/** Removes what a QuotaExceededError names: one mailbox, or the whole tenant. Returns the removed targets. */
function dropOverQuota(plan: TenantPlan, err: QuotaExceededError): PlannedTarget[] {
  const hit = (t: PlannedTarget) => err.level === 'tenant' || t.mailboxId === err.id;
  let removed = plan.targets.filter(hit);
  // A mailbox the error names that is not in the plan cannot happen; drop everything rather than loop.
  if (removed.length === 0) removed = plan.targets;
  plan.targets = plan.targets.filter((t) => !removed.includes(t));
  return removed;
}

/** Early, non-locking check of every target with the real stored size (mailbox-state checks again at commit). */
async function precheckQuota(deps: InboundPipelineDeps, plan: TenantPlan, bytes: number): Promise<PlannedTarget[]> {
  const skipped: PlannedTarget[] = [];
  for (const t of [...plan.targets]) {
    if (!plan.targets.includes(t)) continue;
    try {
      await deps.mailboxState.checkQuota(tenantScope(plan.tenantId), t.mailboxId, bytes);
    } catch (err) {
      if (!(err instanceof QuotaExceededError)) throw err;
      skipped.push(...dropOverQuota(plan, err));
    }
  }
  return skipped;
}

/** Streams the stored bytes into the blob store once, parsing the MIME structure on the way. */
async function storeBlob(deps: InboundPipelineDeps, msg: InboundMessage, prefix: Buffer): Promise<{ blob: PutResult; structureJson?: string }> {
  const tee = structureTee(storedChunks(prefix, msg.source!, msg.dropRanges), (err) =>
    deps.logger.warn({ queue_id: msg.queueId, err }, 'MIME structure parser failed'),
  );
  const blob = await deps.blobs.put(newBlobKey('msg'), tee.chunks);
  return { blob, structureJson: tee.structureJson() };
}

export async function commitMessage(deps: InboundPipelineDeps, msg: InboundMessage): Promise<CommitOutcome | Rejection> {
  const source = msg.source!;
  const prefix = Buffer.from(prependedText(msg), 'utf8');
  const size = storedSize(prefix, source.size, msg.dropRanges);
  const remote = msg.envelope.recipients.filter((r) => !r.tenantId).map((r) => r.address);
  const plans = [...(await planTargets(deps, msg)).values()].sort((a, b) => (a.tenantId < b.tenantId ? -1 : 1));

  let overQuota = 0;
  const countSkipped = (skipped: PlannedTarget[]) => {
    const n = skipped.filter((t) => t.kind === 'recipient').length;
    overQuota += n;
    if (skipped.length) deps.logger.warn({ queue_id: msg.queueId, mailbox_ids: skipped.map((t) => t.mailboxId) }, 'mailbox over quota: copy not delivered');
  };
  for (const plan of plans) countSkipped(await precheckQuota(deps, plan, size));
  const recipientsLeft = () => plans.reduce((n, p) => n + p.targets.filter((t) => t.kind === 'recipient').length, 0) + remote.length;
  if (recipientsLeft() === 0) {
    // Every copy was dropped by pre_delivery hooks (a discard, not a failure): accept, store nothing.
    if (overQuota === 0 && msg.dropped.size > 0) return { messageIds: [], tenantIds: [], delivered: 0, overQuota: 0, outboundJobId: null, storedSize: size };
    return { ok: false, reply: REPLIES.MAILBOX_FULL };
  }

  // Looked up before the blob and any transaction (see PostReceiveEnqueuer); null when no post_receive hook applies.
  const tenantsWithCopies = plans.filter((p) => p.targets.some((t) => t.kind === 'recipient')).map((p) => p.tenantId);
  const postReceive = deps.hooks?.postReceive && tenantsWithCopies.length ? await deps.hooks.postReceive(msg, tenantsWithCopies) : null;
  const meta = await extractMessageMeta(await source.readAll(), deps.previewBytes ? { previewBytes: deps.previewBytes } : undefined);
  const { blob, structureJson } = await storeBlob(deps, msg, prefix);

  const outcome: CommitOutcome = { messageIds: [], tenantIds: [], delivered: 0, overQuota: 0, outboundJobId: null, storedSize: blob.size };
  const user = msg.session.user;
  let postReceiveJobs = 0;
  try {
    for (const plan of plans) {
      // Each quota refusal removes at least one target, so this ends after targets + 1 attempts.
      for (let attempt = 0; attempt <= plan.targets.length + 1; attempt++) {
        if (plan.targets.length === 0 && !plan.outbound) break;
        if (!plan.outbound && !plan.targets.some((t) => t.kind === 'recipient') && recipientsLeft() === 0) break;
        try {
          const stored = await deps.mailboxState.storeAndDeliver(tenantScope(plan.tenantId), {
            blob,
            meta,
            structureJson,
            receivedAt: msg.receivedAt.getTime(),
            authResults: msg.authResults ?? undefined,
            spamScore: msg.spam?.score,
            targets: plan.targets.map((t) => t.target),
            inTransaction: async (trx, messageId) => {
              if (plan.outbound && user) {
                outcome.outboundJobId = await enqueueOutbound(deps.queue, trx, {
                  tenantId: plan.tenantId,
                  messageId,
                  mailFrom: msg.envelope.mailFrom,
                  recipients: remote,
                  userId: user.id,
                  queueId: msg.queueId,
                  size: blob.size,
                  policy: msg.policyDecision,
                  delayMs: msg.outboundDelayMs,
                  // The retry schedule in force (deps.outbound.retry, a config getter) when the composition root provides it.
                  retry: deps.outbound?.retry?.(),
                });
              }
              const received = plan.targets.filter((t) => t.kind === 'recipient');
              await writeHookMetadata(deps, msg, trx, plan.tenantId, messageId);
              if (postReceive && received.length) {
                const mailboxIds = received.map((t) => t.mailboxId);
                const recipients = msg.envelope.recipients
                  .filter((r) => r.tenantId === plan.tenantId && r.mailboxIds?.some((id) => mailboxIds.includes(id)))
                  .map((r) => r.address);
                postReceiveJobs += await postReceive(trx, { tenantId: plan.tenantId, messageId, mailboxIds, recipients });
              }
              if (deps.events && received.length) {
                // In the commit transaction: the event exists exactly when the message does.
                await deps.events.publish('message.received', plan.tenantId, {
                  message_id: messageId,
                  queue_id: msg.queueId,
                  mailbox_ids: received.map((t) => t.mailboxId),
                  from: meta.from,
                  subject: meta.subject,
                  size: blob.size,
                  received_at: msg.receivedAt.toISOString(),
                }, trx);
              }
            },
          });
          outcome.messageIds.push(stored.messageId);
          outcome.tenantIds.push(plan.tenantId);
          outcome.delivered += plan.targets.filter((t) => t.kind === 'recipient').length;
          break;
        } catch (err) {
          if (!(err instanceof QuotaExceededError)) throw err;
          countSkipped(dropOverQuota(plan, err));
        }
      }
    }
  } catch (err) {
    if (outcome.messageIds.length === 0) await discardBlob(deps, blob.key, msg.queueId);
    throw err;
  }
  outcome.overQuota = overQuota;
  if (outcome.messageIds.length === 0 || (outcome.delivered === 0 && remote.length === 0)) {
    if (outcome.messageIds.length === 0) await discardBlob(deps, blob.key, msg.queueId);
    return { ok: false, reply: REPLIES.MAILBOX_FULL };
  }
  if (outcome.outboundJobId) wakeOutbound(deps.queue);
  if (postReceiveJobs > 0) wakePostReceive(deps.queue);
  return outcome;
}

/**
 * Metadata pre_receive plugins wrote for this tenant, stored with its message row (SPEC §7
 * namespace per plugin). The adapter already bounded it; an object still over the bound is logged
 * and left out rather than costing the message (mergedMetadata throws before any write, so the
 * transaction is intact).
 */
async function writeHookMetadata(deps: InboundPipelineDeps, msg: InboundMessage, trx: Kysely<DB>, tenantId: string, messageId: string): Promise<void> {
  const perPlugin = msg.pluginMetadata.get(tenantId);
  if (!perPlugin) return;
  for (const [pluginId, data] of Object.entries(perPlugin)) {
    if (Object.keys(data).length === 0) continue;
    try {
      await writePluginMetadataIn(trx, { tenantId, messageId, pluginId, data });
    } catch (err) {
      if (!(err instanceof PluginMetadataTooLargeError)) throw err;
      deps.logger.warn({ queue_id: msg.queueId, plugin_id: pluginId, err: err.message }, 'plugin metadata too large: not stored');
    }
  }
}

async function discardBlob(deps: InboundPipelineDeps, key: string, queueId: string): Promise<void> {
  await deps.blobs.delete(key).catch((err) => deps.logger.warn({ queue_id: queueId, key, err }, 'blob of a failed commit not removed (db check will find it)'));
}
