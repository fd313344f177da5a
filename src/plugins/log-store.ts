/**
 * Per-plugin log lines (`plugin_logs`, SPEC §7: failed calls, refused writes, health changes,
 * stderr), shown to admins through `GET /api/v1/admin/plugins/:id/logs`. Lines are bounded in
 * length here and in age by the maintenance job (`plugins.log_retention_days`).
 */
import type { Kysely } from 'kysely';
import { newId } from '../store/db/database.js';
import type { DB, PluginLogsTable } from '../store/db/types.js';
import type { PluginLogEntry, PluginLogRecord } from './types.js';

export const MAX_LOG_MESSAGE_CHARS = 2000;
export const DEFAULT_LOGS_LIMIT = 100;
export const MAX_LOGS_LIMIT = 500;
const LEVELS = new Set(['debug', 'info', 'warn', 'error']);

/** One line, at most MAX_LOG_MESSAGE_CHARS, not ending in half a surrogate pair. */
export function boundLogMessage(message: string): string {
  let m = String(message).replace(/[\r\n]+/g, ' ');
  if (m.length > MAX_LOG_MESSAGE_CHARS) {
    m = m.slice(0, MAX_LOG_MESSAGE_CHARS);
    if (/[\ud800-\udbff]$/.test(m)) m = m.slice(0, -1);
  }
  return m;
}

export async function appendPluginLog(db: Kysely<DB>, entry: PluginLogEntry, at: number): Promise<void> {
  const row: PluginLogsTable = {
    id: newId(),
    plugin_id: entry.pluginId,
    tenant_id: entry.tenantId ?? null,
    at,
    level: LEVELS.has(entry.level) ? entry.level : 'info',
    hook_id: entry.hookId ?? null,
    message_id: entry.messageId ?? null,
    message: boundLogMessage(entry.message),
  };
  await db.insertInto('plugin_logs').values(row).execute();
}

/** Newest first; `before` is exclusive (keyset paging on `at`); `limit` is clamped to 1..500. */
export async function listPluginLogs(
  db: Kysely<DB>, pluginId: string, opts: { limit?: number; before?: number; tenantId?: string } = {},
): Promise<PluginLogRecord[]> {
  const raw = opts.limit ?? DEFAULT_LOGS_LIMIT;
  const limit = Math.min(MAX_LOGS_LIMIT, Math.max(1, Number.isFinite(raw) ? Math.floor(raw) : DEFAULT_LOGS_LIMIT));
  const rows = await db
    .selectFrom('plugin_logs')
    .selectAll()
    .where('plugin_id', '=', pluginId)
    .$if(opts.before !== undefined, (q) => q.where('at', '<', opts.before!))
    .$if(opts.tenantId !== undefined, (q) => q.where('tenant_id', '=', opts.tenantId!))
    .orderBy('at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    id: r.id,
    pluginId: r.plugin_id,
    tenantId: r.tenant_id,
    at: Number(r.at),
    level: r.level,
    hookId: r.hook_id,
    messageId: r.message_id,
    message: r.message,
  }));
}

/** Deletes lines written before `cutoff` (ms since epoch); returns how many. */
export async function prunePluginLogs(db: Kysely<DB>, cutoff: number): Promise<number> {
  const r = await db.deleteFrom('plugin_logs').where('at', '<', cutoff).executeTakeFirst();
  return Number(r.numDeletedRows ?? 0);
}
