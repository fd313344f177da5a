/**
 * Deterministic, realistic small messages for the API benchmark: content `i` is always the same
 * (seeded PRNG), so runs are comparable. Each message also gets a number (in the Subject and the
 * Message-ID) and a Date in fixed-width fields, so `copyMessage` can re-number and re-date a parsed
 * message without moving any other byte (seed.ts relies on it).
 *
 * The mix (by share of messages):
 *  - 45 % plain English text/plain (quoted-printable or 7bit), 0.3–6 KB of text;
 *  - 12 % Japanese text/plain: ISO-2022-JP (7bit, RFC 1468 — still the most common Japanese mail
 *    encoding) or UTF-8 base64, RFC 2047 encoded subjects;
 *  - 25 % multipart/alternative text + HTML (newsletters, notifications), 2–20 KB;
 *  - 14 % multipart/mixed with one or two base64 attachments (PDF, PNG, CSV, DOCX-like) of 4–120 KB;
 *  -  4 % Japanese multipart/mixed with an attachment whose file name is RFC 2231 encoded.
 * About a third are replies (In-Reply-To/References); each has 1–3 Received fields, a Message-ID,
 * a Date and sometimes Cc. Addresses come from a fixed pool of 200 correspondents.
 */
import iconv from 'iconv-lite';

/** mulberry32: small, fast, good enough for test data; seeded per message. */
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

const WORDS = (
  'the project meeting report invoice schedule review update customer order delivery shipment account password ' +
  'quarterly budget forecast team release server database backup migration contract proposal agenda minutes ' +
  'please attached find regarding following confirm thanks regards tomorrow today next week monday friday ' +
  'price quote estimate payment receipt support ticket issue resolved pending approval manager sales office ' +
  'travel hotel flight booking reservation conference workshop training newsletter subscription offer discount'
).split(' ');

const JA_SENTENCES = [
  'お世話になっております。',
  '先日の打ち合わせの件でご連絡いたしました。',
  '添付の資料をご確認ください。',
  '来週の会議の日程を調整させていただけますでしょうか。',
  '請求書を送付いたしますので、ご査収のほどよろしくお願いいたします。',
  'ご不明な点がございましたら、お気軽にお問い合わせください。',
  '本日の出荷分について、配送状況をお知らせします。',
  '見積書の内容に変更がありましたので、再送いたします。',
  '引き続きどうぞよろしくお願い申し上げます。',
  'システムメンテナンスのお知らせです。',
  '東京都千代田区の新しい事務所に移転しました。',
  '四半期の売上報告をまとめました。',
];
const JA_SUBJECTS = ['会議の件', 'お見積りのご送付', '請求書送付のご案内', '出荷のお知らせ', '資料のご確認のお願い', 'メンテナンスのお知らせ', '打ち合わせ日程について', '議事録'];

const FIRST = ['Alice', 'Bob', 'Carol', 'Dave', 'Erin', 'Frank', 'Grace', 'Heidi', 'Ivan', 'Judy', 'Mallory', 'Niaj', 'Olivia', 'Peggy', 'Rupert', 'Sybil', 'Trent', 'Victor', 'Walter', 'Yuki'];
const LAST = ['Smith', 'Jones', 'Tanaka', 'Suzuki', 'Garcia', 'Müller', 'Rossi', 'Dubois', 'Kim', 'Nguyen'];
const DOMAINS = ['example.com', 'example.org', 'example.net', 'corp.example', 'shop.example', 'mail.example.jp'];
const JA_NAMES = ['山田 太郎', '佐藤 花子', '鈴木 一郎', '高橋 美咲', '田中 健'];

export interface Correspondent {
  name: string;
  address: string;
}

const CORRESPONDENTS: Correspondent[] = Array.from({ length: 200 }, (_, i) => {
  const first = FIRST[i % FIRST.length];
  const last = LAST[Math.floor(i / FIRST.length) % LAST.length];
  return { name: `${first} ${last}`, address: `${first.toLowerCase()}.${i}@${DOMAINS[i % DOMAINS.length]}` };
});

export type MessageKind = 'plain' | 'japanese' | 'alternative' | 'attachment' | 'japanese-attachment';

export interface GeneratedMessage {
  raw: Buffer;
  kind: MessageKind;
  /** Date header value, ms (whole seconds). */
  date: number;
  /** The 7-digit number in the Subject ("#0001234") and Message-ID ("<0001234.…>"). */
  number: number;
  /** Byte offsets of that number (7 ASCII digits) in `raw`. */
  numberOffsets: number[];
  /** Byte offsets of every date-time (31 ASCII characters, RFC 5322 §3.3) in the header. */
  dateOffsets: number[];
}

/** Fixed-width fields, so a copy with another number and date keeps every MIME byte offset. */
export const NUMBER_WIDTH = 7;
export const DATE_WIDTH = 31;

export function formatNumber(n: number): string {
  const s = String(n).padStart(NUMBER_WIDTH, '0');
  if (s.length !== NUMBER_WIDTH) throw new RangeError(`message number ${n} needs more than ${NUMBER_WIDTH} digits`);
  return s;
}

const CRLF = '\r\n';

function pick<T>(r: () => number, items: readonly T[]): T {
  return items[Math.floor(r() * items.length)];
}

/** Skewed towards small sizes (most mail is short, a few are long). */
function size(r: () => number, min: number, max: number): number {
  return Math.round(min + (max - min) * r() * r());
}

function englishText(r: () => number, bytes: number): string {
  const lines: string[] = [];
  let total = 0;
  while (total < bytes) {
    const n = 6 + Math.floor(r() * 10);
    const words = Array.from({ length: n }, () => pick(r, WORDS));
    words[0] = words[0][0].toUpperCase() + words[0].slice(1);
    const line = words.join(' ') + '.';
    lines.push(line);
    total += line.length + 2;
  }
  return lines.join(CRLF);
}

function japaneseText(r: () => number, chars: number): string {
  const out: string[] = [];
  let n = 0;
  while (n < chars) {
    const s = pick(r, JA_SENTENCES);
    out.push(s);
    n += s.length;
    if (r() < 0.3) out.push(CRLF);
  }
  return out.join('');
}

/** RFC 2045 §6.8: base64 in lines of 76 characters. */
function base64Lines(bytes: Buffer): string {
  const text = bytes.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += 76) lines.push(text.slice(i, i + 76));
  return lines.join(CRLF);
}

/** RFC 2045 §6.7 quoted-printable for ASCII text: only "=" needs escaping; lines are short already. */
function qp(text: string): string {
  return text.replace(/=/g, '=3D');
}

/** RFC 2047 encoded-word (B encoding) in UTF-8. */
function encodedWord(text: string): string {
  return `=?UTF-8?B?${Buffer.from(text, 'utf8').toString('base64')}?=`;
}

/**
 * ISO-2022-JP (RFC 1468) from text of ASCII and JIS X 0208 characters: EUC-JP's two bytes each
 * minus 0x80, between `ESC $ B` and `ESC ( B`.
 */
export function toIso2022jp(text: string): Buffer {
  const out: number[] = [];
  let kanji = false;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (code < 0x80) {
      if (kanji) out.push(0x1b, 0x28, 0x42);
      kanji = false;
      out.push(code);
      continue;
    }
    const euc = iconv.encode(ch, 'EUC-JP');
    if (euc.length !== 2 || euc[0] < 0xa1 || euc[1] < 0xa1) continue; // not JIS X 0208: dropped
    if (!kanji) out.push(0x1b, 0x24, 0x42);
    kanji = true;
    out.push(euc[0] - 0x80, euc[1] - 0x80);
  }
  if (kanji) out.push(0x1b, 0x28, 0x42);
  return Buffer.from(out);
}

function isoEncodedWord(text: string): string {
  return `=?ISO-2022-JP?B?${toIso2022jp(text).toString('base64')}?=`;
}

/** RFC 5322 §3.3 date-time, always 31 characters: "Tue, 14 Nov 2023 10:00:00 +0000". */
export function rfc5322Date(ms: number): string {
  // toUTCString pads the day to two digits; RFC 5322 prefers a numeric zone to "GMT".
  const s = new Date(ms).toUTCString().replace(/GMT$/, '+0000');
  if (s.length !== DATE_WIDTH) throw new RangeError(`unexpected date format ${s}`);
  return s;
}

function randomBytes(r: () => number, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4) {
    const v = (r() * 4294967296) >>> 0;
    out[i] = v & 0xff;
    if (i + 1 < n) out[i + 1] = (v >>> 8) & 0xff;
    if (i + 2 < n) out[i + 2] = (v >>> 16) & 0xff;
    if (i + 3 < n) out[i + 3] = v >>> 24;
  }
  return out;
}

const ATTACHMENTS = [
  { ext: 'pdf', type: 'application/pdf', magic: '%PDF-1.7\n' },
  { ext: 'png', type: 'image/png', magic: '\x89PNG\r\n\x1a\n' },
  { ext: 'csv', type: 'text/csv', magic: '' },
  { ext: 'docx', type: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', magic: 'PK\x03\x04' },
];

function attachmentPart(r: () => number, boundary: string, name: string, japaneseName = false): string {
  const kind = pick(r, ATTACHMENTS);
  const n = size(r, 4 * 1024, 120 * 1024);
  let body: Buffer;
  if (kind.ext === 'csv') {
    body = Buffer.from(Array.from({ length: Math.ceil(n / 40) }, (_, i) => `${i},${pick(r, WORDS)},${Math.floor(r() * 100000)}`).join('\r\n'));
  } else {
    body = Buffer.concat([Buffer.from(kind.magic, 'latin1'), randomBytes(r, n)]);
  }
  const filename = `${name}.${kind.ext}`;
  // RFC 2231 §4: a non-ASCII file name as an extended parameter value.
  const disposition = japaneseName
    ? `attachment; filename*=UTF-8''${encodeURIComponent(filename)}`
    : `attachment; filename="${filename}"`;
  return (
    `--${boundary}${CRLF}Content-Type: ${kind.type}; name="${japaneseName ? 'document.' + kind.ext : filename}"${CRLF}` +
    `Content-Disposition: ${disposition}${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}${base64Lines(body)}${CRLF}`
  );
}

function html(text: string, title: string): string {
  const paras = text
    .split(CRLF)
    .map((l) => `<p style="margin:0 0 12px 0;font-family:Arial,sans-serif">${l.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</p>`)
    .join(CRLF);
  return `<!DOCTYPE html>${CRLF}<html><head><meta charset="utf-8"><title>${title}</title></head>${CRLF}<body><table width="100%"><tr><td>${CRLF}${paras}${CRLF}<a href="https://news.example.com/unsubscribe?u=1">Unsubscribe</a></td></tr></table></body></html>`;
}

/**
 * Message content `i` (deterministic), numbered `number` and dated `dateMs` (rounded down to the
 * second). `copyMessage` re-numbers and re-dates it without changing any other byte.
 */
export function generateMessage(i: number, to: string, number: number, dateMs: number): GeneratedMessage {
  const r = prng(0x5eed0000 + i);
  const x = r();
  const kind: MessageKind = x < 0.45 ? 'plain' : x < 0.57 ? 'japanese' : x < 0.82 ? 'alternative' : x < 0.96 ? 'attachment' : 'japanese-attachment';
  const date = Math.floor(dateMs / 1000) * 1000;
  const dateText = rfc5322Date(date);
  const num = formatNumber(number);
  const from = pick(r, CORRESPONDENTS);
  const japanese = kind === 'japanese' || kind === 'japanese-attachment';
  const jaName = pick(r, JA_NAMES);
  const idDomain = from.address.split('@')[1];
  const headers: string[] = [];
  const hops = 1 + Math.floor(r() * 3);
  for (let h = 0; h < hops; h++) {
    headers.push(
      `Received: from mx${h + 1}.${idDomain} (mx${h + 1}.${idDomain} [192.0.2.${(i + h) % 250}])${CRLF}\tby mail.bench.test with ESMTPS id ${(i * 7919 + h).toString(36)}${CRLF}\tfor <${to}>; ${dateText}`,
    );
  }
  const fromHeader = japanese && r() < 0.7 ? `${isoEncodedWord(jaName)} <${from.address}>` : `"${from.name}" <${from.address}>`;
  headers.push(`From: ${fromHeader}`);
  headers.push(`To: ${to}`);
  if (r() < 0.25) headers.push(`Cc: ${pick(r, CORRESPONDENTS).address}, ${pick(r, CORRESPONDENTS).address}`);
  const reply = r() < 0.33;
  const baseSubject = japanese ? pick(r, JA_SUBJECTS) : `${pick(r, WORDS)} ${pick(r, WORDS)} ${pick(r, WORDS)}`;
  const subject = (reply ? (japanese ? 'Re: ' : 'RE: ') : '') + baseSubject;
  // The number stays outside any encoded-word, so it is plain ASCII in the raw header.
  const subjectField = japanese ? (r() < 0.5 ? isoEncodedWord(subject) : encodedWord(subject)) : subject;
  headers.push(`Subject: ${subjectField} #${num}`);
  headers.push(`Date: ${dateText}`);
  headers.push(`Message-ID: <${num}.${Math.floor(r() * 1e9).toString(36)}@${idDomain}>`);
  if (reply) {
    const parent = `<${Math.max(0, i - 1 - Math.floor(r() * 50)).toString(36)}.thread@${idDomain}>`;
    headers.push(`In-Reply-To: ${parent}`, `References: ${parent}`);
  }
  headers.push('MIME-Version: 1.0');

  let body: string | Buffer;
  if (kind === 'plain') {
    const text = englishText(r, size(r, 300, 6000));
    if (r() < 0.5) {
      headers.push('Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 7bit');
      body = text;
    } else {
      headers.push('Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable');
      body = qp(text);
    }
  } else if (kind === 'japanese') {
    const text = japaneseText(r, size(r, 100, 2000));
    if (r() < 0.6) {
      headers.push('Content-Type: text/plain; charset=ISO-2022-JP', 'Content-Transfer-Encoding: 7bit');
      body = toIso2022jp(text);
    } else {
      headers.push('Content-Type: text/plain; charset=UTF-8', 'Content-Transfer-Encoding: base64');
      body = base64Lines(Buffer.from(text, 'utf8'));
    }
  } else if (kind === 'alternative') {
    const b = `alt-${i.toString(36)}`;
    const text = englishText(r, size(r, 1000, 9000));
    headers.push(`Content-Type: multipart/alternative; boundary="${b}"`);
    body =
      `--${b}${CRLF}Content-Type: text/plain; charset=utf-8${CRLF}Content-Transfer-Encoding: quoted-printable${CRLF}${CRLF}${qp(text)}${CRLF}` +
      `--${b}${CRLF}Content-Type: text/html; charset=utf-8${CRLF}Content-Transfer-Encoding: quoted-printable${CRLF}${CRLF}${qp(html(text, subject))}${CRLF}--${b}--${CRLF}`;
  } else {
    const b = `mix-${i.toString(36)}`;
    headers.push(`Content-Type: multipart/mixed; boundary="${b}"`);
    const text = japanese ? japaneseText(r, size(r, 100, 800)) : englishText(r, size(r, 300, 3000));
    const textPart = japanese
      ? `--${b}${CRLF}Content-Type: text/plain; charset=UTF-8${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}${base64Lines(Buffer.from(text, 'utf8'))}${CRLF}`
      : `--${b}${CRLF}Content-Type: text/plain; charset=utf-8${CRLF}Content-Transfer-Encoding: quoted-printable${CRLF}${CRLF}${qp(text)}${CRLF}`;
    let parts = textPart + attachmentPart(r, b, japanese ? '見積書' : `report-${i % 1000}`, japanese);
    if (r() < 0.25) parts += attachmentPart(r, b, `appendix-${i % 100}`);
    body = `${parts}--${b}--${CRLF}`;
  }
  // Byte offsets of the fixed-width fields in the header block.
  const headText = headers.join(CRLF) + CRLF + CRLF;
  const offsetsOf = (needle: string, from = 0, limit = headText.length): number[] => {
    const out: number[] = [];
    for (let at = headText.indexOf(needle, from); at !== -1 && at < limit; at = headText.indexOf(needle, at + needle.length)) {
      out.push(Buffer.byteLength(headText.slice(0, at), 'utf8'));
    }
    return out;
  };
  const subjectAt = headText.indexOf(`\r\nSubject: `);
  const idAt = headText.indexOf(`\r\nMessage-ID: <`);
  const numberOffsets = [
    ...offsetsOf(`#${num}\r\n`, subjectAt).slice(0, 1).map((o) => o + 1),
    ...offsetsOf(`<${num}.`, idAt).slice(0, 1).map((o) => o + 1),
  ];
  const dateOffsets = offsetsOf(dateText);
  if (numberOffsets.length !== 2 || dateOffsets.length !== hops + 1) throw new Error(`message ${i}: fixed-width fields not found`);

  const head = Buffer.from(headText, 'utf8');
  const bodyBuf = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  return { raw: Buffer.concat([head, bodyBuf, Buffer.from(CRLF)]), kind, date, number, numberOffsets, dateOffsets };
}

/** The same message with another number and date: same length, same MIME structure offsets. */
export function copyMessage(template: GeneratedMessage, number: number, dateMs: number): GeneratedMessage {
  const raw = Buffer.from(template.raw);
  const date = Math.floor(dateMs / 1000) * 1000;
  const num = formatNumber(number);
  for (const o of template.numberOffsets) raw.write(num, o, 'latin1');
  const dateText = rfc5322Date(date);
  for (const o of template.dateOffsets) raw.write(dateText, o, 'latin1');
  return { ...template, raw, date, number };
}
