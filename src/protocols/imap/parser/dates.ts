/**
 * IMAP dates (RFC 9051 §9): `date-time` of APPEND and INTERNALDATE (`"17-Jul-1996 02:44:25 -0700"`)
 * and the zone-less `date` of SEARCH (`1-Feb-1994`). Strict: a malformed or impossible date is a
 * syntax error, never a silently shifted Date.
 */
import { ImapSyntaxError } from '../session/types.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH_INDEX = new Map(MONTHS.map((m, i) => [m.toUpperCase(), i]));

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  return month === 1 && isLeap(year) ? 29 : DAYS_IN_MONTH[month];
}

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** Day, month (0-based) and year, checked to name a real day. */
function checkDay(day: number, monthName: string, year: number, text: string): number {
  const month = MONTH_INDEX.get(monthName.toUpperCase());
  if (month === undefined) throw new ImapSyntaxError(`Invalid month in date '${text}'`);
  if (day < 1 || day > daysInMonth(year, month)) throw new ImapSyntaxError(`Invalid day in date '${text}'`);
  return month;
}

/** Milliseconds since the epoch of a UTC calendar time (Date.UTC would map years 0–99 to 19xx). */
function utc(year: number, month: number, day: number, h = 0, m = 0, s = 0): number {
  const d = new Date(Date.UTC(2000, month, day, h, m, s));
  d.setUTCFullYear(year);
  return d.getTime();
}

const DATE_TIME = /^([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})$/;

/**
 * `date-time` without its DQUOTEs: `dd-Mon-yyyy hh:mm:ss ±hhmm`, the day either two digits or
 * space-padded (`date-day-fixed`). Returns milliseconds since the epoch.
 */
export function parseDateTime(text: string): number {
  const m = DATE_TIME.exec(text);
  if (!m) throw new ImapSyntaxError(`Invalid date-time '${clip(text)}'`);
  const day = Number(m[1].trim());
  const year = Number(m[3]);
  const month = checkDay(day, m[2], year, text);
  const [hour, minute, second] = [Number(m[4]), Number(m[5]), Number(m[6])];
  // Second 60 is a leap second (RFC 5322 §3.3 allows it); it counts as the next second.
  if (hour > 23 || minute > 59 || second > 60) throw new ImapSyntaxError(`Invalid time in date-time '${clip(text)}'`);
  const zoneHours = Number(m[8]);
  const zoneMinutes = Number(m[9]);
  if (zoneMinutes > 59) throw new ImapSyntaxError(`Invalid zone in date-time '${clip(text)}'`);
  const offset = (m[7] === '-' ? -1 : 1) * (zoneHours * 60 + zoneMinutes) * 60_000;
  return utc(year, month, day, hour, minute, second) - offset;
}

/** `dd-Mon-yyyy hh:mm:ss +0000` (UTC) for INTERNALDATE responses, without the DQUOTEs. */
export function formatDateTime(ms: number): string {
  const d = new Date(ms);
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${p2(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${String(d.getUTCFullYear()).padStart(4, '0')} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000`;
}

const SEARCH_DATE = /^([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})$/;

/** SEARCH `date-text` (`1-Feb-1994`, day 1 or 2 digits) → 'YYYY-MM-DD' (no time, no zone). */
export function parseSearchDate(text: string): string {
  const m = SEARCH_DATE.exec(text);
  if (!m) throw new ImapSyntaxError(`Invalid date '${clip(text)}'`);
  const day = Number(m[1]);
  const year = Number(m[3]);
  const month = checkDay(day, m[2], year, text);
  return `${m[3]}-${String(month + 1).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
