/** DMARC disposition (RFC 7489 §6.6.4, §6.7): every combination of result, policy, pct and config. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { dmarcDisposition, normalisePct, parseDmarcPolicy, sampledPolicy } from '../../src/emailauth/index.js';

const on = { enforce_reject: true, quarantine: true };

describe('DMARC disposition', () => {
  test('only a fail under quarantine/reject changes anything', () => {
    for (const result of ['pass', 'none', 'temperror', 'permerror', 'neutral']) {
      for (const policy of ['none', 'quarantine', 'reject', null] as const) {
        assert.equal(dmarcDisposition({ result, policy, pct: 100 }, on), 'accept', `${result}/${policy}`);
      }
    }
    assert.equal(dmarcDisposition({ result: 'fail', policy: null, pct: 100 }, on), 'accept');
    assert.equal(dmarcDisposition({ result: 'fail', policy: 'none', pct: 100 }, on), 'accept');
    assert.equal(dmarcDisposition({ result: 'fail', policy: 'quarantine', pct: 100 }, on), 'quarantine');
    assert.equal(dmarcDisposition({ result: 'fail', policy: 'reject', pct: 100 }, on), 'reject');
  });

  test('config: enforce_reject off quarantines instead; quarantine off accepts', () => {
    const fail = (policy: 'quarantine' | 'reject') => ({ result: 'fail', policy, pct: 100 });
    assert.equal(dmarcDisposition(fail('reject'), { enforce_reject: false, quarantine: true }), 'quarantine');
    assert.equal(dmarcDisposition(fail('reject'), { enforce_reject: false, quarantine: false }), 'accept');
    assert.equal(dmarcDisposition(fail('reject'), { enforce_reject: true, quarantine: false }), 'reject');
    assert.equal(dmarcDisposition(fail('quarantine'), { enforce_reject: true, quarantine: false }), 'accept');
  });

  test('pct: unsampled messages get the next less strict policy', () => {
    assert.equal(sampledPolicy('reject', 100, () => 0.9999), 'reject');
    assert.equal(sampledPolicy('reject', 0, () => 0), 'quarantine');
    assert.equal(sampledPolicy('quarantine', 0, () => 0), 'none');
    assert.equal(sampledPolicy('reject', 30, () => 0.29), 'reject');
    assert.equal(sampledPolicy('reject', 30, () => 0.3), 'quarantine');
    assert.equal(dmarcDisposition({ result: 'fail', policy: 'reject', pct: 0 }, on, () => 0), 'quarantine');
    assert.equal(dmarcDisposition({ result: 'fail', policy: 'quarantine', pct: 0 }, on, () => 0), 'accept');
  });

  test('pct=0 never rejects, whatever the random draw', () => {
    for (let i = 0; i < 1000; i++) assert.notEqual(dmarcDisposition({ result: 'fail', policy: 'reject', pct: 0 }, on), 'reject');
  });

  test('record values are read leniently', () => {
    assert.equal(parseDmarcPolicy('REJECT'), 'reject');
    assert.equal(parseDmarcPolicy(' quarantine '), 'quarantine');
    assert.equal(parseDmarcPolicy('bogus'), 'none');
    assert.equal(parseDmarcPolicy(undefined), null);
    assert.equal(parseDmarcPolicy(false), null);
    assert.equal(normalisePct(undefined), 100);
    assert.equal(normalisePct('abc'), 100);
    assert.equal(normalisePct(-5), 0);
    assert.equal(normalisePct(250), 100);
    assert.equal(normalisePct('40'), 40);
    assert.equal(normalisePct(0), 0);
  });
});
