/**
 * The places where hooks (SPEC §6) join the inbound pipeline. The composition root fills them
 * from the hook manager (hook-adapters.ts); each slot costs nothing when no hook is active.
 *
 *  - `pre_receive` (SPEC §3.1 step 4): after email authentication and the spam check, before
 *    commit; may refuse the message (reject/tempfail), quarantine it, tag it.
 *  - `pre_delivery` (step 5): once per local mailbox; may pick the folder, tags and flags of that
 *    copy, drop that copy (`reject`, like a Sieve discard), or defer the whole message (`tempfail`).
 *  - `post_receive` (step 7): after commit, asynchronously through the queue. Its jobs are written
 *    in the commit transaction (`storeAndDeliver`'s `inTransaction`, as the outbound hand-off
 *    does), so a crash between commit and enqueue cannot lose them.
 */
import type { Kysely } from 'kysely';
import type { SmtpReply } from '../../protocols/smtp/replies.js';
import type { DB } from '../../store/db/types.js';
import type { DeliveryChoice, InboundMessage } from './message-context.js';

export type Rejection = { ok: false; reply: SmtpReply };

/** A pre_receive hook: nothing (allow) or a refusal. It may also set msg.choices / msg.pluginMetadata. */
export type PreReceiveHook = (msg: InboundMessage) => Promise<void | Rejection>;

/** A pre_delivery hook's answer for one copy: drop it (not delivered, logged). */
export interface DropCopy {
  drop: true;
  /** For the log line, e.g. `rejected by plugin com.example.filter`. */
  reason: string;
}

/**
 * A pre_delivery hook for one local mailbox: nothing (keep), where/how to file the copy, drop the
 * copy, or a refusal of the WHOLE message. SMTP has one reply per message after DATA (RFC 5321
 * §4.2.5: the reply to the end of data concerns the whole transaction; per-recipient answers
 * would need LMTP, RFC 2033), so a deferral of one copy can only defer all of them.
 */
export type PreDeliveryHook = (
  msg: InboundMessage,
  target: { tenantId: string; mailboxId: string; address: string },
) => Promise<void | DeliveryChoice | DropCopy | Rejection>;

/** What the commit stage tells the post_receive slot about one tenant's stored copy. */
export interface PostReceiveCommit {
  tenantId: string;
  messageId: string;
  /** Mailboxes of the tenant that received a copy (not the Sent copy of a submission). */
  mailboxIds: string[];
  /** The RCPT addresses of the tenant that resolved to those mailboxes. */
  recipients: string[];
}

/**
 * Enqueues the post_receive jobs of one tenant's copy inside the commit transaction `trx`.
 * Returns how many jobs it enqueued (the commit stage wakes the workers after the commit when > 0).
 */
export type PostReceiveEnqueue = (trx: Kysely<DB>, copy: PostReceiveCommit) => Promise<number>;

/**
 * The post_receive slot, in two steps. Called BEFORE the commit transactions with the tenants that
 * will get a copy, it looks up the active hooks (and evaluates their filters) and returns null when
 * none applies (the common case costs one cached lookup), else the function the commit stage calls
 * inside each tenant's transaction. The lookup cannot happen inside the transaction: on SQLite the
 * transaction holds the database's only connection, so a read through the hook store would wait
 * for itself.
 */
export type PostReceiveEnqueuer = (msg: InboundMessage, tenantIds: readonly string[]) => Promise<PostReceiveEnqueue | null>;

/** Runs pre_receive hooks in order; the first refusal stops the chain (SPEC §6 aggregation). */
export async function runPreReceive(hooks: readonly PreReceiveHook[], msg: InboundMessage): Promise<void | Rejection> {
  for (const hook of hooks) {
    const r = await hook(msg);
    if (r && r.ok === false) return r;
  }
}

function isRejection(r: unknown): r is Rejection {
  return typeof r === 'object' && r !== null && (r as { ok?: unknown }).ok === false;
}

function isDrop(r: unknown): r is DropCopy {
  return typeof r === 'object' && r !== null && (r as { drop?: unknown }).drop === true;
}

function union(a: string[] | undefined, b: string[] | undefined): string[] | undefined {
  if (!a?.length) return b;
  if (!b?.length) return a;
  const seen = new Set(a.map((x) => x.toLowerCase()));
  return [...a, ...b.filter((x) => !seen.has(x.toLowerCase()))];
}

/**
 * Runs pre_delivery hooks for every local mailbox (once per mailbox, even when several RCPTs reach
 * it). Later hooks refine earlier choices: a later folder wins, tags and flags add up. A dropped
 * copy is remembered in msg.dropped and asks no further hook; a refusal stops everything.
 */
export async function runPreDelivery(hooks: readonly PreDeliveryHook[], msg: InboundMessage): Promise<void | Rejection> {
  if (hooks.length === 0) return;
  const seen = new Set<string>();
  for (const r of msg.envelope.recipients) {
    if (!r.tenantId || !r.mailboxIds) continue;
    for (const mailboxId of r.mailboxIds) {
      if (seen.has(mailboxId)) continue;
      seen.add(mailboxId);
      for (const hook of hooks) {
        const answer = await hook(msg, { tenantId: r.tenantId, mailboxId, address: r.address });
        if (!answer) continue;
        if (isRejection(answer)) return answer;
        if (isDrop(answer)) {
          msg.dropped.set(mailboxId, answer.reason);
          break;
        }
        const old = msg.choices.get(mailboxId);
        msg.choices.set(mailboxId, {
          folderName: answer.folderName ?? old?.folderName,
          flags: union(old?.flags, answer.flags),
          keywords: union(old?.keywords, answer.keywords),
        });
      }
    }
  }
}
