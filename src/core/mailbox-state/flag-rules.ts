/**
 * Flags and keywords (pure): classification, validation, normalisation and STORE operations.
 *
 * RFC 9051 §2.3.2: system flags start with "\" and are predefined; keywords are atoms defined by
 * clients. Flag names are compared case-insensitively; we store system flags in their canonical
 * spelling and keep the first spelling seen of each keyword.
 */
import { InvalidFlagError, LimitExceededError } from './errors.js';
import { MAX_KEYWORD_LENGTH, MAX_KEYWORDS_PER_ENTRY } from './limits.js';
import type { FlagOp } from './types.js';

/** The settable system flags, in the order they are stored. \Recent is gone in IMAP4rev2 (RFC 9051 §2.3.2). */
export const SYSTEM_FLAGS = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'] as const;
export type SystemFlag = (typeof SYSTEM_FLAGS)[number];

const CANONICAL = new Map<string, SystemFlag>(SYSTEM_FLAGS.map((f) => [f.toLowerCase(), f]));

/**
 * flag-keyword is an atom (RFC 9051 §9): ATOM-CHAR is any CHAR (%x01-7F) except atom-specials
 * "(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]". So printable ASCII minus those nine.
 */
const ATOM = /^[\x21-\x7e]+$/;
const ATOM_SPECIALS = /[(){%*"\\\]]/;

export interface FlagSet {
  flags: SystemFlag[];
  keywords: string[];
}

export function validateKeyword(keyword: string): string {
  if (typeof keyword !== 'string' || keyword.length === 0) throw new InvalidFlagError(String(keyword), 'empty');
  if (keyword.length > MAX_KEYWORD_LENGTH) throw new InvalidFlagError(keyword, `keywords are limited to ${MAX_KEYWORD_LENGTH} characters`);
  if (!ATOM.test(keyword) || ATOM_SPECIALS.test(keyword)) {
    throw new InvalidFlagError(keyword, 'a keyword is an IMAP atom: printable ASCII without spaces or ( ) { % * " \\ ] (RFC 9051 §9)');
  }
  return keyword;
}

/**
 * Splits user-supplied flags into system flags and keywords, validating and de-duplicating
 * (case-insensitively). Unknown "\Something" is refused: system flags are reserved (RFC 9051 §2.3.2).
 */
export function classifyFlags(input: readonly string[] = [], keywordsOnly: readonly string[] = []): FlagSet {
  const flags = new Set<SystemFlag>();
  const keywords = new Map<string, string>();
  for (const f of input) {
    if (typeof f === 'string' && f.startsWith('\\')) {
      const canonical = CANONICAL.get(f.toLowerCase());
      if (!canonical) throw new InvalidFlagError(f, `not a settable system flag (one of ${SYSTEM_FLAGS.join(' ')})`);
      flags.add(canonical);
    } else {
      addKeyword(keywords, validateKeyword(f));
    }
  }
  for (const k of keywordsOnly) addKeyword(keywords, validateKeyword(k));
  return { flags: sortSystem([...flags]), keywords: checkKeywordCount([...keywords.values()]) };
}

function addKeyword(map: Map<string, string>, keyword: string): void {
  const key = keyword.toLowerCase();
  if (!map.has(key)) map.set(key, keyword);
}

function checkKeywordCount(keywords: string[]): string[] {
  if (keywords.length > MAX_KEYWORDS_PER_ENTRY) {
    throw new LimitExceededError('keywords per message', MAX_KEYWORDS_PER_ENTRY);
  }
  return keywords;
}

function sortSystem(flags: SystemFlag[]): SystemFlag[] {
  return SYSTEM_FLAGS.filter((f) => flags.includes(f));
}

/** Applies a STORE-style operation; `changed` is false when the result equals the current state. */
export function applyFlagOp(current: FlagSet, op: FlagOp, change: FlagSet): FlagSet & { changed: boolean } {
  let flags: SystemFlag[];
  let keywords: string[];
  if (op === 'replace') {
    flags = change.flags;
    keywords = change.keywords;
  } else if (op === 'add') {
    flags = sortSystem([...new Set([...current.flags, ...change.flags])]);
    const map = new Map<string, string>();
    for (const k of [...current.keywords, ...change.keywords]) addKeyword(map, k);
    keywords = [...map.values()];
  } else {
    const drop = new Set(change.keywords.map((k) => k.toLowerCase()));
    flags = current.flags.filter((f) => !change.flags.includes(f));
    keywords = current.keywords.filter((k) => !drop.has(k.toLowerCase()));
  }
  checkKeywordCount(keywords);
  return { flags, keywords, changed: !sameFlagSet(current, { flags, keywords }) };
}

export function sameFlagSet(a: FlagSet, b: FlagSet): boolean {
  if (a.flags.length !== b.flags.length || a.keywords.length !== b.keywords.length) return false;
  if (a.flags.some((f) => !b.flags.includes(f))) return false;
  const bk = new Set(b.keywords.map((k) => k.toLowerCase()));
  return a.keywords.every((k) => bk.has(k.toLowerCase()));
}

/** The IMAP FLAGS view: system flags then keywords. */
export function imapFlags(set: FlagSet): string[] {
  return [...set.flags, ...set.keywords];
}

/** Parses a stored *_json list; a damaged value reads as empty rather than breaking a folder. */
export function parseList(json: string | null | undefined): string[] {
  if (!json) return [];
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

/** Reads the stored flags of an entry row back into a FlagSet. */
export function storedFlagSet(flagsJson: string, keywordsJson: string): FlagSet {
  const flags = parseList(flagsJson)
    .map((f) => CANONICAL.get(f.toLowerCase()))
    .filter((f): f is SystemFlag => f !== undefined);
  return { flags: sortSystem([...new Set(flags)]), keywords: parseList(keywordsJson) };
}

/**
 * A LIKE pattern matching a flags_json list that contains `flag` (JSON-encoded with its quotes,
 * so "\Seen" does not match "\SeenX"). Used with ESCAPE '!' so the backslash stays literal on both
 * SQLite and PostgreSQL (whose LIKE otherwise treats "\" as the escape character).
 */
export function flagLikePattern(flag: SystemFlag): string {
  return `%${JSON.stringify(flag)}%`;
}
