/**
 * SEARCH and UID SEARCH (RFC 9051 §6.4.4, RFC 3501 §6.4.4) with ESEARCH result options (RFC 4731),
 * SEARCHRES (RFC 5182: RETURN (SAVE), `$`), WITHIN (RFC 5032) and the CONDSTORE MODSEQ key
 * (RFC 7162 §3.1.5). The evaluation itself is ../search/evaluate.ts.
 *
 * Result form:
 *  - an IMAP4rev1 client without RETURN gets `* SEARCH n…` [`(MODSEQ m)`];
 *  - with RETURN, or after ENABLE IMAP4rev2 (where ALL is the default option), `* ESEARCH (TAG
 *    "t") [UID] MIN/MAX/COUNT/ALL [MODSEQ m]`; `RETURN (SAVE)` alone answers nothing but the tag.
 */
import { SearchQueryError } from '../../../core/search/query.js';
import { formatSequenceSet } from '../parser/sequence-set.js';
import { parseSearchRequest } from '../parser/search-keys.js';
import type { ParsedCommand, SearchReturnOption } from '../parser/types.js';
import type { ImapValue } from '../encoder/types.js';
import { searchFolder } from '../search/evaluate.js';
import { usesModseq } from '../search/keys.js';
import type { CommandContext, CommandModule, CommandResult } from '../session/types.js';
import { enableCondstore, selectedState } from './_selected.js';

/** Numbers per `* SEARCH` line chunk written before the next (keeps single writes small). */
const NUMBERS_PER_CHUNK = 2000;

async function handle(ctx: CommandContext, cmd: ParsedCommand): Promise<CommandResult> {
  const byUid = cmd.name === 'UID SEARCH';
  const { view, account } = selectedState(ctx);
  const request = parseSearchRequest(cmd.args);
  const options = request.returnOptions;
  const save = options?.includes('SAVE') ?? false;
  const modseqKey = usesModseq(request.key);
  if (modseqKey) enableCondstore(ctx.session);

  let outcome;
  try {
    outcome = await searchFolder({ services: ctx.services, scope: account.scope, view, key: request.key });
  } catch (err) {
    // RFC 5182 §2.1: a failed SEARCH … RETURN (SAVE) leaves `$` empty.
    if (save) view.savedResult = [];
    if (err instanceof SearchQueryError) return { status: 'NO', code: 'LIMIT', text: err.message };
    throw err;
  }
  const { uids } = outcome;
  const numbers = byUid ? uids : uids.map((uid) => view.seqOf(uid));

  if (!options && !ctx.session.rev2) {
    writeClassic(ctx, numbers, modseqKey && uids.length > 0 ? outcome.highestModseq : null);
    return { status: 'OK', text: 'SEARCH completed' };
  }

  const wanted = new Set<SearchReturnOption>(options && options.length > 0 ? options : ['ALL']);
  const onlySave = wanted.size === 1 && save;
  if (save) {
    // RFC 5182 §2.1: with MIN/MAX but neither ALL nor COUNT, only the messages they return are saved.
    const minMaxOnly = (wanted.has('MIN') || wanted.has('MAX')) && !wanted.has('ALL') && !wanted.has('COUNT');
    view.savedResult = minMaxOnly
      ? [...new Set([wanted.has('MIN') ? uids[0] : undefined, wanted.has('MAX') ? uids[uids.length - 1] : undefined])].filter(
          (u): u is number => u !== undefined,
        )
      : uids;
  }
  if (!onlySave) {
    // RFC 7162 §3.1.5: the highest MODSEQ of the messages the response reports — all matches,
    // or with MIN/MAX alone just those two.
    let modseq = 0;
    if (modseqKey && uids.length > 0) {
      const all = wanted.has('ALL') || wanted.has('COUNT');
      modseq = all
        ? outcome.highestModseq
        : Math.max(wanted.has('MIN') ? outcome.modseqs[0] : 0, wanted.has('MAX') ? outcome.modseqs[uids.length - 1] : 0);
    }
    writeEsearch(ctx, cmd.tag, byUid, wanted, numbers, modseq);
  }
  return { status: 'OK', text: 'SEARCH completed' };
}

/** `* SEARCH 2 3 7 [(MODSEQ m)]` (RFC 9051 Appendix E keeps it for IMAP4rev1 clients). */
function writeClassic(ctx: CommandContext, numbers: number[], modseq: number | null): void {
  ctx.write('* SEARCH');
  for (let i = 0; i < numbers.length; i += NUMBERS_PER_CHUNK) {
    ctx.write(` ${numbers.slice(i, i + NUMBERS_PER_CHUNK).join(' ')}`);
  }
  // RFC 7162 §3.1.5: the highest MODSEQ of the matches, only when something matched.
  ctx.write(modseq !== null ? ` (MODSEQ ${modseq})\r\n` : '\r\n');
}

/**
 * `* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [COUNT n] [ALL set] [MODSEQ m]` (RFC 4731 §3.1):
 * MIN, MAX and ALL are left out when nothing matched; COUNT 0 is still sent. MODSEQ (RFC 7162
 * §3.1.5 with ESEARCH) is the highest of the matches, only when the MODSEQ key was used.
 */
function writeEsearch(ctx: CommandContext, tag: string, byUid: boolean, wanted: Set<SearchReturnOption>, numbers: number[], modseq: number): void {
  const values: ImapValue[] = [{ atom: 'ESEARCH' }, [{ atom: 'TAG' }, tag]];
  if (byUid) values.push({ atom: 'UID' });
  if (numbers.length > 0) {
    if (wanted.has('MIN')) values.push({ atom: 'MIN' }, numbers[0]);
    if (wanted.has('MAX')) values.push({ atom: 'MAX' }, numbers[numbers.length - 1]);
  }
  if (wanted.has('COUNT')) values.push({ atom: 'COUNT' }, numbers.length);
  if (numbers.length > 0 && wanted.has('ALL')) values.push({ atom: 'ALL' }, { atom: formatSequenceSet(numbers) });
  if (numbers.length > 0 && modseq > 0) values.push({ atom: 'MODSEQ' }, modseq);
  ctx.untagged(...values);
}

const search: CommandModule = {
  names: ['SEARCH', 'UID SEARCH'],
  states: ['selected'],
  handle,
};

export default search;
