/**
 * SUBSCRIBE / UNSUBSCRIBE (RFC 9051 §6.3.7, §6.3.8). Subscriptions are a flag of the folder, so
 * subscribing to a name that does not exist is refused (the RFC allows that; a dangling
 * subscription could not be stored).
 */
import { expectArgs } from '../parser/args.js';
import type { CommandModule } from '../session/types.js';
import { account, findFolder, mailboxArg } from './_mailbox.js';

const subscribe: CommandModule = {
  names: ['SUBSCRIBE', 'UNSUBSCRIBE'],
  states: ['authenticated', 'selected'],
  async handle(ctx, cmd) {
    expectArgs(cmd.args, 1, 1, cmd.name);
    const folder = await findFolder(ctx, mailboxArg(ctx, cmd.args[0]));
    if (!folder) return { status: 'NO', code: 'NONEXISTENT', text: 'No such mailbox' };
    const on = cmd.name === 'SUBSCRIBE';
    if (folder.subscribed !== on) await ctx.services.state.setSubscribed(account(ctx).scope, folder.id, on);
    return { status: 'OK', text: `${cmd.name} completed` };
  },
};

export default subscribe;
