/**
 * STORE's arguments after the sequence set (RFC 9051 §6.4.6, RFC 7162 §3.1.3):
 *   [ "(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")" SP ] ["+" / "-"] "FLAGS" [".SILENT"] SP
 *   (flag-list / flag *(SP flag))
 */
import { ImapSyntaxError } from '../session/types.js';
import { asFlagList, asNumber } from './args.js';
import type { ImapToken, StoreMode, StoreRequest } from './types.js';

/** MODSEQs are 63-bit on the wire; MaiRust keeps them below 2^53 (encoder/types.ts). */
const MAX_MODSEQ = Number.MAX_SAFE_INTEGER;

/** `args`: the command's arguments without the leading sequence set (`cmd.args.slice(1)`). */
export function parseStoreRequest(args: ImapToken[]): StoreRequest {
  let i = 0;
  let unchangedSince: number | undefined;
  const first = args[0];
  if (first?.type === 'list') {
    unchangedSince = parseModifiers(first.items);
    i++;
  }
  const item = args[i];
  if (!item || item.type !== 'atom') throw new ImapSyntaxError('Expected FLAGS, +FLAGS or -FLAGS');
  const m = /^([+-]?)FLAGS(\.SILENT)?$/i.exec(item.value);
  if (!m) throw new ImapSyntaxError(`Unknown STORE data item '${item.value.slice(0, 40)}'`);
  const mode: StoreMode = m[1] === '+' ? 'add' : m[1] === '-' ? 'remove' : 'replace';
  const rest = args.slice(i + 1);
  if (rest.length === 0) throw new ImapSyntaxError('Missing flags');
  let flags: string[];
  if (rest.length === 1) flags = asFlagList(rest[0]);
  else {
    // `flag *(SP flag)` without parentheses: every one an atom flag.
    flags = rest.flatMap((t) => {
      if (t.type === 'list') throw new ImapSyntaxError('Invalid flag');
      return asFlagList(t);
    });
  }
  const request: StoreRequest = { mode, silent: m[2] !== undefined, flags };
  if (unchangedSince !== undefined) request.unchangedSince = unchangedSince;
  return request;
}

/** `(UNCHANGEDSINCE n)`; each modifier at most once (RFC 7162 §3.1.3 allows 0). */
function parseModifiers(items: ImapToken[]): number {
  if (items.length === 0) throw new ImapSyntaxError('Empty STORE modifier list');
  let unchangedSince: number | undefined;
  for (let k = 0; k < items.length; k += 2) {
    const name = items[k];
    if (name.type !== 'atom' || name.value.toUpperCase() !== 'UNCHANGEDSINCE') {
      throw new ImapSyntaxError('Unknown STORE modifier');
    }
    if (unchangedSince !== undefined) throw new ImapSyntaxError('UNCHANGEDSINCE given twice');
    unchangedSince = asNumber(items[k + 1], 'UNCHANGEDSINCE', MAX_MODSEQ);
  }
  return unchangedSince as number;
}
