/**
 * Where circuit-breaker states live (src/hooks/circuit-breaker.ts).
 *
 * - `MemoryBreakerStore`: one process (tests, or a node that should not share).
 * - `DatabaseBreakerStore`: table `hook_breakers` (migration 0010). With PostgreSQL all nodes share
 *   one state per (hook, plugin). Each update is read-modify-write inside a transaction that holds
 *   the row with SELECT … FOR UPDATE, so concurrent record() calls on several nodes all count.
 *   SQLite has one writer at a time (and Kysely's SQLite driver one connection), which serialises
 *   the same transaction without FOR UPDATE.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../store/db/database.js';
import type { DB, HookBreakersTable } from '../store/db/types.js';
import type { BreakerId, BreakerState, BreakerStateName, BreakerStore, WindowBucket } from './circuit-breaker.js';

function idKey(id: BreakerId): string {
  // JSON keeps the two parts apart whatever characters the ids contain.
  return JSON.stringify([id.hookId, id.pluginId]);
}

function copyState(s: BreakerState): BreakerState {
  return { ...s, buckets: s.buckets.map((b) => ({ ...b })) };
}

export class MemoryBreakerStore implements BreakerStore {
  private readonly states = new Map<string, { id: BreakerId; state: BreakerState }>();

  async read(id: BreakerId): Promise<BreakerState | null> {
    const e = this.states.get(idKey(id));
    return e ? copyState(e.state) : null;
  }

  async update<T>(id: BreakerId, fn: (current: BreakerState | null) => { next: BreakerState | undefined; result: T }): Promise<T> {
    // No await between read and write: atomic within the process.
    const k = idKey(id);
    const e = this.states.get(k);
    const { next, result } = fn(e ? copyState(e.state) : null);
    if (next !== undefined) this.states.set(k, { id: { hookId: id.hookId, pluginId: id.pluginId }, state: copyState(next) });
    return result;
  }

  async delete(id: BreakerId): Promise<void> {
    this.states.delete(idKey(id));
  }

  async list(): Promise<Array<{ id: BreakerId; state: BreakerState }>> {
    return [...this.states.values()].map((e) => ({ id: { ...e.id }, state: copyState(e.state) }));
  }
}

const STATES: readonly BreakerStateName[] = ['closed', 'open', 'half_open'];

/** Parses `buckets_json`; a damaged value counts as an empty window rather than breaking hooks. */
function parseBuckets(json: string): WindowBucket[] {
  try {
    const raw: unknown = JSON.parse(json);
    if (!Array.isArray(raw)) return [];
    const out: WindowBucket[] = [];
    for (const t of raw) {
      if (!Array.isArray(t) || t.length !== 3 || !t.every((n) => Number.isSafeInteger(n) && n >= 0)) continue;
      out.push({ start: t[0], calls: t[1], failures: t[2] });
    }
    return out;
  } catch {
    return [];
  }
}

function fromRow(r: HookBreakersTable): BreakerState {
  return {
    state: STATES.includes(r.state) ? r.state : 'closed',
    consecutiveFailures: Number(r.consecutive_failures),
    buckets: parseBuckets(r.buckets_json),
    openedAt: r.opened_at === null ? null : Number(r.opened_at),
    probeStartedAt: r.probe_started_at === null ? null : Number(r.probe_started_at),
    updatedAt: Number(r.updated_at),
  };
}

function toColumns(s: BreakerState): Omit<HookBreakersTable, 'hook_id' | 'plugin_id'> {
  return {
    state: s.state,
    consecutive_failures: s.consecutiveFailures,
    buckets_json: JSON.stringify(s.buckets.map((b) => [b.start, b.calls, b.failures])),
    opened_at: s.openedAt,
    probe_started_at: s.probeStartedAt,
    updated_at: s.updatedAt,
  };
}

export class DatabaseBreakerStore implements BreakerStore {
  constructor(private readonly db: Database) {}

  private get kysely(): Kysely<DB> {
    return this.db.kysely;
  }

  async read(id: BreakerId): Promise<BreakerState | null> {
    const row = await this.kysely
      .selectFrom('hook_breakers')
      .selectAll()
      .where('hook_id', '=', id.hookId)
      .where('plugin_id', '=', id.pluginId)
      .executeTakeFirst();
    return row ? fromRow(row) : null;
  }

  async update<T>(id: BreakerId, fn: (current: BreakerState | null) => { next: BreakerState | undefined; result: T }): Promise<T> {
    const forUpdate = this.db.dialect === 'postgres';
    return this.kysely.transaction().execute(async (trx) => {
      // Two rounds at most: when the row is missing and another node inserts it between our
      // SELECT and INSERT, the INSERT does nothing and the second round locks the new row.
      for (let round = 0; ; round++) {
        const row = await trx
          .selectFrom('hook_breakers')
          .selectAll()
          .where('hook_id', '=', id.hookId)
          .where('plugin_id', '=', id.pluginId)
          .$if(forUpdate, (q) => q.forUpdate())
          .executeTakeFirst();
        const { next, result } = fn(row ? fromRow(row) : null);
        if (next === undefined) return result;
        if (row) {
          await trx
            .updateTable('hook_breakers')
            .set(toColumns(next))
            .where('hook_id', '=', id.hookId)
            .where('plugin_id', '=', id.pluginId)
            .execute();
          return result;
        }
        const inserted = await trx
          .insertInto('hook_breakers')
          .values({ hook_id: id.hookId, plugin_id: id.pluginId, ...toColumns(next) })
          .onConflict((oc) => oc.columns(['hook_id', 'plugin_id']).doNothing())
          .executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0) return result;
        if (round >= 2) throw new Error(`hook breaker row for ${idKey(id)} could not be locked`);
      }
    });
  }

  async delete(id: BreakerId): Promise<void> {
    await this.kysely.deleteFrom('hook_breakers').where('hook_id', '=', id.hookId).where('plugin_id', '=', id.pluginId).execute();
  }

  async list(): Promise<Array<{ id: BreakerId; state: BreakerState }>> {
    const rows = await this.kysely.selectFrom('hook_breakers').selectAll().orderBy('hook_id').orderBy('plugin_id').execute();
    return rows.map((r) => ({ id: { hookId: r.hook_id, pluginId: r.plugin_id }, state: fromRow(r) }));
  }
}
