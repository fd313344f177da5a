/**
 * SEARCH's arguments (RFC 9051 §6.4.4, §9 `search`; RFC 3501 §6.4.4 for NEW, OLD, RECENT…;
 * RFC 4731 RETURN; RFC 5182 `$`; RFC 7162 §3.1.5 MODSEQ; RFC 5032 OLDER/YOUNGER):
 *   [RETURN "(" [opt *(SP opt)] ")"] [CHARSET SP charset] search-key *(SP search-key)
 * Several keys are an AND; the result is a tree the evaluator (../search/) walks.
 */
import { ImapSyntaxError } from '../session/types.js';
import { asAstring, asAstringBytes, asNumber, isFlag } from './args.js';
import { parseSearchDate } from './dates.js';
import { parseSequenceSet } from './sequence-set.js';
import type { DateSearchField, ImapToken, SearchKey, SearchRequest, SearchReturnOption, TextSearchField } from './types.js';

/**
 * CHARSET names a charset other than UTF-8 and US-ASCII: not a syntax error but `NO [BADCHARSET
 * (UTF-8 US-ASCII)]` (RFC 9051 §6.4.4, §7.1).
 */
export class UnsupportedCharsetError extends Error {
  /** The charsets the server supports, for the BADCHARSET response code. */
  readonly supported = ['UTF-8', 'US-ASCII'] as const;
  constructor(readonly charset: string) {
    super(`Charset ${charset.slice(0, 40)} is not supported`);
    this.name = 'UnsupportedCharsetError';
  }
}

/** NOT, OR and parentheses nest; deeper than this is refused before the recursion gets costly. */
export const MAX_SEARCH_DEPTH = 64;
const MAX_NUMBER64 = Number.MAX_SAFE_INTEGER;
const RETURN_OPTIONS = new Set<SearchReturnOption>(['MIN', 'MAX', 'ALL', 'COUNT', 'SAVE']);

const FLAG_KEYS: Record<string, { flag: string; set: boolean }> = {
  ANSWERED: { flag: '\\Answered', set: true },
  DELETED: { flag: '\\Deleted', set: true },
  DRAFT: { flag: '\\Draft', set: true },
  FLAGGED: { flag: '\\Flagged', set: true },
  SEEN: { flag: '\\Seen', set: true },
  RECENT: { flag: '\\Recent', set: true },
  OLD: { flag: '\\Recent', set: false },
  UNANSWERED: { flag: '\\Answered', set: false },
  UNDELETED: { flag: '\\Deleted', set: false },
  UNDRAFT: { flag: '\\Draft', set: false },
  UNFLAGGED: { flag: '\\Flagged', set: false },
  UNSEEN: { flag: '\\Seen', set: false },
};
const TEXT_KEYS = new Set<TextSearchField>(['BCC', 'BODY', 'CC', 'FROM', 'SUBJECT', 'TEXT', 'TO']);
const DATE_KEYS = new Set<DateSearchField>(['BEFORE', 'ON', 'SINCE', 'SENTBEFORE', 'SENTON', 'SENTSINCE']);

/** Walks the argument tokens left to right. */
class Keys {
  i = 0;
  constructor(readonly tokens: ImapToken[]) {}
  next(what: string): ImapToken {
    const t = this.tokens[this.i++];
    if (!t) throw new ImapSyntaxError(`Missing ${what}`);
    return t;
  }
  get done(): boolean {
    return this.i >= this.tokens.length;
  }
}

/** `args`: all of SEARCH's (or UID SEARCH's) arguments. */
export function parseSearchRequest(args: ImapToken[]): SearchRequest {
  const keys = new Keys(args);
  let returnOptions: SearchReturnOption[] | undefined;
  if (isAtom(args[0], 'RETURN')) {
    keys.i++;
    returnOptions = parseReturnOptions(keys.next('RETURN options'));
  }
  // No CHARSET: US-ASCII (RFC 3501 §6.4.4). Strings are decoded as UTF-8 in every case: ASCII is
  // a subset, and a client that enabled UTF8=ACCEPT sends UTF-8 without CHARSET (RFC 6855 §3).
  let charset: SearchRequest['charset'] = 'US-ASCII';
  if (isAtom(args[keys.i], 'CHARSET')) {
    keys.i++;
    const name = asAstring(keys.next('charset name'), 'charset').toUpperCase();
    if (name === 'UTF-8' || name === 'UTF8') charset = 'UTF-8';
    else if (name !== 'US-ASCII' && name !== 'ASCII') throw new UnsupportedCharsetError(name);
  }
  if (keys.done) throw new ImapSyntaxError('Missing search key');
  const all: SearchKey[] = [];
  while (!keys.done) all.push(parseKey(keys, 0));
  const request: SearchRequest = { charset, key: all.length === 1 ? all[0] : { op: 'and', keys: all } };
  if (returnOptions) request.returnOptions = returnOptions;
  return request;
}

function isAtom(token: ImapToken | undefined, value: string): boolean {
  return token?.type === 'atom' && token.value.toUpperCase() === value;
}

/** RFC 4731 §3: an empty list means ALL; unknown options are a syntax error; repeats collapse. */
function parseReturnOptions(token: ImapToken): SearchReturnOption[] {
  if (token.type !== 'list') throw new ImapSyntaxError('Expected a list of RETURN options');
  if (token.items.length === 0) return ['ALL'];
  const out: SearchReturnOption[] = [];
  for (const item of token.items) {
    const name = item.type === 'atom' ? (item.value.toUpperCase() as SearchReturnOption) : null;
    if (!name || !RETURN_OPTIONS.has(name)) throw new ImapSyntaxError('Unknown RETURN option');
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

function parseKey(keys: Keys, depth: number): SearchKey {
  if (depth > MAX_SEARCH_DEPTH) throw new ImapSyntaxError(`Search keys nested too deeply (limit ${MAX_SEARCH_DEPTH})`);
  const t = keys.next('search key');
  if (t.type === 'list') {
    if (t.items.length === 0) throw new ImapSyntaxError('Empty search key list');
    const inner = new Keys(t.items);
    const all: SearchKey[] = [];
    while (!inner.done) all.push(parseKey(inner, depth + 1));
    return all.length === 1 ? all[0] : { op: 'and', keys: all };
  }
  if (t.type !== 'atom') throw new ImapSyntaxError('Expected a search key');
  const name = t.value.toUpperCase();
  const flag = FLAG_KEYS[name];
  if (flag) return { op: 'flag', flag: flag.flag, set: flag.set };
  if (TEXT_KEYS.has(name as TextSearchField)) return { op: 'text', field: name as TextSearchField, value: asAstring(keys.next(`${name} value`), name) };
  if (DATE_KEYS.has(name as DateSearchField)) {
    // date = date-text / DQUOTE date-text DQUOTE: an atom or a string.
    const date = asAstringBytes(keys.next(`${name} date`), name).toString('latin1');
    return { op: 'date', field: name as DateSearchField, date: parseSearchDate(date) };
  }
  switch (name) {
    case 'ALL':
      return { op: 'all' };
    case 'NEW': // RECENT UNSEEN
      return { op: 'and', keys: [{ op: 'flag', flag: '\\Recent', set: true }, { op: 'flag', flag: '\\Seen', set: false }] };
    case 'KEYWORD':
    case 'UNKEYWORD': {
      const keyword = keys.next('keyword');
      // flag-keyword = atom: a keyword, never a `\` system flag.
      if (keyword.type !== 'atom' || keyword.value.startsWith('\\') || !isFlag(keyword.value)) throw new ImapSyntaxError('Invalid keyword');
      return { op: 'flag', flag: keyword.value, set: name === 'KEYWORD' };
    }
    case 'HEADER': {
      const field = asAstring(keys.next('header field name'), 'HEADER');
      if (!/^[\x21-\x39\x3b-\x7e]+$/.test(field)) throw new ImapSyntaxError('Invalid header field name');
      return { op: 'header', name: field, value: asAstring(keys.next('HEADER value'), 'HEADER') };
    }
    case 'LARGER':
    case 'SMALLER':
      return { op: 'size', cmp: name, size: asNumber(keys.next(`${name} size`), name, MAX_NUMBER64) };
    case 'OLDER':
    case 'YOUNGER': {
      const seconds = asNumber(keys.next(`${name} interval`), name);
      if (seconds === 0) throw new ImapSyntaxError(`${name} needs a positive number of seconds`);
      return { op: 'age', cmp: name, seconds };
    }
    case 'UID': {
      const set = keys.next('UID set');
      if (set.type !== 'atom') throw new ImapSyntaxError('Expected a UID set');
      return { op: 'uid', set: parseSequenceSet(set.value) };
    }
    case 'MODSEQ':
      return parseModseq(keys);
    case 'NOT':
      return { op: 'not', key: parseKey(keys, depth + 1) };
    case 'OR': {
      const a = parseKey(keys, depth + 1);
      return { op: 'or', a, b: parseKey(keys, depth + 1) };
    }
  }
  // Anything starting like a sequence set is one (parseSequenceSet says precisely what is wrong).
  if (/^[0-9*$]/.test(t.value)) return { op: 'seq', set: parseSequenceSet(t.value) };
  throw new ImapSyntaxError(`Unknown search key '${t.value.slice(0, 40)}'`);
}

/**
 * MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer (RFC 7162 §3.1.5). entry-name
 * is a quoted `"/flags/<flag>"`, entry-type-req one of priv, shared, all; both are checked and
 * then ignored (per-flag MODSEQs are not kept).
 */
function parseModseq(keys: Keys): SearchKey {
  let t = keys.next('MODSEQ value');
  if (t.type === 'string') {
    const entry = t.value.toString('latin1');
    if (!/^\/flags\/\\?[^\x00-\x20\x7f-\xff(){%*"\\\]]+$/i.test(entry)) throw new ImapSyntaxError('Invalid MODSEQ entry name');
    const type = keys.next('MODSEQ entry type');
    if (type.type !== 'atom' || !['PRIV', 'SHARED', 'ALL'].includes(type.value.toUpperCase())) throw new ImapSyntaxError('Invalid MODSEQ entry type');
    t = keys.next('MODSEQ value');
  }
  return { op: 'modseq', modseq: asNumber(t, 'MODSEQ', MAX_NUMBER64) };
}
