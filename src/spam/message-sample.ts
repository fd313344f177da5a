/**
 * Reads the part of a message the built-in rules look at: its first `maxBytes` bytes (header and
 * the start of the body). The stream is destroyed as soon as that much has arrived, so a 25 MiB
 * message costs the rules no more than the sample.
 */
import type { MessageSource } from '../mail/message-source.js';

export interface RawSample {
  bytes: Buffer;
  /** The message is longer than the sample. */
  truncated: boolean;
}

export async function readMessageSample(source: MessageSource, maxBytes: number): Promise<RawSample> {
  const stream = source.open();
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of stream) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      const room = maxBytes - total;
      chunks.push(buf.length > room ? buf.subarray(0, room) : buf);
      total += Math.min(buf.length, room);
      if (total >= maxBytes) break; // leaving the loop destroys the stream
    }
  } finally {
    stream.destroy();
  }
  return { bytes: Buffer.concat(chunks, total), truncated: source.size > total };
}
