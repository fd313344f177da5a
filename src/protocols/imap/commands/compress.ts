/**
 * COMPRESS DEFLATE (RFC 4978): after the tagged OK, both directions are raw DEFLATE (RFC 1951);
 * the server flushes (Z_SYNC_FLUSH) after each batch of responses. A second COMPRESS is refused
 * with COMPRESSIONACTIVE (RFC 4978 §3); an unknown mechanism is a BAD argument.
 */
import { asAtom, expectArgs } from '../parser/args.js';
import { sessionControl } from '../session/control.js';
import type { CommandModule } from '../session/types.js';

const compress: CommandModule = {
  names: ['COMPRESS'],
  states: ['authenticated', 'selected'],
  async handle(ctx, cmd) {
    expectArgs(cmd.args, 1, 1, 'COMPRESS');
    const mechanism = asAtom(cmd.args[0], 'compression mechanism').toUpperCase();
    if (mechanism !== 'DEFLATE') return { status: 'BAD', text: 'Unknown compression mechanism' };
    const control = sessionControl(ctx);
    if (control.compressed) return { status: 'NO', code: 'COMPRESSIONACTIVE', text: 'DEFLATE is already active' };
    control.afterResponse(() => control.startCompression());
    return { status: 'OK', text: 'DEFLATE active' };
  },
};

export default compress;
