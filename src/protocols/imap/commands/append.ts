/**
 * APPEND (RFC 9051 §6.3.12): `APPEND mailbox [(flags)] [date-time] literal`, the message literal
 * also as literal8 (RFC 3516 §4.4) or wrapped as `UTF8 (~{n}…)` (RFC 6855 §4). The message is stored
 * as sent through the mailbox-state service, which checks quota (OVERQUOTA) and flags.
 *
 * - The size limit is APPENDLIMIT (RFC 7889): the reader refuses a larger literal from its
 *   announcement (NO/BAD [TOOBIG]) before any of it is read; checked here again for safety.
 * - A missing target folder is NO [TRYCREATE] (RFC 9051 §6.3.12), so the client can CREATE it.
 * - The tagged OK carries APPENDUID uidvalidity uid (RFC 4315 §3).
 * - \Recent cannot be set (RFC 3501 §2.3.2); an empty message is refused.
 */
import { asFlagList, asList, asString } from '../parser/args.js';
import { parseDateTime } from '../parser/dates.js';
import type { ImapToken } from '../parser/types.js';
import { ImapSyntaxError, type CommandModule } from '../session/types.js';
import { account, findFolder, mailboxArg } from './_mailbox.js';

interface AppendRequest {
  mailbox: string;
  flags: string[];
  internalDate?: number;
  message: Buffer;
}

function parseAppend(args: ImapToken[], mailbox: string): AppendRequest {
  let i = 1;
  let flags: string[] = [];
  let internalDate: number | undefined;
  if (args[i]?.type === 'list') flags = asFlagList(args[i++]);
  // date-time is a quoted string; the message is a literal, so a non-literal string here is the date.
  const maybeDate = args[i];
  if (maybeDate?.type === 'string' && !maybeDate.literal) {
    internalDate = parseDateTime(asString(maybeDate, 'date-time'));
    i++;
  }
  let message = args[i++];
  if (message?.type === 'atom' && message.value.toUpperCase() === 'UTF8') {
    // RFC 6855 §4: UTF8 (literal8).
    const inner = asList(args[i++], 'UTF8 message');
    if (inner.length !== 1) throw new ImapSyntaxError('UTF8 takes one literal');
    message = inner[0];
  }
  if (!message || message.type !== 'string' || !message.literal) throw new ImapSyntaxError('Expected the message as a literal');
  if (i !== args.length) throw new ImapSyntaxError('Too many arguments to APPEND');
  if (flags.some((f) => f.toLowerCase() === '\\recent')) throw new ImapSyntaxError('\\Recent cannot be set');
  return { mailbox, flags, internalDate, message: message.value };
}

const append: CommandModule = {
  names: ['APPEND'],
  states: ['authenticated', 'selected'],
  async handle(ctx, cmd) {
    if (cmd.args.length < 2) throw new ImapSyntaxError('Missing arguments to APPEND');
    const req = parseAppend(cmd.args, mailboxArg(ctx, cmd.args[0]));
    if (req.message.length > ctx.limits.maxAppendBytes) {
      return { status: 'NO', code: 'TOOBIG', text: `Message larger than APPENDLIMIT ${ctx.limits.maxAppendBytes}` };
    }
    if (req.message.length === 0) return { status: 'NO', code: 'CANNOT', text: 'Empty message' };
    const folder = await findFolder(ctx, req.mailbox);
    if (!folder) return { status: 'NO', code: 'TRYCREATE', text: 'No such mailbox' };
    const a = account(ctx);
    const r = await ctx.services.state.append(a.scope, a.mailbox.id, folder.id, req.message, {
      flags: req.flags,
      internalDate: req.internalDate,
    });
    return { status: 'OK', code: `APPENDUID ${r.uidValidity} ${r.uid}`, text: 'APPEND completed' };
  },
};

export default append;
