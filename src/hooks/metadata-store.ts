/**
 * Rows of `message_plugin_metadata` (migration 0011): what plugins wrote about a stored message,
 * one JSON object per (message, plugin) — the `plugin:<id>:` namespace of SPEC §7, so one plugin
 * can never overwrite another's keys. Writes merge keys into the plugin's object (a later value of
 * a key wins), bounded by MAX_PLUGIN_METADATA_BYTES per (message, plugin).
 *
 * Callers check tenancy first (apply.ts reads the message through mailbox-state with the tenant's
 * scope; the pipeline writes inside the commit transaction of the tenant's own message row).
 */
import type { Kysely } from 'kysely';
import { now, type Database } from '../store/db/database.js';
import type { DB } from '../store/db/types.js';

/** Largest JSON object kept per (message, plugin), in UTF-8 bytes. */
export const MAX_PLUGIN_METADATA_BYTES = 16 * 1024;

export class PluginMetadataTooLargeError extends Error {
  constructor(readonly pluginId: string, readonly bytes: number) {
    super(`plugin metadata of ${pluginId} would be ${bytes} bytes; at most ${MAX_PLUGIN_METADATA_BYTES} are kept per message and plugin`);
    this.name = 'PluginMetadataTooLargeError';
  }
}

function parseObject(json: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(json);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Keys merged and the size checked, without writing: lets a caller validate everything before its first write. */
export function mergedMetadata(current: Record<string, unknown>, data: Record<string, unknown>, pluginId: string): { merged: Record<string, unknown>; json: string } {
  const merged = { ...current, ...data };
  const json = JSON.stringify(merged);
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_PLUGIN_METADATA_BYTES) throw new PluginMetadataTooLargeError(pluginId, bytes);
  return { merged, json };
}

export interface MetadataWrite {
  tenantId: string;
  messageId: string;
  pluginId: string;
  data: Record<string, unknown>;
}

/**
 * Read-merge-write on `k` (a transaction of the caller, or the database). Use inside a
 * transaction so two writers of the same plugin do not lose each other's keys.
 */
export async function writePluginMetadataIn(k: Kysely<DB>, w: MetadataWrite): Promise<Record<string, unknown>> {
  const row = await k
    .selectFrom('message_plugin_metadata')
    .select('data_json')
    .where('message_id', '=', w.messageId)
    .where('plugin_id', '=', w.pluginId)
    .where('tenant_id', '=', w.tenantId)
    .executeTakeFirst();
  const { merged, json } = mergedMetadata(row ? parseObject(row.data_json) : {}, w.data, w.pluginId);
  const at = now();
  await k
    .insertInto('message_plugin_metadata')
    .values({ message_id: w.messageId, plugin_id: w.pluginId, tenant_id: w.tenantId, data_json: json, updated_at: at })
    .onConflict((oc) => oc.columns(['message_id', 'plugin_id']).doUpdateSet({ data_json: json, updated_at: at }))
    .execute();
  return merged;
}

/** The same in its own transaction. */
export async function writePluginMetadata(db: Database, w: MetadataWrite): Promise<Record<string, unknown>> {
  return db.kysely.transaction().execute((trx) => writePluginMetadataIn(trx, w));
}

/** The current object of one plugin ({} when none). */
export async function readPluginMetadataOf(k: Kysely<DB>, tenantId: string, messageId: string, pluginId: string): Promise<Record<string, unknown>> {
  const row = await k
    .selectFrom('message_plugin_metadata')
    .select('data_json')
    .where('message_id', '=', messageId)
    .where('plugin_id', '=', pluginId)
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst();
  return row ? parseObject(row.data_json) : {};
}

/** Every plugin's metadata about a message of `tenantId`: plugin id → its object. */
export async function readPluginMetadata(db: Database, tenantId: string, messageId: string): Promise<Record<string, Record<string, unknown>>> {
  const rows = await db.kysely
    .selectFrom('message_plugin_metadata')
    .select(['plugin_id', 'data_json'])
    .where('message_id', '=', messageId)
    .where('tenant_id', '=', tenantId)
    .orderBy('plugin_id')
    .execute();
  const out: Record<string, Record<string, unknown>> = {};
  for (const r of rows) out[r.plugin_id] = parseObject(r.data_json);
  return out;
}
