import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { HOOK_TIMEOUTS, orderHooks, validateHookConfig, validateHookResponse, type HookConfigIssue } from '../../src/hooks/config.js';
import type { HookConfig } from '../../src/hooks/types.js';

const minimal = { id: 'spam-check', type: 'pre_receive', plugin_id: 'com.example.spam' };

function errorsOf(input: unknown): HookConfigIssue[] {
  const r = validateHookConfig(input);
  assert.equal(r.ok, false, 'expected validation to fail');
  return r.ok ? [] : r.errors;
}

function configOf(input: unknown): HookConfig {
  const r = validateHookConfig(input);
  assert.ok(r.ok, `expected a valid config, got ${JSON.stringify(r.ok ? null : r.errors)}`);
  return r.config;
}

describe('hook config validation', () => {
  test('the SPEC §6 timeout table', () => {
    assert.deepEqual(HOOK_TIMEOUTS, {
      pre_receive: { defaultMs: 2_000, maxMs: 3_000 },
      post_receive: { defaultMs: 30_000, maxMs: 300_000 },
      pre_send: { defaultMs: 2_000, maxMs: 5_000 },
      pre_delivery: { defaultMs: 2_000, maxMs: 5_000 },
    });
  });

  test('defaults are applied', () => {
    assert.deepEqual(configOf(minimal), {
      id: 'spam-check',
      type: 'pre_receive',
      plugin_id: 'com.example.spam',
      enabled: true,
      priority: 100,
      timeout_ms: 2_000,
      on_timeout: 'tempfail',
      on_error: 'allow',
      required: false,
      requires_before_policy: false,
      circuit_breaker: { on_open: 'skip' },
      tenant_id: null,
    });
    assert.equal(configOf({ ...minimal, type: 'post_receive' }).timeout_ms, 30_000);
    assert.deepEqual(configOf({ ...minimal, type: 'post_receive' }).retry, { max_attempts: 3, backoff_seconds: [30, 120, 600] });
    assert.deepEqual(configOf({ ...minimal, type: 'post_receive', retry: { max_attempts: 2 } }).retry, { max_attempts: 2, backoff_seconds: [30, 120, 600] });
  });

  test('the input object is not modified', () => {
    const input = { ...minimal };
    configOf(input);
    assert.deepEqual(input, minimal);
  });

  test('a timeout at the hard maximum passes, one above is rejected with the exact message', () => {
    const cases: [string, number][] = [
      ['pre_receive', 3_000],
      ['pre_send', 5_000],
      ['pre_delivery', 5_000],
      ['post_receive', 300_000],
    ];
    for (const [type, max] of cases) {
      assert.equal(configOf({ ...minimal, type, timeout_ms: max }).timeout_ms, max);
      assert.deepEqual(errorsOf({ ...minimal, type, timeout_ms: max + 1 }), [
        { path: 'timeout_ms', message: `${max + 1} ms exceeds the hard maximum of ${max} ms for ${type} hooks` },
      ]);
    }
  });

  test('requires_before_policy only for pre_send', () => {
    assert.equal(configOf({ ...minimal, type: 'pre_send', requires_before_policy: true }).requires_before_policy, true);
    assert.deepEqual(errorsOf({ ...minimal, requires_before_policy: true }), [
      { path: 'requires_before_policy', message: 'only pre_send hooks can run before the policy engine (this is a pre_receive hook)' },
    ]);
  });

  test('retry only for post_receive, and enough backoff delays for the attempts', () => {
    assert.deepEqual(errorsOf({ ...minimal, type: 'pre_delivery', retry: {} }), [
      { path: 'retry', message: 'only post_receive hooks are retried (this is a pre_delivery hook, which runs synchronously)' },
    ]);
    assert.deepEqual(errorsOf({ ...minimal, type: 'post_receive', retry: { max_attempts: 5, backoff_seconds: [10, 20] } }), [
      { path: 'retry.backoff_seconds', message: '5 attempts need at least 4 backoff delays (got 2)' },
    ]);
  });

  test('schema errors carry the field path', () => {
    assert.deepEqual(errorsOf({ id: 'x', type: 'pre_commit', plugin_id: 'com.example.p', on_timeout: 'ignore', prority: 5 }), [
      { path: 'prority', message: 'is not a known field' },
      { path: 'type', message: 'must be one of: pre_receive, post_receive, pre_send, pre_delivery' },
      { path: 'on_timeout', message: 'must be one of: allow, reject, tempfail' },
    ]);
    assert.deepEqual(errorsOf({ type: 'pre_send' }), [
      { path: 'id', message: 'is required' },
      { path: 'plugin_id', message: 'is required' },
    ]);
    assert.deepEqual(errorsOf({ ...minimal, tenant_id: 7 }), [{ path: 'tenant_id', message: 'must be string or null' }]);
    assert.deepEqual(errorsOf({ ...minimal, filter: { size_gt: -1 } }), [{ path: 'filter.size_gt', message: 'must be >= 0' }]);
    assert.deepEqual(errorsOf({ ...minimal, plugin_id: 'Spam Plugin' }).map((e) => e.path), ['plugin_id']);
    assert.deepEqual(errorsOf({ ...minimal, timeout_ms: 0 }), [{ path: 'timeout_ms', message: 'must be >= 1' }]);
    assert.deepEqual(errorsOf('nope'), [{ path: '', message: 'a hook config must be an object' }]);
    assert.deepEqual(errorsOf(null), [{ path: '', message: 'a hook config must be an object' }]);
  });

  test('a filter regex longer than 256 characters is a schema error on that field', () => {
    assert.deepEqual(errorsOf({ ...minimal, filter: { subject_matches: 'a'.repeat(257) } }), [
      { path: 'filter.subject_matches', message: 'must NOT have more than 256 characters' },
    ]);
  });

  test('every unsafe filter regex is reported with its field', () => {
    const errors = errorsOf({ ...minimal, filter: { sender_matches: '(a|aa)+', subject_matches: '(a+)+$', recipient_matches: '^ok@' } });
    assert.deepEqual(errors.map((e) => e.path).sort(), ['filter.sender_matches', 'filter.subject_matches']);
    assert.match(errors.find((e) => e.path === 'filter.subject_matches')!.message, /backtrack catastrophically/);
  });

  test('an impossible size range is refused', () => {
    assert.deepEqual(errorsOf({ ...minimal, filter: { size_gt: 100, size_lt: 101 } }), [
      { path: 'filter.size_lt', message: 'no size is both greater than 100 and less than 101' },
    ]);
    assert.equal(configOf({ ...minimal, filter: { size_gt: 100, size_lt: 102 } }).filter?.size_lt, 102);
  });

  test('the compiled filter comes with the config', () => {
    const r = validateHookConfig({ ...minimal, filter: { has_attachments: true } });
    assert.ok(r.ok);
    const subject = { recipients: ['a@b.test'], sender: '', subject: '', size: 1, hasAttachments: true };
    assert.equal(r.filter(subject), true);
    assert.equal(r.filter({ ...subject, hasAttachments: false }), false);
  });
});

describe('hook ordering', () => {
  test('enabled only, ascending priority, ties by id', () => {
    const hooks = [
      { id: 'b', priority: 50, enabled: true },
      { id: 'a', priority: 50, enabled: true },
      { id: 'z', priority: 10, enabled: true },
      { id: 'off', priority: 1, enabled: false },
      { id: 'late', priority: 200, enabled: true },
    ];
    assert.deepEqual(orderHooks(hooks).map((h) => h.id), ['z', 'a', 'b', 'late']);
    assert.equal(hooks[0].id, 'b', 'the input array is not reordered');
  });
});

describe('hook response validation', () => {
  test('defaults tags and metadata; keeps the optional fields', () => {
    const r = validateHookResponse({ plugin_id: 'com.example.p', action: 'quarantine', folder: 'Junk', score: 7.5 });
    assert.ok(r.ok);
    assert.deepEqual(r.response, { plugin_id: 'com.example.p', action: 'quarantine', folder: 'Junk', score: 7.5, tags: [], metadata: {} });
  });

  test('bounds and unknown fields are refused with paths', () => {
    const r = validateHookResponse({ plugin_id: 'p', action: 'drop', tags: Array(33).fill('t'), extra: 1 });
    assert.equal(r.ok, false);
    assert.deepEqual(r.ok ? [] : r.errors, [
      { path: 'extra', message: 'is not a known field' },
      { path: 'action', message: 'must be one of: reject, tempfail, quarantine, tag, allow' },
      { path: 'tags', message: 'must NOT have more than 32 items' },
    ]);
    const long = validateHookResponse({ plugin_id: 'p', action: 'tag', tags: ['x'.repeat(65)] });
    assert.deepEqual(long.ok ? [] : long.errors, [{ path: 'tags.0', message: 'must NOT have more than 64 characters' }]);
    assert.deepEqual(validateHookResponse([]), { ok: false, errors: [{ path: '', message: 'a hook response must be a JSON object' }] });
  });
});
