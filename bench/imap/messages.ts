/**
 * The mail every server under test gets: deterministic from (seed, user, message number), so both
 * servers hold byte-identical mailboxes and every run of the benchmark stores the same bytes.
 *
 * Shapes, roughly as in a real mailbox: 55 % text/plain (7bit or quoted-printable), 30 %
 * multipart/alternative (text + HTML), 15 % multipart/mixed with one base64 attachment. Sizes are
 * drawn log-uniformly between 2 and 50 KiB (small mail is common, large mail rare; mean ≈ 15 KiB).
 * Subjects are 3–6 words of a fixed word list of 48, so SEARCH SUBJECT <word> hits about 10 % of a
 * mailbox, and the expected hits can be computed without the message (`subjectOf`).
 */

/** mulberry32: a tiny seeded PRNG; reproducibility matters here, not statistical quality. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes the run seed with a user and message number into one 32-bit seed. */
function mix(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) >>> 0;
  }
  return h >>> 0;
}

/** Subject words; all lower-case ASCII, none a substring of another (so the expected hits are exact). */
export const SUBJECT_WORDS = [
  'invoice', 'meeting', 'quarterly', 'roadmap', 'budget', 'holiday', 'release', 'migration',
  'contract', 'feedback', 'schedule', 'security', 'workshop', 'newsletter', 'proposal', 'deadline',
  'customer', 'shipment', 'payroll', 'training', 'database', 'backup', 'incident', 'renewal',
  'marketing', 'hiring', 'interview', 'conference', 'travel', 'expenses', 'approval', 'reminder',
  'dinner', 'birthday', 'kickoff', 'retrospective', 'prototype', 'analytics', 'forecast', 'vendor',
  'warranty', 'upgrade', 'outage', 'compliance', 'audit', 'onboarding', 'offsite', 'summary',
] as const;

const BODY_WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an they you ' +
  'were her she there been one all we their has would when if so no what up out who them some could more about into ' +
  'time only other new than then these two may first any like now my such make over our even most me state after ' +
  'also made many did must before back see through way where get much go well your know should down work year because ' +
  'come people just say each those take day good how long same very under three last never us while might great old ' +
  'please thanks regards attached report review team project client office update question answer plan monday friday'
).split(' ');

const NAMES = ['Alice Martin', 'Bob Tanaka', 'Carol Smith', 'Dave Müller', 'Erin Sato', 'Frank Li', 'Grace Kim', 'Heidi Novak'];
const DOMAINS = ['example.com', 'example.org', 'example.net', 'partner.test'];

export interface BenchMessage {
  /** The RFC 5322 message, CRLF line ends, 7-bit ASCII only (identical octets on both servers). */
  bytes: Buffer;
  subject: string;
  /** IMAP date-time for APPEND (RFC 9051 §9 `date-time`), so both servers store the same INTERNALDATE. */
  internalDate: string;
  /** Flags given at APPEND. */
  flags: string[];
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** A fixed start (not "now"), so the dates are part of what is reproducible. */
const BASE_TIME = Date.UTC(2025, 0, 1, 8, 0, 0);

function dates(index: number): { rfc5322: string; imap: string } {
  // One message every ~3 hours, ascending with the message number as delivery would order them.
  const d = new Date(BASE_TIME + index * 10_800_000 + (index % 7) * 61_000);
  const rfc5322 = `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
  const imap = `${pad(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
  return { rfc5322, imap };
}

/** The subject of message `index` of user `user`: its own PRNG stream, independent of the body. */
export function subjectOf(seed: number, user: number, index: number): string {
  const r = prng(mix(seed, user, index, 1));
  const n = 3 + Math.floor(r() * 4);
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(SUBJECT_WORDS[Math.floor(r() * SUBJECT_WORDS.length)]);
  const s = words.join(' ');
  return `${s[0].toUpperCase()}${s.slice(1)} #${index + 1}`;
}

function pick<T>(r: () => number, list: readonly T[]): T {
  return list[Math.floor(r() * list.length)];
}

/** Text of about `bytes` octets, wrapped at < 78 characters (RFC 5322 §2.1.1), CRLF line ends. */
function text(r: () => number, bytes: number): string {
  const lines: string[] = [];
  let size = 0;
  let line = '';
  while (size < bytes) {
    const w = pick(r, BODY_WORDS);
    if (line.length + w.length + 1 > 72) {
      lines.push(line);
      size += line.length + 2;
      line = r() < 0.08 ? '' : w; // an empty line now and then: paragraphs
      if (line === '') {
        lines.push('');
        size += 2;
        line = w;
      }
    } else {
      line = line ? `${line} ${w}` : w;
    }
  }
  if (line) lines.push(line);
  return lines.join('\r\n');
}

/** Quoted-printable of plain ASCII text: only "=" needs encoding, plus soft breaks are not needed (< 76). */
function quotedPrintable(s: string): string {
  return s.replace(/=/g, '=3D');
}

function base64Lines(data: Buffer): string {
  const b = data.toString('base64');
  const out: string[] = [];
  for (let i = 0; i < b.length; i += 76) out.push(b.slice(i, i + 76));
  return out.join('\r\n');
}

function html(r: () => number, bytes: number): string {
  const paragraphs: string[] = [];
  let size = 60;
  while (size < bytes) {
    const p = `<p>${text(r, 200 + Math.floor(r() * 400)).replace(/\r\n/g, ' ')}</p>`;
    paragraphs.push(p);
    size += p.length + 2;
  }
  return `<html><body>\r\n${paragraphs.join('\r\n')}\r\n</body></html>`;
}

/** Pseudo-binary attachment content (bytes from the PRNG). */
function binary(r: () => number, bytes: number): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i += 4) {
    const v = (r() * 4294967296) >>> 0;
    b[i] = v & 255;
    if (i + 1 < bytes) b[i + 1] = (v >>> 8) & 255;
    if (i + 2 < bytes) b[i + 2] = (v >>> 16) & 255;
    if (i + 3 < bytes) b[i + 3] = (v >>> 24) & 255;
  }
  return b;
}

/** Message `index` (0-based) of user `user`'s INBOX. */
export function benchMessage(seed: number, user: number, index: number, userAddress: string): BenchMessage {
  const r = prng(mix(seed, user, index, 2));
  // Log-uniform total size between 2 KiB and 50 KiB.
  const target = Math.round(2048 * Math.pow(25, r()));
  const from = pick(r, NAMES);
  const fromAddr = `${from.split(' ')[0].toLowerCase()}@${pick(r, DOMAINS)}`;
  const subject = subjectOf(seed, user, index);
  const { rfc5322, imap } = dates(index);
  const id = `<bench.${seed}.${user}.${index}@mairust.bench>`;
  // RFC 2047 for the non-ASCII display names, so the message itself stays 7-bit.
  const display = /^[\x20-\x7e]*$/.test(from) ? `"${from}"` : `=?UTF-8?B?${Buffer.from(from).toString('base64')}?=`;
  const header = [
    `Return-Path: <${fromAddr}>`,
    `Received: from mx.${fromAddr.split('@')[1]} (mx.${fromAddr.split('@')[1]} [192.0.2.${1 + (index % 250)}])`,
    `\tby mail.bench.test with ESMTPS id ${mix(seed, user, index).toString(36)}; ${rfc5322}`,
    `From: ${display} <${fromAddr}>`,
    `To: <${userAddress}>`,
    `Subject: ${subject}`,
    `Date: ${rfc5322}`,
    `Message-ID: ${id}`,
    ...(index > 0 && r() < 0.3 ? [`In-Reply-To: <bench.${seed}.${user}.${index - 1}@mairust.bench>`] : []),
    'MIME-Version: 1.0',
  ];
  const kind = r();
  let body: string;
  if (kind < 0.55) {
    const qp = r() < 0.3;
    header.push('Content-Type: text/plain; charset=us-ascii', `Content-Transfer-Encoding: ${qp ? 'quoted-printable' : '7bit'}`);
    const t = text(r, Math.max(200, target - 600));
    body = qp ? quotedPrintable(t) : t;
  } else if (kind < 0.85) {
    const boundary = `=_alt_${mix(seed, user, index, 3).toString(16)}`;
    header.push(`Content-Type: multipart/alternative; boundary="${boundary}"`);
    const half = Math.max(300, Math.floor((target - 900) / 2));
    body = [
      'This is a multi-part message in MIME format.',
      `--${boundary}`,
      'Content-Type: text/plain; charset=us-ascii',
      'Content-Transfer-Encoding: 7bit',
      '',
      text(r, Math.floor(half * 0.6)),
      `--${boundary}`,
      'Content-Type: text/html; charset=us-ascii',
      'Content-Transfer-Encoding: 7bit',
      '',
      html(r, Math.floor(half * 1.4)),
      `--${boundary}--`,
      '',
    ].join('\r\n');
  } else {
    const boundary = `=_mix_${mix(seed, user, index, 4).toString(16)}`;
    header.push(`Content-Type: multipart/mixed; boundary="${boundary}"`);
    const note = text(r, 300 + Math.floor(r() * 700));
    // base64 grows 4/3 (plus line ends): leave the rest of the target to the attachment.
    const attach = Math.max(256, Math.floor(((target - note.length - 900) * 3) / 4.1));
    const [name, type] = pick(r, [
      ['report.pdf', 'application/pdf'],
      ['photo.jpg', 'image/jpeg'],
      ['figures.xlsx', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'],
      ['archive.zip', 'application/zip'],
    ] as const);
    body = [
      'This is a multi-part message in MIME format.',
      `--${boundary}`,
      'Content-Type: text/plain; charset=us-ascii',
      'Content-Transfer-Encoding: 7bit',
      '',
      note,
      `--${boundary}`,
      `Content-Type: ${type}; name="${name}"`,
      `Content-Disposition: attachment; filename="${name}"`,
      'Content-Transfer-Encoding: base64',
      '',
      base64Lines(binary(r, attach)),
      `--${boundary}--`,
      '',
    ].join('\r\n');
  }
  const bytes = Buffer.from(`${header.join('\r\n')}\r\n\r\n${body}\r\n`, 'latin1');
  // About 70 % read already, a few flagged: SEARCH and FETCH FLAGS see a realistic mix.
  const flags: string[] = [];
  if (r() < 0.7) flags.push('\\Seen');
  if (r() < 0.05) flags.push('\\Flagged');
  return { bytes, subject, internalDate: imap, flags };
}

/** How many of user `user`'s `count` subjects contain `word` (IMAP SEARCH SUBJECT is a case-insensitive substring match, RFC 9051 §6.4.4). */
export function expectedSubjectHits(seed: number, user: number, count: number, word: string): number {
  const w = word.toLowerCase();
  let n = 0;
  for (let i = 0; i < count; i++) if (subjectOf(seed, user, i).toLowerCase().includes(w)) n++;
  return n;
}
