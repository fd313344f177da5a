/**
 * STARTTLS (RFC 9051 §6.2.1): the tagged OK in clear, then the TLS handshake. Bytes the client
 * pipelined behind the command are discarded, and everything learned before is forgotten — there is
 * nothing to forget before login but the capability list, which changes (the client must ask again).
 */
import { expectArgs } from '../parser/args.js';
import { sessionControl } from '../session/control.js';
import type { CommandModule } from '../session/types.js';

const starttls: CommandModule = {
  names: ['STARTTLS'],
  states: ['not-authenticated'],
  async handle(ctx, cmd) {
    expectArgs(cmd.args, 0, 0, 'STARTTLS');
    const control = sessionControl(ctx);
    if (ctx.session.secure) return { status: 'BAD', text: 'TLS is already active' };
    if (!control.startTlsAvailable) return { status: 'NO', text: 'STARTTLS is not available' };
    control.afterResponse(() => control.startTls());
    return { status: 'OK', text: 'Begin TLS negotiation now' };
  },
};

export default starttls;
