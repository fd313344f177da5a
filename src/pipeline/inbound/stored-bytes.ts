/**
 * The bytes that are stored for a received message: our prepended header fields (Received,
 * Authentication-Results, X-Spam-*), then the message exactly as it arrived except for the byte
 * ranges dropped by the header checks (forged Authentication-Results). Streamed, never assembled
 * in memory.
 */
import { Readable } from 'node:stream';
import type { MessageSource } from '../../mail/message-source.js';
import type { InboundMessage } from './message-context.js';

/** Drop ranges sorted and merged, clamped to [0, size]. */
export function normaliseRanges(ranges: readonly [number, number][], size: number): [number, number][] {
  const sorted = ranges
    .map(([a, b]): [number, number] => [Math.max(0, Math.min(a, size)), Math.max(0, Math.min(b, size))])
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

export function storedSize(prefix: Buffer, sourceSize: number, drop: readonly [number, number][]): number {
  const dropped = normaliseRanges(drop, sourceSize).reduce((n, [a, b]) => n + (b - a), 0);
  return prefix.length + sourceSize - dropped;
}

/** `prefix`, then the source's bytes outside `drop`. */
export async function* storedChunks(prefix: Buffer, source: MessageSource, drop: readonly [number, number][]): AsyncGenerator<Buffer> {
  if (prefix.length > 0) yield prefix;
  const ranges = normaliseRanges(drop, source.size);
  let pos = 0;
  let next = 0; // index of the first range that may still overlap what comes
  for await (const raw of source.open()) {
    const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw as Uint8Array);
    const start = pos;
    const end = pos + chunk.length;
    pos = end;
    let cursor = start;
    while (next < ranges.length && ranges[next][0] < end) {
      const [a, b] = ranges[next];
      if (a > cursor) yield chunk.subarray(cursor - start, a - start);
      cursor = Math.max(cursor, Math.min(b, end));
      if (b > end) break; // the range continues into the next chunk
      next++;
    }
    if (cursor < end) yield chunk.subarray(cursor - start);
  }
}

/** The stored bytes as a MessageSource (what the spam checker reads: the message as it will be stored). */
export function storedSource(prefix: Buffer, source: MessageSource, drop: readonly [number, number][]): MessageSource {
  return {
    size: storedSize(prefix, source.size, drop),
    open: () => Readable.from(storedChunks(prefix, source, drop)),
  };
}

const assembled = new WeakMap<InboundMessage, { prefix: string; bytes: Promise<Buffer> }>();

/**
 * The stored bytes with the header fields `prefix` (prependedText or signedText at the time of the
 * call) in one buffer, for the stages that need the whole message: pre_send, pre_receive,
 * pre_delivery, post_receive filters and DKIM signing. Read once per message and prefix: stages that
 * see the same prepended fields share one read; a stage after new fields were prepended reads again.
 */
export function storedBytesOf(msg: InboundMessage, prefix: string): Promise<Buffer> {
  const hit = assembled.get(msg);
  if (hit && hit.prefix === prefix) return hit.bytes;
  const bytes = (async () => {
    const parts: Buffer[] = [];
    for await (const c of storedChunks(Buffer.from(prefix, 'utf8'), msg.source!, msg.dropRanges)) parts.push(c);
    return Buffer.concat(parts);
  })();
  assembled.set(msg, { prefix, bytes });
  return bytes;
}
