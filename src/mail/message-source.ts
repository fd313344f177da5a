/**
 * A received message that can be read more than once without holding it in memory: the pipeline
 * spools DATA once (memory for small messages, a temp file for large ones) and every stage that
 * needs the bytes (email authentication, spam check, storage) opens its own stream.
 */
import type { Readable } from 'node:stream';

export interface MessageSource {
  /** Size in bytes. */
  readonly size: number;
  /** A new stream over the whole message, from the first byte. */
  open(): Readable;
}
