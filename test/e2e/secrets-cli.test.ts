/**
 * `mairust secrets rotate-master-key` run the way an operator runs it (bin/mairust.mjs in a child
 * process) against a data dir (embedded: SQLite with the generated `<data_dir>/master.key`) or a
 * PostgreSQL database (cluster: MAIRUST_MASTER_KEY). SPEC §10: rotation re-wraps the data keys;
 * no key is ever printed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDatabase, type Database } from '../../src/store/db/database.js';
import { migrateUp } from '../../src/store/db/migrator.js';
import { masterKeyFromBytes, type MasterKey } from '../../src/security/secrets/envelope.js';
import { loadMasterKey } from '../../src/security/secrets/master-key.js';
import { DatabaseSecretStore } from '../../src/security/secrets/store.js';
import { runCli, shapeEnv, type CliResult, type ShapeEnv } from '../support/server-process.js';
import { shape } from '../support/shape.js';

/** Every text form a key could be printed in (see test/integration/secrets-store.test.ts). */
function keyForms(key: MasterKey): string[] {
  const forms = [key.key.toString('hex'), key.key.toString('hex').toUpperCase()];
  for (let skip = 0; skip < 3; skip++) {
    const part = key.key.subarray(skip);
    const whole = part.subarray(0, part.length - (part.length % 3));
    forms.push(whole.toString('base64'), whole.toString('base64url'));
  }
  return forms;
}

function assertNoKeyMaterial(res: CliResult, keys: MasterKey[]) {
  const out = res.stdout + res.stderr;
  for (const k of keys) for (const form of keyForms(k)) assert.ok(!out.includes(form), `key material printed:\n${out}`);
}

describe(`mairust secrets rotate-master-key (${shape})`, () => {
  let s: ShapeEnv;
  let dbUrl: string;
  let env: Record<string, string>;
  let oldKey: MasterKey;
  const newKey = masterKeyFromBytes(randomBytes(32));
  const thirdKey = masterKeyFromBytes(randomBytes(32));
  const values = new Map<string, string>();

  async function withDb<T>(fn: (db: Database) => Promise<T>): Promise<T> {
    const db = await openDatabase(dbUrl, { dataDir: s.dataDir });
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  }

  before(async () => {
    s = await shapeEnv();
    env = { ...s.env, MAIRUST_LOG_LEVEL: 'info' };
    dbUrl = s.env.MAIRUST_DATABASE_URL ?? `sqlite:${join(s.dataDir, 'mairust.db')}`;
    await withDb(async (db) => {
      await migrateUp(db);
      if (shape === 'embedded') {
        // What `mairust serve` does at first start with no key configured.
        oldKey = (await loadMasterKey({ config: { security: { master_key: '' }, server: { data_dir: s.dataDir } } as never, dialect: 'sqlite' })).key;
      } else {
        oldKey = masterKeyFromBytes(randomBytes(32));
        env.MAIRUST_MASTER_KEY = oldKey.key.toString('base64');
      }
      const store = new DatabaseSecretStore(db, oldKey);
      for (const [i, v] of ['JBSWY3DPEHPK3PXP', 'whsec_0123456789', `-----BEGIN PRIVATE KEY----- ${randomBytes(16).toString('hex')}`].entries()) {
        values.set(await store.put({ tenantId: null, kind: i === 0 ? 'totp' : i === 1 ? 'webhook' : 'dkim', plaintext: v }), v);
      }
    });
    writeFileSync(join(s.dataDir, 'new.key'), `${newKey.key.toString('base64')}\n`, { mode: 0o600 });
  });

  after(async () => {
    await s.cleanup();
  });

  test('refuses a key given on the command line (exit 2) and the key already in use (exit 1), printing no key', async () => {
    const literal = await runCli(['secrets', 'rotate-master-key', '--new-key', newKey.key.toString('base64')], env);
    assert.equal(literal.code, 2);
    assert.equal(literal.stderr, 'error: --new-key must be env:NAME or file:PATH; a key typed on the command line would stay in shell history and the process list\n');

    const same = await runCli(['secrets', 'rotate-master-key', '--new-key', 'env:SAME_KEY'], { ...env, SAME_KEY: oldKey.key.toString('hex') });
    assert.equal(same.code, 1);
    assert.match(same.stderr, new RegExp(`error: the new master key is the key already in use \\(key id ${oldKey.id}\\); nothing to rotate$`, 'm'));
    for (const r of [literal, same]) assert.ok(!r.stdout.trim(), r.stdout);
    assertNoKeyMaterial(same, [oldKey, newKey]);
    await withDb(async (db) => {
      const rows = await db.kysely.selectFrom('secrets').select('key_id').execute();
      assert.deepEqual(rows.map((r) => r.key_id), [oldKey.id, oldKey.id, oldKey.id], 'nothing changed');
    });
  });

  if (shape === 'cluster') {
    test('with PostgreSQL and no MAIRUST_MASTER_KEY it refuses, saying what to set', async () => {
      const { MAIRUST_MASTER_KEY: _omit, ...noKey } = env;
      const res = await runCli(['secrets', 'rotate-master-key', '--new-key', `file:${join(s.dataDir, 'new.key')}`], noKey);
      assert.equal(res.code, 1);
      assert.match(res.stderr, /error: security\.master_key is not set\. With PostgreSQL every node must use the same master key, so none is generated: set MAIRUST_MASTER_KEY to the same value on every node/);
    });
  }

  test('re-wraps every secret, prints counts, key ids and next steps but no key; the new key reads everything', async () => {
    const res = await runCli(['secrets', 'rotate-master-key', '--new-key', `file:${join(s.dataDir, 'new.key')}`], env);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, new RegExp(`^old_key_id +${oldKey.id}$`, 'm'));
    assert.match(res.stdout, new RegExp(`^new_key_id +${newKey.id}$`, 'm'));
    assert.match(res.stdout, /^rewrapped +3$/m);
    assert.match(res.stdout, /^already_on_new_key +0$/m);
    assert.match(res.stdout, /^total_secrets +3$/m);
    assert.match(res.stdout, /Next steps:/);
    if (shape === 'embedded') assert.ok(res.stdout.includes(`or replace ${join(s.dataDir, 'master.key')} with it`), res.stdout);
    else assert.match(res.stdout, /Set MAIRUST_MASTER_KEY \(or security\.master_key\) to the new key .* on every node/);
    assert.match(res.stdout, /Restart every node/);
    assertNoKeyMaterial(res, [oldKey, newKey]);

    await withDb(async (db) => {
      const fresh = new DatabaseSecretStore(db, newKey);
      const stale = new DatabaseSecretStore(db, oldKey);
      for (const [id, v] of values) {
        assert.equal((await fresh.get(id)).toString(), v);
        await assert.rejects(stale.get(id), { code: 'SECRET_KEY_MISMATCH' });
      }
    });
  });

  test('a rerun with the same keys is a no-op (JSON output)', async () => {
    const res = await runCli(['--json', 'secrets', 'rotate-master-key', '--new-key', `file:${join(s.dataDir, 'new.key')}`], env);
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout);
    assert.deepEqual({ ...out, next_steps: undefined }, {
      old_key_id: oldKey.id,
      new_key_id: newKey.id,
      rewrapped: 0,
      already_on_new_key: 3,
      total_secrets: 3,
      next_steps: undefined,
    });
    assert.equal(out.next_steps.length, 3);
    assertNoKeyMaterial(res, [oldKey, newKey]);
  });

  test('after the operator switches MAIRUST_MASTER_KEY to the new key, the next rotation starts from it', async () => {
    const switched = { ...env, MAIRUST_MASTER_KEY: newKey.key.toString('base64'), THIRD_KEY: thirdKey.key.toString('hex') };
    const res = await runCli(['--json', 'secrets', 'rotate-master-key', '--new-key', 'env:THIRD_KEY'], switched);
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout);
    assert.equal(out.old_key_id, newKey.id);
    assert.equal(out.new_key_id, thirdKey.id);
    assert.equal(out.rewrapped, 3);
    assert.match(out.next_steps[0], /Set MAIRUST_MASTER_KEY \(or security\.master_key\) to the new key \(the value of env:THIRD_KEY\) on every node/);
    assertNoKeyMaterial(res, [oldKey, newKey, thirdKey]);
    await withDb(async (db) => {
      const store = new DatabaseSecretStore(db, thirdKey);
      for (const [id, v] of values) assert.equal((await store.get(id)).toString(), v);
    });
  });
});
