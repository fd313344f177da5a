/**
 * CLOSE (RFC 9051 §6.4.1) and UNSELECT (RFC 3691, RFC 9051 §6.4.2): back to the authenticated
 * state. CLOSE first expunges the \Deleted messages of a folder selected read-write, silently (no
 * EXPUNGE responses); UNSELECT and CLOSE of an EXAMINEd folder expunge nothing.
 */
import type { ParsedCommand } from '../parser/types.js';
import { ImapSyntaxError, type CommandContext, type CommandModule, type CommandResult } from '../session/types.js';
import { selectedState } from './_selected.js';

async function handle(ctx: CommandContext, cmd: ParsedCommand): Promise<CommandResult> {
  if (cmd.args.length > 0) throw new ImapSyntaxError(`${cmd.name} takes no arguments`);
  const { view, account } = selectedState(ctx);
  if (cmd.name === 'CLOSE' && !view.readOnly) {
    try {
      await ctx.services.state.expunge(account.scope, view.folder.id);
    } catch (err) {
      // RFC 9051 §6.4.1: CLOSE leaves the selected state even when the expunge fails.
      ctx.log.warn({ err }, 'IMAP CLOSE: expunge failed');
    }
  }
  ctx.unselect();
  return { status: 'OK', text: `${cmd.name} completed` };
}

const close: CommandModule = {
  names: ['CLOSE', 'UNSELECT'],
  states: ['selected'],
  handle,
};

export default close;
