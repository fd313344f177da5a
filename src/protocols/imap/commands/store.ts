/**
 * STORE and UID STORE (RFC 9051 §6.4.6, §6.4.9), with UNCHANGEDSINCE (RFC 7162 §3.1.3).
 *
 * The mailbox-state service changes the flags and reports the entries it changed with their new
 * MODSEQ. The answer is an untagged FETCH per message of the set (not with .SILENT): FLAGS, UID
 * for UID STORE or once CONDSTORE is on, MODSEQ once CONDSTORE is on. With CONDSTORE, .SILENT still
 * reports the new MODSEQ (RFC 7162 §3.1.3, example 3 of RFC 4551 errata 3401), so the client can
 * keep its HIGHESTMODSEQ current. Messages that failed the UNCHANGEDSINCE test are listed in the
 * tagged `OK [MODIFIED set]`. The view notes the changes so the next sync does not repeat them.
 */
import type { FlagState } from '../../../core/mailbox-state/index.js';
import { flagList } from '../encoder/index.js';
import { formatSequenceSet } from '../parser/sequence-set.js';
import { parseStoreRequest } from '../parser/store-args.js';
import type { ParsedCommand } from '../parser/types.js';
import type { CommandContext, CommandModule, CommandResult } from '../session/types.js';
import type { ImapValue } from '../encoder/types.js';
import { condstoreEnabled, drainOutput, enableCondstore, selectedState, sequenceSetArg } from './_selected.js';

/** UIDs per setFlags call and per batch of responses. */
const BATCH = 1000;

async function handle(ctx: CommandContext, cmd: ParsedCommand): Promise<CommandResult> {
  const byUid = cmd.name === 'UID STORE';
  const { view, account } = selectedState(ctx);
  const set = sequenceSetArg(cmd.args[0]);
  const request = parseStoreRequest(cmd.args.slice(1));
  if (request.unchangedSince !== undefined) enableCondstore(ctx.session);
  const uids = view.resolve(set, byUid);
  if (view.readOnly) return { status: 'NO', code: 'READ-ONLY', text: 'The mailbox is read-only' };
  // \Recent is the server's (RFC 3501 §2.3.2) and no longer exists in IMAP4rev2: never stored.
  const flags = request.flags.filter((f) => f.toLowerCase() !== '\\recent');
  const condstore = condstoreEnabled(ctx.session);

  const modified: number[] = [];
  for (let i = 0; i < uids.length; i += BATCH) {
    const part = uids.slice(i, i + BATCH);
    const result = await ctx.services.state.setFlags(account.scope, view.folder.id, part, request.mode, flags, {
      unchangedSince: request.unchangedSince,
    });
    view.noteFlags(result.updated);
    modified.push(...result.modifiedUids);
    // A keyword this STORE brought into use is announced in FLAGS even with .SILENT.
    if (i === 0 && request.mode !== 'remove') view.announceFlags(flags);
    if (request.silent && !condstore) continue;
    // Without .SILENT every message of the set is answered with its flags (RFC 9051 §6.4.6), also
    // those already in the wanted state; those that failed UNCHANGEDSINCE are not (RFC 7162 §3.1.3).
    const reports: FlagState[] = [...result.updated];
    if (!request.silent) {
      const skip = new Set([...result.updated.map((u) => u.uid), ...result.modifiedUids]);
      const rest = part.filter((uid) => !skip.has(uid));
      if (rest.length > 0) {
        const entries = await ctx.services.state.listEntries(account.scope, view.folder.id, { uids: rest, limit: rest.length });
        for (const e of entries) reports.push({ uid: e.uid, modseq: e.modseq, flags: e.flags });
        reports.sort((a, b) => a.uid - b.uid);
      }
    }
    for (const r of reports) {
      const seq = view.seqOf(r.uid);
      if (seq === 0) continue;
      view.announceFlags(r.flags);
      const items: ImapValue[] = [];
      if (byUid || condstore) items.push({ atom: 'UID' }, r.uid);
      if (!request.silent) items.push({ atom: 'FLAGS' }, flagList(r.flags));
      if (condstore) items.push({ atom: 'MODSEQ' }, [r.modseq]);
      ctx.untagged(seq, { atom: 'FETCH' }, items);
    }
    await drainOutput(ctx);
  }
  if (modified.length > 0) {
    // RFC 7162 §3.1.3: UIDs for UID STORE, sequence numbers for STORE.
    const numbers = byUid ? modified : modified.map((uid) => view.seqOf(uid)).filter((seq) => seq > 0);
    return { status: 'OK', code: `MODIFIED ${formatSequenceSet(numbers)}`, text: 'Conditional STORE failed for some messages' };
  }
  return { status: 'OK', text: 'STORE completed' };
}

const store: CommandModule = {
  names: ['STORE', 'UID STORE'],
  states: ['selected'],
  handle,
};

export default store;
