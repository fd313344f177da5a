/**
 * Benchmark (not a test): throughput of the MIME structure parser (src/mail/mime) against
 * mailparser's simpleParser on the same 10 MiB multipart messages, in the same run.
 *
 *   node --import tsx bench/mime.ts [runs=5]
 *
 * Two deterministic inputs of 10 MiB each:
 *  - "attachments": multipart/mixed with a multipart/alternative (text + HTML), three base64
 *    attachments and a forwarded message/rfc822 — the shape of ordinary business mail;
 *  - "many parts": multipart/mixed with 200 groups of a multipart/alternative (text + HTML) and a
 *    base64 attachment, 801 parts in all — the per-part cost.
 * The structure parser is fed in 64 KiB chunks (as SMTP DATA arrives) and also given the whole
 * buffer; simpleParser gets the whole buffer. Each figure is the median (and the best) of `runs`
 * runs after one warm-up run. Results go to stdout as a Markdown table.
 */
import { cpus } from 'node:os';
import { simpleParser } from 'mailparser';
import { MimeStructureParser, parseMimeStructure, listParts } from '../src/mail/mime/index.js';

const RUNS = Number(process.argv[2] ?? 5);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`runs must be a positive integer (got ${process.argv[2]})`);
const TARGET = 10 * 1024 * 1024;
const CHUNK = 64 * 1024;

/** Deterministic pseudo-random numbers (mulberry32), so every run parses the same bytes. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(2024);

function randomBytes(n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(random() * 256);
  return out;
}

/** RFC 2045 §6.8: base64 in lines of 76 characters. */
function base64Lines(bytes: Buffer): string {
  const text = bytes.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += 76) lines.push(text.slice(i, i + 76));
  return lines.join('\r\n');
}

const SENTENCE = 'The quarterly figures are attached; please review them before the meeting on Thursday. 会議の前にご確認ください。';
const text = (lines: number) => Array.from({ length: lines }, () => SENTENCE).join('\r\n');

function attachmentsMessage(): Buffer {
  const attachment = (name: string, type: string, size: number) =>
    `--mix\r\nContent-Type: ${type}; name="${name}"\r\nContent-Disposition: attachment; filename="${name}"\r\n` +
    `Content-Transfer-Encoding: base64\r\n\r\n${base64Lines(randomBytes(size))}\r\n`;
  const head =
    'From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: Quarterly figures\r\nMIME-Version: 1.0\r\n' +
    'Content-Type: multipart/mixed; boundary="mix"\r\n\r\n' +
    '--mix\r\nContent-Type: multipart/alternative; boundary="alt"\r\n\r\n' +
    `--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${text(200)}\r\n` +
    `--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<p>${text(200)}</p>\r\n--alt--\r\n` +
    '--mix\r\nContent-Type: message/rfc822\r\n\r\nFrom: carol@example.com\r\nSubject: earlier figures\r\n' +
    `Content-Type: text/plain; charset=utf-8\r\n\r\n${text(100)}\r\n`;
  // Three attachments; base64 makes 4 characters of 3 bytes, plus CRLF after every 76.
  const budget = Math.floor((((TARGET - head.length) / 3) * 3 * 76) / 4 / 78);
  const body =
    head +
    attachment('figures.xlsx', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', budget) +
    attachment('slides.pdf', 'application/pdf', budget) +
    attachment('photo.jpg', 'image/jpeg', budget) +
    '--mix--\r\n';
  return Buffer.from(body);
}

function manyPartsMessage(): Buffer {
  // Each group: a multipart/alternative with 2 parts, plus one attachment (800 parts in all;
  // mailparser refuses more than 1 000 nodes).
  const groups = 200;
  const attachmentSize = Math.floor((TARGET / groups) * 0.7);
  let body = 'From: list@example.com\r\nSubject: Many parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="many"\r\n\r\n';
  for (let g = 0; g < groups; g++) {
    body +=
      `--many\r\nContent-Type: multipart/alternative; boundary="alt-${g}"\r\n\r\n` +
      `--alt-${g}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${text(3)}\r\n` +
      `--alt-${g}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>${text(3)}</p>\r\n--alt-${g}--\r\n` +
      `--many\r\nContent-Type: application/octet-stream; name="part-${g}.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
      `${base64Lines(randomBytes(attachmentSize))}\r\n`;
  }
  return Buffer.from(body + '--many--\r\n');
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
}

/** Median and best of `RUNS` timed runs after one warm-up run, in ms. */
async function time(fn: () => unknown | Promise<unknown>): Promise<{ median: number; best: number }> {
  await fn();
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return { median: median(samples), best: Math.min(...samples) };
}

function chunked(raw: Buffer): { parts: number; maxRetained: number } {
  const parser = new MimeStructureParser();
  let maxRetained = 0;
  for (let pos = 0; pos < raw.length; pos += CHUNK) {
    parser.write(raw.subarray(pos, pos + CHUNK));
    maxRetained = Math.max(maxRetained, parser.retainedBytes());
  }
  return { parts: listParts(parser.end().root).length, maxRetained };
}

const mbps = (bytes: number, ms: number) => (bytes / 1024 / 1024 / (ms / 1000)).toFixed(0);
const cell = (bytes: number, t: { median: number; best: number }) =>
  `${t.median.toFixed(1)} ms, ${mbps(bytes, t.median)} MiB/s (best ${mbps(bytes, t.best)})`;

console.log(`Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, median of ${RUNS} runs (best run in parentheses)\n`);
console.log('| input | size | parts | structure parser, 64 KiB chunks | structure parser, whole buffer | mailparser simpleParser | speed-up (median) | parser memory held (max) |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const [name, raw] of [
  ['attachments', attachmentsMessage()],
  ['many parts', manyPartsMessage()],
] as const) {
  const { parts, maxRetained } = chunked(raw);
  const tChunked = await time(() => chunked(raw));
  const tWhole = await time(() => parseMimeStructure(raw));
  const tMailparser = await time(() => simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true }));
  console.log(
    `| ${name} | ${(raw.length / 1024 / 1024).toFixed(1)} MiB | ${parts} | ${cell(raw.length, tChunked)} | ${cell(raw.length, tWhole)} | ` +
      `${cell(raw.length, tMailparser)} | ${(tMailparser.median / tChunked.median).toFixed(0)}× | ${maxRetained} B |`,
  );
}
