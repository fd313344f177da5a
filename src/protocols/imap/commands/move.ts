/**
 * MOVE and UID MOVE (RFC 6851): copy + expunge in one transaction of the mailbox-state service.
 *
 * Responses (RFC 6851 §4.3, §4.4): `* OK [COPYUID …]` untagged first, then the EXPUNGE (or, with
 * QRESYNC, VANISHED) responses for the moved messages — the view's sync announces them, with any
 * other change waiting — then the tagged OK.
 */
import type { ParsedCommand } from '../parser/types.js';
import type { CommandContext, CommandModule, CommandResult } from '../session/types.js';
import { copyUidCode, destinationFolder } from './_copy.js';
import { selectedState, sequenceSetArg, untaggedOk } from './_selected.js';

async function handle(ctx: CommandContext, cmd: ParsedCommand): Promise<CommandResult> {
  const byUid = cmd.name === 'UID MOVE';
  const { view, account } = selectedState(ctx);
  const set = sequenceSetArg(cmd.args[0]);
  const target = await destinationFolder(ctx, cmd.args);
  const uids = view.resolve(set, byUid);
  if (!target) return { status: 'NO', code: 'TRYCREATE', text: 'No such mailbox' };
  // Moving out of a folder expunges there, which EXAMINE does not allow (RFC 6851 §3.3).
  if (view.readOnly) return { status: 'NO', code: 'READ-ONLY', text: 'The mailbox is read-only' };
  if (uids.length === 0) return { status: 'OK', text: 'MOVE completed (no messages)' };
  const result = await ctx.services.state.move(account.scope, view.folder.id, uids, target.id);
  const code = copyUidCode(result);
  if (code) untaggedOk(ctx, code, 'Moved');
  await view.sync({ allowExpunge: true, force: true });
  return { status: 'OK', text: 'MOVE completed' };
}

const move: CommandModule = {
  names: ['MOVE', 'UID MOVE'],
  states: ['selected'],
  handle,
};

export default move;
