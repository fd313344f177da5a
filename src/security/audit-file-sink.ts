/**
 * The optional audit file sink (SPEC §10 "append-only table + optional file"; config `audit.file`,
 * reloadable): a background exporter that appends every committed audit row to a file as one JSON
 * line of the SPEC §10 shape (`id, timestamp, event_type, actor, target, metadata, tenant_id`).
 *
 * The database stays the source of truth; the file is a copy for log shippers. Rows are read back
 * from the table (rather than written by `writeAudit`) so that a row reaches the file only once its
 * transaction has committed, and a rolled-back change never does.
 *
 * Progress lives in the sidecar `<file>.pos` (JSON): the highest exported id, the file size after
 * the last recorded batch, and the *gaps* — ids below the highest one that were not visible yet.
 * On PostgreSQL ids come from a sequence when a row is inserted but become visible at commit, so a
 * long transaction can commit id 9 after id 10 was exported; the sink keeps looking for such a
 * missing id for `gapWaitMs` (60 s by default), after which it is taken to be a rolled-back
 * insert (sequences never reuse a value). SQLite has one writer at a time, so its ids appear in
 * order and no gaps arise.
 *
 * Delivery is exactly-once across restarts and crashes: a batch is appended and synced first and
 * recorded in the sidecar second. If the process dies in between, the next start finds the file
 * longer than the recorded size, reads the ids of the unrecorded lines and does not export them
 * again; a torn last line (crash mid-write) is cut off and its row exported again. The exceptions
 * — documented, at-least-once — are a file rotated away *and* written to again before the sidecar
 * was saved, or a sidecar deleted by hand together with more than 16 MiB of lines after it: then a
 * few lines can repeat. An audit transaction left open for longer than `gapWaitMs` while later rows
 * commit is the one case where a row is skipped (still in the table).
 *
 * Every node that has `audit.file` set writes its own file; two processes must not share a path.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, renameSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Database } from '../store/db/database.js';
import { auditEventJson, auditRowsAfter, auditRowsById } from './audit-query.js';

export interface AuditFileSinkOptions {
  /** Pause between export rounds (default 1 s). */
  intervalMs?: number;
  /** How long a missing id below the highest exported one is waited for (default 60 s). */
  gapWaitMs?: number;
  /** Rows read per query (default 500). */
  batchSize?: number;
  now?: () => number;
}

export interface AuditFileSinkHost {
  readonly db: Database;
  readonly config: Config;
  readonly logger: Logger;
}

interface Position {
  lastId: number;
  /** File size after the last recorded batch. */
  offset: number;
  /** Missing id → when it was first found missing (ms). */
  gaps: Map<number, number>;
}

/** A gap wider than this is not an in-flight transaction (sequence jump, rows purged): not tracked. */
const MAX_TRACKED_GAP = 1000;
/** Unrecorded file tail read at start-up to find already exported ids. */
const MAX_TAIL_BYTES = 16 * 1024 * 1024;
/** Rounds of `batchSize` rows per tick before yielding (catching up on a large table). */
const MAX_BATCHES_PER_TICK = 20;

export function positionFile(file: string): string {
  return `${file}.pos`;
}

function readPosition(file: string): Position {
  const p = positionFile(file);
  if (!existsSync(p)) return { lastId: 0, offset: 0, gaps: new Map() };
  const raw = JSON.parse(readFileSync(p, 'utf8')) as { last_id?: unknown; offset?: unknown; gaps?: unknown };
  const gaps = new Map<number, number>();
  if (Array.isArray(raw.gaps)) for (const g of raw.gaps) if (Array.isArray(g) && g.length === 2) gaps.set(Number(g[0]), Number(g[1]));
  return { lastId: Number(raw.last_id ?? 0) || 0, offset: Number(raw.offset ?? 0) || 0, gaps };
}

/** Replaces the sidecar atomically (write a temporary file, sync, rename). */
function writePosition(file: string, pos: Position): void {
  const p = positionFile(file);
  const tmp = `${p}.tmp`;
  const body = JSON.stringify({ version: 1, last_id: pos.lastId, offset: pos.offset, gaps: [...pos.gaps.entries()] });
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, body);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, p);
}

/**
 * Exports committed audit rows to one file. `exportOnce` does one round; `startAuditFileSink`
 * runs rounds in the background.
 */
export class AuditFileExporter {
  private file: string | null = null;
  private pos: Position | null = null;
  private readonly gapWaitMs: number;
  private readonly batchSize: number;
  private readonly now: () => number;

  constructor(
    private readonly host: AuditFileSinkHost,
    opts: AuditFileSinkOptions = {},
  ) {
    this.gapWaitMs = opts.gapWaitMs ?? 60_000;
    this.batchSize = Math.max(1, Math.min(opts.batchSize ?? 500, 10_000));
    this.now = opts.now ?? Date.now;
  }

  /** One export round; returns the number of lines appended. */
  async exportOnce(): Promise<number> {
    const file = this.host.config.audit.file;
    if (!file) {
      this.file = null;
      this.pos = null;
      return 0;
    }
    if (file !== this.file || !this.pos) {
      this.pos = this.recover(file);
      this.file = file;
    }
    const pos = this.pos;
    let written = 0;
    for (let round = 0; round < MAX_BATCHES_PER_TICK; round++) {
      const late = await auditRowsById(this.host.db, [...pos.gaps.keys()].sort((a, b) => a - b).slice(0, this.batchSize));
      const fresh = await auditRowsAfter(this.host.db, pos.lastId, this.batchSize);
      const t = this.now();
      const lines: string[] = [];
      for (const r of [...late, ...fresh]) {
        lines.push(JSON.stringify(auditEventJson(r)));
        this.markExported(pos, r.id, t, r.timestamp);
      }
      let dirty = lines.length > 0;
      for (const [id, seen] of pos.gaps) {
        if (t - seen > this.gapWaitMs) {
          pos.gaps.delete(id);
          dirty = true;
        }
      }
      if (lines.length) {
        pos.offset = this.append(file, lines.join('\n') + '\n', pos.offset);
        written += lines.length;
      }
      // The sidecar is written after the lines are durable (see the header).
      if (dirty) writePosition(file, pos);
      if (fresh.length < this.batchSize) break;
    }
    return written;
  }

  /**
   * Records `id` (inserted at `rowTime`) as exported: fills a gap, or advances the high-water mark
   * noting skipped ids. A skipped id was taken *before* this row was inserted, so when this row is
   * already older than `gapWaitMs` the missing one has been in flight that long too: given up at
   * once (this also skips the holes the retention job leaves when a new file starts from the top).
   */
  private markExported(pos: Position, id: number, t: number, rowTime: number): void {
    if (pos.gaps.delete(id)) return;
    if (id <= pos.lastId) return;
    const missing = id - pos.lastId - 1;
    // A fresh sink (lastId 0) starts at the oldest row still kept: ids below it are gone, not late.
    if (pos.lastId > 0 && missing > 0 && missing <= MAX_TRACKED_GAP && t - rowTime <= this.gapWaitMs) {
      for (let g = pos.lastId + 1; g < id; g++) pos.gaps.set(g, t);
    }
    pos.lastId = id;
  }

  /** Appends and syncs; returns the new file size. */
  private append(file: string, text: string, expectedOffset: number): number {
    const fd = openSync(file, 'a', 0o600);
    try {
      const before = fstatSync(fd).size;
      if (before !== expectedOffset) this.host.logger.warn({ component: 'audit-file', file, expected: expectedOffset, found: before }, 'audit file changed outside the sink (rotated?)');
      const buf = Buffer.from(text, 'utf8');
      let done = 0;
      while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done);
      fsyncSync(fd);
      return before + buf.length;
    } finally {
      closeSync(fd);
    }
  }

  /** Start-up (or a new `audit.file`): the sidecar, reconciled with what the file actually holds. */
  private recover(file: string): Position {
    const pos = readPosition(file);
    const size = existsSync(file) ? statSync(file).size : 0;
    if (size < pos.offset) {
      // Rotated or truncated by the operator: continue after the last exported id in the new file.
      pos.offset = size;
      return pos;
    }
    if (size === pos.offset) return pos;
    // Lines appended after the sidecar was last saved (a crash between the two writes).
    const start = Math.max(pos.offset, size - MAX_TAIL_BYTES);
    const fd = openSync(file, 'r');
    let tail: Buffer;
    try {
      tail = Buffer.alloc(size - start);
      let got = 0;
      while (got < tail.length) {
        const n = readSync(fd, tail, got, tail.length - got, start + got);
        if (n === 0) break;
        got += n;
      }
      tail = tail.subarray(0, got);
    } finally {
      closeSync(fd);
    }
    const lastNl = tail.lastIndexOf(0x0a);
    const complete = lastNl < 0 ? Buffer.alloc(0) : tail.subarray(0, lastNl + 1);
    if (start + complete.length < size) {
      // A torn last line: cut it off; its row is exported again in full.
      truncateSync(file, start + complete.length);
    }
    const t = this.now();
    let lines = complete.toString('utf8').split('\n').filter((l) => l.length > 0);
    if (start > pos.offset && lines.length) lines = lines.slice(1); // the first line may be partial
    for (const line of lines) {
      try {
        const parsed = JSON.parse(line) as { id?: unknown; timestamp?: unknown };
        const id = Number(parsed.id);
        const rowTime = typeof parsed.timestamp === 'string' ? Date.parse(parsed.timestamp) : NaN;
        if (Number.isSafeInteger(id) && id > 0) this.markExported(pos, id, t, Number.isNaN(rowTime) ? 0 : rowTime);
      } catch {
        this.host.logger.warn({ component: 'audit-file', file }, 'unparseable line in the audit file ignored');
      }
    }
    pos.offset = start + complete.length;
    writePosition(file, pos);
    return pos;
  }
}

/**
 * Runs the exporter in the background (a round every `intervalMs`, never two at once) while
 * `audit.file` is set; re-reads the setting every round, so a reload switches files. Returns the
 * stop function, which waits for a running round and then does a last one.
 */
export function startAuditFileSink(host: AuditFileSinkHost, opts: AuditFileSinkOptions = {}): () => Promise<void> {
  const exporter = new AuditFileExporter(host, opts);
  const log = host.logger.child({ component: 'audit-file' });
  const intervalMs = opts.intervalMs ?? 1000;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let failing = false;

  const round = async () => {
    try {
      await exporter.exportOnce();
      if (failing) log.info('audit file export resumed');
      failing = false;
    } catch (err) {
      // Logged once per outage, not every second.
      if (!failing) log.error({ err: { message: (err as Error).message } }, 'audit file export failed; retrying');
      failing = true;
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = round().then(schedule);
    }, intervalMs);
    timer.unref();
  };
  running = round().then(schedule);

  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await running;
    await round();
  };
}
