/**
 * ID (RFC 2971): the client's identification is logged (bounded) and the server answers with its
 * name only — no version, so the reply gives an attacker nothing to match against advisories.
 * Argument: NIL or a list of at most 30 field/value pairs (RFC 2971 §3.3), fields ≤ 30 octets,
 * values ≤ 1024 octets, values a string or NIL.
 */
import { expectArgs } from '../parser/args.js';
import type { ImapToken } from '../parser/types.js';
import { ImapSyntaxError, type CommandModule } from '../session/types.js';

const MAX_PAIRS = 30;

function stringOf(t: ImapToken, max: number, what: string): string | null {
  if (t.type === 'atom' && t.value.toUpperCase() === 'NIL') return null;
  if (t.type !== 'string' || t.value.length > max) throw new ImapSyntaxError(`Invalid ID ${what}`);
  return t.value.toString('utf8');
}

const id: CommandModule = {
  names: ['ID'],
  states: ['not-authenticated', 'authenticated', 'selected'],
  async handle(ctx, cmd) {
    expectArgs(cmd.args, 1, 1, 'ID');
    const arg = cmd.args[0];
    const client: Record<string, string | null> = {};
    if (arg.type === 'list') {
      if (arg.items.length % 2 !== 0 || arg.items.length / 2 > MAX_PAIRS) throw new ImapSyntaxError('ID takes up to 30 field/value pairs');
      for (let i = 0; i < arg.items.length; i += 2) {
        const field = stringOf(arg.items[i], 30, 'field');
        if (field === null) throw new ImapSyntaxError('Invalid ID field');
        client[field] = stringOf(arg.items[i + 1], 1024, 'value');
      }
    } else if (!(arg.type === 'atom' && arg.value.toUpperCase() === 'NIL')) {
      throw new ImapSyntaxError('ID takes NIL or a list');
    }
    ctx.log.debug({ client_id: client }, 'client identified itself');
    ctx.untagged({ atom: 'ID' }, ['name', 'MaiRust', 'vendor', 'MaiRust']);
    return { status: 'OK', text: 'ID completed' };
  },
};

export default id;
