/**
 * FETCH and UID FETCH (RFC 9051 §6.4.5, §6.4.9), with CHANGEDSINCE and VANISHED (RFC 7162 §3.1.4,
 * §3.2.6) and BINARY (RFC 3516).
 *
 * Messages are fetched in batches of FETCH_BATCH entries: one entry query, one content-metadata
 * query, the responses, then a wait until the client has read them, so `1:*` over 100 000
 * messages streams with bounded memory. A message that another session expunged but this session
 * still numbers is answered from its (kept) entry (RFC 9051 §7.5.1 allows either).
 *
 * BODY[…] without PEEK on a read-write folder sets \Seen (RFC 9051 §6.4.5); the new FLAGS are part
 * of the response and the view notes the change so the next sync does not repeat it.
 */
import type { Entry } from '../../../core/mailbox-state/index.js';
import { loadMessageContents, UnknownCteError, type MessageContent } from '../fetch/index.js';
import { parseFetchRequest } from '../parser/fetch-items.js';
import { formatSequenceSet } from '../parser/sequence-set.js';
import type { ParsedCommand, SequenceSet } from '../parser/types.js';
import type { CommandContext, CommandModule, CommandResult, SelectedMailbox } from '../session/types.js';
import { planFetch, writeFetchResponse } from './_fetch-response.js';
import { condstoreEnabled, drainOutput, enableCondstore, selectedState, sequenceSetArg } from './_selected.js';
import { uidInSet } from './_vanished.js';

/** Entries per batch. */
export const FETCH_BATCH = 200;

function hasSeen(entry: Entry): boolean {
  return entry.flags.some((f) => f.toLowerCase() === '\\seen');
}

/** `* VANISHED (EARLIER) …` for UID FETCH … (CHANGEDSINCE m VANISHED) (RFC 7162 §3.2.6). */
async function announceVanished(ctx: CommandContext, view: SelectedMailbox, set: SequenceSet, changedSince: number): Promise<void> {
  const { scope } = ctx.session.account!;
  const changes = await ctx.services.state.changesSince(scope, view.folder.id, changedSince);
  // UIDs the view still numbers are announced by the view itself (as VANISHED without EARLIER).
  const gone = changes.expunged.filter((uid) => uidInSet(uid, set) && view.seqOf(uid) === 0);
  if (gone.length > 0) ctx.untagged({ atom: 'VANISHED' }, [{ atom: 'EARLIER' }], { atom: formatSequenceSet(gone) });
}

async function handle(ctx: CommandContext, cmd: ParsedCommand): Promise<CommandResult> {
  const byUid = cmd.name === 'UID FETCH';
  const { view, account } = selectedState(ctx);
  const set = sequenceSetArg(cmd.args[0]);
  const request = parseFetchRequest(cmd.args.slice(1), { uid: byUid });
  if (request.vanished && !ctx.session.enabled.has('QRESYNC')) {
    return { status: 'BAD', text: 'VANISHED needs ENABLE QRESYNC' };
  }
  if (request.changedSince !== undefined || request.items.some((i) => i.kind === 'MODSEQ')) enableCondstore(ctx.session);
  const uids = view.resolve(set, byUid);
  const plan = planFetch(request, { byUid, condstore: condstoreEnabled(ctx.session) });
  const markSeen = plan.setsSeen && !view.readOnly;
  if (request.vanished) await announceVanished(ctx, view, set, request.changedSince!);

  let missing = 0;
  for (let i = 0; i < uids.length; i += FETCH_BATCH) {
    const batch = uids.slice(i, i + FETCH_BATCH);
    const found = await ctx.services.state.listEntries(account.scope, view.folder.id, { uids: batch, includeDeleted: true, limit: batch.length });
    // Only an entry purged since (after the retention period) is missing here.
    missing += batch.length - found.length;
    let entries = request.changedSince === undefined ? found : found.filter((e) => e.modseq > request.changedSince!);

    const seenNow = new Set<number>();
    if (markSeen) {
      const unseen = entries.filter((e) => e.deletedAt === null && !hasSeen(e)).map((e) => e.uid);
      if (unseen.length > 0) {
        const result = await ctx.services.state.setFlags(account.scope, view.folder.id, unseen, 'add', ['\\Seen']);
        view.noteFlags(result.updated);
        const byUidMap = new Map(result.updated.map((u) => [u.uid, u]));
        entries = entries.map((e) => {
          const u = byUidMap.get(e.uid);
          if (!u) return e;
          seenNow.add(e.uid);
          return { ...e, flags: u.flags, modseq: u.modseq };
        });
      }
    }

    let contents: Map<string, MessageContent> | null = null;
    if (plan.needsContent) {
      contents = await loadMessageContents(ctx.services.state, account.scope, [...new Set(entries.map((e) => e.messageId))], {
        withHeaders: plan.needsHeaders,
      });
    }
    for (const entry of entries) {
      const seq = view.seqOf(entry.uid);
      if (seq === 0) continue;
      const content = contents ? (contents.get(entry.messageId) ?? null) : null;
      if (contents && !content) {
        missing++;
        continue;
      }
      await writeFetchResponse(ctx, seq, entry, content, plan, seenNow.has(entry.uid));
    }
    await drainOutput(ctx);
  }
  if (missing > 0) return { status: 'NO', text: 'Some of the requested messages no longer exist' };
  return { status: 'OK', text: 'FETCH completed' };
}

/** UnknownCteError → `NO [UNKNOWN-CTE]` (RFC 3516 §4.3); everything else goes to ./_errors.ts. */
async function handleFetch(ctx: CommandContext, cmd: ParsedCommand): Promise<CommandResult> {
  try {
    return await handle(ctx, cmd);
  } catch (err) {
    if (err instanceof UnknownCteError) return { status: 'NO', code: 'UNKNOWN-CTE', text: 'Cannot decode this part: unknown Content-Transfer-Encoding' };
    throw err;
  }
}

const fetch: CommandModule = {
  names: ['FETCH', 'UID FETCH'],
  states: ['selected'],
  handle: handleFetch,
};

export default fetch;
