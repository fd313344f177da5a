/**
 * Envelope encryption primitives (src/security/secrets/envelope.ts) and master-key parsing
 * (master-key.ts): SPEC §10 "AES-256-GCM with a per-record data key wrapped by the master key".
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MAX_SECRET_BYTES,
  SecretError,
  generateDataKey,
  masterKeyFromBytes,
  rewrap,
  seal,
  sealSecret,
  unseal,
  unsealSecret,
  unwrapDataKey,
  wrapDataKey,
  wrappedKeyId,
} from '../../src/security/secrets/envelope.js';
import { loadMasterKey, MasterKeyError, parseMasterKey } from '../../src/security/secrets/master-key.js';
import { newKeyFromRef } from '../../src/cli/secrets.js';

const ID = '4f1c0d1e-3b1a-4c55-9d2e-0a7e3f2b9c11';
const OTHER_ID = '9b2d7e44-1f0a-4e3b-8c6d-5a4b3c2d1e0f';
const master = () => masterKeyFromBytes(randomBytes(32));

/** Flips one bit of the decoded blob at `offset` (negative = from the end) and re-encodes it. */
function flip(b64: string, offset: number): string {
  const buf = Buffer.from(b64, 'base64');
  buf[offset < 0 ? buf.length + offset : offset] ^= 0x01;
  return buf.toString('base64');
}

function code(c: string) {
  return (err: unknown) => err instanceof SecretError && err.code === c;
}

describe('seal / unseal', () => {
  test('round trip, empty and maximum-size values included', () => {
    const k = master();
    for (const plain of [Buffer.from('JBSWY3DPEHPK3PXP'), Buffer.alloc(0), randomBytes(MAX_SECRET_BYTES)]) {
      const rec = seal(k, ID, plain);
      assert.equal(rec.keyId, k.id);
      assert.deepEqual(unseal(k, ID, rec), plain);
    }
  });

  test('the key id is the first 16 hex characters of SHA-256 of the master key', () => {
    const bytes = randomBytes(32);
    assert.equal(masterKeyFromBytes(bytes).id, createHash('sha256').update(bytes).digest('hex').slice(0, 16));
  });

  test('each seal uses a fresh data key and IV: the same value never gives the same bytes', () => {
    const k = master();
    const a = seal(k, ID, Buffer.from('same'));
    const b = seal(k, ID, Buffer.from('same'));
    assert.notEqual(a.ciphertext, b.ciphertext);
    assert.notEqual(a.wrappedKey, b.wrappedKey);
  });

  test('the encoding is versioned and self-describing: version 1, type byte, key id in the wrapped key', () => {
    const k = master();
    const rec = seal(k, ID, Buffer.from('x'));
    const sealed = Buffer.from(rec.ciphertext, 'base64');
    const wrapped = Buffer.from(rec.wrappedKey, 'base64');
    assert.deepEqual([...sealed.subarray(0, 2)], [1, 0x53]);
    assert.equal(sealed.length, 2 + 12 + 16 + 1);
    assert.deepEqual([...wrapped.subarray(0, 2)], [1, 0x4b]);
    assert.equal(wrapped.subarray(2, 10).toString('hex'), k.id);
    assert.equal(wrapped.length, 2 + 8 + 12 + 16 + 32);
    assert.equal(wrappedKeyId(ID, rec.wrappedKey), k.id);
  });

  test('a value above the size limit is refused with the exact error', () => {
    assert.throws(() => seal(master(), ID, Buffer.alloc(MAX_SECRET_BYTES + 1)), {
      name: 'SecretError',
      code: 'SECRET_TOO_LARGE',
      message: `a secret is at most 65536 bytes (got ${MAX_SECRET_BYTES + 1})`,
    });
  });

  test('a wrong master key fails with SECRET_KEY_MISMATCH naming both key ids', () => {
    const k = master();
    const other = master();
    const rec = seal(k, ID, Buffer.from('s3cret'));
    assert.throws(() => unseal(other, ID, rec), {
      code: 'SECRET_KEY_MISMATCH',
      message: `secret ${ID} is wrapped by master key ${k.id}, not by the configured master key ${other.id}`,
    });
  });

  test('a wrong master key that claims the right key id still fails (the GCM tag check)', () => {
    const k = master();
    const impostor = { id: k.id, key: randomBytes(32) };
    const rec = seal(k, ID, Buffer.from('s3cret'));
    assert.throws(() => unseal(impostor, ID, rec), code('SECRET_UNSEAL_FAILED'));
  });

  test('a wrong data key fails', () => {
    const sealed = sealSecret(generateDataKey(), ID, Buffer.from('s3cret'));
    assert.throws(() => unsealSecret(generateDataKey(), ID, sealed), {
      code: 'SECRET_UNSEAL_FAILED',
      message: `secret ${ID} cannot be unsealed: its ciphertext was altered or belongs to another secret`,
    });
  });

  test('tampering with the ciphertext body, the tag or the IV of the sealed secret fails', () => {
    const k = master();
    const rec = seal(k, ID, Buffer.from('a secret value'));
    for (const [what, offset] of [['iv', 2], ['tag', 2 + 12], ['body', -1]] as const) {
      assert.throws(() => unseal(k, ID, { ...rec, ciphertext: flip(rec.ciphertext, offset) }), code('SECRET_UNSEAL_FAILED'), what);
    }
  });

  test('tampering with the wrapped data key (iv, tag, body) fails; a changed key id in its header is caught too', () => {
    const k = master();
    const rec = seal(k, ID, Buffer.from('a secret value'));
    for (const [what, offset] of [['iv', 10], ['tag', 10 + 12], ['body', -1]] as const) {
      assert.throws(
        () => unseal(k, ID, { ...rec, wrappedKey: flip(rec.wrappedKey, offset) }),
        { code: 'SECRET_UNSEAL_FAILED', message: `secret ${ID} cannot be unsealed: its wrapped data key was altered or belongs to another secret` },
        what,
      );
    }
    assert.throws(() => unseal(k, ID, { ...rec, wrappedKey: flip(rec.wrappedKey, 2) }), code('SECRET_KEY_MISMATCH'));
  });

  test('AAD binds both blobs to the secret id: another id cannot open them', () => {
    const k = master();
    const rec = seal(k, ID, Buffer.from('bound to its row'));
    assert.throws(() => unseal(k, OTHER_ID, rec), code('SECRET_UNSEAL_FAILED'));
    // The data key itself unwrapped for the right id, then used for the other id's ciphertext.
    const dataKey = unwrapDataKey(k, ID, rec.wrappedKey);
    assert.throws(() => unsealSecret(dataKey, OTHER_ID, rec.ciphertext), code('SECRET_UNSEAL_FAILED'));
  });

  test('AAD covers the header: a different format version or type byte is refused', () => {
    const k = master();
    const rec = seal(k, ID, Buffer.from('x'));
    const v2 = Buffer.from(rec.ciphertext, 'base64');
    v2[0] = 2;
    assert.throws(() => unseal(k, ID, { ...rec, ciphertext: v2.toString('base64') }), {
      code: 'SECRET_FORMAT',
      message: `secret ${ID}: the sealed secret has format version 2; this version reads 1`,
    });
    // A wrapped key stored in the ciphertext column is recognised by its type byte.
    assert.throws(() => unseal(k, ID, { wrappedKey: rec.wrappedKey, ciphertext: rec.wrappedKey }), {
      code: 'SECRET_FORMAT',
      message: `secret ${ID}: the sealed secret column holds another kind of blob (type byte 0x4b)`,
    });
  });

  test('corrupt text (not base64, truncated) is a format error that does not echo the text', () => {
    const k = master();
    const rec = seal(k, ID, Buffer.from('x'));
    assert.throws(() => unseal(k, ID, { ...rec, ciphertext: 'not base64!' }), {
      code: 'SECRET_FORMAT',
      message: `secret ${ID}: the sealed secret is not valid base64`,
    });
    assert.throws(() => unseal(k, ID, { ...rec, wrappedKey: rec.wrappedKey.slice(0, 8) }), {
      code: 'SECRET_FORMAT',
      message: `secret ${ID}: the wrapped data key is truncated (6 bytes)`,
    });
  });

  test('rewrap moves a data key to a new master key; the sealed secret still opens, the old key no longer does', () => {
    const oldKey = master();
    const newKey = master();
    const rec = seal(oldKey, ID, Buffer.from('rotate me'));
    const wrapped = rewrap(oldKey, newKey, ID, rec.wrappedKey);
    assert.equal(wrappedKeyId(ID, wrapped), newKey.id);
    assert.equal(unseal(newKey, ID, { wrappedKey: wrapped, ciphertext: rec.ciphertext }).toString(), 'rotate me');
    assert.throws(() => unseal(oldKey, ID, { wrappedKey: wrapped, ciphertext: rec.ciphertext }), code('SECRET_KEY_MISMATCH'));
  });

  test('a data key of the wrong size is refused', () => {
    assert.throws(() => wrapDataKey(master(), ID, randomBytes(16)), { message: 'a data key must be exactly 32 bytes (got 16)' });
  });

  test('the key bytes do not show in JSON, util.inspect or spread copies', () => {
    const bytes = randomBytes(32);
    const k = masterKeyFromBytes(bytes);
    for (const text of [JSON.stringify(k), inspect(k, { depth: 5 }), JSON.stringify({ ...k })]) {
      assert.ok(!text.includes(bytes.toString('hex')) && !text.includes(bytes.toString('base64')) && !text.includes('data') && !text.includes('Buffer'), text);
      assert.ok(text.includes(k.id));
    }
  });
});

describe('parseMasterKey', () => {
  const bytes = randomBytes(32);

  test('accepts base64 (padded, unpadded, URL-safe) and 64 hex characters, trimming whitespace', () => {
    const id = masterKeyFromBytes(bytes).id;
    const b64 = bytes.toString('base64');
    for (const text of [b64, b64.replace(/=+$/, ''), bytes.toString('base64url'), bytes.toString('hex'), bytes.toString('hex').toUpperCase(), ` ${b64}\n`]) {
      const k = parseMasterKey(text);
      assert.equal(k.id, id, text);
      assert.deepEqual(k.key, bytes);
    }
  });

  const cases: [string, string, string][] = [
    ['empty', '  ', 'security.master_key is empty; generate one with `openssl rand -base64 32`'],
    ['16 bytes of base64', randomBytes(16).toString('base64'), 'security.master_key decodes to 16 bytes; a master key is exactly 32 bytes (generate one with `openssl rand -base64 32`)'],
    ['33 bytes of base64', randomBytes(33).toString('base64'), 'security.master_key decodes to 33 bytes; a master key is exactly 32 bytes (generate one with `openssl rand -base64 32`)'],
    ['62 hex characters', 'ab'.repeat(31), 'security.master_key has 62 hex characters; a master key is 64 hex characters or base64 of 32 bytes (generate one with `openssl rand -base64 32`)'],
    ['a passphrase', 'correct horse battery staple', 'security.master_key is neither base64 nor hex; a master key is base64 of exactly 32 bytes or 64 hex characters (generate one with `openssl rand -base64 32`)'],
    ['all zero bytes', Buffer.alloc(32).toString('base64'), 'security.master_key is all zero bytes; generate one with `openssl rand -base64 32`'],
  ];
  for (const [what, text, message] of cases) {
    test(`refuses ${what} with the exact message, never echoing the text`, () => {
      assert.throws(() => parseMasterKey(text, 'security.master_key'), (err: unknown) => {
        assert.ok(err instanceof MasterKeyError);
        assert.equal(err.message, message);
        if (text.trim()) assert.ok(!err.message.includes(text.trim()));
        return true;
      });
    });
  }
});

describe('loadMasterKey', () => {
  function setup() {
    const dir = mkdtempSync(join(tmpdir(), 'mairust-mk-'));
    const logs: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
    const logger = {
      info: (obj: Record<string, unknown>, msg: string) => logs.push({ level: 'info', obj, msg }),
      warn: (obj: Record<string, unknown>, msg: string) => logs.push({ level: 'warn', obj, msg }),
    } as never;
    const config = (masterKey = '', dataDir = join(dir, 'data')) => ({ security: { master_key: masterKey }, server: { data_dir: dataDir } }) as never;
    return { dir, logs, logger, config, remove: () => rmSync(dir, { recursive: true, force: true }) };
  }

  test('embedded, no key configured: generates <data_dir>/master.key (0600, base64 of 32 bytes) and reuses it', async () => {
    const s = setup();
    try {
      const first = await loadMasterKey({ config: s.config(), dialect: 'sqlite', logger: s.logger });
      const path = join(s.dir, 'data', 'master.key');
      assert.equal(first.origin, 'file');
      assert.equal(first.path, path);
      assert.equal(first.generated, true);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const text = readFileSync(path, 'utf8');
      assert.match(text, /^[A-Za-z0-9+/]{43}=\n$/);
      assert.equal(parseMasterKey(text).id, first.key.id);
      assert.deepEqual(readdirSync(join(s.dir, 'data')), ['master.key'], 'no temporary file left behind');
      // The log line names the key by id only.
      assert.equal(s.logs.length, 1);
      assert.equal(s.logs[0].obj.key_id, first.key.id);
      assert.ok(!JSON.stringify(s.logs).includes(text.trim()));

      const second = await loadMasterKey({ config: s.config(), dialect: 'sqlite', logger: s.logger });
      assert.equal(second.key.id, first.key.id);
      assert.equal(second.generated, false);
    } finally {
      s.remove();
    }
  });

  test('concurrent first starts agree on one key', async () => {
    const s = setup();
    try {
      const all = await Promise.all(Array.from({ length: 8 }, () => loadMasterKey({ config: s.config(), dialect: 'sqlite' })));
      assert.equal(new Set(all.map((l) => l.key.id)).size, 1);
      assert.equal(all.filter((l) => l.generated).length, 1);
      assert.equal(parseMasterKey(readFileSync(join(s.dir, 'data', 'master.key'), 'utf8')).id, all[0].key.id);
    } finally {
      s.remove();
    }
  });

  test('a configured key wins over the file', async () => {
    const s = setup();
    try {
      await loadMasterKey({ config: s.config(), dialect: 'sqlite' });
      const bytes = randomBytes(32);
      const got = await loadMasterKey({ config: s.config(bytes.toString('hex')), dialect: 'sqlite' });
      assert.equal(got.origin, 'config');
      assert.equal(got.key.id, masterKeyFromBytes(bytes).id);
    } finally {
      s.remove();
    }
  });

  test('PostgreSQL without a key refuses to start with the exact message', async () => {
    const s = setup();
    try {
      await assert.rejects(loadMasterKey({ config: s.config(), dialect: 'postgres' }), {
        name: 'MasterKeyError',
        message:
          'security.master_key is not set. With PostgreSQL every node must use the same master key, so none is generated: ' +
          'set MAIRUST_MASTER_KEY to the same value on every node (generate one with `openssl rand -base64 32`).',
      });
      assert.deepEqual(readdirSync(s.dir), [], 'nothing was generated');
    } finally {
      s.remove();
    }
  });

  test('a bad configured key and a corrupt key file are refused with exact messages', async () => {
    const s = setup();
    try {
      await assert.rejects(loadMasterKey({ config: s.config('c2VjcmV0'), dialect: 'postgres' }), {
        message: 'security.master_key (MAIRUST_MASTER_KEY) decodes to 6 bytes; a master key is exactly 32 bytes (generate one with `openssl rand -base64 32`)',
      });
      const dataDir = join(s.dir, 'data');
      await loadMasterKey({ config: s.config(), dialect: 'sqlite' });
      writeFileSync(join(dataDir, 'master.key'), 'dHJ1bmNhdGVk\n');
      await assert.rejects(loadMasterKey({ config: s.config(), dialect: 'sqlite' }), {
        message: `${join(dataDir, 'master.key')} decodes to 9 bytes; a master key is exactly 32 bytes (generate one with \`openssl rand -base64 32\`)`,
      });
    } finally {
      s.remove();
    }
  });

  test('a key file readable by others is used, with a warning', async () => {
    const s = setup();
    try {
      const first = await loadMasterKey({ config: s.config(), dialect: 'sqlite' });
      chmodSync(first.path!, 0o644);
      const again = await loadMasterKey({ config: s.config(), dialect: 'sqlite', logger: s.logger });
      assert.equal(again.key.id, first.key.id);
      assert.deepEqual(s.logs.map((l) => [l.level, l.obj.mode, l.msg]), [['warn', '644', 'the master key file is readable by other users; run chmod 600 on it']]);
    } finally {
      s.remove();
    }
  });
});

describe('--new-key of `mairust secrets rotate-master-key`', () => {
  const bytes = randomBytes(32);

  test('resolves env: and file: references', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mairust-nk-'));
    try {
      writeFileSync(join(dir, 'k'), `${bytes.toString('base64')}\n`);
      for (const got of [newKeyFromRef('env:K', { K: bytes.toString('hex') }), newKeyFromRef(`file:${join(dir, 'k')}`, {})]) {
        assert.ok('key' in got);
        assert.equal(got.key.id, masterKeyFromBytes(bytes).id);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('refuses a literal key, a missing variable or file and a malformed key, with exact messages and no key echoed', () => {
    const cases: [string, NodeJS.ProcessEnv, string][] = [
      [bytes.toString('base64'), {}, '--new-key must be env:NAME or file:PATH; a key typed on the command line would stay in shell history and the process list'],
      ['env:NOPE', {}, '--new-key env:NOPE: environment variable NOPE is not set'],
      ['file:/nonexistent/new.key', {}, '--new-key file:/nonexistent/new.key: secret file /nonexistent/new.key does not exist'],
      ['env:SHORT', { SHORT: randomBytes(16).toString('base64') }, '--new-key env:SHORT decodes to 16 bytes; a master key is exactly 32 bytes (generate one with `openssl rand -base64 32`)'],
    ];
    for (const [ref, env, message] of cases) assert.deepEqual(newKeyFromRef(ref, env), { error: message }, ref);
  });
});
