/**
 * `--log-format=text` (SPEC §2 "Log format"): the JSON lines the logger produces, rewritten as one
 * readable line each for a developer's terminal:
 *
 *   12:34:56.789 INFO  [smtp] message accepted session_id=abc size=1234
 *
 * Written here instead of depending on pino-pretty: the transformation is a few lines and keeps
 * the production dependency tree small. Local time is used on purpose (a terminal, not a log
 * store); the JSON format is the one with full ISO 8601 UTC timestamps.
 */
import { Writable } from 'node:stream';

// Keys printed in fixed positions, or not at all, in the text line.
const POSITIONAL = new Set(['timestamp', 'level', 'component', 'message']);
// A bounded buffer: a single log line longer than this is flushed as-is rather than held.
const MAX_PENDING_CHARS = 1024 * 1024;

function clock(iso: unknown): string {
  const d = typeof iso === 'string' ? new Date(iso) : new Date();
  const t = Number.isNaN(d.getTime()) ? new Date() : d;
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}.${p(t.getMilliseconds(), 3)}`;
}

function renderValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v === null || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** One JSON log line → one text line (plus an indented stack trace when an error is attached). */
export function formatTextLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json; // not ours (or truncated): pass through untouched
  }
  const level = String(rec.level ?? '').toUpperCase().padEnd(5);
  const component = typeof rec.component === 'string' ? ` [${rec.component}]` : '';
  const message = typeof rec.message === 'string' && rec.message !== '' ? ` ${rec.message}` : '';
  let stack = '';
  const pairs: string[] = [];
  for (const [k, v] of Object.entries(rec)) {
    if (POSITIONAL.has(k)) continue;
    if (k === 'err' && v && typeof v === 'object') {
      const e = v as { message?: unknown; stack?: unknown };
      if (e.message !== rec.message) pairs.push(`err=${renderValue(e.message ?? '')}`);
      if (typeof e.stack === 'string') stack = '\n' + e.stack.split('\n').map((l) => `    ${l}`).join('\n');
      continue;
    }
    pairs.push(`${k}=${renderValue(v)}`);
  }
  return `${clock(rec.timestamp)} ${level}${component}${message}${pairs.length ? ' ' + pairs.join(' ') : ''}${stack}`;
}

/** A writable that pino writes JSON lines into and that writes text lines to `out`. */
export function createTextFormatStream(out: NodeJS.WritableStream): Writable {
  let pending = '';
  return new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _enc, done) {
      pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      let nl: number;
      let text = '';
      while ((nl = pending.indexOf('\n')) >= 0) {
        text += formatTextLine(pending.slice(0, nl)) + '\n';
        pending = pending.slice(nl + 1);
      }
      if (pending.length > MAX_PENDING_CHARS) {
        text += pending + '\n';
        pending = '';
      }
      if (text === '') return done();
      // Back-pressure without relying on write callbacks (sonic-boom destinations have none).
      if (out.write(text)) done();
      else out.once('drain', () => done());
    },
    final(done) {
      if (pending !== '') out.write(formatTextLine(pending) + '\n');
      pending = '';
      done();
    },
  });
}
