/**
 * DELETE (RFC 9051 §6.3.5). INBOX and special-use folders are protected (CANNOT), a folder with
 * subfolders is refused (HASCHILDREN) — both decided by the mailbox-state service. The folder this
 * session has selected is refused (INUSE, RFC 5530): its view would point at nothing.
 */
import { expectArgs } from '../parser/args.js';
import type { CommandModule } from '../session/types.js';
import { account, findFolder, mailboxArg } from './_mailbox.js';

const del: CommandModule = {
  names: ['DELETE'],
  states: ['authenticated', 'selected'],
  async handle(ctx, cmd) {
    expectArgs(cmd.args, 1, 1, 'DELETE');
    const folder = await findFolder(ctx, mailboxArg(ctx, cmd.args[0]));
    if (!folder) return { status: 'NO', code: 'NONEXISTENT', text: 'No such mailbox' };
    if (ctx.session.selected?.folder.id === folder.id) {
      return { status: 'NO', code: 'INUSE', text: 'The selected mailbox cannot be deleted; select another one first' };
    }
    await ctx.services.state.deleteFolder(account(ctx).scope, folder.id);
    return { status: 'OK', text: 'DELETE completed' };
  },
};

export default del;
