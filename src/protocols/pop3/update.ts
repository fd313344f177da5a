/**
 * QUIT (RFC 1939 §6): in AUTHORIZATION it only signs off; in TRANSACTION the session enters the
 * UPDATE state and applies its marks through the mailbox-state service, so IMAP sessions and the
 * API see the change (expunge events on the ChangeBus):
 *
 * 1. Messages marked deleted are removed in one transaction (`deleteMessages`: each entry gets its
 *    expunge MODSEQ and leaves the quota). One transaction means all or nothing: a failure answers
 *    `-ERR [SYS/TEMP]` and nothing was deleted (RFC 1939 §6 lets the server answer -ERR here); the
 *    client will see the messages again next time. Entries another session removed meanwhile are
 *    skipped, not an error.
 * 2. Retrieved messages that remain get \Seen in one batch, as Dovecot does for RETR. This is best
 *    effort: a failure is logged and the QUIT still succeeds, since the messages are safe either way.
 *
 * The connection closes afterwards in every case. A session that ends any other way (timeout,
 * connection lost, shutdown) never enters UPDATE and changes nothing (RFC 1939 §3).
 */
import { REPLIES } from './replies.js';
import type { SessionContext } from './session-context.js';

export async function quitCommand(ctx: SessionContext): Promise<void> {
  const account = ctx.account;
  if (!account) return ctx.end(REPLIES.SIGN_OFF);
  const { state } = ctx.deps.services;
  const drop = account.maildrop;
  const deleted = drop.deletedUids();
  if (deleted.length > 0) {
    try {
      await state.deleteMessages(account.scope, drop.folder.id, deleted);
    } catch (err) {
      ctx.log.error({ err, uids: deleted.length }, 'UPDATE failed: deleted messages not removed');
      return ctx.end(REPLIES.UPDATE_FAILED);
    }
  }
  const seen = drop.retrievedUids();
  if (seen.length > 0) {
    await state.setFlags(account.scope, drop.folder.id, seen, 'add', ['\\Seen']).catch((err: unknown) => {
      ctx.log.warn({ err, uids: seen.length }, 'could not set \\Seen on retrieved messages');
    });
  }
  ctx.log.info({ deleted: deleted.length, seen: seen.length }, 'maildrop updated');
  ctx.end(REPLIES.signOffWithMessages(drop.count));
}
