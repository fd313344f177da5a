/** STATUS (RFC 9051 §6.3.11): the items of _status.ts for a folder of the account. */
import { expectArgs } from '../parser/args.js';
import type { CommandModule } from '../session/types.js';
import { findFolder, mailboxArg } from './_mailbox.js';
import { parseStatusItems, sendStatus } from './_status.js';

const status: CommandModule = {
  names: ['STATUS'],
  states: ['authenticated', 'selected'],
  async handle(ctx, cmd) {
    expectArgs(cmd.args, 2, 2, 'STATUS');
    const name = mailboxArg(ctx, cmd.args[0]);
    const items = parseStatusItems(cmd.args[1]);
    const folder = await findFolder(ctx, name);
    if (!folder) return { status: 'NO', code: 'NONEXISTENT', text: 'No such mailbox' };
    await sendStatus(ctx, folder, items);
    return { status: 'OK', text: 'STATUS completed' };
  },
};

export default status;
