/**
 * Evaluation of one SEARCH key (RFC 9051 §6.4.4, RFC 3501 §6.4.4, RFC 5032, RFC 7162 §3.1.5) for
 * one message, in three-valued logic: `undefined` means "the header has to be read to tell".
 * The caller evaluates every message of a page with what is cheap (entry fields, text-index
 * results), reads the header blocks of the undecided messages only, and evaluates again. So
 * `FLAGGED HEADER X-Foo bar` reads no header of an unflagged message.
 */
import type { Entry } from '../../../core/mailbox-state/index.js';
import type { SearchKey } from '../parser/types.js';
import { compareDay, compareDayAround, utcDay, writtenDay } from './days.js';
import { containsText, type DecodedHeader } from './header-text.js';

export type Tri = boolean | undefined;

export interface MessageFacts {
  entry: Entry;
  /** Date header instant from the message metadata: undefined = not loaded, null = none. */
  sentAt?: number | null;
  /** The decoded header block: undefined = not read yet, null = unreadable (blob missing). */
  header?: DecodedHeader | null;
}

/** Text-index results of one text key (message ids); `complete` false when the index hit its limit. */
export interface IndexResult {
  ids: Set<string>;
  complete: boolean;
}

/** Per-search data computed once before messages are evaluated. */
export interface PreparedSearch {
  now: number;
  /** seq and uid keys, resolved to the UIDs they name. */
  sets: Map<SearchKey, Set<number>>;
  /** SUBJECT/FROM/TO/CC/BODY/TEXT keys with a non-empty value. */
  text: Map<SearchKey, IndexResult>;
}

const HEADER_OF: Record<string, string> = { FROM: 'from', TO: 'to', CC: 'cc', BCC: 'bcc', SUBJECT: 'subject' };

function hasFlag(entry: Entry, flag: string): boolean {
  const wanted = flag.toLowerCase();
  return entry.flags.some((f) => f.toLowerCase() === wanted);
}

function textKey(key: Extract<SearchKey, { op: 'text' }>, facts: MessageFacts, pre: PreparedSearch): Tri {
  if (key.value === '') return true;
  const { header } = facts;
  if (key.field === 'BCC') return header === undefined ? undefined : header !== null && header.fieldContains('bcc', key.value);
  const index = pre.text.get(key);
  const inIndex = index?.ids.has(facts.entry.messageId) ?? false;
  const complete = index?.complete ?? false;
  switch (key.field) {
    case 'SUBJECT':
      // The index holds the decoded subject: exact. Past its result limit, the header decides.
      if (inIndex) return true;
      if (complete) return false;
      return header === undefined ? undefined : header !== null && header.fieldContains('subject', key.value);
    case 'FROM':
    case 'TO':
    case 'CC':
      // The index keeps From, To and Cc in one column: a hit there is confirmed in the named field.
      if (!inIndex && complete) return false;
      return header === undefined ? undefined : header !== null && header.fieldContains(HEADER_OF[key.field], key.value);
    case 'BODY':
      return inIndex;
    case 'TEXT':
      // TEXT is header or body (RFC 9051 §6.4.4): the index covers subject, addresses and body;
      // every other header field is read.
      if (inIndex) return true;
      return header === undefined ? undefined : header !== null && containsText(header.text(), key.value);
  }
}

/** The day written in the Date header, when the header has been read and holds one. */
function writtenSentDay(facts: MessageFacts): string | null {
  return facts.header ? writtenDay(facts.header.first('date') ?? '') : null;
}

function dateKey(key: Extract<SearchKey, { op: 'date' }>, facts: MessageFacts): Tri {
  const { entry } = facts;
  if (key.field === 'BEFORE' || key.field === 'ON' || key.field === 'SINCE') {
    return compareDay(key.field, utcDay(entry.internalDate), key.date);
  }
  const written = writtenSentDay(facts);
  if (written) return compareDay(key.field, written, key.date);
  if (facts.header !== undefined) {
    // The header was read and its Date is missing or unreadable: the parsed instant, else the
    // internal date (what a message without a Date was "sent" at, as far as anyone knows).
    return compareDay(key.field, utcDay(facts.sentAt ?? entry.internalDate), key.date);
  }
  if (facts.sentAt === undefined) return undefined;
  if (facts.sentAt === null) return compareDay(key.field, utcDay(entry.internalDate), key.date);
  return compareDayAround(key.field, utcDay(facts.sentAt), key.date);
}

export function evaluateKey(key: SearchKey, facts: MessageFacts, pre: PreparedSearch): Tri {
  const { entry } = facts;
  switch (key.op) {
    case 'all':
      return true;
    case 'flag':
      return hasFlag(entry, key.flag) === key.set;
    case 'seq':
    case 'uid':
      return pre.sets.get(key)?.has(entry.uid) ?? false;
    case 'text':
      return textKey(key, facts, pre);
    case 'header':
      return facts.header === undefined ? undefined : facts.header !== null && facts.header.fieldContains(key.name, key.value);
    case 'date':
      return dateKey(key, facts);
    case 'size':
      return key.cmp === 'LARGER' ? entry.size > key.size : entry.size < key.size;
    case 'age': {
      // RFC 5032 §3: OLDER n = internal date more than n seconds ago; YOUNGER n = within them.
      const limit = pre.now - key.seconds * 1000;
      return key.cmp === 'OLDER' ? entry.internalDate <= limit : entry.internalDate > limit;
    }
    case 'modseq':
      return entry.modseq >= key.modseq;
    case 'not': {
      const v = evaluateKey(key.key, facts, pre);
      return v === undefined ? undefined : !v;
    }
    case 'or': {
      const a = evaluateKey(key.a, facts, pre);
      if (a === true) return true;
      const b = evaluateKey(key.b, facts, pre);
      if (b === true) return true;
      return a === false && b === false ? false : undefined;
    }
    case 'and': {
      let result: Tri = true;
      for (const k of key.keys) {
        const v = evaluateKey(k, facts, pre);
        if (v === false) return false;
        if (v === undefined) result = undefined;
      }
      return result;
    }
  }
}

/** Calls `visit` on every key of the tree. */
export function walkKeys(key: SearchKey, visit: (k: SearchKey) => void): void {
  visit(key);
  if (key.op === 'not') walkKeys(key.key, visit);
  else if (key.op === 'or') {
    walkKeys(key.a, visit);
    walkKeys(key.b, visit);
  } else if (key.op === 'and') for (const k of key.keys) walkKeys(k, visit);
}

/** The tree uses a SENT… key (message metadata is loaded for each page). */
export function usesSentDate(key: SearchKey): boolean {
  let found = false;
  walkKeys(key, (k) => {
    if (k.op === 'date' && k.field.startsWith('SENT')) found = true;
  });
  return found;
}

/** The tree uses the MODSEQ key (the result then carries `(MODSEQ n)`, RFC 7162 §3.1.5). */
export function usesModseq(key: SearchKey): boolean {
  let found = false;
  walkKeys(key, (k) => {
    if (k.op === 'modseq') found = true;
  });
  return found;
}
