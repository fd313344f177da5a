/**
 * The session's output: responses are queued and written in batches (one packet for a pipelined
 * group of commands), optionally through raw DEFLATE (RFC 4978: after COMPRESS, every batch ends
 * with a Z_SYNC_FLUSH so the client can decode what it has received), and never into a socket that
 * is gone. `drain()` waits while the bytes not yet taken by the kernel exceed the high-water mark,
 * so a client that does not read cannot make the server hold unbounded output.
 */
import type net from 'node:net';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';

/** Queued bytes written to the transport at once, without waiting for the end of the batch. */
const BATCH_BYTES = 16 * 1024;
/** Output not yet taken by the kernel above this makes `drain()` wait. */
export const OUTPUT_HIGH_WATER = 256 * 1024;
/** Re-check of the backlog while waiting (a 'drain' event is only emitted after a refused write). */
const DRAIN_RECHECK_MS = 50;

export class SessionOutput {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private deflate: zlib.DeflateRaw | null = null;

  constructor(private socket: net.Socket) {}

  /** The transport is gone or ending: nothing more is written. */
  get closed(): boolean {
    return this.socket.destroyed || this.socket.writableEnded;
  }

  get compressed(): boolean {
    return this.deflate !== null;
  }

  /** Bytes written by the session and not yet taken by the kernel. */
  get backlog(): number {
    const d = this.deflate ? this.deflate.writableLength + this.deflate.readableLength : 0;
    return this.pendingBytes + this.socket.writableLength + d;
  }

  write(chunk: Buffer | string): void {
    if (this.closed) return;
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (b.length === 0) return;
    this.pending.push(b);
    this.pendingBytes += b.length;
    if (this.pendingBytes >= BATCH_BYTES) this.push(false);
  }

  /** Sends everything queued; with DEFLATE, flushes the compressor (RFC 4978 §4). */
  flush(): void {
    this.push(true);
  }

  private push(syncFlush: boolean): void {
    if (this.closed) {
      this.pending = [];
      this.pendingBytes = 0;
      return;
    }
    if (this.pendingBytes > 0) {
      const data = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
      if (this.deflate) this.deflate.write(data);
      else this.socket.write(data);
    }
    if (syncFlush && this.deflate) this.deflate.flush(zlib.constants.Z_SYNC_FLUSH);
  }

  /** Flushes, then waits until the backlog is below the high-water mark (or the transport closed). */
  async drain(): Promise<void> {
    this.flush();
    while (!this.closed && this.backlog > OUTPUT_HIGH_WATER) {
      await new Promise<void>((resolve) => {
        const socket = this.socket;
        const deflate = this.deflate;
        const done = () => {
          clearTimeout(timer);
          socket.off('drain', done);
          socket.off('close', done);
          deflate?.off('drain', done);
          resolve();
        };
        const timer = setTimeout(done, DRAIN_RECHECK_MS);
        socket.once('drain', done);
        socket.once('close', done);
        deflate?.once('drain', done);
      });
    }
  }

  /** Copies a stream into the output, honouring back-pressure; stops (and destroys it) if the transport closes. */
  async writeStream(stream: Readable): Promise<void> {
    try {
      for await (const chunk of stream) {
        if (this.closed) break;
        this.write(chunk as Buffer);
        if (this.backlog > OUTPUT_HIGH_WATER) await this.drain();
      }
    } finally {
      if (!stream.destroyed) stream.destroy();
    }
  }

  /** The transport changed (STARTTLS): queued bytes were flushed to the old one before. */
  setSocket(socket: net.Socket): void {
    this.socket = socket;
  }

  /** From now on every byte is compressed with raw DEFLATE (RFC 4978 §4; RFC 1951, no zlib header). */
  startCompression(): void {
    this.flush();
    const deflate = zlib.createDeflateRaw();
    deflate.on('data', (d: Buffer) => {
      if (this.closed) return;
      if (!this.socket.write(d)) {
        deflate.pause();
        this.socket.once('drain', () => deflate.resume());
      }
    });
    deflate.on('error', () => this.socket.destroy());
    this.deflate = deflate;
  }

  /** Ends the transport after everything queued (the final flush included). */
  end(): void {
    this.flush();
    if (this.closed) return;
    const deflate = this.deflate;
    if (deflate) {
      // The compressed tail must reach the socket before it is ended.
      deflate.once('end', () => {
        if (!this.socket.destroyed) this.socket.end();
      });
      deflate.end();
      return;
    }
    this.socket.end();
  }

  destroy(): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.deflate?.destroy();
  }
}
