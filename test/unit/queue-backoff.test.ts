import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelayMs, parseBackoff, validateBackoff, validateMaxAttempts, MAX_BACKOFF_ENTRIES } from '../../src/queue/backoff.js';

describe('queue backoff schedule', () => {
  test('attempt n uses entry n-1 and the last entry repeats (SPEC §3.1 step 7: 30 s, 2 min, 10 min)', () => {
    const s = [30, 120, 600];
    assert.equal(backoffDelayMs(s, 1), 30_000);
    assert.equal(backoffDelayMs(s, 2), 120_000);
    assert.equal(backoffDelayMs(s, 3), 600_000);
    assert.equal(backoffDelayMs(s, 4), 600_000);
    assert.equal(backoffDelayMs(s, 50), 600_000);
  });

  test('fractional seconds become whole milliseconds', () => {
    assert.equal(backoffDelayMs([0.05, 0.1], 1), 50);
    assert.equal(backoffDelayMs([0.05, 0.1], 2), 100);
    assert.equal(backoffDelayMs([0], 7), 0);
  });

  test('bad attempt numbers are refused', () => {
    assert.throws(() => backoffDelayMs([1], 0), /failedAttempt/);
    assert.throws(() => backoffDelayMs([1], 1.5), /failedAttempt/);
  });

  test('bad schedules are refused with the offending entry named', () => {
    assert.throws(() => validateBackoff([]), /non-empty/);
    assert.throws(() => validateBackoff([1, -2]), /entry 1/);
    assert.throws(() => validateBackoff([Number.NaN]), /entry 0/);
    assert.throws(() => validateBackoff([31 * 24 * 3600]), /30 days/);
    assert.throws(() => validateBackoff(new Array(MAX_BACKOFF_ENTRIES + 1).fill(1)), /at most/);
    assert.deepEqual(validateBackoff([0, 5]), [0, 5]);
  });

  test('maxAttempts must be an integer from 1 to 1000', () => {
    assert.equal(validateMaxAttempts(1), 1);
    assert.throws(() => validateMaxAttempts(0), /maxAttempts/);
    assert.throws(() => validateMaxAttempts(1001), /maxAttempts/);
    assert.throws(() => validateMaxAttempts(2.5), /maxAttempts/);
  });

  test('a stored schedule that cannot be read falls back to the default', () => {
    assert.deepEqual(parseBackoff('[1,2]', [9]), [1, 2]);
    assert.deepEqual(parseBackoff('not json', [9]), [9]);
    assert.deepEqual(parseBackoff('[-1]', [9]), [9]);
    assert.deepEqual(parseBackoff('{"a":1}', [9]), [9]);
  });
});
