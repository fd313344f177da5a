/**
 * FETCH's arguments after the sequence set (RFC 9051 §6.4.5, §9 `fetch`; RFC 3501 §6.4.5 for the
 * RFC822.* items; RFC 3516 §4.1 BINARY; RFC 7162 §3.1.4 / §3.2.6 modifiers; RFC 8514 SAVEDATE;
 * RFC 8474 EMAILID/THREADID):
 *   ("ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")")
 *   [SP "(" fetch-modifier *(SP fetch-modifier) ")"]
 */
import { ImapSyntaxError } from '../session/types.js';
import { asAstring, asNumber } from './args.js';
import type { FetchItem, FetchRequest, ImapToken, Partial, SectionSpec } from './types.js';

const MAX_MODSEQ = Number.MAX_SAFE_INTEGER;
const MAX_UINT32 = 0xffff_ffff;

/** RFC 9051 §6.4.5 macros: only on their own, never inside a list. */
const MACROS: Record<string, FetchItem[]> = {
  ALL: [{ kind: 'FLAGS' }, { kind: 'INTERNALDATE' }, { kind: 'RFC822.SIZE' }, { kind: 'ENVELOPE' }],
  FAST: [{ kind: 'FLAGS' }, { kind: 'INTERNALDATE' }, { kind: 'RFC822.SIZE' }],
  FULL: [{ kind: 'FLAGS' }, { kind: 'INTERNALDATE' }, { kind: 'RFC822.SIZE' }, { kind: 'ENVELOPE' }, { kind: 'BODY-STRUCTURE-SHORT' }],
};

/** Items that are a bare atom. */
const SIMPLE = new Set([
  'FLAGS', 'UID', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODYSTRUCTURE', 'MODSEQ',
  'RFC822', 'RFC822.HEADER', 'RFC822.TEXT', 'SAVEDATE', 'EMAILID', 'THREADID',
]);

/**
 * `args`: the command's arguments without the leading sequence set (`cmd.args.slice(1)`). For
 * UID FETCH the UID item is implied by the command; it is not added here (the handler does).
 */
export function parseFetchRequest(args: ImapToken[], opts: { uid: boolean }): FetchRequest {
  const spec = args[0];
  if (!spec) throw new ImapSyntaxError('Missing FETCH data items');
  if (args.length > 2) throw new ImapSyntaxError('Too many arguments to FETCH');
  let items: FetchItem[];
  if (spec.type === 'atom' && MACROS[spec.value.toUpperCase()]) {
    items = MACROS[spec.value.toUpperCase()].map((item) => ({ ...item }));
  } else if (spec.type === 'list') {
    if (spec.items.length === 0) throw new ImapSyntaxError('Empty FETCH data item list');
    items = spec.items.map(parseItem);
  } else {
    items = [parseItem(spec)];
  }
  const request: FetchRequest = { items };
  if (args.length === 2) parseModifiers(args[1], opts, request);
  return request;
}

function parseItem(token: ImapToken): FetchItem {
  if (token.type === 'atom') {
    const name = token.value.toUpperCase();
    if (SIMPLE.has(name)) return { kind: name } as FetchItem;
    if (name === 'BODY') return { kind: 'BODY-STRUCTURE-SHORT' };
    if (MACROS[name]) throw new ImapSyntaxError(`${name} is a macro and cannot be in a list`);
    throw new ImapSyntaxError(`Unknown FETCH data item '${token.value.slice(0, 40)}'`);
  }
  if (token.type === 'section') {
    const name = token.name.toUpperCase();
    if (name === 'BODY' || name === 'BODY.PEEK') {
      const item: FetchItem = { kind: 'BODY', peek: name === 'BODY.PEEK', section: parseSectionSpec(token.section) };
      const partial = parsePartial(token.partial);
      if (partial) item.partial = partial;
      return item;
    }
    if (name === 'BINARY' || name === 'BINARY.PEEK') {
      const item: FetchItem = { kind: 'BINARY', peek: name === 'BINARY.PEEK', part: parseBinaryPart(token.section) };
      const partial = parsePartial(token.partial);
      if (partial) item.partial = partial;
      return item;
    }
    if (name === 'BINARY.SIZE') {
      if (token.partial) throw new ImapSyntaxError('BINARY.SIZE takes no partial range');
      return { kind: 'BINARY.SIZE', part: parseBinaryPart(token.section) };
    }
  }
  throw new ImapSyntaxError('Invalid FETCH data item');
}

/** `<start.length>`: a request always names both (RFC 9051 §9 `partial`); a length of 0 is allowed. */
function parsePartial(raw: number[] | undefined): Partial | undefined {
  if (!raw) return undefined;
  if (raw.length !== 2) throw new ImapSyntaxError('A partial range needs <start.length>');
  return { start: raw[0], length: raw[1] };
}

/** `nz-number *("." nz-number)` segments at the start of a section, each 1 … 2^32-1 without leading zeros. */
function partNumber(segment: string): number | null {
  if (!/^[1-9][0-9]*$/.test(segment)) return null;
  if (segment.length > 10 || Number(segment) > MAX_UINT32) throw new ImapSyntaxError('Part number too large');
  return Number(segment);
}

/**
 * section-spec = section-msgtext / (section-part ["." section-text]); section-msgtext = "HEADER" /
 * "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"; section-text = section-msgtext / "MIME".
 */
export function parseSectionSpec(tokens: ImapToken[]): SectionSpec {
  if (tokens.length === 0) return { part: [] };
  const head = tokens[0];
  if (head.type !== 'atom') throw new ImapSyntaxError('Invalid section');
  const segments = head.value.split('.');
  const part: number[] = [];
  let k = 0;
  for (; k < segments.length; k++) {
    const n = partNumber(segments[k]);
    if (n === null) break;
    part.push(n);
  }
  const text = segments.slice(k).join('.').toUpperCase();
  if (k === segments.length) {
    // Only a part number (`1.2`).
    if (tokens.length > 1) throw new ImapSyntaxError('Invalid section');
    return { part };
  }
  if (text === 'HEADER' || text === 'TEXT' || text === 'MIME') {
    if (tokens.length > 1) throw new ImapSyntaxError('Invalid section');
    if (text === 'MIME' && part.length === 0) throw new ImapSyntaxError('MIME needs a part number');
    return { part, text };
  }
  if (text === 'HEADER.FIELDS' || text === 'HEADER.FIELDS.NOT') {
    const list = tokens[1];
    if (tokens.length !== 2 || !list || list.type !== 'list' || list.items.length === 0) {
      throw new ImapSyntaxError(`${text} needs a list of header field names`);
    }
    const fields = list.items.map((t) => {
      const name = asAstring(t, 'header field name');
      // RFC 5322 §3.6.8 field-name: printable US-ASCII except ":".
      if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) throw new ImapSyntaxError('Invalid header field name');
      return name.toUpperCase();
    });
    return { part, text, fields };
  }
  throw new ImapSyntaxError(`Invalid section '${head.value.slice(0, 40)}'`);
}

/** section-binary = "[" [section-part] "]" (RFC 3516 §4.1). */
function parseBinaryPart(tokens: ImapToken[]): number[] {
  if (tokens.length === 0) return [];
  const head = tokens[0];
  if (tokens.length > 1 || head.type !== 'atom') throw new ImapSyntaxError('Invalid BINARY section');
  return head.value.split('.').map((s) => {
    const n = partNumber(s);
    if (n === null) throw new ImapSyntaxError('Invalid BINARY section');
    return n;
  });
}

/**
 * `(CHANGEDSINCE n [VANISHED])` in any order (RFC 7162 §3.1.4, §3.2.6). VANISHED only with UID
 * FETCH and only with CHANGEDSINCE. CHANGEDSINCE 0 is accepted (every message has a larger MODSEQ).
 */
function parseModifiers(token: ImapToken, opts: { uid: boolean }, request: FetchRequest): void {
  if (token.type !== 'list' || token.items.length === 0) throw new ImapSyntaxError('Expected a FETCH modifier list');
  const items = token.items;
  for (let k = 0; k < items.length; k++) {
    const t = items[k];
    const name = t.type === 'atom' ? t.value.toUpperCase() : '';
    if (name === 'CHANGEDSINCE') {
      if (request.changedSince !== undefined) throw new ImapSyntaxError('CHANGEDSINCE given twice');
      request.changedSince = asNumber(items[++k], 'CHANGEDSINCE', MAX_MODSEQ);
    } else if (name === 'VANISHED') {
      if (request.vanished) throw new ImapSyntaxError('VANISHED given twice');
      request.vanished = true;
    } else {
      throw new ImapSyntaxError('Unknown FETCH modifier');
    }
  }
  if (request.vanished && !opts.uid) throw new ImapSyntaxError('VANISHED is only allowed with UID FETCH');
  if (request.vanished && request.changedSince === undefined) throw new ImapSyntaxError('VANISHED needs CHANGEDSINCE');
}
