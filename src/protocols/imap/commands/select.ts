/**
 * SELECT and EXAMINE (RFC 9051 §6.3.2–6.3.3; RFC 3501 §6.3.1–6.3.2 for IMAP4rev1 clients), with
 * the CONDSTORE and QRESYNC parameters (RFC 7162 §3.1.8, §3.2.5).
 *
 * A previously selected folder is closed first (`* OK [CLOSED]`, RFC 9051 §7.1), so a SELECT that
 * fails leaves no folder selected. Responses, in the order clients expect:
 *   FLAGS, PERMANENTFLAGS, EXISTS, [RECENT 0, UNSEEN n: IMAP4rev1 only], UIDVALIDITY, UIDNEXT,
 *   HIGHESTMODSEQ, [LIST: IMAP4rev2], [VANISHED (EARLIER) and FETCH: QRESYNC], tagged OK
 *   [READ-WRITE] / [READ-ONLY].
 */
import type { Folder } from '../../../core/mailbox-state/index.js';
import { flagList } from '../encoder/index.js';
import { asList, asNumber, asAtom } from '../parser/args.js';
import { formatSequenceSet, parseSequenceSet } from '../parser/sequence-set.js';
import type { ImapToken, ParsedCommand, SequenceSet } from '../parser/types.js';
import { openSelectedMailbox, SYSTEM_FLAGS } from '../session/selected-mailbox.js';
import { ImapSyntaxError, type CommandContext, type CommandModule, type CommandResult, type SelectedMailbox } from '../session/types.js';
import { findFolder, mailboxArg, mailboxOut } from './_mailbox.js';
import { drainOutput, enableCondstore, untaggedOk } from './_selected.js';
import { vanishedFromKnown } from './_vanished.js';

/** mod-sequence-value (RFC 7162 §7): up to 2^63-1; values above 2^53 are refused by asNumber. */
const MAX_MODSEQ = Number.MAX_SAFE_INTEGER;
/** FETCH responses of a QRESYNC SELECT written before waiting for the client to read. */
const FETCH_BATCH = 500;

interface QresyncParams {
  uidValidity: number;
  modseq: number;
  knownUids?: SequenceSet;
}

interface SelectParams {
  condstore: boolean;
  qresync?: QresyncParams;
}

/** `[(CONDSTORE)]` / `[(QRESYNC (uidvalidity modseq [known-uids [seq-match-data]]))]`. */
function parseParams(args: ImapToken[]): SelectParams {
  const params: SelectParams = { condstore: false };
  if (args.length === 0) return params;
  if (args.length > 1) throw new ImapSyntaxError('Too many arguments to SELECT');
  const items = asList(args[0], 'select parameters');
  for (let i = 0; i < items.length; i++) {
    const name = asAtom(items[i], 'select parameter').toUpperCase();
    if (name === 'CONDSTORE') {
      params.condstore = true;
    } else if (name === 'QRESYNC') {
      const q = asList(items[++i], 'QRESYNC parameters');
      if (q.length < 2 || q.length > 4) throw new ImapSyntaxError('QRESYNC takes (uidvalidity modseq [known-uids [seq-match-data]])');
      const uidValidity = asNumber(q[0], 'UIDVALIDITY');
      const modseq = asNumber(q[1], 'MODSEQ', MAX_MODSEQ);
      if (uidValidity === 0 || modseq === 0) throw new ImapSyntaxError('UIDVALIDITY and MODSEQ must not be 0');
      const qresync: QresyncParams = { uidValidity, modseq };
      if (q.length >= 3) {
        if (q[2].type === 'list') throw new ImapSyntaxError('known-uids must come before the sequence match data');
        qresync.knownUids = parseUidSetWithoutStar(asAtom(q[2], 'known UIDs'));
      }
      if (q.length === 4) {
        // seq-match-data (RFC 7162 §3.2.5.2) helps servers that forget expunges; the exact
        // expunge history here makes it unnecessary. Checked for syntax only.
        const match = asList(q[3], 'sequence match data');
        if (match.length !== 2) throw new ImapSyntaxError('Sequence match data is (sequence-set uid-set)');
        parseUidSetWithoutStar(asAtom(match[0], 'known sequence set'));
        parseUidSetWithoutStar(asAtom(match[1], 'known UID set'));
      }
      params.qresync = qresync;
    } else {
      throw new ImapSyntaxError(`Unknown SELECT parameter ${name.slice(0, 40)}`);
    }
  }
  return params;
}

/** RFC 7162 §7: known-uids and seq-match-data are sequence sets without `*` (and without `$`). */
function parseUidSetWithoutStar(text: string): SequenceSet {
  const set = parseSequenceSet(text);
  if (set.kind === 'saved' || set.ranges.some((r) => r.from === '*' || r.to === '*')) {
    throw new ImapSyntaxError('"*" and "$" are not allowed in QRESYNC UID sets');
  }
  return set;
}

/**
 * Sequence number of the first message without \Seen (IMAP4rev1 `[UNSEEN n]`), 0 when none. The
 * database finds the UID; one this view does not number yet (appended meanwhile) is skipped.
 */
async function firstUnseen(ctx: CommandContext, view: SelectedMailbox): Promise<number> {
  const { scope } = ctx.session.account!;
  const last = view.uids.length > 0 ? view.uids[view.uids.length - 1] : 0;
  let afterUid = 0;
  for (;;) {
    const uid = await ctx.services.state.firstUnseenUid(scope, view.folder.id, afterUid);
    if (uid === null || uid > last) return 0;
    const seq = view.seqOf(uid);
    if (seq > 0) return seq;
    afterUid = uid;
  }
}

/** QRESYNC: what changed since the client's MODSEQ (RFC 7162 §3.2.5.1). */
async function announceResync(ctx: CommandContext, view: SelectedMailbox, q: QresyncParams, uidNext: number): Promise<void> {
  const { scope } = ctx.session.account!;
  const changes = await ctx.services.state.changesSince(scope, view.folder.id, q.modseq);
  // With known-uids: every known UID that is not live any more (exact even after purge). Without:
  // the expunges recorded since the MODSEQ. UIDs the view still numbers were expunged after it
  // was built; the next sync announces them.
  const vanished = q.knownUids
    ? vanishedFromKnown(q.knownUids, view.uids, uidNext)
    : formatSequenceSet(changes.expunged.filter((uid) => view.seqOf(uid) === 0));
  if (vanished !== '') ctx.untagged({ atom: 'VANISHED' }, [{ atom: 'EARLIER' }], { atom: vanished });
  let sent = 0;
  for (const c of changes.changed) {
    const seq = view.seqOf(c.uid);
    if (seq === 0) continue;
    ctx.untagged(seq, { atom: 'FETCH' }, [{ atom: 'UID' }, c.uid, { atom: 'FLAGS' }, flagList(c.flags), { atom: 'MODSEQ' }, [c.modseq]]);
    if (++sent % FETCH_BATCH === 0) await drainOutput(ctx);
  }
}

async function handle(ctx: CommandContext, cmd: ParsedCommand): Promise<CommandResult> {
  const readOnly = cmd.name === 'EXAMINE';
  const { session } = ctx;
  const account = session.account!;
  const name = mailboxArg(ctx, cmd.args[0]);
  const params = parseParams(cmd.args.slice(1));
  // RFC 7162 §3.2.5: the QRESYNC parameter needs ENABLE QRESYNC first.
  if (params.qresync && !session.enabled.has('QRESYNC')) {
    return { status: 'BAD', text: 'QRESYNC parameter without ENABLE QRESYNC' };
  }

  if (session.selected) {
    ctx.unselect();
    untaggedOk(ctx, 'CLOSED', 'Previous mailbox closed');
  }
  const folder: Folder | null = await findFolder(ctx, name);
  if (!folder) return { status: 'NO', code: 'NONEXISTENT', text: 'No such mailbox' };
  if (params.condstore) enableCondstore(session);

  const opened = await openSelectedMailbox({
    services: ctx.services,
    scope: account.scope,
    folder,
    readOnly,
    enabled: session.enabled,
    send: (...values) => ctx.untagged(...values),
    log: ctx.log,
  });
  const { view } = opened;
  try {
    // FLAGS lists the keywords in use too (RFC 9051 §7.3.5); later ones are announced as they appear.
    const flags = [...SYSTEM_FLAGS, ...view.keywords];
    ctx.untagged({ atom: 'FLAGS' }, flagList(flags));
    untaggedOk(ctx, `PERMANENTFLAGS ${readOnly ? '()' : `(${[...flags, '\\*'].join(' ')})`}`, readOnly ? 'No permanent flags permitted' : 'Flags permitted');
    ctx.untagged(view.uids.length, { atom: 'EXISTS' });
    if (!session.rev2) {
      // IMAP4rev1 (RFC 3501 §6.3.1): RECENT is required; \Recent is not kept (RFC 9051 Appendix E).
      ctx.untagged(0, { atom: 'RECENT' });
      if (opened.unseen > 0) {
        const seq = await firstUnseen(ctx, view);
        if (seq > 0) untaggedOk(ctx, `UNSEEN ${seq}`, `Message ${seq} is the first unseen`);
      }
    }
    untaggedOk(ctx, `UIDVALIDITY ${opened.uidValidity}`, 'UIDs valid');
    untaggedOk(ctx, `UIDNEXT ${opened.uidNext}`, 'Predicted next UID');
    untaggedOk(ctx, `HIGHESTMODSEQ ${opened.highestModseq}`, 'Highest');
    if (session.rev2) {
      // RFC 9051 §6.3.2: the LIST response tells the client the mailbox's canonical name.
      const attributes = folder.specialUse ? [{ atom: folder.specialUse }] : [];
      ctx.untagged({ atom: 'LIST' }, attributes, '/', mailboxOut(ctx, folder.name));
    }
    if (params.qresync && params.qresync.uidValidity === opened.uidValidity) {
      await announceResync(ctx, view, params.qresync, opened.uidNext);
    }
  } catch (err) {
    view.close();
    throw err;
  }
  ctx.select(view);
  return readOnly
    ? { status: 'OK', code: 'READ-ONLY', text: 'EXAMINE completed' }
    : { status: 'OK', code: 'READ-WRITE', text: 'SELECT completed' };
}

const select: CommandModule = {
  names: ['SELECT', 'EXAMINE'],
  states: ['authenticated', 'selected'],
  handle,
};

export default select;
