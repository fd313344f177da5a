/**
 * NOOP (RFC 9051 §6.1.2) and CHECK (RFC 3501 §6.4.1, gone from IMAP4rev2 but still sent by rev1
 * clients; we have no housekeeping to do, so it is a NOOP of the selected state). Both only make
 * the session announce pending changes, which it does after every command (forced for these two).
 */
import { expectArgs } from '../parser/args.js';
import type { CommandModule } from '../session/types.js';

const noop: CommandModule = {
  names: ['NOOP', 'CHECK'],
  states: ['not-authenticated', 'authenticated', 'selected'],
  async handle(ctx, cmd) {
    expectArgs(cmd.args, 0, 0, cmd.name);
    if (cmd.name === 'CHECK' && ctx.session.state !== 'selected') {
      return { status: 'BAD', text: ctx.session.state === 'not-authenticated' ? 'Not logged in' : 'No mailbox selected' };
    }
    return { status: 'OK', text: `${cmd.name} completed` };
  },
};

export default noop;
