/**
 * STATUS data items (RFC 9051 §6.3.11, RFC 3501 §6.3.10 RECENT, RFC 7162 §3.1.6 HIGHESTMODSEQ,
 * RFC 8438 SIZE, RFC 7889 §4 APPENDLIMIT), shared by STATUS and LIST-STATUS (RFC 5819). Not a
 * command. Items are answered in the order asked.
 */
import type { Folder } from '../../../core/mailbox-state/index.js';
import type { ImapValue } from '../encoder/types.js';
import { asAtom, asList } from '../parser/args.js';
import type { ImapToken } from '../parser/types.js';
import { ImapSyntaxError, type CommandContext } from '../session/types.js';
import { account, mailboxOut } from './_mailbox.js';

export const STATUS_ITEMS = ['MESSAGES', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'DELETED', 'SIZE', 'RECENT', 'HIGHESTMODSEQ', 'APPENDLIMIT'] as const;
export type StatusItem = (typeof STATUS_ITEMS)[number];

export function parseStatusItems(token: ImapToken | undefined): StatusItem[] {
  const items = asList(token, 'status data items');
  if (items.length === 0) throw new ImapSyntaxError('Empty status data item list');
  const out: StatusItem[] = [];
  for (const t of items) {
    const name = asAtom(t, 'status data item').toUpperCase() as StatusItem;
    if (!STATUS_ITEMS.includes(name)) throw new ImapSyntaxError(`Unknown status data item ${name.slice(0, 40)}`);
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/** Sends `* STATUS name (item value …)` for a folder. */
export async function sendStatus(ctx: CommandContext, folder: Folder, items: StatusItem[]): Promise<void> {
  const a = account(ctx);
  const state = ctx.services.state;
  const st = await state.folderStatus(a.scope, folder.id);
  const values: ImapValue[] = [];
  for (const item of items) {
    values.push({ atom: item });
    switch (item) {
      case 'MESSAGES':
        values.push(st.messages);
        break;
      case 'UIDNEXT':
        values.push(st.uidNext);
        break;
      case 'UIDVALIDITY':
        values.push(st.uidValidity);
        break;
      case 'UNSEEN':
        values.push(st.unseen);
        break;
      case 'DELETED':
        values.push(st.deleted);
        break;
      case 'SIZE':
        values.push(st.size);
        break;
      case 'RECENT':
        values.push(0);
        break;
      case 'HIGHESTMODSEQ':
        values.push(st.highestModseq);
        break;
      case 'APPENDLIMIT':
        values.push(ctx.limits.maxAppendBytes);
        break;
    }
  }
  ctx.untagged({ atom: 'STATUS' }, mailboxOut(ctx, folder.name), values);
}
