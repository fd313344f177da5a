/**
 * RENAME (RFC 9051 §6.3.6): subfolders move along and missing superiors of the new name are
 * created (mailbox-state service). Renaming INBOX is refused (CANNOT; the RFC allows servers to
 * disallow it), so is a target that exists (ALREADYEXISTS).
 */
import { expectArgs } from '../parser/args.js';
import type { CommandModule } from '../session/types.js';
import { account, findFolder, mailboxArg } from './_mailbox.js';

const rename: CommandModule = {
  names: ['RENAME'],
  states: ['authenticated', 'selected'],
  async handle(ctx, cmd) {
    expectArgs(cmd.args, 2, 2, 'RENAME');
    const from = mailboxArg(ctx, cmd.args[0]);
    const to = mailboxArg(ctx, cmd.args[1]);
    const folder = await findFolder(ctx, from);
    if (!folder) return { status: 'NO', code: 'NONEXISTENT', text: 'No such mailbox' };
    await ctx.services.state.renameFolder(account(ctx).scope, folder.id, to);
    return { status: 'OK', text: 'RENAME completed' };
  },
};

export default rename;
