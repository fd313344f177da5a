/**
 * EXPUNGE and UID EXPUNGE (RFC 9051 §6.4.3, RFC 4315 §2.1): removes the messages flagged \Deleted
 * (UID EXPUNGE: only those in the UID set). The EXPUNGE / VANISHED responses come from the view's
 * sync, which also announces what other sessions expunged meanwhile.
 */
import type { ParsedCommand } from '../parser/types.js';
import { ImapSyntaxError, type CommandContext, type CommandModule, type CommandResult } from '../session/types.js';
import { selectedState, sequenceSetArg } from './_selected.js';

async function handle(ctx: CommandContext, cmd: ParsedCommand): Promise<CommandResult> {
  const byUid = cmd.name === 'UID EXPUNGE';
  const { view, account } = selectedState(ctx);
  if (cmd.args.length !== (byUid ? 1 : 0)) throw new ImapSyntaxError(byUid ? 'UID EXPUNGE takes one UID set' : 'EXPUNGE takes no arguments');
  const uids = byUid ? view.resolve(sequenceSetArg(cmd.args[0]), true) : undefined;
  if (view.readOnly) return { status: 'NO', code: 'READ-ONLY', text: 'The mailbox is read-only' };
  if (!uids || uids.length > 0) await ctx.services.state.expunge(account.scope, view.folder.id, uids ? { uids } : undefined);
  await view.sync({ allowExpunge: true, force: true });
  return { status: 'OK', text: 'EXPUNGE completed' };
}

const expunge: CommandModule = {
  names: ['EXPUNGE', 'UID EXPUNGE'],
  states: ['selected'],
  handle,
};

export default expunge;
