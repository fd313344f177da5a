/** LOGOUT (RFC 9051 §6.1.3): `* BYE`, the tagged OK, then the server closes the connection. */
import { expectArgs } from '../parser/args.js';
import { TEXT } from '../session/replies.js';
import type { CommandModule } from '../session/types.js';

const logout: CommandModule = {
  names: ['LOGOUT'],
  states: ['not-authenticated', 'authenticated', 'selected'],
  async handle(ctx, cmd) {
    expectArgs(cmd.args, 0, 0, 'LOGOUT');
    ctx.untagged({ atom: 'BYE' }, { raw: TEXT.LOGOUT });
    // The session closes the connection once the tagged response is written.
    ctx.setState('logout');
    return { status: 'OK', text: 'LOGOUT completed' };
  },
};

export default logout;
