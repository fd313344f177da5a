/**
 * The `pre_send` hook slot (SPEC §6, §3.2 step 2) and its adapter over the hook manager.
 *
 * A submission runs the chain twice (stage `outbound-policy`): phase `before` runs only the hooks
 * with `requires_before_policy: true`, ahead of the outbound policy engine; phase `after` runs the
 * others once the policy has let the message through (SPEC §2 "outbound order": rate limiter →
 * policy engine → pre_send plugins → verdict). The hook manager picks the hooks of a phase
 * (ChainInput.policyPhase).
 *
 * The chain runs for the sender's tenant only: the message is the sender's, so its tenant's hooks
 * (and the global ones) see the whole envelope. Before commit nothing is stored: the payload's
 * `message_id` is the queue id and `callback_url` is null, as for pre_receive.
 *
 * Actions: `reject` / `tempfail` refuse the submission with the plugin's (validated) reply or the
 * defaults 550 5.7.1 / 451 4.7.1. `tag`, `quarantine` and `allow` let it go: an outgoing message
 * has no recipient folder to quarantine into, and its Sent copy is the sender's own record, so
 * only the plugins' metadata is kept (stored with the sender tenant's message row, SPEC §7
 * namespace per plugin).
 */
import type { Logger } from 'pino';
import { buildPayloadSource, filterSubjectOf } from '../../hooks/payload.js';
import type { HookRunner, HookSource } from '../../hooks/runtime-types.js';
import { addPluginMetadata, rejectionOf } from './hook-adapters.js';
import type { Rejection } from './hook-slots.js';
import { prependedText, type InboundMessage } from './message-context.js';
import { storedBytesOf } from './stored-bytes.js';

export type PreSendPhase = 'before' | 'after';

/** One phase of the pre_send chain for a submitted message: nothing (go on) or a refusal. */
export type PreSendHook = (msg: InboundMessage, phase: PreSendPhase) => Promise<void | Rejection>;

export function preSendHookFrom(runner: HookRunner, hooks: HookSource, opts: { logger: Logger }): PreSendHook {
  const log = opts.logger;
  return async (msg, phase) => {
    const user = msg.session.user;
    if (msg.session.listener !== 'submission' || !user) return;
    const tenantIds = [user.tenantId];
    // One cached lookup when no hook of this phase applies (the common case).
    const active = (await hooks.active('pre_send', tenantIds)).filter((h) => h.requires_before_policy === (phase === 'before'));
    if (active.length === 0) return;
    const raw = await storedBytesOf(msg, prependedText(msg));
    const from = msg.envelope.mailFrom ?? '';
    const to = msg.envelope.recipients.map((r) => r.address);
    const outcome = await runner.runChain({
      type: 'pre_send',
      tenantIds,
      subject: filterSubjectOf({ envelope: { from, to }, raw }),
      payload: async (tenantId) =>
        buildPayloadSource({
          hookType: 'pre_send',
          messageId: msg.queueId,
          tenantId,
          mailbox: from || null,
          envelope: { from, to },
          raw,
          receivedAt: msg.receivedAt,
          clientIp: msg.session.remoteAddress || null,
          callbackUrl: null,
        }),
      messageId: msg.queueId,
      policyPhase: phase,
    });
    const action = outcome.decision.action;
    log.info(
      {
        queue_id: msg.queueId,
        hook_type: 'pre_send',
        phase,
        action,
        decided_by: outcome.decision.decidedBy ?? undefined,
        calls: outcome.calls.map((c) => ({ hook_id: c.hookId, plugin_id: c.pluginId, outcome: c.outcome, action: c.action, ms: Math.round(c.durationMs) })),
      },
      `pre_send hooks (${phase} policy): ${action}`,
    );
    if (action === 'reject' || action === 'tempfail') return rejectionOf(outcome.decision, action);
    addPluginMetadata(msg, log, user.tenantId, outcome.decision.metadata);
  };
}
