/**
 * Pure parts of the outbound spam policy (SPEC §8): limit arithmetic, each signal, the combined
 * components, the normalised score and the level at its documented points.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  GTUBE,
  adminReportsSignal,
  burstSignal,
  components,
  dangerousUrlSignal,
  extractUrls,
  levelFor,
  newClientIpSignal,
  normaliseWeights,
  pastBlocksSignal,
  rateSignals,
  recipientCountSignal,
  repeatedContentSignal,
  score,
  spamPatternSignal,
  unusualUserAgentSignal,
  urlDanger,
} from '../../src/outbound/policy/signals.js';
import { describeCheck, effectiveLimits, HOUR_MS, overHard, overSoft, type LimitCheck } from '../../src/outbound/policy/rate-limiter.js';

const W = { rate: 0.4, content: 0.4, history: 0.2 };
const check = (count: number, limit = 200): LimitCheck => ({ name: 'user_hour', scope: 'user', count, limit, windowMs: HOUR_MS, resetAt: 0 });
const rateLimits = { user_per_hour: 200, user_per_day: 1000, domain_per_hour: 5000, tenant_per_hour: 10000, soft_ratio: 0.8, whitelist_profiles: { newsletter: { per_hour: 5000, per_day: 50000 } } };

describe('rate limits', () => {
  test('soft point at 0.8·200 = 160 and hard above 200', () => {
    assert.equal(overSoft(check(160), 0.8), false);
    assert.equal(overSoft(check(161), 0.8), true);
    assert.equal(overHard(check(200)), false);
    assert.equal(overHard(check(201)), true);
    assert.equal(describeCheck(check(212)), '212 of 200 per hour');
  });

  test('whitelist profile raises the user limits; the config profile wins over the stored copy', () => {
    const plain = effectiveLimits(rateLimits, null, 10000);
    assert.deepEqual([plain.userPerHour, plain.userPerDay, plain.profile], [200, 1000, null]);
    const wl = effectiveLimits(rateLimits, { profile: 'newsletter', hourly_limit: 1, daily_limit: 1 }, 10000);
    assert.deepEqual([wl.userPerHour, wl.userPerDay, wl.profile], [5000, 50000, 'newsletter']);
    const gone = effectiveLimits(rateLimits, { profile: 'removed', hourly_limit: 700, daily_limit: 7000 }, 10000);
    assert.deepEqual([gone.userPerHour, gone.userPerDay], [700, 7000]);
    assert.equal(wl.domainPerHour, 5000, 'the domain limit is not raised');
  });

  test('rate signals are the counters ratios, capped at 1', () => {
    const [s] = rateSignals([check(100)]);
    assert.equal(s.name, 'user_hour_rate');
    assert.equal(s.value, 0.5);
    assert.equal(rateSignals([check(400)])[0].value, 1);
    assert.equal(burstSignal(10, 200).value, 0.5); // threshold max(20, 200/10)
    assert.equal(burstSignal(250, 5000).value, 0.5); // threshold 500 for a newsletter profile
  });
});

describe('content signals', () => {
  test('repeated identical content ramps from 3 copies to 20', () => {
    assert.equal(repeatedContentSignal(1).value, 0);
    assert.equal(repeatedContentSignal(3).value, 0);
    assert.ok(repeatedContentSignal(10).value > 0.3);
    assert.equal(repeatedContentSignal(20).value, 1);
  });

  test('recipient count ramps from 10 to 100', () => {
    assert.equal(recipientCountSignal(10).value, 0);
    assert.equal(recipientCountSignal(55).value, 0.5);
    assert.equal(recipientCountSignal(500).value, 1);
  });

  test('spam patterns: GTUBE is decisive, phrases add up, plain mail is clean', () => {
    assert.equal(spamPatternSignal('hi', `x ${GTUBE} y`).value, 1);
    const one = spamPatternSignal('Action needed', 'Please verify your account today.');
    assert.equal(one.value, 0.35);
    assert.match(one.detail, /verify_account/);
    const two = spamPatternSignal('You have won!', 'Claim your prize and verify your account.');
    assert.ok(two.value >= 0.7);
    assert.equal(spamPatternSignal('Lunch', 'See you at noon, Ann').value, 0);
  });

  test('dangerous URLs', () => {
    assert.equal(urlDanger('http://192.0.2.7/login'), 'ip-literal host');
    assert.equal(urlDanger('https://bank.example@evil.test/'), 'userinfo');
    assert.equal(urlDanger('https://xn--pple-43d.com/'), 'punycode host');
    assert.equal(urlDanger('https://bit.ly/abc'), 'link shortener');
    assert.equal(urlDanger('https://files.example/invoice.exe'), 'executable download');
    assert.equal(urlDanger('https://files.example/screensaver.SCR'), 'executable download');
    assert.equal(urlDanger('https://www.example.org/docs'), null);
    assert.equal(dangerousUrlSignal(['https://www.example.org/']).value, 0);
    assert.equal(dangerousUrlSignal(['https://bit.ly/x']).value, 0.5);
    assert.equal(dangerousUrlSignal(['https://bit.ly/x', 'http://192.0.2.1/']).value, 0.75);
    assert.deepEqual(extractUrls('see https://a.example/x, and http://b.example.'), ['https://a.example/x', 'http://b.example']);
  });
});

describe('history and client signals', () => {
  test('blocks and reports count 0.5 each, capped', () => {
    assert.equal(pastBlocksSignal(0).value, 0);
    assert.equal(pastBlocksSignal(1).value, 0.5);
    assert.equal(pastBlocksSignal(5).value, 1);
    assert.equal(adminReportsSignal(1).value, 0.5);
  });

  test('new client address and scripted user agents', () => {
    assert.equal(newClientIpSignal(false, '192.0.2.1').value, 0);
    assert.equal(newClientIpSignal(true, '192.0.2.1').value, 0.3);
    assert.equal(unusualUserAgentSignal('Thunderbird/115.0', false).value, 0);
    assert.equal(unusualUserAgentSignal('python-requests/2.31', false).value, 0.4);
    assert.equal(unusualUserAgentSignal('curl/8.0', true).value, 0.5);
  });
});

describe('score and levels', () => {
  test('components: rate is the maximum, content/history combine as 1 − Π(1 − v)', () => {
    const c = components([
      { name: 'a', component: 'rate', value: 0.3, detail: '' },
      { name: 'b', component: 'rate', value: 0.6, detail: '' },
      { name: 'c', component: 'content', value: 0.5, detail: '' },
      { name: 'd', component: 'content', value: 0.5, detail: '' },
      { name: 'e', component: 'history', value: 0.2, detail: '' },
    ]);
    assert.equal(c.rate, 0.6);
    assert.equal(c.content, 0.75);
    assert.ok(Math.abs(c.history - 0.2) < 1e-9);
  });

  test('score = 0.4·rate + 0.4·content + 0.2·history; weights are normalised', () => {
    assert.equal(score({ rate: 1, content: 1, history: 1 }, W), 1);
    assert.equal(score({ rate: 0.5, content: 0.5, history: 0 }, W), 0.4);
    assert.equal(score({ rate: 1, content: 0, history: 0 }, W), 0.4);
    // Doubled weights give the same score.
    assert.equal(score({ rate: 0.5, content: 0.25, history: 1 }, { rate: 0.8, content: 0.8, history: 0.4 }), score({ rate: 0.5, content: 0.25, history: 1 }, W));
    assert.deepEqual(normaliseWeights({ rate: 1, content: 1, history: 2 }), { rate: 0.25, content: 0.25, history: 0.5 });
    assert.equal(score({ rate: 1, content: 1, history: 1 }, { rate: 0, content: 0, history: 0 }), 0);
  });

  test('levels at the documented points', () => {
    const base = { softScore: 0.5, hardScore: 0.8, userHard: false, groupHard: false, overSoft: false };
    assert.equal(levelFor({ ...base, score: 0.49 }), 'normal');
    assert.equal(levelFor({ ...base, score: 0.5 }), 'soft');
    assert.equal(levelFor({ ...base, score: 0.79 }), 'soft');
    assert.equal(levelFor({ ...base, score: 0.8 }), 'hard');
    assert.equal(levelFor({ ...base, score: 0, overSoft: true }), 'soft');
    assert.equal(levelFor({ ...base, score: 0, userHard: true }), 'hard');
    assert.equal(levelFor({ ...base, score: 0, groupHard: true }), 'domain');
    assert.equal(levelFor({ ...base, score: 0.9, groupHard: true }), 'hard', 'hard wins over domain');
    assert.equal(levelFor({ ...base, score: 0.6, groupHard: true }), 'domain', 'domain wins over soft');
  });

  test('a rate at its limit with clean content stays below the soft score', () => {
    // Only limits (not the score) make a clean bulk sender soft or hard.
    assert.ok(score({ rate: 1, content: 0, history: 0 }, W) < 0.5);
  });
});
