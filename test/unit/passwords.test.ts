import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_PASSWORD_PARAMS,
  PASSWORD_MAX_BYTES,
  checkPasswordPolicy,
  generatePassword,
  hashPassword,
  isPasswordReused,
  needsRehash,
  verifyAgainstDummy,
  verifyPassword,
} from '../../src/security/passwords.js';

const cheap = { memoryCost: 1024, timeCost: 1, parallelism: 1 };

describe('hashPassword / verifyPassword', () => {
  test('uses Argon2id with the SPEC §10 parameters by default (m=65536,t=3,p=4)', async () => {
    const h = await hashPassword('correct horse battery staple');
    assert.match(h, /^\$argon2id\$v=19\$m=65536,t=3,p=4\$/);
    assert.equal(await verifyPassword(h, 'correct horse battery staple'), true);
    assert.equal(await verifyPassword(h, 'correct horse battery stapl'), false);
    assert.equal(needsRehash(h), false);
  });

  test('injectable cost is written into the hash and flagged for rehash', async () => {
    const h = await hashPassword('a long enough password', cheap);
    assert.match(h, /\$m=1024,t=1,p=1\$/);
    assert.equal(await verifyPassword(h, 'a long enough password'), true);
    assert.equal(needsRehash(h, DEFAULT_PASSWORD_PARAMS), true);
    assert.equal(needsRehash(h, cheap), false);
  });

  test('two hashes of one password differ (random salt)', async () => {
    assert.notEqual(await hashPassword('same password here', cheap), await hashPassword('same password here', cheap));
  });

  test('NFC normalisation: composed and decomposed accents match (RFC 8265)', async () => {
    const composed = 'caf\u00e9-password-12';
    const decomposed = 'cafe\u0301-password-12';
    const h = await hashPassword(composed, cheap);
    assert.equal(await verifyPassword(h, decomposed), true);
  });

  test('malformed or foreign hashes verify as false instead of throwing', async () => {
    assert.equal(await verifyPassword('not-a-hash', 'whatever password'), false);
    assert.equal(await verifyPassword('$2b$10$abcdefghijklmnopqrstuv', 'whatever password'), false);
    assert.equal(needsRehash('not-a-hash'), true);
  });

  test('verifyAgainstDummy always resolves false', async () => {
    assert.equal(await verifyAgainstDummy('anything at all', cheap), false);
  });
});

describe('checkPasswordPolicy', () => {
  test('accepts 12 characters and more', () => {
    assert.deepEqual(checkPasswordPolicy('abcdefghijkl'), []);
  });

  test('rejects fewer than 12 characters with the count in the message', () => {
    const p = checkPasswordPolicy('short');
    assert.equal(p.length, 1);
    assert.match(p[0], /at least 12 characters.*has 5/);
  });

  test('counts characters, not UTF-16 units or bytes', () => {
    // 12 emoji = 24 UTF-16 units, 48 bytes — but 12 characters.
    assert.deepEqual(checkPasswordPolicy('😀'.repeat(12)), []);
    assert.equal(checkPasswordPolicy('😀'.repeat(11)).length, 1);
    assert.deepEqual(checkPasswordPolicy('パスワードは十分に長いです'), []);
  });

  test('rejects more than 1024 bytes', () => {
    const p = checkPasswordPolicy('x'.repeat(PASSWORD_MAX_BYTES + 1));
    assert.equal(p.length, 1);
    assert.match(p[0], /at most 1024 bytes/);
    assert.deepEqual(checkPasswordPolicy('x'.repeat(PASSWORD_MAX_BYTES)), []);
  });

  test('rejects control characters (NUL breaks SASL PLAIN) and outer whitespace', () => {
    assert.match(checkPasswordPolicy('abcdef\u0000ghijkl').join(), /control characters/);
    assert.match(checkPasswordPolicy('abcdefghijkl\n').join(), /control characters/);
    assert.match(checkPasswordPolicy(' abcdefghijkl').join(), /whitespace/);
  });
});

describe('isPasswordReused', () => {
  test('checks only the last 5 hashes', async () => {
    const hashes = await Promise.all(['pw-0-aaaaaaaa', 'pw-1-aaaaaaaa', 'pw-2-aaaaaaaa', 'pw-3-aaaaaaaa', 'pw-4-aaaaaaaa', 'pw-5-aaaaaaaa'].map((p) => hashPassword(p, cheap)));
    assert.equal(await isPasswordReused('pw-0-aaaaaaaa', hashes), true);
    assert.equal(await isPasswordReused('pw-4-aaaaaaaa', hashes), true);
    assert.equal(await isPasswordReused('pw-5-aaaaaaaa', hashes), false, 'the sixth-newest is outside the window');
    assert.equal(await isPasswordReused('never-used-before', hashes), false);
  });
});

describe('generatePassword', () => {
  test('is at least 20 characters, passes the policy, and differs each time', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const p = generatePassword();
      assert.ok(p.length >= 20);
      assert.deepEqual(checkPasswordPolicy(p), []);
      seen.add(p);
    }
    assert.equal(seen.size, 50);
    assert.equal(generatePassword(32).length, 32);
  });

  test('refuses lengths below 20', () => {
    assert.throws(() => generatePassword(19), RangeError);
  });
});
