/**
 * The places where hooks (SPEC §6) join the inbound pipeline. The lists are empty for now; the
 * hooks issue fills them with executors (HTTP/script calls with timeouts and circuit breakers).
 *
 *  - `pre_receive` (SPEC §3.1 step 4): after email authentication and the spam check, before
 *    commit; may refuse the message (reject/tempfail) — the only hook that may add header fields.
 *  - `pre_delivery` (step 5): once per local mailbox, may pick the folder and flags.
 *  - `post_receive` (step 7): after commit, asynchronously through the queue. Its jobs belong in
 *    the commit transaction (`storeAndDeliver`'s `inTransaction`, as the outbound hand-off does),
 *    so a crash between commit and enqueue cannot lose them.
 */
import type { SmtpReply } from '../../protocols/smtp/replies.js';
import type { DeliveryChoice, InboundMessage } from './message-context.js';

export type Rejection = { ok: false; reply: SmtpReply };

/** A pre_receive hook: nothing (allow) or a refusal. */
export type PreReceiveHook = (msg: InboundMessage) => Promise<void | Rejection>;

/** A pre_delivery hook for one local mailbox: nothing (keep) or where/how to file it. */
export type PreDeliveryHook = (msg: InboundMessage, target: { tenantId: string; mailboxId: string; address: string }) => Promise<void | DeliveryChoice>;

/** Runs pre_receive hooks in order; the first refusal stops the chain (SPEC §6 aggregation). */
export async function runPreReceive(hooks: readonly PreReceiveHook[], msg: InboundMessage): Promise<void | Rejection> {
  for (const hook of hooks) {
    const r = await hook(msg);
    if (r && r.ok === false) return r;
  }
}

/** Runs pre_delivery hooks for every local mailbox; later hooks refine earlier choices. */
export async function runPreDelivery(hooks: readonly PreDeliveryHook[], msg: InboundMessage): Promise<void> {
  if (hooks.length === 0) return;
  for (const r of msg.envelope.recipients) {
    if (!r.tenantId || !r.mailboxIds) continue;
    for (const mailboxId of r.mailboxIds) {
      for (const hook of hooks) {
        const choice = await hook(msg, { tenantId: r.tenantId, mailboxId, address: r.address });
        if (choice) msg.choices.set(mailboxId, { ...msg.choices.get(mailboxId), ...choice });
      }
    }
  }
}
