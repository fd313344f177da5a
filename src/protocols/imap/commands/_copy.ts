/** Shared by COPY and MOVE (not a command): the destination argument and the COPYUID code. */
import type { CopyResult, Folder } from '../../../core/mailbox-state/index.js';
import { formatSequenceSet } from '../parser/sequence-set.js';
import type { ImapToken } from '../parser/types.js';
import { ImapSyntaxError, type CommandContext } from '../session/types.js';
import { findFolder, mailboxArg } from './_mailbox.js';

/** `<sequence-set> <mailbox>`: the destination folder, or null when it does not exist. */
export async function destinationFolder(ctx: CommandContext, args: ImapToken[]): Promise<Folder | null> {
  if (args.length !== 2) throw new ImapSyntaxError(args.length < 2 ? 'Missing arguments' : 'Too many arguments');
  return findFolder(ctx, mailboxArg(ctx, args[1]));
}

/**
 * `COPYUID <uidvalidity> <source-uids> <destination-uids>` (RFC 4315 §3): both sets list the UIDs
 * in the same order. The mapping is ascending in both (new UIDs are allocated in source order),
 * so the compressed forms still pair up. Null when nothing was copied.
 */
export function copyUidCode(result: CopyResult): string | null {
  if (result.mapping.length === 0) return null;
  const from = formatSequenceSet(result.mapping.map((m) => m.from));
  const to = formatSequenceSet(result.mapping.map((m) => m.to));
  return `COPYUID ${result.uidValidity} ${from} ${to}`;
}
