/**
 * The listing and marking commands of the TRANSACTION state (RFC 1939 §5, §7): STAT, LIST, UIDL,
 * DELE, RSET, NOOP. They work on the session's maildrop snapshot only (maildrop.ts) and touch no
 * service: deletions are applied at QUIT (update.ts). RETR and TOP are in retrieve.ts.
 *
 * Messages marked deleted are invisible: not counted by STAT, not listed by LIST/UIDL, and every
 * command naming one answers `-ERR No such message` (RFC 1939 §5).
 */
import { REPLIES } from './replies.js';
import type { Pop3Account, SessionContext } from './session-context.js';

export function statCommand(ctx: SessionContext, account: Pop3Account): void {
  const drop = account.maildrop;
  ctx.reply(REPLIES.stat(drop.count, drop.octets));
}

/** LIST [msg]: the scan listing, "msg size" (RFC 1939 §5: the size in octets). */
export function listCommand(ctx: SessionContext, account: Pop3Account, msg: number | null): void {
  const drop = account.maildrop;
  if (msg !== null) {
    const m = drop.get(msg);
    return ctx.reply(m ? REPLIES.scanLine(m.msg, m.size) : REPLIES.NO_SUCH_MESSAGE);
  }
  ctx.replyLines(REPLIES.scanListing(drop.count, drop.octets), map(drop.live(), (m) => `${m.msg} ${m.size}`));
}

/** UIDL [msg] (RFC 1939 §7): "msg unique-id". */
export function uidlCommand(ctx: SessionContext, account: Pop3Account, msg: number | null): void {
  const drop = account.maildrop;
  if (msg !== null) {
    const m = drop.get(msg);
    return ctx.reply(m ? REPLIES.uidlLine(m.msg, drop.uniqueId(m)) : REPLIES.NO_SUCH_MESSAGE);
  }
  ctx.replyLines(REPLIES.UIDL_LISTING, map(drop.live(), (m) => `${m.msg} ${drop.uniqueId(m)}`));
}

/** DELE msg: only a mark; the message is removed in the UPDATE state. */
export function deleCommand(ctx: SessionContext, account: Pop3Account, msg: number): void {
  ctx.reply(account.maildrop.markDeleted(msg) ? REPLIES.deleted(msg) : REPLIES.NO_SUCH_MESSAGE);
}

export function rsetCommand(ctx: SessionContext, account: Pop3Account): void {
  const drop = account.maildrop;
  drop.reset();
  ctx.reply(REPLIES.reset(drop.count, drop.octets));
}

function* map<T, U>(items: Iterable<T>, f: (item: T) => U): IterableIterator<U> {
  for (const item of items) yield f(item);
}
