/**
 * The transactional outbox for queues outside the database (NATS JetStream): `Queue.enqueueIn`
 * must make a job exist exactly when the caller's transaction commits (SPEC §3.1 step 7: the
 * post_receive and outbound jobs of a stored message). A NATS publish cannot join a SQL
 * transaction, so `add` writes the job into `queue_outbox` inside it, and a relay moves committed
 * rows into the queue afterwards — at once when the caller calls `wake` after its commit, and on a
 * timer for rows whose process died between commit and relay.
 *
 * The job keeps the id chosen at `add` (callers store it, e.g. outbound_messages.job_id), and every
 * relayed enqueue carries a dedupe key (the caller's, or `outbox:<id>`), so a row relayed twice —
 * two nodes, or a crash between enqueue and delete — is still one job.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { newId, now, type Database } from '../store/db/database.js';
import type { DB } from '../store/db/types.js';
import type { EnqueueOptions } from './queue.js';

/** Rows moved per relay round. */
const RELAY_BATCH = 100;

export type EnqueueFn = (queue: string, payload: unknown, opts: EnqueueOptions) => Promise<string>;

export class QueueOutbox {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private again = false;

  constructor(
    private readonly db: Database,
    private readonly enqueue: EnqueueFn,
    private readonly logger?: Logger,
  ) {}

  /** Writes the job in `trx`; returns its id. Call `wake()` after the commit. */
  async add(trx: Kysely<DB>, queue: string, payload: unknown, opts: EnqueueOptions = {}): Promise<string> {
    const id = opts.id ?? newId();
    await trx
      .insertInto('queue_outbox')
      .values({ id, queue, payload_json: JSON.stringify(payload), options_json: JSON.stringify({ ...opts, id }), created_at: now() })
      .execute();
    return id;
  }

  /** Relays now (after a commit); concurrent calls share one run and ask for one more. */
  wake(): void {
    void this.relay().catch((err) => this.logger?.warn({ err: { message: (err as Error).message } }, 'queue outbox relay failed; the timer retries'));
  }

  /** Moves committed rows into the queue; returns how many. */
  relay(): Promise<number> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      let moved = 0;
      do {
        this.again = false;
        for (;;) {
          const rows = await this.db.kysely.selectFrom('queue_outbox').selectAll().orderBy('created_at').orderBy('id').limit(RELAY_BATCH).execute();
          if (rows.length === 0) break;
          for (const r of rows) {
            const opts = JSON.parse(r.options_json) as EnqueueOptions;
            await this.enqueue(r.queue, JSON.parse(r.payload_json), { ...opts, id: r.id, dedupeKey: opts.dedupeKey ?? `outbox:${r.id}` });
            await this.db.kysely.deleteFrom('queue_outbox').where('id', '=', r.id).execute();
            moved++;
          }
          if (rows.length < RELAY_BATCH) break;
        }
      } while (this.again);
      return moved;
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Relays every `intervalMs` until `stop` (rows left by a process that died after its commit). */
  start(intervalMs = 1000): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.wake(), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => 0);
  }
}
