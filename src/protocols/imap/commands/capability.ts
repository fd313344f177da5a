/** CAPABILITY (RFC 9051 §6.1.1): the list depends on TLS and login (../session/capabilities.ts). */
import { expectArgs } from '../parser/args.js';
import type { CommandModule } from '../session/types.js';

const capability: CommandModule = {
  names: ['CAPABILITY'],
  states: ['not-authenticated', 'authenticated', 'selected'],
  async handle(ctx, cmd) {
    expectArgs(cmd.args, 0, 0, 'CAPABILITY');
    ctx.untagged({ atom: 'CAPABILITY' }, ...ctx.capabilities().map((c) => ({ atom: c })));
    return { status: 'OK', text: 'CAPABILITY completed' };
  },
};

export default capability;
