/**
 * Validation and literal-quoting of text search input. IMAP SEARCH text keys are case-insensitive
 * substring matches (RFC 9051 §6.4.4; RFC 3501 §6.4.4), so user input is never a query language
 * here: it is quoted so that neither FTS5 syntax (`"`, `*`, `OR`, `NEAR(`) nor LIKE wildcards
 * (`%`, `_`) mean anything but themselves.
 */

export type SearchField = 'any' | 'subject' | 'addresses' | 'body';
export const SEARCH_FIELDS: readonly SearchField[] = ['any', 'subject', 'addresses', 'body'];

/** Longest accepted query, in characters (code points). */
export const MAX_SEARCH_QUERY_CHARS = 1000;
export const DEFAULT_SEARCH_LIMIT = 1000;
export const MAX_SEARCH_LIMIT = 10_000;
/**
 * SQLite's trigram tokenizer cannot match a string shorter than one trigram, so shorter queries
 * (common in Japanese: 「会議」 is two characters) are answered with LIKE instead.
 */
export const TRIGRAM_MIN_CHARS = 3;

export type SearchQueryErrorCode = 'SEARCH_QUERY_TOO_LONG' | 'SEARCH_LIMIT_INVALID' | 'SEARCH_FIELD_INVALID';

export class SearchQueryError extends Error {
  constructor(
    readonly code: SearchQueryErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SearchQueryError';
  }
}

export interface ValidatedSearch {
  query: string;
  field: SearchField;
  limit: number;
  /** Length in code points, which is what the trigram tokenizer counts. */
  chars: number;
}

export function validateSearch(q: { query: string; field?: string; limit?: number }): ValidatedSearch {
  const chars = [...q.query].length;
  if (chars > MAX_SEARCH_QUERY_CHARS) {
    throw new SearchQueryError('SEARCH_QUERY_TOO_LONG', `search text is ${chars} characters; the limit is ${MAX_SEARCH_QUERY_CHARS}`);
  }
  const field = (q.field ?? 'any') as SearchField;
  if (!SEARCH_FIELDS.includes(field)) {
    throw new SearchQueryError('SEARCH_FIELD_INVALID', `search field must be one of ${SEARCH_FIELDS.join(', ')} (got ${String(q.field)})`);
  }
  const limit = q.limit ?? DEFAULT_SEARCH_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SEARCH_LIMIT) {
    throw new SearchQueryError('SEARCH_LIMIT_INVALID', `search limit must be an integer from 1 to ${MAX_SEARCH_LIMIT} (got ${limit})`);
  }
  return { query: q.query, field, limit, chars };
}

/**
 * The query as one FTS5 string (SQLite FTS5 §3.1: a string in double quotes, a double quote inside
 * it doubled). Inside a string every character is literal and the trigram tokenizer turns it into a
 * phrase of consecutive trigrams: a substring match.
 */
export function ftsPhrase(query: string): string {
  return `"${query.replaceAll('"', '""')}"`;
}

/** The escape character used with every LIKE/ILIKE pattern built by `likeContains`. */
export const LIKE_ESCAPE = '\\';

/** `%query%` with `%`, `_` and the escape character escaped, for `LIKE … ESCAPE '\'`. */
export function likeContains(query: string): string {
  return `%${query.replace(/[\\%_]/g, (c) => LIKE_ESCAPE + c)}%`;
}
