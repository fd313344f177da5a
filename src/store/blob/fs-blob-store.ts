// Local-disk BlobStore. Crash safety follows the classic recipe (see rename(2), fsync(2)):
// write a temp file, fsync it, rename it over the final name (atomic on POSIX), then fsync the
// directory so the new directory entry itself survives a power loss.
import { randomUUID } from 'node:crypto';
import { mkdir, open, opendir, rename, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  assertValidBlobKey,
  assertValidBlobPrefix,
  assertValidRange,
  BlobNotFoundError,
  BlobStoreUnavailableError,
  HashingSource,
  InvalidBlobKeyError,
  readAll,
  type BlobBody,
  type BlobStat,
  type BlobStore,
  type PutResult,
} from './blob-store.js';

export interface FsBlobStoreOptions {
  root: string;
}

/** errno codes meaning "this key is not a stored blob" (ENOTDIR: a parent segment is a file). */
const NOT_FOUND = new Set(['ENOENT', 'ENOTDIR']);
const TMP_DIR = '.tmp'; // unreachable by keys: assertValidBlobKey forbids '.'
const SEGMENT = /^[a-z0-9][a-z0-9-]*$/;

function errCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/** Any other OS-level I/O failure (EACCES, EROFS, ENOSPC, EIO, ...) makes the store unavailable. */
function toStoreError(err: unknown, root: string): unknown {
  if (
    err instanceof BlobStoreUnavailableError ||
    err instanceof BlobNotFoundError ||
    err instanceof InvalidBlobKeyError
  ) {
    return err;
  }
  const code = errCode(err);
  if (code && /^E[A-Z]+$/.test(code)) {
    return new BlobStoreUnavailableError(`fs blob store ${root}: ${(err as Error).message}`, { cause: err });
  }
  return err;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function writeFully(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

export class FsBlobStore implements BlobStore {
  readonly kind = 'fs' as const;
  private readonly root: string;
  private readonly tmpDir: string;

  constructor(opts: FsBlobStoreOptions) {
    this.root = path.resolve(opts.root);
    this.tmpDir = path.join(this.root, TMP_DIR);
    // The root is created once, here. Later checks never re-create it: if it disappears (an
    // unmounted volume, a removed directory) the store must report itself down rather than quietly
    // start writing mail into an empty directory on the wrong filesystem.
    try {
      mkdirSync(this.root, { recursive: true });
    } catch {
      /* reported by ping() with the precise reason */
    }
  }

  private pathOf(key: string): string {
    assertValidBlobKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  async put(key: string, body: BlobBody): Promise<PutResult> {
    const finalPath = this.pathOf(key);
    const src = new HashingSource(body);
    const tmp = path.join(this.tmpDir, `${randomUUID()}.tmp`);
    let fh: FileHandle | undefined;
    try {
      await mkdir(this.tmpDir, { recursive: true });
      fh = await open(tmp, 'wx', 0o640);
      for await (const chunk of src.chunks()) await writeFully(fh, chunk);
      await fh.sync();
      await fh.close();
      fh = undefined;
      const dir = path.dirname(finalPath);
      const firstCreated = await mkdir(dir, { recursive: true });
      await rename(tmp, finalPath);
      await fsyncDir(dir);
      // Newly created parent directories are themselves new entries in their parents.
      if (firstCreated) {
        for (let d = dir; d !== path.dirname(firstCreated); ) {
          d = path.dirname(d);
          await fsyncDir(d);
        }
      }
    } catch (err) {
      await fh?.close().catch(() => undefined);
      await rm(tmp, { force: true }).catch(() => undefined);
      throw src.sourceFailed ? src.sourceError : toStoreError(err, this.root);
    }
    return { key, size: src.size, sha256: src.digest() };
  }

  async get(key: string): Promise<Readable> {
    const fh = await this.openBlob(key);
    return fh.createReadStream(); // autoClose: the handle closes at end or on destroy
  }

  async getRange(key: string, start: number, end: number): Promise<Readable> {
    assertValidRange(start, end);
    const fh = await this.openBlob(key);
    if (start === end) {
      // createReadStream cannot express an empty range (its `end` is inclusive).
      await fh.close().catch(() => undefined);
      return Readable.from([]);
    }
    return fh.createReadStream({ start, end: end - 1 });
  }

  /**
   * One open + positioned reads + close: no stat and no stream (a header block is a few KiB, and
   * FETCH ENVELOPE reads one per message). A directory in the blob's place fails the read with
   * EISDIR, answered like a missing blob.
   */
  async getRangeBuffer(key: string, start: number, end: number): Promise<Buffer> {
    assertValidRange(start, end);
    const p = this.pathOf(key);
    let fh: FileHandle;
    try {
      fh = await open(p, 'r');
    } catch (err) {
      if (NOT_FOUND.has(errCode(err) ?? '')) throw new BlobNotFoundError(key, { cause: err });
      throw toStoreError(err, this.root);
    }
    try {
      const buf = Buffer.allocUnsafe(end - start);
      let filled = 0;
      while (filled < buf.length) {
        const { bytesRead } = await fh.read(buf, filled, buf.length - filled, start + filled);
        if (bytesRead === 0) break; // past the end of the blob: the bytes that exist
        filled += bytesRead;
      }
      return buf.subarray(0, filled);
    } catch (err) {
      if (errCode(err) === 'EISDIR') throw new BlobNotFoundError(key, { cause: err });
      throw toStoreError(err, this.root);
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /** Opens a stored blob's file for reading; the caller owns the handle. */
  private async openBlob(key: string): Promise<FileHandle> {
    const p = this.pathOf(key);
    let fh: FileHandle;
    try {
      fh = await open(p, 'r');
    } catch (err) {
      if (NOT_FOUND.has(errCode(err) ?? '')) throw new BlobNotFoundError(key, { cause: err });
      throw toStoreError(err, this.root);
    }
    try {
      // open(2) succeeds on directories; a directory is not a blob.
      if (!(await fh.stat()).isFile()) throw new BlobNotFoundError(key);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw toStoreError(err, this.root);
    }
    return fh;
  }

  async getBuffer(key: string): Promise<Buffer> {
    return readAll(await this.get(key));
  }

  async stat(key: string): Promise<BlobStat | null> {
    const p = this.pathOf(key);
    try {
      const st = await stat(p);
      return st.isFile() ? { key, size: st.size } : null;
    } catch (err) {
      if (NOT_FOUND.has(errCode(err) ?? '')) return null;
      throw toStoreError(err, this.root);
    }
  }

  async delete(key: string): Promise<void> {
    const p = this.pathOf(key);
    try {
      await unlink(p);
    } catch (err) {
      const code = errCode(err) ?? '';
      // EISDIR/EPERM: the key names a directory, i.e. no blob; deleting "nothing" is fine.
      if (NOT_FOUND.has(code) || code === 'EISDIR' || code === 'EPERM') return;
      throw toStoreError(err, this.root);
    }
  }

  async *list(prefix = ''): AsyncIterable<BlobStat> {
    assertValidBlobPrefix(prefix);
    // Start at the deepest directory the prefix fully names, then filter by string prefix.
    const cut = prefix.lastIndexOf('/');
    const base = cut >= 0 ? prefix.slice(0, cut) : '';
    yield* this.walk(base, prefix);
  }

  private async *walk(relDir: string, prefix: string): AsyncGenerator<BlobStat> {
    const abs = relDir ? path.join(this.root, ...relDir.split('/')) : this.root;
    let dir;
    try {
      dir = await opendir(abs);
    } catch (err) {
      if (NOT_FOUND.has(errCode(err) ?? '')) return;
      throw toStoreError(err, this.root);
    }
    for await (const ent of dir) {
      // Skips .tmp, probe files and anything not created by put (no '.', no uppercase).
      if (!SEGMENT.test(ent.name)) continue;
      const key = relDir ? `${relDir}/${ent.name}` : ent.name;
      if (ent.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) yield* this.walk(key, prefix);
      } else if (ent.isFile() && key.startsWith(prefix)) {
        // Symlinks and other special files are skipped (Dirent types come from lstat).
        const st = await stat(path.join(abs, ent.name)).catch(() => null);
        if (st) yield { key, size: st.size };
      }
    }
  }

  async ping(): Promise<void> {
    try {
      const root = await stat(this.root);
      if (!root.isDirectory()) throw new Error(`${this.root} is not a directory`);
      await mkdir(this.tmpDir).catch((err) => {
        if (errCode(err) !== 'EEXIST') throw err;
      });
      const probe = path.join(this.tmpDir, `ping-${randomUUID()}`);
      await writeFile(probe, 'ping', { flag: 'wx' });
      await rm(probe);
    } catch (err) {
      throw new BlobStoreUnavailableError(`fs blob store ${this.root} is not writable: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }
}
