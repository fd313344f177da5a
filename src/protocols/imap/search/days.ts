/**
 * Days for the date keys of SEARCH. RFC 9051 §6.4.4 compares dates "disregarding time and
 * timezone": BEFORE/ON/SINCE use the internal date (kept in UTC, and shown as `+0000` by FETCH
 * INTERNALDATE), SENTBEFORE/SENTON/SENTSINCE the date written in the Date header, in the sender's
 * own zone. Days are 'YYYY-MM-DD' strings, which compare correctly as strings.
 */
import type { DateSearchField } from '../parser/types.js';

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** The UTC day of a timestamp. */
export function utcDay(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}`;
}

/** The day `n` days after (negative: before) a 'YYYY-MM-DD' day. */
export function addDays(day: string, n: number): string {
  const ms = Date.parse(`${day}T00:00:00Z`);
  return utcDay(ms + n * 86_400_000);
}

/**
 * The day as written in an RFC 5322 Date value (`Mon, 2 Nov 2026 10:00:00 -0500` → '2026-11-02'),
 * ignoring the time and zone; null when no date is recognisable. Two-digit years follow RFC 5322
 * §4.3 (obs-year: below 50 → 20xx, otherwise 19xx); three-digit years add 1900.
 */
export function writtenDay(value: string): string | null {
  const m = /(?:^|[\s,])(\d{1,2})\s+([A-Za-z]{3})[A-Za-z]*\.?\s+(\d{2,4})(?=\s|$)/.exec(value);
  if (!m) return null;
  const month = MONTHS.indexOf(m[2].toLowerCase());
  if (month < 0) return null;
  const day = Number(m[1]);
  let year = Number(m[3]);
  if (m[3].length === 2) year += year < 50 ? 2000 : 1900;
  else if (m[3].length === 3) year += 1900;
  if (day < 1 || day > 31) return null;
  return `${pad(year, 4)}-${pad(month + 1, 2)}-${pad(day, 2)}`;
}

/** BEFORE/ON/SINCE (and the SENT… forms) of one message day against the key's day. */
export function compareDay(field: DateSearchField, messageDay: string, keyDay: string): boolean {
  switch (field) {
    case 'BEFORE':
    case 'SENTBEFORE':
      return messageDay < keyDay;
    case 'ON':
    case 'SENTON':
      return messageDay === keyDay;
    case 'SINCE':
    case 'SENTSINCE':
      return messageDay >= keyDay;
  }
}

/**
 * The answer of a SENT… key when only the Date header's UTC instant is known: the written day is
 * that UTC day or the one before or after (zones span −12 h … +14 h). Undefined when the three
 * candidates disagree, i.e. the header has to be read.
 */
export function compareDayAround(field: DateSearchField, utc: string, keyDay: string): boolean | undefined {
  const answers = [addDays(utc, -1), utc, addDays(utc, 1)].map((d) => compareDay(field, d, keyDay));
  return answers.every((a) => a === answers[0]) ? answers[0] : undefined;
}
