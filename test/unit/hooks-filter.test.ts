import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { compileFilter, compileSafeRegex, FilterPatternError, MATCH_INPUT_LIMIT } from '../../src/hooks/filter.js';
import type { FilterSubject } from '../../src/hooks/types.js';

const base: FilterSubject = {
  recipients: ['alice@example.com'],
  sender: 'bob@sender.test',
  subject: 'Quarterly report',
  hasAttachments: false,
  size: 5_000,
};
const msg = (over: Partial<FilterSubject>): FilterSubject => ({ ...base, ...over });

function refused(pattern: string, path = 'filter.subject_matches'): FilterPatternError {
  try {
    compileSafeRegex(pattern, path);
  } catch (err) {
    assert.ok(err instanceof FilterPatternError, `expected FilterPatternError for ${pattern}`);
    assert.equal(err.path, path);
    assert.ok(err.message.startsWith(`${path}: `), err.message);
    return err;
  }
  assert.fail(`pattern ${pattern} was accepted`);
}

describe('hook filter regexes refuse ReDoS-prone patterns', () => {
  test('classic catastrophic patterns are refused with the field named', () => {
    assert.match(refused('(a+)+$').reason, /backtrack catastrophically \(nested quantifiers/);
    assert.match(refused('(.*a){20}').reason, /backtrack catastrophically \(nested quantifiers/);
    assert.match(refused('(a|aa)+').reason, /overlapping branches \('a\|aa'\)/);
    assert.match(refused('(a*)*b').reason, /nested quantifiers/);
    assert.match(refused('((a|ab)c)+').reason, /overlapping branches/);
    assert.match(refused('(\\w|\\d)+').reason, /only contain plain literal branches/);
    assert.match(refused('(|x)+').reason, /plain literal branches/);
  });

  test('backreferences and lookbehind are refused', () => {
    assert.equal(refused('(a)\\1').reason, 'backreferences (\\1 …) are not allowed');
    assert.equal(refused('(?<n>a)\\k<n>').reason, 'named backreferences (\\k<…>) are not allowed');
    assert.equal(refused('(?<=x)y').reason, 'lookbehind ((?<= …) / (?<! …)) is not allowed');
    assert.equal(refused('(?<!x)y').reason, 'lookbehind ((?<= …) / (?<! …)) is not allowed');
  });

  test('length bound: 256 characters pass, 257 are refused with the exact message', () => {
    assert.ok(compileSafeRegex('a'.repeat(256), 'filter.sender_matches') instanceof RegExp);
    const err = refused('a'.repeat(257), 'filter.sender_matches');
    assert.equal(err.message, 'filter.sender_matches: pattern is 257 characters long; at most 256 are allowed');
  });

  test('invalid and empty patterns are refused, not thrown as SyntaxError', () => {
    assert.match(refused('(unclosed').reason, /^invalid regular expression: /);
    assert.equal(refused('').reason, 'pattern must be a non-empty string');
  });

  test('ordinary patterns are accepted', () => {
    for (const p of ['^[^@]+@example\\.com$', '(foo|bar)+', 'invoice|receipt', '[\\1]x', 'a{2,}', '^(?:re|fwd?):', '\\[SPAM\\]', '(?=x)x']) {
      assert.ok(compileSafeRegex(p, 'filter.subject_matches') instanceof RegExp, p);
    }
  });

  test('matching runs on at most 1000 characters of the input', () => {
    const pred = compileFilter({ subject_matches: 'tail$' });
    assert.equal(pred(msg({ subject: 'x'.repeat(MATCH_INPUT_LIMIT - 4) + 'tail' })), true);
    assert.equal(pred(msg({ subject: 'x'.repeat(MATCH_INPUT_LIMIT - 3) + 'tail' })), false);
    assert.equal(MATCH_INPUT_LIMIT, 1000);
  });
});

describe('hook filter matching semantics', () => {
  test('no filter or an empty filter matches everything', () => {
    assert.equal(compileFilter(undefined)(base), true);
    assert.equal(compileFilter({})(base), true);
  });

  test('recipient_matches: at least one recipient matches (case-insensitive)', () => {
    const pred = compileFilter({ recipient_matches: '@example\\.com$' });
    assert.equal(pred(msg({ recipients: ['ALICE@EXAMPLE.COM'] })), true);
    assert.equal(pred(msg({ recipients: ['x@other.test', 'alice@example.com'] })), true);
    assert.equal(pred(msg({ recipients: ['x@other.test'] })), false);
    assert.equal(pred(msg({ recipients: [] })), false);
  });

  test('recipient_not_matches: at least one recipient does not match', () => {
    const pred = compileFilter({ recipient_not_matches: '@internal\\.test$' });
    assert.equal(pred(msg({ recipients: ['a@internal.test'] })), false);
    assert.equal(pred(msg({ recipients: ['a@internal.test', 'b@internal.test'] })), false);
    assert.equal(pred(msg({ recipients: ['a@internal.test', 'c@outside.test'] })), true);
    assert.equal(pred(msg({ recipients: ['c@outside.test'] })), true);
  });

  test('sender_matches / sender_not_matches', () => {
    const yes = compileFilter({ sender_matches: '^bob@' });
    const no = compileFilter({ sender_not_matches: '^bob@' });
    assert.equal(yes(base), true);
    assert.equal(no(base), false);
    assert.equal(yes(msg({ sender: 'carol@sender.test' })), false);
    assert.equal(no(msg({ sender: 'carol@sender.test' })), true);
    // The null reverse-path (bounces) is the empty string.
    assert.equal(compileFilter({ sender_matches: '^$' })(msg({ sender: '' })), true);
  });

  test('subject_matches', () => {
    const pred = compileFilter({ subject_matches: '\\breport\\b' });
    assert.equal(pred(base), true);
    assert.equal(pred(msg({ subject: 'Reporting' })), false);
  });

  test('has_attachments true and false', () => {
    assert.equal(compileFilter({ has_attachments: true })(msg({ hasAttachments: true })), true);
    assert.equal(compileFilter({ has_attachments: true })(msg({ hasAttachments: false })), false);
    assert.equal(compileFilter({ has_attachments: false })(msg({ hasAttachments: false })), true);
    assert.equal(compileFilter({ has_attachments: false })(msg({ hasAttachments: true })), false);
  });

  test('size_gt and size_lt are strict bounds', () => {
    assert.equal(compileFilter({ size_gt: 5_000 })(msg({ size: 5_000 })), false);
    assert.equal(compileFilter({ size_gt: 5_000 })(msg({ size: 5_001 })), true);
    assert.equal(compileFilter({ size_lt: 5_000 })(msg({ size: 5_000 })), false);
    assert.equal(compileFilter({ size_lt: 5_000 })(msg({ size: 4_999 })), true);
  });

  test('all keys must hold together', () => {
    const pred = compileFilter({ recipient_matches: '@example\\.com$', subject_matches: 'report', has_attachments: true, size_lt: 10_000 });
    assert.equal(pred(msg({ hasAttachments: true })), true);
    assert.equal(pred(msg({ hasAttachments: true, size: 10_000 })), false);
    assert.equal(pred(msg({ hasAttachments: true, subject: 'hello' })), false);
    assert.equal(pred(base), false);
  });

  test('compileFilter names the refused field', () => {
    assert.throws(
      () => compileFilter({ sender_matches: 'ok', subject_matches: '(a+)+$' }),
      (err: unknown) => err instanceof FilterPatternError && err.path === 'filter.subject_matches',
    );
  });

  test('predicates are stateless across calls (no g flag)', () => {
    // No `g` flag: repeated calls on the same input give the same answer (lastIndex is not kept).
    const pred = compileFilter({ subject_matches: 'report' });
    assert.equal(pred(base), true);
    assert.equal(pred(base), true);
  });
});
