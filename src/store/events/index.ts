/**
 * Builds the configured `ChangeBus` adapter (ARCHITECTURE §1.3: the shapes differ only in which
 * adapter the composition root picks). `events.backend` in the config maps onto `kind`.
 */
import type { Database } from '../db/database.js';
import type { ChangeBus } from './change-bus.js';
import { MemoryChangeBus, type BusLogger } from './memory-bus.js';
import { PgChangeBus } from './pg-bus.js';

export * from './change-bus.js';
export * from './memory-bus.js';
export * from './pg-bus.js';

export type ChangeBusKind = 'auto' | 'memory' | 'postgres' | 'nats';

export interface CreateChangeBusOptions {
  nodeId: string;
  logger?: BusLogger;
  /** PostgreSQL NOTIFY channel (default `mairust_changes`). */
  channel?: string;
}

/**
 * `auto` = PostgreSQL LISTEN/NOTIFY when the database is PostgreSQL, in-process with SQLite (one
 * process, nobody else to tell). The returned bus is started (the PostgreSQL listener is up).
 */
export async function createChangeBus(kind: ChangeBusKind, db: Database, opts: CreateChangeBusOptions): Promise<ChangeBus> {
  const resolved = kind === 'auto' ? (db.dialect === 'postgres' ? 'postgres' : 'memory') : kind;
  switch (resolved) {
    case 'memory':
      return new MemoryChangeBus({ nodeId: opts.nodeId, logger: opts.logger });
    case 'postgres': {
      if (db.dialect !== 'postgres' || !db.pgPool) {
        throw new Error('events.backend "postgres" needs a PostgreSQL database (database.url is not postgres://); use "auto" or "memory"');
      }
      const bus = new PgChangeBus(db.pgPool, { nodeId: opts.nodeId, logger: opts.logger, channel: opts.channel });
      await bus.start();
      return bus;
    }
    case 'nats':
      throw new Error('events.backend "nats" is not yet supported; use "auto", "memory" or "postgres"');
    default:
      throw new Error(`events.backend: unknown change bus kind ${JSON.stringify(kind)}`);
  }
}
