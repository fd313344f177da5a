/**
 * SEARCH over the selected folder (RFC 9051 §6.4.4): the key tree is evaluated over the folder's
 * entries page by page, so a search of 100 000 messages holds one page of entries at a time.
 *
 * Cheap keys (flags, UID, sequence number, size, dates, MODSEQ) read entry fields; SUBJECT, FROM,
 * TO, CC, BODY and TEXT ask the text index once per key (tenant-scoped, restricted to the folder);
 * BCC, HEADER, SENT… near a day boundary, and FROM/TO/CC confirmation read the header block of the
 * messages the cheap keys left undecided (see keys.ts), never a whole message.
 */
import type { Entry } from '../../../core/mailbox-state/index.js';
import type { Scope } from '../../../core/scope.js';
import type { SearchField } from '../../../core/search/query.js';
import { DEFAULT_MIME_LIMITS } from '../../../mail/mime/index.js';
import { loadMessageContents } from '../fetch/index.js';
import type { SearchKey, SequenceSet, TextSearchField } from '../parser/types.js';
import { SEARCH_TEXT_CAP, type MailAccessServices } from '../services.js';
import type { SelectedMailbox } from '../session/types.js';
import { DecodedHeader } from './header-text.js';
import { evaluateKey, usesSentDate, walkKeys, type IndexResult, type MessageFacts, type PreparedSearch } from './keys.js';

/** Entries read per page. */
export const SEARCH_PAGE = 1000;
/** Header blocks read at the same time. */
const HEADER_READS_IN_PARALLEL = 16;

export interface SearchInput {
  services: MailAccessServices;
  scope: Scope;
  view: SelectedMailbox;
  key: SearchKey;
  /** For OLDER/YOUNGER; default Date.now(). */
  now?: number;
}

export interface SearchOutcome {
  /** Matching UIDs the session knows, ascending. */
  uids: number[];
  /** MODSEQ of each match, parallel to `uids` (RFC 7162 §3.1.5: SEARCH … (MODSEQ n)). */
  modseqs: number[];
  /** Highest MODSEQ among the matches (0 when none). */
  highestModseq: number;
}

const INDEX_FIELD: Record<Exclude<TextSearchField, 'BCC'>, SearchField> = {
  SUBJECT: 'subject',
  FROM: 'addresses',
  TO: 'addresses',
  CC: 'addresses',
  BODY: 'body',
  TEXT: 'any',
};

/**
 * UIDs named by a seq or uid key. Unlike FETCH, a SEARCH key is a filter: numbers past the end
 * simply match nothing (no BAD for `SEARCH 1:*` in an empty folder).
 */
function keySet(view: SelectedMailbox, set: SequenceSet, byUid: boolean): Set<number> {
  // `$` and UID sets never throw (a UID range past the end names the UIDs that exist in it).
  if (set.kind === 'saved' || byUid) return new Set(view.resolve(set, byUid));
  const exists = view.uids.length;
  const out = new Set<number>();
  for (const range of set.ranges) {
    const from = range.from === '*' ? exists : range.from;
    const to = range.to === '*' ? exists : range.to;
    const lo = Math.max(1, Math.min(from, to));
    const hi = Math.min(exists, Math.max(from, to));
    for (let seq = lo; seq <= hi; seq++) out.add(view.uids[seq - 1]);
  }
  return out;
}

async function prepare(input: SearchInput): Promise<PreparedSearch> {
  const { services, scope, view, key } = input;
  const pre: PreparedSearch = { now: input.now ?? Date.now(), sets: new Map(), text: new Map() };
  const keys: SearchKey[] = [];
  walkKeys(key, (k) => keys.push(k));
  // One index query per distinct (field, text), however often the tree repeats it.
  const queries = new Map<string, Promise<IndexResult>>();
  for (const k of keys) {
    if (k.op === 'seq' || k.op === 'uid') pre.sets.set(k, keySet(view, k.set, k.op === 'uid'));
    if (k.op !== 'text' || k.field === 'BCC' || k.value === '') continue;
    const field = INDEX_FIELD[k.field];
    const id = `${field}\u0000${k.value}`;
    let query = queries.get(id);
    if (!query) {
      query = services
        .searchText(scope, { query: k.value, field, folderId: view.folder.id, folderSize: view.uids.length })
        .then((ids) => ({ ids: new Set(ids), complete: ids.length < SEARCH_TEXT_CAP }));
      queries.set(id, query);
    }
    pre.text.set(k, await query);
  }
  return pre;
}

/**
 * The UIDs worth reading entries for: when the whole key is, or is an AND containing, a seq/uid
 * key, only those; otherwise every UID of the view (null = page through the folder).
 */
function candidateUids(key: SearchKey, pre: PreparedSearch): number[] | null {
  const restricting = key.op === 'and' ? key.keys.find((k) => k.op === 'seq' || k.op === 'uid') : key.op === 'seq' || key.op === 'uid' ? key : undefined;
  const set = restricting ? pre.sets.get(restricting) : undefined;
  return set ? [...set].sort((a, b) => a - b) : null;
}

/** Pages of live entries the view knows, ascending by UID. */
async function* entryPages(input: SearchInput, candidates: number[] | null): AsyncGenerator<Entry[]> {
  const { services, scope, view } = input;
  const folderId = view.folder.id;
  const known = (e: Entry) => view.seqOf(e.uid) > 0 && !view.isPendingExpunge(e.uid);
  if (candidates) {
    for (let i = 0; i < candidates.length; i += SEARCH_PAGE) {
      const uids = candidates.slice(i, i + SEARCH_PAGE);
      const page = await services.state.listEntries(scope, folderId, { uids, limit: SEARCH_PAGE });
      yield page.filter(known);
    }
    return;
  }
  const last = view.uids.length > 0 ? view.uids[view.uids.length - 1] : 0;
  let afterUid = 0;
  while (afterUid < last) {
    const page = await services.state.listEntries(scope, folderId, { afterUid, limit: SEARCH_PAGE });
    if (page.length === 0) return;
    yield page.filter(known);
    afterUid = page[page.length - 1].uid;
  }
}

/** Reads and decodes the root header block of each message; null where it cannot be read. */
async function readHeaders(input: SearchInput, facts: MessageFacts[]): Promise<void> {
  const { services, scope } = input;
  const ids = [...new Set(facts.map((f) => f.entry.messageId))];
  const contents = await loadMessageContents(services.state, scope, ids);
  const headers = new Map<string, DecodedHeader | null>();
  for (let i = 0; i < ids.length; i += HEADER_READS_IN_PARALLEL) {
    await Promise.all(
      ids.slice(i, i + HEADER_READS_IN_PARALLEL).map(async (id) => {
        const content = contents.get(id);
        if (!content) return headers.set(id, null);
        try {
          const end = Math.min(content.structure.root.headerEnd, DEFAULT_MIME_LIMITS.maxHeaderBlockBytes);
          headers.set(id, new DecodedHeader(await content.read(0, end)));
        } catch (err) {
          input.services.logger.warn({ err, messageId: id }, 'IMAP SEARCH: header unreadable');
          headers.set(id, null);
        }
      }),
    );
  }
  for (const f of facts) f.header = headers.get(f.entry.messageId) ?? null;
}

export async function searchFolder(input: SearchInput): Promise<SearchOutcome> {
  const pre = await prepare(input);
  const needsSentAt = usesSentDate(input.key);
  const matches: { uid: number; modseq: number }[] = [];
  const accept = (e: Entry) => void matches.push({ uid: e.uid, modseq: e.modseq });
  for await (const page of entryPages(input, candidateUids(input.key, pre))) {
    if (page.length === 0) continue;
    const facts: MessageFacts[] = page.map((entry) => ({ entry }));
    if (needsSentAt) {
      const meta = await input.services.state.getMessageContents(input.scope, [...new Set(page.map((e) => e.messageId))]);
      for (const f of facts) f.sentAt = meta.get(f.entry.messageId)?.date ?? null;
    }
    const undecided: MessageFacts[] = [];
    for (const f of facts) {
      const v = evaluateKey(input.key, f, pre);
      if (v === true) accept(f.entry);
      else if (v === undefined) undecided.push(f);
    }
    if (undecided.length > 0) {
      await readHeaders(input, undecided);
      for (const f of undecided) if (evaluateKey(input.key, f, pre) === true) accept(f.entry);
    }
  }
  // Pages come in UID order, but a page's header-decided matches come after its cheap ones.
  matches.sort((a, b) => a.uid - b.uid);
  return {
    uids: matches.map((m) => m.uid),
    modseqs: matches.map((m) => m.modseq),
    highestModseq: matches.reduce((max, m) => Math.max(max, m.modseq), 0),
  };
}
