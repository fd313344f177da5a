/**
 * COPY and UID COPY (RFC 9051 §6.4.7, §6.4.9) with UIDPLUS's COPYUID (RFC 4315 §3).
 *
 * A missing destination is `NO [TRYCREATE]` (RFC 9051 §6.4.7: the client may create it and try
 * again). The copy is one transaction in the mailbox-state service, so quota failures copy nothing.
 */
import type { ParsedCommand } from '../parser/types.js';
import type { CommandContext, CommandModule, CommandResult } from '../session/types.js';
import { copyUidCode, destinationFolder } from './_copy.js';
import { selectedState, sequenceSetArg } from './_selected.js';

async function handle(ctx: CommandContext, cmd: ParsedCommand): Promise<CommandResult> {
  const byUid = cmd.name === 'UID COPY';
  const { view, account } = selectedState(ctx);
  const set = sequenceSetArg(cmd.args[0]);
  const target = await destinationFolder(ctx, cmd.args);
  const uids = view.resolve(set, byUid);
  if (!target) return { status: 'NO', code: 'TRYCREATE', text: 'No such mailbox' };
  if (uids.length === 0) return { status: 'OK', text: 'COPY completed (no messages)' };
  const result = await ctx.services.state.copy(account.scope, view.folder.id, uids, target.id);
  const code = copyUidCode(result);
  return code ? { status: 'OK', code, text: 'COPY completed' } : { status: 'OK', text: 'COPY completed' };
}

const copy: CommandModule = {
  names: ['COPY', 'UID COPY'],
  states: ['selected'],
  handle,
};

export default copy;
