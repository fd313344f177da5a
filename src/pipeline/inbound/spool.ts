/**
 * The DATA spool: holds one received message while the pipeline checks it, so every stage that
 * needs the bytes (email authentication, spam check, storage) can read them again without keeping
 * a large message in memory.
 *
 * Small messages stay in memory; once a message passes `memoryThreshold` bytes it moves to a temp
 * file. The spool is not the durable copy (the blob store is, SPEC §3.1 step 6), so nothing is
 * fsync'ed; it is removed after every outcome by `dispose()`. The size limit is enforced while the
 * bytes arrive, so an oversized message never fills memory or disk.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { MessageSource } from '../../mail/message-source.js';

/** The message grew past the pipeline's size limit (RFC 1870 §6: 552 5.3.4). */
export class MessageTooLargeError extends Error {
  readonly code = 'MESSAGE_TOO_LARGE';
  constructor(readonly limit: number) {
    super(`message exceeds the maximum size of ${limit} bytes`);
    this.name = 'MessageTooLargeError';
  }
}

export interface SpoolOptions {
  /** Directory for temp files (created on first use). */
  dir: string;
  /** Bytes kept in memory before the spool moves to a file. */
  memoryThreshold: number;
  /** Largest message accepted; one byte more throws MessageTooLargeError. */
  maxBytes: number;
}

/** A finished spool: the message, readable any number of times until `dispose()`. */
export interface SpooledMessage extends MessageSource {
  /** Hex SHA-256 of the received bytes (for the log line and duplicate detection). */
  readonly sha256: string;
  /** Whether the bytes are in a temp file (true) or in memory. */
  readonly onDisk: boolean;
  /** The first `max` bytes (or the whole message if shorter). */
  head(max: number): Promise<Buffer>;
  /** The whole message in one Buffer (bounded by the spool's maxBytes). */
  readAll(): Promise<Buffer>;
  /** Removes the temp file; idempotent. */
  dispose(): Promise<void>;
}

/** Largest read issued against the spool file (keeps every read bounded). */
const READ_CHUNK = 64 * 1024;

export class MessageSpool {
  private readonly chunks: Buffer[] = [];
  private readonly hash = createHash('sha256');
  private size = 0;
  private file: { path: string; handle: FileHandle } | null = null;
  private path: string | null = null;
  private finished = false;

  constructor(private readonly opts: SpoolOptions) {}

  /** Appends a chunk; throws MessageTooLargeError once the total passes `maxBytes`. */
  async write(chunk: Buffer): Promise<void> {
    if (this.finished) throw new Error('spool already finished');
    if (this.size + chunk.length > this.opts.maxBytes) throw new MessageTooLargeError(this.opts.maxBytes);
    this.size += chunk.length;
    this.hash.update(chunk);
    if (this.file) {
      await writeFully(this.file.handle, chunk);
      return;
    }
    this.chunks.push(chunk);
    if (this.size > this.opts.memoryThreshold) await this.spill();
  }

  /** Moves what is in memory to a new temp file; later writes append to it. */
  private async spill(): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true, mode: 0o700 });
    const path = join(this.opts.dir, `spool-${randomUUID()}.eml`);
    // Recorded before the open so `discard()` removes the file even if the open half-succeeded.
    this.path = path;
    const handle = await open(path, 'wx', 0o600);
    this.file = { path, handle };
    for (const c of this.chunks.splice(0)) await writeFully(handle, c);
  }

  /** Ends writing and returns the readable message. */
  async finish(): Promise<SpooledMessage> {
    this.finished = true;
    if (this.file) {
      await this.file.handle.close();
      this.file = null;
    }
    const sha256 = this.hash.digest('hex');
    const size = this.size;
    if (this.path) return fileMessage(this.path, size, sha256);
    return memoryMessage(Buffer.concat(this.chunks, size), sha256);
  }

  /** Abandons the spool (error or refusal before `finish`): closes and removes the temp file. */
  async discard(): Promise<void> {
    this.finished = true;
    this.chunks.length = 0;
    const file = this.file;
    this.file = null;
    if (file) await file.handle.close().catch(() => {});
    if (this.path) await rm(this.path, { force: true });
  }
}

async function writeFully(handle: FileHandle, chunk: Buffer): Promise<void> {
  let off = 0;
  while (off < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, off, chunk.length - off);
    off += bytesWritten;
  }
}

function memoryMessage(bytes: Buffer, sha256: string): SpooledMessage {
  return {
    size: bytes.length,
    sha256,
    onDisk: false,
    // Readable.from(Buffer) would iterate bytes one by one; wrapping it in an array yields one chunk.
    open: () => Readable.from([bytes]),
    head: async (max) => bytes.subarray(0, Math.max(0, max)),
    readAll: async () => bytes,
    dispose: async () => {},
  };
}

function fileMessage(path: string, size: number, sha256: string): SpooledMessage {
  let disposed = false;
  const live = () => {
    if (disposed) throw new Error('spooled message already disposed');
  };
  return {
    size,
    sha256,
    onDisk: true,
    open: () => {
      live();
      return createReadStream(path, { highWaterMark: READ_CHUNK });
    },
    head: async (max) => {
      live();
      const want = Math.max(0, Math.min(max, size));
      const handle = await open(path, 'r');
      try {
        const buf = Buffer.alloc(want);
        let off = 0;
        while (off < want) {
          const { bytesRead } = await handle.read(buf, off, Math.min(READ_CHUNK, want - off), off);
          if (bytesRead === 0) break;
          off += bytesRead;
        }
        return buf.subarray(0, off);
      } finally {
        await handle.close();
      }
    },
    readAll: async () => {
      live();
      const parts: Buffer[] = [];
      for await (const c of createReadStream(path, { highWaterMark: READ_CHUNK })) parts.push(c as Buffer);
      return Buffer.concat(parts);
    },
    dispose: async () => {
      disposed = true;
      await rm(path, { force: true });
    },
  };
}

/**
 * Reads `data` into a new spool. On any error (too large, disk trouble) the spool's temp file is
 * removed and the rest of the stream is drained and discarded rather than destroyed: the contract
 * says the stream is always consumed, and a destroyed DATA stream could leave the SMTP session
 * waiting for an end that never comes. The promise settles at once, not at the end of the drain.
 */
export function spoolStream(data: Readable, opts: SpoolOptions): Promise<SpooledMessage> {
  const spool = new MessageSpool(opts);
  return new Promise<SpooledMessage>((resolve, reject) => {
    let failed = false;
    let pending: Promise<void> = Promise.resolve();
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      data.off('end', onEnd);
      // Keep consuming: chunks now go nowhere.
      data.removeListener('data', onData);
      data.on('data', () => {});
      data.resume();
      // After the write in flight (it may be creating the temp file), so nothing is left behind.
      void pending
        .then(() => spool.discard())
        .then(
          () => reject(err),
          () => reject(err),
        );
    };
    const onData = (chunk: unknown) => {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      // Backpressure: no new chunk until this one is written (memory stays bounded by one chunk).
      data.pause();
      pending = spool.write(buf).then(() => {
        if (!failed) data.resume();
      }, fail);
    };
    let ended = false;
    const onEnd = () => {
      ended = true;
      // A stream may signal its end while the last write is still in flight: wait for it first.
      void pending.then(() => {
        if (!failed) spool.finish().then(resolve, fail);
      });
    };
    data.on('data', onData);
    data.once('end', onEnd);
    // Kept for the stream's lifetime (also while draining): `fail` ignores repeats.
    data.on('error', fail);
    // A stream destroyed without 'end' or 'error' (the client went away) must not leave us waiting.
    data.once('close', () => {
      if (!ended) fail(new Error('message stream closed before its end'));
    });
  });
}

const SPOOL_FILE = /^spool-[0-9a-f-]{36}\.eml$/;

/**
 * Removes spool files a crashed process left behind (`kill -9` during DATA): the composition root
 * calls it once at start, before any listener accepts mail. Such a message never got its `250`,
 * so its client retries. Only files this module names are touched. Returns how many were removed.
 */
export async function removeStaleSpoolFiles(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return 0;
    throw err;
  }
  const stale = names.filter((n) => SPOOL_FILE.test(n));
  for (const name of stale) await rm(join(dir, name), { force: true });
  return stale.length;
}
