/**
 * Helpers shared by the selected-state commands (not a command): the selected view and account,
 * CONDSTORE enabling (RFC 7162 §3.1), `* OK [CODE] text` responses and output back-pressure.
 */
import type { ImapToken, SequenceSet } from '../parser/types.js';
import { parseSequenceSet } from '../parser/sequence-set.js';
import { asAtom } from '../parser/args.js';
import { sessionControl } from '../session/control.js';
import type { Account, CommandContext, SelectedMailbox, SessionInfo } from '../session/types.js';

export interface SelectedState {
  view: SelectedMailbox;
  account: Account;
}

/** The selected view and the account; the session only dispatches these commands when selected. */
export function selectedState(ctx: CommandContext): SelectedState {
  const { selected, account } = ctx.session;
  if (!selected || !account) throw new Error('selected-state command without a selected mailbox');
  return { view: selected, account };
}

/** CONDSTORE is on: ENABLE CONDSTORE/QRESYNC, SELECT (CONDSTORE) or a CONDSTORE-enabling command. */
export function condstoreEnabled(session: SessionInfo): boolean {
  return session.enabled.has('CONDSTORE') || session.enabled.has('QRESYNC');
}

/**
 * RFC 7162 §3.1: SELECT/EXAMINE (CONDSTORE), FETCH MODSEQ or CHANGEDSINCE, STORE UNCHANGEDSINCE
 * and SEARCH MODSEQ enable CONDSTORE for the rest of the session, as ENABLE CONDSTORE would.
 */
export function enableCondstore(session: SessionInfo): void {
  session.enabled.add('CONDSTORE');
}

/** `* OK [code] text` (RFC 9051 §7.1). */
export function untaggedOk(ctx: CommandContext, code: string, text: string): void {
  ctx.untagged({ atom: 'OK' }, { raw: `[${code}]` }, { raw: text });
}

/** A sequence-set argument (an atom: `1:4,7`, `*`, `$`). */
export function sequenceSetArg(token: ImapToken | undefined): SequenceSet {
  return parseSequenceSet(asAtom(token, 'sequence set'));
}

/**
 * Waits while the client has not read what was written (long FETCH/SEARCH answers), so a client
 * that stops reading cannot make the server buffer the whole answer.
 */
export async function drainOutput(ctx: CommandContext): Promise<void> {
  let control;
  try {
    control = sessionControl(ctx);
  } catch {
    return;
  }
  await control.drain();
}
