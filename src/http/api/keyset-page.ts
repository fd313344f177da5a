/**
 * Cursor pages (SPEC §11: `limit` ≤ 100, opaque `cursor`, `has_more`) over the tenancy services'
 * keyset lists, which return rows sorted by a natural key (name, e-mail, address) after an
 * exclusive `after` key.
 *
 * Most lists are exactly what the service returns for the caller's scope: one query of `limit + 1`
 * rows, the extra row only telling whether there is more. Some callers see a subset the service
 * cannot select for them — a domain admin sees the mailboxes, aliases and users of *their* domains,
 * a tenant admin no super-admin — so those rows are filtered after the query. The page is then
 * filled by reading further batches, and the work is bounded: at most SCAN_BUDGET rows are read per
 * request. If the budget runs out first the page is shorter than `limit` (possibly empty) with
 * `has_more: true` and a cursor after the last row *read*, so the next request continues from
 * there; keyset paging stays exact either way.
 */
import { decodeCursor, encodeCursor, pageOf } from './schemas.js';

/** Rows read per service call while filtering (the services allow up to 1000). */
export const SCAN_BATCH = 500;
/** Rows read at most per request while filtering. */
export const SCAN_BUDGET = 10_000;

export interface KeysetSource<R> {
  /** Up to `limit` rows with a key greater than `after`, in key order. */
  fetch(after: string | undefined, limit: number): Promise<R[]>;
  /** The row's sort key (what `after` compares with). */
  key(row: R): string;
  /** Only rows the caller may see; omit when `fetch` returns nothing else. */
  visible?(row: R): boolean;
}

export interface KeysetPage<O> {
  data: O[];
  pagination: { cursor: string | null; has_more: boolean };
}

function isKey(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 1024;
}

/** The key a request's `cursor` continues after; INVALID_REQUEST for a malformed cursor. */
export function cursorKey(cursor: string | undefined): string | undefined {
  return decodeCursor(cursor, isKey);
}

export async function keysetPage<R, O>(src: KeysetSource<R>, q: { cursor?: string; limit: number }, map: (row: R) => O): Promise<KeysetPage<O>> {
  const start = cursorKey(q.cursor);
  const visible = src.visible;
  if (!visible) return pageOf(await src.fetch(start, q.limit + 1), q.limit, src.key, map);

  const kept: R[] = [];
  let after = start;
  let read = 0;
  // Usually (almost) every row is visible: the first read is one page's worth, later ones larger.
  let want = q.limit + 1;
  while (read < SCAN_BUDGET) {
    const batch = await src.fetch(after, want);
    for (const row of batch) {
      read++;
      after = src.key(row);
      if (!visible(row)) continue;
      kept.push(row);
      if (kept.length > q.limit) return pageOf(kept, q.limit, src.key, map);
    }
    if (batch.length < want) return pageOf(kept, q.limit, src.key, map);
    want = SCAN_BATCH;
  }
  // Budget spent without filling the page: continue after the last row read.
  return { data: kept.map(map), pagination: { cursor: after === undefined ? null : encodeCursor(after), has_more: true } };
}
