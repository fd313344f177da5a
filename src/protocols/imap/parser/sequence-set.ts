/**
 * Sequence sets (RFC 9051 §9 `sequence-set`, §6.4.8 for UIDs; RFC 5182 §2 `$`): parsing what the
 * client sends and compressing UID lists for responses (COPYUID, ESEARCH ALL, VANISHED).
 */
import { ImapSyntaxError } from '../session/types.js';
import type { SeqNumber, SequenceSet } from './types.js';

const MAX_UINT32 = 0xffff_ffff;
/** A sequence set is one atom, itself bounded by the line limit; this keeps the result bounded too. */
const MAX_RANGES = 100_000;

/** `seq-number = nz-number / "*"`: 1 … 2^32-1 or `*`. */
function seqNumber(text: string, whole: string): SeqNumber {
  if (text === '*') return '*';
  if (!/^[0-9]+$/.test(text)) throw new ImapSyntaxError(`Invalid sequence set '${clip(whole)}'`);
  const significant = text.replace(/^0+(?=\d)/, '');
  if (significant.length > 10 || Number(significant) > MAX_UINT32) throw new ImapSyntaxError(`Number too large in sequence set '${clip(whole)}'`);
  const n = Number(significant);
  if (n === 0) throw new ImapSyntaxError(`0 is not a valid message number in '${clip(whole)}'`);
  return n;
}

/** Keeps error texts (echoed to the client) short. */
function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/**
 * `1,3:5,7:*`, `*`, `4:2` (= 2:4), or `$` (the saved search result). Ranges are kept as written;
 * resolving them against a mailbox is SelectedMailbox.resolve's job.
 */
export function parseSequenceSet(text: string): SequenceSet {
  if (text === '$') return { kind: 'saved' };
  if (text.length === 0) throw new ImapSyntaxError('Empty sequence set');
  const parts = text.split(',');
  if (parts.length > MAX_RANGES) throw new ImapSyntaxError('Sequence set too long');
  const ranges = parts.map((part) => {
    const colon = part.indexOf(':');
    if (colon < 0) {
      const n = seqNumber(part, text);
      return { from: n, to: n };
    }
    return { from: seqNumber(part.slice(0, colon), text), to: seqNumber(part.slice(colon + 1), text) };
  });
  return { kind: 'ranges', ranges };
}

/** True when `text` looks like a sequence set (digits, `*`, `:`, `,`, or `$`): SEARCH uses it to tell keys apart. */
export function looksLikeSequenceSet(text: string): boolean {
  return text === '$' || /^[0-9*][0-9*:,]*$/.test(text);
}

/**
 * Compresses numbers into the shortest sequence set: runs become ranges (`1:3,7`). The input may
 * be unordered or repeat numbers; the output is ascending. An empty list gives ''.
 */
export function formatSequenceSet(uids: readonly number[]): string {
  if (uids.length === 0) return '';
  let sorted = uids;
  for (let i = 1; i < uids.length; i++) {
    if (uids[i] <= uids[i - 1]) {
      sorted = [...uids].sort((a, b) => a - b);
      break;
    }
  }
  const out: string[] = [];
  let start = sorted[0];
  let prev = start;
  for (let i = 1; i <= sorted.length; i++) {
    const n = sorted[i];
    if (n === prev) continue;
    if (n === prev + 1) {
      prev = n;
      continue;
    }
    out.push(start === prev ? String(start) : `${start}:${prev}`);
    start = prev = n;
  }
  return out.join(',');
}
