/**
 * Master-key rotation (SPEC §10 "master-key rotation re-wraps data keys"; docs/adr/0008).
 *
 * Every data key wrapped by the old master key is unwrapped and wrapped again by the new one; the
 * sealed secrets themselves are not touched. Rows are processed in batches, each batch in its own
 * transaction, so a rotation of many secrets neither holds one long transaction nor loses work when
 * interrupted: a rerun with the same two keys skips the rows already on the new key id and finishes
 * the rest.
 *
 * This is the only code that holds two master keys. A row is updated only if it still has the
 * wrapped key that was read, so a secret replaced concurrently (by a node still on the old key) is
 * never overwritten with a re-wrap of its previous data key; it is picked up by the next pass.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../store/db/database.js';
import type { DB } from '../../store/db/types.js';
import { systemActor, writeAudit, type AuditActor } from '../audit.js';
import { rewrap, SecretError, type MasterKey } from './envelope.js';
import { countSecretsByKeyId } from './store.js';

export const DEFAULT_ROTATION_BATCH = 500;
export const MAX_ROTATION_BATCH = 10_000;
/**
 * Passes over the table before giving up: more than one is needed only when nodes still running on
 * the old key keep writing secrets during the rotation.
 */
export const MAX_ROTATION_PASSES = 10;

export interface RotateOptions {
  /** Rows per transaction (1–MAX_ROTATION_BATCH, default DEFAULT_ROTATION_BATCH). */
  batchSize?: number;
  /** Who rotated, for the audit row (default: system). */
  actor?: AuditActor;
  /** Called after each committed batch (progress output; tests use it to interrupt a rotation). */
  onBatch?: (progress: { batches: number; rewrapped: number }) => void | Promise<void>;
}

export interface RotateResult {
  oldKeyId: string;
  newKeyId: string;
  /** Data keys re-wrapped by this run. */
  rewrapped: number;
  /** Secrets that were already on the new key when this run started (an earlier, interrupted run). */
  alreadyOnNewKey: number;
  /** Secrets in the table when the run finished; all of them are on the new key. */
  total: number;
  batches: number;
}

export class RotationError extends Error {
  readonly code = 'ROTATION_FAILED';
  constructor(
    message: string,
    /** Data keys re-wrapped (and committed) before the failure. */
    readonly rewrapped = 0,
  ) {
    super(message);
    this.name = 'RotationError';
  }
}

export async function rotateMasterKey(db: Database, oldKey: MasterKey, newKey: MasterKey, opts: RotateOptions = {}): Promise<RotateResult> {
  const batchSize = opts.batchSize ?? DEFAULT_ROTATION_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_ROTATION_BATCH) {
    throw new RotationError(`the rotation batch size must be an integer from 1 to ${MAX_ROTATION_BATCH} (got ${batchSize})`);
  }
  if (oldKey.id === newKey.id) {
    throw new RotationError(`the new master key is the key already in use (key id ${newKey.id}); nothing to rotate`);
  }

  // Rows on a third key can be unwrapped by neither key: refuse before changing anything, since
  // finishing "around" them would leave the operator with secrets no configured key can read.
  const before = await countSecretsByKeyId(db);
  const foreign = [...before].filter(([id]) => id !== oldKey.id && id !== newKey.id);
  if (foreign.length) {
    const n = foreign.reduce((sum, [, c]) => sum + c, 0);
    throw new RotationError(
      `${n} secret${n === 1 ? ' is' : 's are'} wrapped by master key ${foreign.map(([id]) => id).join(', ')}, which is neither the current key ` +
        `${oldKey.id} nor the new key ${newKey.id}; nothing was changed. Configure the key they were written with, or delete them.`,
    );
  }
  const alreadyOnNewKey = before.get(newKey.id) ?? 0;

  let rewrapped = 0;
  let batches = 0;
  for (let pass = 1; ; pass++) {
    let after = '';
    for (;;) {
      const batch = await db.kysely.transaction().execute(async (trx) => rewrapBatch(trx, oldKey, newKey, after, batchSize, rewrapped));
      if (batch.rows === 0) break;
      after = batch.lastId;
      rewrapped += batch.updated;
      batches++;
      await opts.onBatch?.({ batches, rewrapped });
    }
    const left = await remaining(db.kysely, oldKey.id);
    if (left === 0) break;
    if (pass === MAX_ROTATION_PASSES) {
      throw new RotationError(
        `${left} secrets are still wrapped by the old key after ${pass} passes: nodes running with the old key keep writing secrets. ` +
          'Stop them and run the command again.',
        rewrapped,
      );
    }
  }

  const total = [...(await countSecretsByKeyId(db)).values()].reduce((a, b) => a + b, 0);
  if (rewrapped > 0) {
    await writeAudit(db, {
      tenantId: null,
      eventType: 'secrets.master_key_rotated',
      actor: opts.actor ?? systemActor,
      target: { type: 'master_key', id: newKey.id },
      metadata: { old_key_id: oldKey.id, new_key_id: newKey.id, rewrapped, already_on_new_key: alreadyOnNewKey },
    });
  }
  return { oldKeyId: oldKey.id, newKeyId: newKey.id, rewrapped, alreadyOnNewKey, total, batches };
}

/** One batch in one transaction: rows still on the old key, in id order after `after`. */
async function rewrapBatch(trx: Kysely<DB>, oldKey: MasterKey, newKey: MasterKey, after: string, limit: number, doneBefore: number) {
  const rows = await trx
    .selectFrom('secrets')
    .select(['id', 'wrapped_key'])
    .where('key_id', '=', oldKey.id)
    .where('id', '>', after)
    .orderBy('id')
    .limit(limit)
    .execute();
  let updated = 0;
  for (const row of rows) {
    let wrapped: string;
    try {
      wrapped = rewrap(oldKey, newKey, row.id, row.wrapped_key);
    } catch (err) {
      if (!(err instanceof SecretError)) throw err;
      throw new RotationError(
        `rotation stopped: ${err.message}. The batch containing it was rolled back; ${doneBefore} secrets were re-wrapped before it. ` +
          'Restore the row from a backup or delete it, then run the command again.',
        doneBefore,
      );
    }
    // updated_at is left alone: it records when the value last changed, and the value did not.
    const res = await trx
      .updateTable('secrets')
      .set({ key_id: newKey.id, wrapped_key: wrapped })
      .where('id', '=', row.id)
      .where('key_id', '=', oldKey.id)
      .where('wrapped_key', '=', row.wrapped_key)
      .executeTakeFirst();
    updated += Number(res.numUpdatedRows);
  }
  return { rows: rows.length, updated, lastId: rows.length ? rows[rows.length - 1].id : after };
}

async function remaining(db: Kysely<DB>, keyId: string): Promise<number> {
  const row = await db
    .selectFrom('secrets')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('key_id', '=', keyId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
