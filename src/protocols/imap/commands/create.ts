/**
 * CREATE (RFC 9051 §6.3.4): a trailing delimiter is dropped (_mailbox.ts), missing superiors are
 * created too (the mailbox-state service does that), new folders are not subscribed (a client
 * subscribes explicitly). INBOX and existing names: ALREADYEXISTS.
 */
import { expectArgs } from '../parser/args.js';
import type { CommandModule } from '../session/types.js';
import { account, mailboxArg } from './_mailbox.js';

const create: CommandModule = {
  names: ['CREATE'],
  states: ['authenticated', 'selected'],
  async handle(ctx, cmd) {
    // RFC 6154 §3 CREATE (USE …) is not offered (no CREATE-SPECIAL-USE capability).
    expectArgs(cmd.args, 1, 1, 'CREATE');
    const name = mailboxArg(ctx, cmd.args[0]);
    const a = account(ctx);
    await ctx.services.state.createFolder(a.scope, a.mailbox.id, name, { subscribed: false });
    return { status: 'OK', text: 'CREATE completed' };
  },
};

export default create;
