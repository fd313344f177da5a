/**
 * `SecretStore` over the `secrets` table (migration 0008): one row per secret, holding the
 * secret sealed under its own data key and that data key wrapped by the master key (envelope.ts).
 * The row never holds plaintext or an unwrapped key; other tables refer to it by id.
 */
import { Kysely } from 'kysely';
import { newId, now, type Database } from '../../store/db/database.js';
import type { DB } from '../../store/db/types.js';
import { SecretError, seal, unseal, type MasterKey } from './envelope.js';
import type { SecretKind, SecretStore } from './types.js';

export const SECRET_KINDS: readonly SecretKind[] = ['totp', 'webhook', 'dkim', 'plugin', 'plugin_token', 'other'];

function bytesOf(plaintext: string | Buffer): Buffer {
  return typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
}

export class DatabaseSecretStore implements SecretStore {
  constructor(
    private readonly db: Database,
    private readonly masterKey: MasterKey,
  ) {}

  /** Id of the master key new secrets are wrapped with (not secret: a SHA-256 prefix). */
  get keyId(): string {
    return this.masterKey.id;
  }

  async put(input: { tenantId: string | null; kind: SecretKind; plaintext: string | Buffer }, trx?: Kysely<DB>): Promise<string> {
    if (!SECRET_KINDS.includes(input.kind)) throw new SecretError('SECRET_FORMAT', `unknown secret kind "${String(input.kind)}"`);
    const id = newId();
    const sealed = seal(this.masterKey, id, bytesOf(input.plaintext));
    const t = now();
    await (trx ?? this.db.kysely)
      .insertInto('secrets')
      .values({
        id,
        tenant_id: input.tenantId,
        kind: input.kind,
        key_id: sealed.keyId,
        wrapped_key: sealed.wrappedKey,
        ciphertext: sealed.ciphertext,
        created_at: t,
        updated_at: t,
      })
      .execute();
    return id;
  }

  async get(id: string): Promise<Buffer> {
    const row = await this.db.kysely.selectFrom('secrets').select(['key_id', 'wrapped_key', 'ciphertext']).where('id', '=', id).executeTakeFirst();
    if (!row) throw new SecretError('SECRET_NOT_FOUND', `secret ${id} does not exist`);
    if (row.key_id !== this.masterKey.id) {
      // Checked before any decryption so the error says what to do instead of "tag mismatch".
      throw new SecretError(
        'SECRET_KEY_MISMATCH',
        `secret ${id} is wrapped by master key ${row.key_id}, not by the configured master key ${this.masterKey.id} ` +
          '(finish an interrupted `mairust secrets rotate-master-key`, or configure the key it was written with)',
      );
    }
    return unseal(this.masterKey, id, { wrappedKey: row.wrapped_key, ciphertext: row.ciphertext });
  }

  async replace(id: string, plaintext: string | Buffer, trx?: Kysely<DB>): Promise<void> {
    // A new data key each time: a data key seals exactly one value (envelope.ts).
    const sealed = seal(this.masterKey, id, bytesOf(plaintext));
    const res = await (trx ?? this.db.kysely)
      .updateTable('secrets')
      .set({ key_id: sealed.keyId, wrapped_key: sealed.wrappedKey, ciphertext: sealed.ciphertext, updated_at: now() })
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw new SecretError('SECRET_NOT_FOUND', `secret ${id} does not exist`);
  }

  /** Deletes secret `id`; deleting one that is already gone is not an error (owners clean up idempotently). */
  async delete(id: string, trx?: Kysely<DB>): Promise<void> {
    await (trx ?? this.db.kysely).deleteFrom('secrets').where('id', '=', id).execute();
  }
}

/** How many secrets each master key id wraps; the startup check and the CLI use it. */
export async function countSecretsByKeyId(db: Database | Kysely<DB>): Promise<Map<string, number>> {
  const k = db instanceof Kysely ? db : db.kysely;
  const rows = await k
    .selectFrom('secrets')
    .select(['key_id', (eb) => eb.fn.countAll<number | string>().as('n')])
    .groupBy('key_id')
    .execute();
  return new Map(rows.map((r) => [r.key_id, Number(r.n)]));
}
