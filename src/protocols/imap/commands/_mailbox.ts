/**
 * Mailbox-name arguments and folder look-ups shared by the commands (not a command). Names are
 * decoded from modified UTF-7 unless the client enabled UTF-8 (RFC 9051 §5.1.3, RFC 6855 §3) and
 * INBOX is case-insensitive; a session only ever sees its own mailbox (SPEC §9), so every look-up
 * goes through `session.account`.
 */
import type { Folder } from '../../../core/mailbox-state/index.js';
import { asAstringBytes } from '../parser/args.js';
import { decodeMailboxName, encodeMailboxName } from '../parser/mailbox-name.js';
import type { ImapToken } from '../parser/types.js';
import type { Account, CommandContext } from '../session/types.js';

/** The hierarchy delimiter (RFC 9051 §5.1.1), the same as the mailbox-state service's. */
export const DELIMITER = '/';

/** The logged-in account; commands of the authenticated/selected states always have one. */
export function account(ctx: CommandContext): Account {
  const a = ctx.session.account;
  if (!a) throw new Error('no account in an authenticated IMAP state');
  return a;
}

/** A mailbox-name argument, decoded; a trailing delimiter is dropped (RFC 9051 §6.3.4). */
export function mailboxArg(ctx: CommandContext, token: ImapToken | undefined): string {
  const name = rawMailboxArg(ctx, token);
  return name.length > 1 && name.endsWith(DELIMITER) ? name.slice(0, -1) : name;
}

/** Decoded as sent, trailing delimiter kept (LIST references and patterns). */
export function rawMailboxArg(ctx: CommandContext, token: ImapToken | undefined): string {
  return decodeMailboxName(asAstringBytes(token, 'mailbox name'), ctx.session.utf8);
}

/** The name as this client reads it (mUTF-7 unless UTF-8 is enabled). */
export function mailboxOut(ctx: CommandContext, name: string): string {
  return encodeMailboxName(name, ctx.session.utf8);
}

/** The account's folder of that name, or null. */
export function findFolder(ctx: CommandContext, name: string): Promise<Folder | null> {
  const a = account(ctx);
  return ctx.services.state.findFolder(a.scope, a.mailbox.id, name);
}

export function listFolders(ctx: CommandContext): Promise<Folder[]> {
  const a = account(ctx);
  return ctx.services.state.listFolders(a.scope, a.mailbox.id);
}
