/**
 * Built-in spam rules, used when rspamd is not configured or not reachable (SPEC §3.1 step 3).
 * Pure functions over a message sample (mime-sample.ts): each rule is a named symbol with a fixed
 * score, in the spirit of rspamd's and SpamAssassin's rules of the same kind, and the verdict is
 * their sum. They catch the blatant cases only — a real filter is rspamd.
 *
 * Not penalised: mail merely for its language or charset. No rule looks at which script a text is
 * in; "all caps" needs cased letters (Japanese has none), and Japanese full-width "！" counts like
 * "!" with the same thresholds.
 */
import { parseAddressHeader, type EmailAddress } from 'mailparser';
import { tryParseAddress } from '../core/tenancy/addresses.js';
import { htmlToText } from '../mail/preview.js';
import { decodeHeaderText, headerValue, partText, type MessageSample, type SampledPart } from './mime-sample.js';

/** Every built-in symbol and its score. */
export const BUILTIN_SYMBOLS = {
  /** The GTUBE test string (SpamAssassin's Generic Test for Unsolicited Bulk Email): always rejected. */
  GTUBE: 1000,
  /** No From field (RFC 5322 §3.6: required). */
  MISSING_FROM: 3,
  /** No Date field (RFC 5322 §3.6: required). */
  MISSING_DATE: 1.5,
  /** No Message-ID field (RFC 5322 §3.6.4: SHOULD be present; every real mailer adds one). */
  MISSING_MID: 1.5,
  /** A From field without a syntactically valid mailbox (RFC 5322 §3.4, §3.4.1). */
  FROM_INVALID: 3,
  /** A Subject in capitals only (at least MIN_CAPS_LETTERS cased letters). */
  SUBJ_ALL_CAPS: 2,
  /** A Subject with EXCLAIM_SUBJECT or more exclamation marks. */
  SUBJ_EXCESS_EXCLAIM: 1.5,
  /** A body with EXCLAIM_BODY_RUNS or more runs of three or more exclamation marks. */
  BODY_EXCESS_EXCLAIM: 1,
  /** HTML text but no text/plain alternative. */
  MIME_HTML_ONLY: 1,
  /** A body that is mostly a link to a bare IP address (phishing, bot-hosted payloads). */
  BODY_URL_IP_ONLY: 3.5,
  /** An attachment whose name ends in an executable extension (EXECUTABLE_EXTENSIONS). */
  MIME_EXE_ATTACHMENT: 6,
} as const;

export type BuiltinSymbol = keyof typeof BUILTIN_SYMBOLS;

export const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
export const MIN_CAPS_LETTERS = 10;
export const EXCLAIM_SUBJECT = 3;
export const EXCLAIM_BODY_RUNS = 3;
/** Visible characters besides the link(s) below which a body counts as "just a link". */
export const URL_ONLY_REST_CHARS = 40;
/** Windows runs these on a double click (or through the script host). */
export const EXECUTABLE_EXTENSIONS = ['exe', 'scr', 'js', 'vbs', 'bat', 'cmd', 'com', 'pif'] as const;

/** Text of the message as a reader sees it, from the first text parts of the sample. */
interface BodyText {
  /** Visible text (plain text, or HTML rendered as text). */
  visible: string;
  /** Link targets that are not visible text (HTML href attributes). */
  hrefs: string[];
}

function isAttachment(part: SampledPart): boolean {
  return part.disposition === 'attachment' || part.filenames.length > 0;
}

function textParts(sample: MessageSample, type: string): SampledPart[] {
  return sample.parts.filter((p) => p.contentType === type && !isAttachment(p));
}

// --- header rules ---------------------------------------------------------------------------

/** A mailbox address as RFC 5322 §3.4.1 allows it (quoted local parts and address literals too). */
export function isValidMailboxAddress(address: string): boolean {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return false;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (/^\[(?:\d{1,3}\.){3}\d{1,3}\]$|^\[IPv6:[0-9A-Fa-f:.]+\]$/.test(domain)) return true;
  // A quoted-string local part (§3.2.4) is valid however odd; the domain must still be one.
  const probeLocal = /^"(?:[^"\\\r\n]|\\.)*"$/.test(local) ? 'x' : local;
  return tryParseAddress(`${probeLocal}@${domain}`) !== null;
}

function flatten(list: EmailAddress[]): string[] {
  return list.flatMap((a) => (a.group ? flatten(a.group) : [a.address ?? '']));
}

function fromRules(sample: MessageSample, hit: (s: BuiltinSymbol) => void): void {
  const from = headerValue(sample.headers, 'from');
  if (sample.headerComplete) {
    if (from === null) hit('MISSING_FROM');
    if (headerValue(sample.headers, 'date') === null) hit('MISSING_DATE');
    if (headerValue(sample.headers, 'message-id') === null) hit('MISSING_MID');
  }
  if (from !== null) {
    let addresses: string[] = [];
    try {
      addresses = flatten(parseAddressHeader(from).value);
    } catch {
      addresses = [];
    }
    if (addresses.length === 0 || !addresses.every(isValidMailboxAddress)) hit('FROM_INVALID');
  }
}

function countExclamations(text: string): number {
  return (text.match(/[!！]/g) ?? []).length;
}

/** Capital letters only, ignoring reply/forward prefixes; needs MIN_CAPS_LETTERS cased letters. */
export function isAllCaps(subject: string): boolean {
  const text = subject.replace(/^(?:\s*(?:re|fwd?|aw|wg|sv|vs|tr)\s*(?:\[\d+\])?\s*[:：]\s*)+/i, '');
  let cased = 0;
  for (const ch of text) {
    if (ch.toLowerCase() === ch.toUpperCase()) continue; // not a cased letter (digits, kana, kanji…)
    if (ch !== ch.toUpperCase()) return false;
    cased++;
  }
  return cased >= MIN_CAPS_LETTERS;
}

function subjectRules(sample: MessageSample, hit: (s: BuiltinSymbol) => void): void {
  const raw = headerValue(sample.headers, 'subject');
  if (raw === null) return;
  const subject = decodeHeaderText(raw);
  if (isAllCaps(subject)) hit('SUBJ_ALL_CAPS');
  if (countExclamations(subject) >= EXCLAIM_SUBJECT) hit('SUBJ_EXCESS_EXCLAIM');
}

// --- body rules -----------------------------------------------------------------------------

function bodyText(sample: MessageSample): BodyText {
  const plain = textParts(sample, 'text/plain')[0];
  if (plain) return { visible: partText(plain), hrefs: [] };
  const html = textParts(sample, 'text/html')[0];
  if (!html) return { visible: '', hrefs: [] };
  const source = partText(html);
  const hrefs: string[] = [];
  for (const m of source.matchAll(/\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))/gi)) hrefs.push((m[1] ?? m[2] ?? m[3]).trim());
  return { visible: htmlToText(source), hrefs };
}

const URL_PATTERN = /\b(?:https?|ftp):\/\/[^\s<>"']+/gi;

/**
 * The URL's host is an IP address: dotted IPv4, an IPv6 literal, or the integer/hex forms
 * browsers also accept (http://3232235777/, http://0xC0A80001/) that hide an IPv4 address.
 */
export function hasIpHost(url: string): boolean {
  const m = /^[a-z]+:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^/?#:]*)/i.exec(url);
  if (!m) return false;
  const host = m[1].toLowerCase();
  return /^\[[0-9a-f:.]+\]$/.test(host) || /^(?:\d{1,3}\.){3}\d{1,3}\.?$/.test(host) || /^(?:\d{1,10}|0x[0-9a-f]{1,8})$/.test(host);
}

function nonSpace(text: string): number {
  return text.replace(/\s+/g, '').length;
}

/** Most of the visible text is link(s), and a link goes to a bare IP address. */
function isMostlyIpUrl(body: BodyText): boolean {
  const visibleUrls = body.visible.match(URL_PATTERN) ?? [];
  if (![...visibleUrls, ...body.hrefs].some(hasIpHost)) return false;
  const rest = nonSpace(body.visible.replace(URL_PATTERN, ''));
  const urlChars = visibleUrls.reduce((n, u) => n + u.length, 0);
  return rest <= URL_ONLY_REST_CHARS || urlChars >= rest;
}

function bodyRules(sample: MessageSample, hit: (s: BuiltinSymbol) => void): void {
  const body = bodyText(sample);
  if ((body.visible.match(/[!！]{3,}/g) ?? []).length >= EXCLAIM_BODY_RUNS) hit('BODY_EXCESS_EXCLAIM');
  if (isMostlyIpUrl(body)) hit('BODY_URL_IP_ONLY');
  if (textParts(sample, 'text/html').length > 0 && textParts(sample, 'text/plain').length === 0) hit('MIME_HTML_ONLY');
}

// --- GTUBE and attachments ------------------------------------------------------------------

function containsGtube(sample: MessageSample): boolean {
  return sample.parts.some((p) => p.body.includes(GTUBE) || (p.contentType.startsWith('text/') && partText(p).includes(GTUBE)));
}

/**
 * The extension Windows sees: trailing dots and spaces are ignored by the file system, so
 * "invoice.exe. " runs as invoice.exe; "invoice.pdf.exe" is an .exe.
 */
export function fileExtension(name: string): string {
  const trimmed = name.replace(/[.\s]+$/, '');
  const dot = trimmed.lastIndexOf('.');
  return dot < 0 ? '' : trimmed.slice(dot + 1).toLowerCase();
}

function hasExecutableAttachment(sample: MessageSample): boolean {
  const executable = new Set<string>(EXECUTABLE_EXTENSIONS);
  return sample.parts.some((p) => p.filenames.some((n) => executable.has(fileExtension(n))));
}

/** The symbols that match, with their scores. */
export function evaluateBuiltinRules(sample: MessageSample): Partial<Record<BuiltinSymbol, number>> {
  const symbols: Partial<Record<BuiltinSymbol, number>> = {};
  const hit = (s: BuiltinSymbol) => {
    symbols[s] = BUILTIN_SYMBOLS[s];
  };
  if (containsGtube(sample)) hit('GTUBE');
  fromRules(sample, hit);
  subjectRules(sample, hit);
  bodyRules(sample, hit);
  if (hasExecutableAttachment(sample)) hit('MIME_EXE_ATTACHMENT');
  return symbols;
}
