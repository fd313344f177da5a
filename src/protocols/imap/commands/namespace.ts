/**
 * NAMESPACE (RFC 9051 §6.3.10, RFC 2342): one personal namespace with the empty prefix and "/" as
 * delimiter; no other users' or shared namespaces (a session sees only its own mailbox, SPEC §9).
 */
import { expectArgs } from '../parser/args.js';
import type { CommandModule } from '../session/types.js';
import { DELIMITER } from './_mailbox.js';

const namespace: CommandModule = {
  names: ['NAMESPACE'],
  states: ['authenticated', 'selected'],
  async handle(ctx, cmd) {
    expectArgs(cmd.args, 0, 0, 'NAMESPACE');
    ctx.untagged({ atom: 'NAMESPACE' }, [['', DELIMITER]], null, null);
    return { status: 'OK', text: 'NAMESPACE completed' };
  },
};

export default namespace;
