import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { aggregate, stopsChain } from '../../src/hooks/aggregate.js';
import { DEFAULT_SMTP_REPLIES, hookSmtpReply } from '../../src/hooks/smtp-reply.js';
import type { HookAction, HookResponse, HookResult } from '../../src/hooks/types.js';

function r(pluginId: string, action: HookAction, extra: Partial<HookResponse> = {}): HookResult {
  return { pluginId, response: { plugin_id: pluginId, action, tags: [], metadata: {}, ...extra } };
}

describe('hook result aggregation (SPEC §6)', () => {
  test('no results: allow, nothing decided', () => {
    assert.deepEqual(aggregate([], { score: 'max' }), { action: 'allow', decidedBy: null, tags: [], score: null, metadata: {}, flags: [] });
  });

  test('precedence reject > tempfail > quarantine > tag > allow', () => {
    const order: HookAction[] = ['reject', 'tempfail', 'quarantine', 'tag', 'allow'];
    for (let i = 0; i < order.length; i++) {
      for (let j = i; j < order.length; j++) {
        // The weaker action runs first so precedence (not position) must decide — unless the weaker
        // one already stopped the chain (tempfail before reject), which the next test covers.
        const d = aggregate([r('weak.p', order[j]), r('strong.p', order[i])], { score: 'max' });
        assert.equal(d.action, stopsChain(order[j]) ? order[j] : order[i], `${order[i]} vs ${order[j]}`);
        assert.equal(aggregate([r('strong.p', order[i]), r('weak.p', order[j])]).action, order[i]);
      }
    }
  });

  test('the first result with the strongest action decides', () => {
    const d = aggregate([r('a.p', 'tag'), r('b.p', 'quarantine', { folder: 'Quarantine' }), r('c.p', 'quarantine', { folder: 'Junk' })], { score: 'max' });
    assert.equal(d.action, 'quarantine');
    assert.equal(d.decidedBy, 'b.p');
    assert.equal(d.folder, 'Quarantine');
  });

  test('stopsChain is true exactly for reject and tempfail', () => {
    assert.deepEqual((['reject', 'tempfail', 'quarantine', 'tag', 'allow'] as HookAction[]).map(stopsChain), [true, true, false, false, false]);
  });

  test('results after the first reject/tempfail are ignored', () => {
    const d = aggregate([r('a.p', 'tag', { tags: ['one'] }), r('b.p', 'tempfail'), r('c.p', 'reject', { tags: ['late'], score: 99 })], { score: 'max' });
    assert.equal(d.action, 'tempfail');
    assert.equal(d.decidedBy, 'b.p');
    assert.deepEqual(d.tags, ['one']);
    assert.equal(d.score, null);
    assert.deepEqual(d.smtp, { code: 451, enhanced: '4.7.1', text: DEFAULT_SMTP_REPLIES.tempfail.text });
  });

  test('tags merged and de-duplicated in order of first appearance; flags likewise', () => {
    const d = aggregate(
      [r('a.p', 'tag', { tags: ['spam', 'bulk'], flags: ['\\Flagged'] }), r('b.p', 'allow', { tags: ['news', 'spam'] }), r('c.p', 'tag', { tags: ['bulk', 'x'], flags: ['\\Flagged', '$Junk'] })],
      { score: 'max' },
    );
    assert.equal(d.action, 'tag');
    assert.deepEqual(d.tags, ['spam', 'bulk', 'news', 'x']);
    assert.deepEqual(d.flags, ['\\Flagged', '$Junk']);
  });

  test('score is the max or the mean over the results that have one', () => {
    const results = [r('a.p', 'allow', { score: 2 }), r('b.p', 'allow'), r('c.p', 'tag', { score: 7 }), r('d.p', 'allow', { score: -3 })];
    assert.equal(aggregate(results, { score: 'max' }).score, 7);
    assert.equal(aggregate(results, { score: 'mean' }).score, 2);
    assert.equal(aggregate([r('a.p', 'allow')], { score: 'mean' }).score, null);
    assert.equal(aggregate(results).score, 7, 'max is the default');
  });

  test('metadata is namespaced by plugin id; the same plugin twice merges', () => {
    const d = aggregate(
      [r('a.p', 'allow', { metadata: { verdict: 'clean', n: 1 } }), r('b.p', 'allow', { metadata: { verdict: 'spam' } }), r('a.p', 'allow', { metadata: { n: 2 } }), r('c.p', 'allow')],
      { score: 'max' },
    );
    assert.deepEqual(d.metadata, { 'a.p': { verdict: 'clean', n: 2 }, 'b.p': { verdict: 'spam' } });
  });

  test('folder only for a quarantine decision', () => {
    assert.equal(aggregate([r('a.p', 'tag', { folder: 'Elsewhere' })]).folder, undefined);
    assert.equal(aggregate([r('a.p', 'quarantine')]).folder, undefined, 'no folder named: the caller uses its default');
  });

  test('the SMTP reply is the deciding result’s, validated', () => {
    const d = aggregate([r('a.p', 'reject', { smtp_code: 554, smtp_enhanced: '5.7.0', smtp_message: 'Virus found' })]);
    assert.deepEqual(d.smtp, { code: 554, enhanced: '5.7.0', text: 'Virus found' });
    assert.equal(d.smtpFallbacks, undefined);
    const bad = aggregate([r('a.p', 'reject', { smtp_code: 451, smtp_message: 'ok\r\n250 fake' })]);
    assert.deepEqual(bad.smtp, { code: 550, enhanced: '5.7.1', text: DEFAULT_SMTP_REPLIES.reject.text });
    assert.deepEqual(bad.smtpFallbacks, ['smtp_code 451 is not a valid 5xx code for reject', 'smtp_message contains CR/LF, control or non-ASCII characters']);
    assert.equal(aggregate([r('a.p', 'tag', { smtp_code: 554 })]).smtp, undefined, 'no SMTP reply for accepting actions');
  });
});

describe('hook SMTP replies (RFC 5321 §4.2, RFC 3463)', () => {
  test('defaults 550 5.7.1 and 451 4.7.1', () => {
    assert.deepEqual(hookSmtpReply('reject'), { code: 550, enhanced: '5.7.1', text: 'Message rejected by content policy', fallbacks: [] });
    assert.deepEqual(hookSmtpReply('tempfail', {}), {
      code: 451,
      enhanced: '4.7.1',
      text: 'Message temporarily deferred by content policy, try again later',
      fallbacks: [],
    });
  });

  test('valid plugin replies are used', () => {
    assert.deepEqual(hookSmtpReply('tempfail', { smtp_code: 450, smtp_enhanced: '4.2.1', smtp_message: '  Mailbox busy  ' }), {
      code: 450,
      enhanced: '4.2.1',
      text: 'Mailbox busy',
      fallbacks: [],
    });
    assert.equal(hookSmtpReply('reject', { smtp_enhanced: '5.100.999' }).enhanced, '5.100.999');
  });

  test('code of the wrong class or outside x[0-5]x falls back', () => {
    assert.deepEqual(hookSmtpReply('reject', { smtp_code: 250 }).fallbacks, ['smtp_code 250 is not a valid 5xx code for reject']);
    assert.deepEqual(hookSmtpReply('tempfail', { smtp_code: 550 }).fallbacks, ['smtp_code 550 is not a valid 4xx code for tempfail']);
    assert.equal(hookSmtpReply('reject', { smtp_code: 560 }).code, 550);
    assert.equal(hookSmtpReply('reject', { smtp_code: 559 }).code, 559);
  });

  test('enhanced code must be RFC 3463 syntax and of the reply class', () => {
    assert.deepEqual(hookSmtpReply('reject', { smtp_enhanced: '4.7.1' }).fallbacks, ["smtp_enhanced '4.7.1' is not of class 5 for reject"]);
    for (const bad of ['5.7', '5.7.1.1', '3.1.1', '5.1000.1', '5.01.1', 'x.y.z', '5.7.1 ']) {
      const reply = hookSmtpReply('reject', { smtp_enhanced: bad });
      assert.equal(reply.enhanced, '5.7.1', bad);
      assert.match(reply.fallbacks[0], /is not an RFC 3463 status code$/);
    }
  });

  test('text: no CR/LF/control/non-ASCII, not empty, at most 200 characters', () => {
    assert.deepEqual(hookSmtpReply('reject', { smtp_message: 'a\nb' }).fallbacks, ['smtp_message contains CR/LF, control or non-ASCII characters']);
    assert.deepEqual(hookSmtpReply('reject', { smtp_message: 'tab\there' }).fallbacks, ['smtp_message contains CR/LF, control or non-ASCII characters']);
    assert.deepEqual(hookSmtpReply('reject', { smtp_message: 'caf\u00e9' }).fallbacks, ['smtp_message contains CR/LF, control or non-ASCII characters']);
    assert.deepEqual(hookSmtpReply('reject', { smtp_message: '   ' }).fallbacks, ['smtp_message is empty']);
    assert.equal(hookSmtpReply('reject', { smtp_message: 'x'.repeat(200) }).text, 'x'.repeat(200));
    const long = hookSmtpReply('reject', { smtp_message: 'x'.repeat(201) });
    assert.equal(long.text, DEFAULT_SMTP_REPLIES.reject.text);
    assert.deepEqual(long.fallbacks, ['smtp_message is 201 characters long; at most 200 are allowed']);
  });

  test('each field falls back on its own', () => {
    assert.deepEqual(hookSmtpReply('reject', { smtp_code: 554, smtp_enhanced: 'bogus', smtp_message: 'Denied' }), {
      code: 554,
      enhanced: '5.7.1',
      text: 'Denied',
      fallbacks: ["smtp_enhanced 'bogus' is not an RFC 3463 status code"],
    });
  });
});
