/**
 * Secrets at rest in the real database of the current shape (SPEC §10): the store's behaviour,
 * proof that no table holds the plaintext, row binding, and master-key rotation (also interrupted
 * and rerun).
 */
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { sql } from 'kysely';
import type { Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/observability/logger.js';
import { listAudit } from '../../src/security/audit.js';
import { systemScope } from '../../src/core/scope.js';
import { masterKeyFromBytes, type MasterKey } from '../../src/security/secrets/envelope.js';
import { DatabaseSecretStore, openSecretStore, rotateMasterKey, RotationError, SecretError } from '../../src/security/secrets/index.js';
import type { Database } from '../../src/store/db/database.js';
import { freshDatabase, shape, type TestDatabase } from '../support/shape.js';

const newKey = (): MasterKey => masterKeyFromBytes(randomBytes(32));

function isCode(code: string) {
  return (err: unknown) => err instanceof SecretError && err.code === code;
}

async function keyIds(db: Database): Promise<string[]> {
  const rows = await db.kysely.selectFrom('secrets').select('key_id').orderBy('id').execute();
  return rows.map((r) => r.key_id);
}

/**
 * Every value of every column of every table, as text, found through the dialect's catalog (so a
 * table added later is covered without changing this test). Binary values are added in hex and
 * UTF-8; PostgreSQL renders bytea as hex through ::text.
 */
async function dumpDatabase(db: Database): Promise<{ text: string; tables: string[] }> {
  const cols: { table: string; column: string }[] = [];
  if (db.dialect === 'sqlite') {
    const tables = await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`.execute(db.kysely);
    for (const t of tables.rows) {
      const info = await sql<{ name: string }>`select name from pragma_table_info(${t.name})`.execute(db.kysely);
      for (const c of info.rows) cols.push({ table: t.name, column: c.name });
    }
  } else {
    const info = await sql<{ table_name: string; column_name: string }>`
      select c.table_name, c.column_name from information_schema.columns c
      join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
      where c.table_schema = current_schema() and t.table_type = 'BASE TABLE'`.execute(db.kysely);
    for (const r of info.rows) cols.push({ table: r.table_name, column: r.column_name });
  }
  const parts: string[] = [];
  for (const { table, column } of cols) {
    const expr = db.dialect === 'postgres' ? sql`${sql.ref(column)}::text` : sql.ref(column);
    const rows = await sql<{ v: unknown }>`select ${expr} as v from ${sql.table(table)}`.execute(db.kysely);
    for (const { v } of rows.rows) {
      if (v === null || v === undefined) continue;
      if (Buffer.isBuffer(v)) parts.push(v.toString('hex'), v.toString('utf8'), v.toString('latin1'));
      else parts.push(String(v));
    }
  }
  return { text: parts.join('\n'), tables: [...new Set(cols.map((c) => c.table))] };
}

/**
 * The forms in which `secret` could appear inside a larger stored value: itself, hex, and base64 /
 * base64url at each of the three byte alignments (the base64 of a buffer that contains `secret` at
 * offset o contains the base64 of `secret` minus its first (3 - o % 3) % 3 bytes, cut to whole groups).
 */
function encodedForms(secret: Buffer): string[] {
  const forms = [secret.toString('utf8'), secret.toString('hex'), secret.toString('hex').toUpperCase()];
  for (let skip = 0; skip < 3; skip++) {
    const part = secret.subarray(skip);
    const whole = part.subarray(0, part.length - (part.length % 3));
    forms.push(whole.toString('base64'), whole.toString('base64url'));
  }
  return forms;
}

describe(`secret store (${shape})`, () => {
  let t: TestDatabase;
  let key: MasterKey;
  let store: DatabaseSecretStore;

  beforeEach(async () => {
    t = await freshDatabase();
    key = newKey();
    store = new DatabaseSecretStore(t.db, key);
  });
  afterEach(async () => {
    await t.drop();
  });

  test('put / get / replace / delete', async () => {
    const id = await store.put({ tenantId: null, kind: 'webhook', plaintext: 'whsec_first' });
    assert.equal((await store.get(id)).toString(), 'whsec_first');
    const bin = randomBytes(64);
    const binId = await store.put({ tenantId: 'tenant-1', kind: 'dkim', plaintext: bin });
    assert.deepEqual(await store.get(binId), bin);

    const before = await t.db.kysely.selectFrom('secrets').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    assert.equal(before.kind, 'webhook');
    assert.equal(before.tenant_id, null);
    assert.equal(before.key_id, key.id);
    await store.replace(id, 'whsec_second');
    assert.equal((await store.get(id)).toString(), 'whsec_second');
    const afterRow = await t.db.kysely.selectFrom('secrets').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    assert.notEqual(afterRow.wrapped_key, before.wrapped_key, 'replace uses a new data key');
    assert.equal(afterRow.created_at, before.created_at);

    await store.delete(id);
    await assert.rejects(store.get(id), { code: 'SECRET_NOT_FOUND', message: `secret ${id} does not exist` });
    await store.delete(id); // already gone: no error
    await assert.rejects(store.replace(id, 'x'), { code: 'SECRET_NOT_FOUND', message: `secret ${id} does not exist` });
    assert.deepEqual(await store.get(binId), bin, 'other secrets are untouched');
  });

  test('put and delete commit or roll back with the caller’s transaction', async () => {
    let rolledBackId = '';
    await assert.rejects(
      t.db.kysely.transaction().execute(async (trx) => {
        rolledBackId = await store.put({ tenantId: null, kind: 'totp', plaintext: 'JBSWY3DPEHPK3PXP' }, trx);
        throw new Error('owner insert failed');
      }),
      /owner insert failed/,
    );
    await assert.rejects(store.get(rolledBackId), isCode('SECRET_NOT_FOUND'));

    const id = await store.put({ tenantId: null, kind: 'totp', plaintext: 'JBSWY3DPEHPK3PXP' });
    await assert.rejects(
      t.db.kysely.transaction().execute(async (trx) => {
        await store.delete(id, trx);
        throw new Error('owner delete failed');
      }),
      /owner delete failed/,
    );
    assert.equal((await store.get(id)).toString(), 'JBSWY3DPEHPK3PXP');
  });

  test('an unknown kind and an oversized value are refused with exact errors', async () => {
    await assert.rejects(store.put({ tenantId: null, kind: 'bogus' as never, plaintext: 'x' }), { code: 'SECRET_FORMAT', message: 'unknown secret kind "bogus"' });
    await assert.rejects(store.put({ tenantId: null, kind: 'other', plaintext: Buffer.alloc(65537) }), {
      code: 'SECRET_TOO_LARGE',
      message: 'a secret is at most 65536 bytes (got 65537)',
    });
    const [{ n }] = await t.db.kysely.selectFrom('secrets').select((eb) => eb.fn.countAll<number>().as('n')).execute();
    assert.equal(Number(n), 0);
  });

  test('the database holds no plaintext: the secret appears in no column of any table, in no encoding', async () => {
    const secret = Buffer.from(`-----BEGIN PRIVATE KEY----- recognisable ${randomBytes(24).toString('hex')} -----END PRIVATE KEY-----`);
    const marker = `marker-tenant-${randomBytes(6).toString('hex')}`;
    const id = await store.put({ tenantId: marker, kind: 'dkim', plaintext: secret });
    await store.put({ tenantId: marker, kind: 'totp', plaintext: secret.subarray(10, 60) });
    const replaced = await store.put({ tenantId: null, kind: 'webhook', plaintext: 'placeholder' });
    await store.replace(replaced, secret);

    const dump = await dumpDatabase(t.db);
    // The dump covers the secrets table and its clear columns: a missed table would pass vacuously.
    assert.ok(dump.tables.includes('secrets') && dump.tables.includes('audit_log') && dump.tables.length > 20, dump.tables.join(','));
    assert.ok(dump.text.includes(marker) && dump.text.includes(id));
    for (const form of [...encodedForms(secret), ...encodedForms(key.key)]) {
      assert.ok(!dump.text.includes(form), `found ${form.slice(0, 12)}… in the database`);
    }
    // The detector itself works: the same search finds a value stored in clear.
    await t.db.kysely.updateTable('secrets').set({ kind: secret.toString('base64') }).where('id', '=', id).execute();
    const leaky = await dumpDatabase(t.db);
    assert.ok(encodedForms(secret).some((form) => leaky.text.includes(form)));
  });

  test('rows cannot be swapped: another row’s ciphertext or wrapped key does not open under this id', async () => {
    const a = await store.put({ tenantId: 'ta', kind: 'webhook', plaintext: 'secret of A' });
    const b = await store.put({ tenantId: 'tb', kind: 'webhook', plaintext: 'secret of B' });
    const rowA = await t.db.kysely.selectFrom('secrets').selectAll().where('id', '=', a).executeTakeFirstOrThrow();
    const rowB = await t.db.kysely.selectFrom('secrets').selectAll().where('id', '=', b).executeTakeFirstOrThrow();
    // Whole-row swap of the encrypted columns (an attacker with write access to the table).
    await t.db.kysely.updateTable('secrets').set({ wrapped_key: rowB.wrapped_key, ciphertext: rowB.ciphertext }).where('id', '=', a).execute();
    await assert.rejects(store.get(a), isCode('SECRET_UNSEAL_FAILED'));
    // Only the ciphertext moved.
    await t.db.kysely.updateTable('secrets').set({ wrapped_key: rowA.wrapped_key, ciphertext: rowB.ciphertext }).where('id', '=', a).execute();
    await assert.rejects(store.get(a), isCode('SECRET_UNSEAL_FAILED'));
    assert.equal((await store.get(b)).toString(), 'secret of B');
  });

  test('a store with another master key cannot read the secrets and says which keys are involved', async () => {
    const id = await store.put({ tenantId: null, kind: 'other', plaintext: 'x' });
    const other = new DatabaseSecretStore(t.db, newKey());
    await assert.rejects(other.get(id), (err: unknown) => {
      assert.ok(err instanceof SecretError && err.code === 'SECRET_KEY_MISMATCH');
      assert.equal(
        err.message,
        `secret ${id} is wrapped by master key ${key.id}, not by the configured master key ${other.keyId} ` +
          '(finish an interrupted `mairust secrets rotate-master-key`, or configure the key it was written with)',
      );
      return true;
    });
  });
});

describe(`master-key rotation (${shape})`, () => {
  let t: TestDatabase;
  let oldKey: MasterKey;
  let nextKey: MasterKey;
  const values = new Map<string, Buffer>();

  before(async () => {
    t = await freshDatabase();
  });
  after(async () => {
    await t.drop();
  });
  beforeEach(async () => {
    await t.db.kysely.deleteFrom('secrets').execute();
    values.clear();
    oldKey = newKey();
    nextKey = newKey();
    const store = new DatabaseSecretStore(t.db, oldKey);
    for (let i = 0; i < 7; i++) {
      const v = randomBytes(20 + i);
      values.set(await store.put({ tenantId: i % 2 ? 'tenant-odd' : null, kind: 'plugin', plaintext: v }), v);
    }
  });

  test('re-wraps every data key; the new key reads everything, the old key nothing; a rerun is a no-op', async () => {
    const ciphertextsBefore = await t.db.kysely.selectFrom('secrets').select(['id', 'ciphertext']).orderBy('id').execute();
    const result = await rotateMasterKey(t.db, oldKey, nextKey, { batchSize: 3 });
    assert.deepEqual(result, { oldKeyId: oldKey.id, newKeyId: nextKey.id, rewrapped: 7, alreadyOnNewKey: 0, total: 7, batches: 3 });
    assert.deepEqual(await keyIds(t.db), Array(7).fill(nextKey.id));
    // Only the wrapping changed: the sealed secrets are byte for byte the same.
    assert.deepEqual(await t.db.kysely.selectFrom('secrets').select(['id', 'ciphertext']).orderBy('id').execute(), ciphertextsBefore);

    const fresh = new DatabaseSecretStore(t.db, nextKey);
    const stale = new DatabaseSecretStore(t.db, oldKey);
    for (const [id, v] of values) {
      assert.deepEqual(await fresh.get(id), v);
      await assert.rejects(stale.get(id), isCode('SECRET_KEY_MISMATCH'));
    }
    // Pointing the row's key_id column back at the old key does not help: the wrapped key's own
    // (authenticated) header names the new key.
    const [first] = values.keys();
    const row = await t.db.kysely.selectFrom('secrets').selectAll().where('id', '=', first).executeTakeFirstOrThrow();
    await t.db.kysely.updateTable('secrets').set({ key_id: oldKey.id }).where('id', '=', first).execute();
    await assert.rejects(stale.get(first), isCode('SECRET_KEY_MISMATCH'), 'the key id inside the wrapped key still names the new key');
    await t.db.kysely.updateTable('secrets').set({ key_id: row.key_id }).where('id', '=', first).execute();

    const audit = await listAudit(t.db, systemScope, { eventType: 'secrets.master_key_rotated' });
    assert.equal(audit.length, 1);
    assert.deepEqual(audit[0].metadata, { old_key_id: oldKey.id, new_key_id: nextKey.id, rewrapped: 7, already_on_new_key: 0 });

    const wrappedAfter = await t.db.kysely.selectFrom('secrets').select(['id', 'wrapped_key']).orderBy('id').execute();
    const rerun = await rotateMasterKey(t.db, oldKey, nextKey);
    assert.deepEqual(rerun, { oldKeyId: oldKey.id, newKeyId: nextKey.id, rewrapped: 0, alreadyOnNewKey: 7, total: 7, batches: 0 });
    assert.deepEqual(await t.db.kysely.selectFrom('secrets').select(['id', 'wrapped_key']).orderBy('id').execute(), wrappedAfter);
    assert.equal((await listAudit(t.db, systemScope, { eventType: 'secrets.master_key_rotated' })).length, 1, 'a no-op run is not audited');
  });

  test('interrupted after a batch: committed batches stay, a rerun finishes the rest', async () => {
    await assert.rejects(
      rotateMasterKey(t.db, oldKey, nextKey, {
        batchSize: 2,
        onBatch: ({ batches }) => {
          if (batches === 2) throw new Error('operator pressed ^C');
        },
      }),
      /operator pressed/,
    );
    const mid = await keyIds(t.db);
    assert.equal(mid.filter((k) => k === nextKey.id).length, 4);
    assert.equal(mid.filter((k) => k === oldKey.id).length, 3);

    const result = await rotateMasterKey(t.db, oldKey, nextKey, { batchSize: 2 });
    assert.equal(result.rewrapped, 3);
    assert.equal(result.alreadyOnNewKey, 4);
    assert.deepEqual(await keyIds(t.db), Array(7).fill(nextKey.id));
    const fresh = new DatabaseSecretStore(t.db, nextKey);
    for (const [id, v] of values) assert.deepEqual(await fresh.get(id), v);
  });

  test('a tampered wrapped key stops the rotation; its batch is rolled back, earlier batches stay', async () => {
    // Database order (the rotation's keyset order; PostgreSQL collation may differ from JS sort).
    const ids = (await t.db.kysely.selectFrom('secrets').select('id').orderBy('id').execute()).map((r) => r.id);
    const victim = ids[4]; // in the third batch of two
    const row = await t.db.kysely.selectFrom('secrets').select('wrapped_key').where('id', '=', victim).executeTakeFirstOrThrow();
    const buf = Buffer.from(row.wrapped_key, 'base64');
    buf[buf.length - 1] ^= 1;
    await t.db.kysely.updateTable('secrets').set({ wrapped_key: buf.toString('base64') }).where('id', '=', victim).execute();

    await assert.rejects(rotateMasterKey(t.db, oldKey, nextKey, { batchSize: 2 }), (err: unknown) => {
      assert.ok(err instanceof RotationError);
      assert.equal(
        err.message,
        `rotation stopped: secret ${victim} cannot be unsealed: its wrapped data key was altered or belongs to another secret. ` +
          'The batch containing it was rolled back; 4 secrets were re-wrapped before it. Restore the row from a backup or delete it, then run the command again.',
      );
      assert.equal(err.rewrapped, 4);
      return true;
    });
    const after = await t.db.kysely.selectFrom('secrets').select(['id', 'key_id']).orderBy('id').execute();
    assert.deepEqual(after.map((r) => r.key_id), [nextKey.id, nextKey.id, nextKey.id, nextKey.id, oldKey.id, oldKey.id, oldKey.id]);

    await new DatabaseSecretStore(t.db, oldKey).delete(victim);
    const result = await rotateMasterKey(t.db, oldKey, nextKey, { batchSize: 2 });
    assert.equal(result.rewrapped, 2);
    assert.equal(result.total, 6);
  });

  test('refuses the same key, a third key in the table, and a bad batch size, changing nothing', async () => {
    await assert.rejects(rotateMasterKey(t.db, oldKey, oldKey), {
      code: 'ROTATION_FAILED',
      message: `the new master key is the key already in use (key id ${oldKey.id}); nothing to rotate`,
    });
    const stranger = newKey();
    await new DatabaseSecretStore(t.db, stranger).put({ tenantId: null, kind: 'other', plaintext: 'from elsewhere' });
    await assert.rejects(rotateMasterKey(t.db, oldKey, nextKey), {
      message: `1 secret is wrapped by master key ${stranger.id}, which is neither the current key ${oldKey.id} nor the new key ${nextKey.id}; nothing was changed. Configure the key they were written with, or delete them.`,
    });
    for (const batchSize of [0, 10_001, 1.5]) {
      await assert.rejects(rotateMasterKey(t.db, oldKey, nextKey, { batchSize }), {
        message: `the rotation batch size must be an integer from 1 to 10000 (got ${batchSize})`,
      });
    }
    assert.equal((await keyIds(t.db)).filter((k) => k === nextKey.id).length, 0);
  });
});

describe(`openSecretStore (${shape})`, () => {
  test('uses the configured key and reports secrets wrapped by another key once, without key material', async () => {
    const t = await freshDatabase();
    try {
      const bytes = randomBytes(32);
      const lines: Record<string, unknown>[] = [];
      const raw: string[] = [];
      const stream = new Writable({
        write(chunk, _e, done) {
          raw.push(chunk.toString());
          for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
          done();
        },
      });
      const logger = createLogger({ level: 'debug', format: 'json', destination: stream });
      const config = { security: { master_key: bytes.toString('base64') }, server: { data_dir: '/nonexistent' } } as unknown as Config;

      const store = await openSecretStore({ config, db: t.db, logger });
      assert.equal(store.keyId, masterKeyFromBytes(bytes).id);
      assert.equal(lines.filter((l) => l.level === 'error').length, 0);
      const id = await store.put({ tenantId: null, kind: 'other', plaintext: 'v' });

      const stranger = newKey();
      await new DatabaseSecretStore(t.db, stranger).put({ tenantId: null, kind: 'other', plaintext: 'w' });
      const again = await openSecretStore({ config, db: t.db, logger });
      assert.equal((await again.get(id)).toString(), 'v');
      const errors = lines.filter((l) => l.level === 'error');
      assert.equal(errors.length, 1);
      assert.deepEqual(errors[0].other_key_ids, { [stranger.id]: 1 });
      assert.match(String(errors[0].message), /rotate-master-key/);
      const all = raw.join('');
      for (const form of [...encodedForms(bytes), ...encodedForms(stranger.key)]) assert.ok(!all.includes(form));
    } finally {
      await t.drop();
    }
  });
});
