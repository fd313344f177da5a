/**
 * Secrets at rest (SPEC §10; docs/adr/0008): the public surface, and the factory the composition
 * root calls.
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { Database } from '../../store/db/database.js';
import { loadMasterKey } from './master-key.js';
import { countSecretsByKeyId, DatabaseSecretStore } from './store.js';

export type { SecretKind, SecretStore } from './types.js';
export { SecretError, MAX_SECRET_BYTES, type MasterKey, type SecretErrorCode } from './envelope.js';
export { loadMasterKey, parseMasterKey, MasterKeyError, MASTER_KEY_FILE, type LoadedMasterKey } from './master-key.js';
export { DatabaseSecretStore, countSecretsByKeyId, SECRET_KINDS } from './store.js';
export { rotateMasterKey, RotationError, DEFAULT_ROTATION_BATCH, MAX_ROTATION_BATCH, type RotateResult, type RotateOptions } from './rotate.js';

/**
 * Loads the master key (master-key.ts: config, else `<data_dir>/master.key` in the embedded shape,
 * else a start-up error) and returns the store. Secrets wrapped by another key are reported once
 * here, with what to do, rather than as a puzzling failure at the first TOTP check or DKIM signature.
 */
export async function openSecretStore(opts: { config: Config; db: Database; logger: Logger }): Promise<DatabaseSecretStore> {
  const log = opts.logger.child({ component: 'secrets' });
  const { key, origin, path } = await loadMasterKey({ config: opts.config, dialect: opts.db.dialect, logger: log });
  const others = [...(await countSecretsByKeyId(opts.db))].filter(([id]) => id !== key.id);
  if (others.length) {
    log.error(
      { key_id: key.id, other_key_ids: Object.fromEntries(others) },
      'some secrets are wrapped by another master key and cannot be read with the configured one: if a rotation was interrupted, ' +
        'run `mairust secrets rotate-master-key` again with the same keys; otherwise configure the key they were written with',
    );
  } else {
    log.debug({ key_id: key.id, origin, path }, 'master key loaded');
  }
  return new DatabaseSecretStore(opts.db, key);
}
