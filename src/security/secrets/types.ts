/**
 * Secrets at rest (SPEC §10): envelope encryption. Each secret is sealed with its own random
 * AES-256-GCM data key; the data key is stored wrapped (AES-256-GCM) by the master key
 * (`MAIRUST_MASTER_KEY` / `security.master_key`). Rotating the master key re-wraps the data keys
 * only. Other tables (user_mfa, webhooks, dkim_keys, plugins) hold a secret's id, never the secret.
 */
import type { Kysely } from 'kysely';
import type { DB } from '../../store/db/types.js';

/** What a secret is for (stored in clear so operators can count them; never the value). */
export type SecretKind = 'totp' | 'webhook' | 'dkim' | 'plugin' | 'plugin_token' | 'other';

export interface SecretStore {
  /** Seals `plaintext` and stores it; returns the new secret's id. Pass `trx` to commit with the owning row. */
  put(input: { tenantId: string | null; kind: SecretKind; plaintext: string | Buffer }, trx?: Kysely<DB>): Promise<string>;
  /** The plaintext of secret `id`; throws when it is missing or cannot be unsealed (wrong key, tampering). */
  get(id: string): Promise<Buffer>;
  /** Replaces the value of secret `id` (new data key). */
  replace(id: string, plaintext: string | Buffer, trx?: Kysely<DB>): Promise<void>;
  delete(id: string, trx?: Kysely<DB>): Promise<void>;
}
