/**
 * Pure rules of the mailbox-state service (no database): folder names and flags.
 * Shape-independent; lives beside the other mailbox-state suites (could move to test/unit/).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { isInferior, normaliseFolderName, superiorNames } from '../../src/core/mailbox-state/folder-names.js';
import { applyFlagOp, classifyFlags, imapFlags, storedFlagSet } from '../../src/core/mailbox-state/flag-rules.js';
import { normaliseSpecialUse } from '../../src/core/mailbox-state/special-folders.js';
import { InvalidFlagError, InvalidFolderNameError, LimitExceededError } from '../../src/core/mailbox-state/errors.js';

describe('folder names', () => {
  test('INBOX is case-insensitive as the first level only', () => {
    assert.equal(normaliseFolderName('inbox'), 'INBOX');
    assert.equal(normaliseFolderName('Inbox/Work'), 'INBOX/Work');
    assert.equal(normaliseFolderName('Work/inbox'), 'Work/inbox');
  });

  test('names are NFC-normalised (RFC 6855 §3)', () => {
    const decomposed = 'Re\u0301sume\u0301';
    assert.equal(normaliseFolderName(decomposed), 'Résumé');
    assert.equal(normaliseFolderName('日本語/受信'), '日本語/受信');
  });

  test('limits and forbidden characters', () => {
    assert.equal(normaliseFolderName('a'.repeat(255)).length, 255);
    assert.throws(() => normaliseFolderName('a'.repeat(256)), InvalidFolderNameError);
    assert.throws(() => normaliseFolderName('あ'.repeat(86)), /255 bytes/, '86 × 3 bytes is over the byte limit');
    assert.throws(() => normaliseFolderName(Array(33).fill('x').join('/')), /hierarchy levels/);
    assert.throws(() => normaliseFolderName('a\u0085b'), /control/);
    assert.throws(() => normaliseFolderName('bad\ud800'), /Unicode/);
  });

  test('hierarchy helpers', () => {
    assert.deepEqual(superiorNames('a/b/c'), ['a', 'a/b']);
    assert.deepEqual(superiorNames('a'), []);
    assert.ok(isInferior('a/b', 'a'));
    assert.ok(!isInferior('ab', 'a'));
    assert.ok(!isInferior('a', 'a'));
  });

  test('special-use attributes', () => {
    assert.equal(normaliseSpecialUse('\\sent'), '\\Sent');
    assert.equal(normaliseSpecialUse(undefined), null);
    assert.throws(() => normaliseSpecialUse('\\Flagged'), { code: 'INVALID_SPECIAL_USE' });
  });
});

describe('flags', () => {
  test('classification normalises system flags and de-duplicates keywords case-insensitively', () => {
    const set = classifyFlags(['\\draft', 'Work', '\\SEEN', 'work', '$Forwarded'], ['WORK', 'x']);
    assert.deepEqual(set.flags, ['\\Seen', '\\Draft']);
    assert.deepEqual(set.keywords, ['Work', '$Forwarded', 'x']);
    assert.deepEqual(imapFlags(set), ['\\Seen', '\\Draft', 'Work', '$Forwarded', 'x']);
  });

  test('keyword grammar (RFC 9051 atom) and limits', () => {
    for (const ok of ['$MDNSent', 'a.b-c_d', 'x'.repeat(64), 'NonJunk', '[tag']) classifyFlags([ok]);
    for (const bad of ['', 'a b', 'a(', 'a)', 'a{', 'a%', 'a*', 'a"', 'a\\b', 'a]', 'é', 'x'.repeat(65), '\\Unknown', '\\Recent']) {
      assert.throws(() => classifyFlags([bad]), InvalidFlagError, JSON.stringify(bad));
    }
    assert.throws(() => classifyFlags(Array.from({ length: 65 }, (_, i) => `k${i}`)), LimitExceededError);
  });

  test('add / remove / replace report whether anything changed', () => {
    const current = { flags: ['\\Seen' as const], keywords: ['Work'] };
    const add = applyFlagOp(current, 'add', classifyFlags(['\\Flagged', 'work']));
    assert.deepEqual([add.flags, add.keywords, add.changed], [['\\Seen', '\\Flagged'], ['Work'], true]);
    assert.equal(applyFlagOp(current, 'add', classifyFlags(['\\seen'])).changed, false);
    const rem = applyFlagOp(current, 'remove', classifyFlags(['WORK', '\\Answered']));
    assert.deepEqual([rem.flags, rem.keywords, rem.changed], [['\\Seen'], [], true]);
    const rep = applyFlagOp(current, 'replace', classifyFlags(['work', '\\Seen']));
    assert.equal(rep.changed, false, 'replace with the same set (different case) is no change');
    assert.equal(applyFlagOp(current, 'replace', classifyFlags([])).changed, true);
  });

  test('stored values are read back defensively', () => {
    assert.deepEqual(storedFlagSet('["\\\\seen","\\\\Bogus"]', 'not json'), { flags: ['\\Seen'], keywords: [] });
  });
});
