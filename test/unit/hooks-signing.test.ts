/**
 * Signing of hook calls (SPEC §6 "Signing"): the three headers, the signed string with the plugin
 * id, one signature per active secret during rotation, and verification (±5 min, plugin id binding).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { MAX_ACTIVE_SECRETS, PLUGIN_ID_HEADER, signHookCall, verifyHookCall } from '../../src/hooks/signing.js';

const pluginId = 'com.example.spam-tagger';
const secretNew = 'plsec_new_0123456789abcdefghijklmnopqrstuvwxyz';
const secretOld = 'plsec_old_0123456789abcdefghijklmnopqrstuvwxyz';
const body = '{"hook_type":"pre_receive","message_id":"m1"}';
const ts = 1_700_000_000;

function hmac(secret: string, timestamp: number, id: string, raw: string): string {
  const bodyHash = createHash('sha256').update(raw).digest('hex');
  return createHmac('sha256', secret).update(`${timestamp}\n${id}\n${bodyHash}`).digest('hex');
}

describe('signHookCall', () => {
  test('sets X-MaiRust-Plugin-Id, X-MaiRust-Timestamp and X-MaiRust-Signature: sha256=<hex> over timestamp \\n plugin id \\n hex(sha256(body))', () => {
    const h = signHookCall({ secrets: [secretNew], pluginId, body, timestamp: ts });
    assert.equal(PLUGIN_ID_HEADER, 'X-MaiRust-Plugin-Id');
    assert.deepEqual(h, {
      'X-MaiRust-Plugin-Id': pluginId,
      'X-MaiRust-Timestamp': '1700000000',
      'X-MaiRust-Signature': `sha256=${hmac(secretNew, ts, pluginId, body)}`,
    });
  });

  test('during a rotation it carries one signature per secret, newest first, under one timestamp', () => {
    const h = signHookCall({ secrets: [secretNew, secretOld], pluginId, body, timestamp: ts });
    assert.equal(h['X-MaiRust-Signature'], `sha256=${hmac(secretNew, ts, pluginId, body)},sha256=${hmac(secretOld, ts, pluginId, body)}`);
  });

  test('refuses no secret, more than two secrets, an empty plugin id or one with a line break', () => {
    assert.equal(MAX_ACTIVE_SECRETS, 2);
    assert.throws(() => signHookCall({ secrets: [], pluginId, body }), /1 to 2 active secrets \(got 0\)/);
    assert.throws(() => signHookCall({ secrets: ['a', 'b', 'c'], pluginId, body }), /1 to 2 active secrets \(got 3\)/);
    assert.throws(() => signHookCall({ secrets: [secretNew], pluginId: '', body }), /non-empty/);
    assert.throws(() => signHookCall({ secrets: [secretNew], pluginId: 'a\nb', body }), /line breaks/);
  });
});

describe('verifyHookCall', () => {
  const headers = signHookCall({ secrets: [secretNew], pluginId, body, timestamp: ts });
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));

  test('accepts what signHookCall signed, from a header object in any case or a fetch Headers', () => {
    assert.deepEqual(verifyHookCall({ secrets: [secretNew], pluginId, headers, body, now: ts }), { ok: true });
    assert.deepEqual(verifyHookCall({ secrets: [secretNew], pluginId, headers: lower, body: Buffer.from(body), now: ts }), { ok: true });
    assert.deepEqual(verifyHookCall({ secrets: [secretNew], pluginId, headers: new Headers(headers), body, now: ts }), { ok: true });
  });

  test('refuses a tampered body, timestamp or plugin id', () => {
    assert.deepEqual(verifyHookCall({ secrets: [secretNew], pluginId, headers, body: body.replace('m1', 'm2'), now: ts }), { ok: false, reason: 'mismatch' });
    assert.deepEqual(
      verifyHookCall({ secrets: [secretNew], pluginId, headers: { ...headers, 'X-MaiRust-Timestamp': String(ts + 1) }, body, now: ts }),
      { ok: false, reason: 'mismatch' },
    );
    // The header names another plugin: refused even though the HMAC (made for pluginId) would match.
    assert.deepEqual(
      verifyHookCall({ secrets: [secretNew], pluginId, headers: { ...headers, 'X-MaiRust-Plugin-Id': 'com.example.other' }, body, now: ts }),
      { ok: false, reason: 'mismatch' },
    );
    // A call signed for another plugin, presented to this one.
    const other = signHookCall({ secrets: [secretNew], pluginId: 'com.example.other', body, timestamp: ts });
    assert.deepEqual(verifyHookCall({ secrets: [secretNew], pluginId, headers: other, body, now: ts }), { ok: false, reason: 'mismatch' });
  });

  test('accepts up to exactly 300 s of skew either way and refuses 301 s', () => {
    for (const now of [ts + 300, ts - 300]) assert.deepEqual(verifyHookCall({ secrets: [secretNew], pluginId, headers, body, now }), { ok: true });
    for (const now of [ts + 301, ts - 301]) {
      assert.deepEqual(verifyHookCall({ secrets: [secretNew], pluginId, headers, body, now }), { ok: false, reason: 'timestamp_out_of_range' });
    }
  });

  test('rotation: a two-signature call verifies with the old secret alone, the new alone, or both; a third secret does not', () => {
    const rotating = signHookCall({ secrets: [secretNew, secretOld], pluginId, body, timestamp: ts });
    for (const secrets of [[secretOld], [secretNew], [secretOld, secretNew]]) {
      assert.deepEqual(verifyHookCall({ secrets, pluginId, headers: rotating, body, now: ts }), { ok: true });
    }
    assert.deepEqual(verifyHookCall({ secrets: ['plsec_unrelated'], pluginId, headers: rotating, body, now: ts }), { ok: false, reason: 'mismatch' });
    // A receiver holding both secrets accepts a call signed only with the old one.
    const oldOnly = signHookCall({ secrets: [secretOld], pluginId, body, timestamp: ts });
    assert.deepEqual(verifyHookCall({ secrets: [secretNew, secretOld], pluginId, headers: oldOnly, body, now: ts }), { ok: true });
    assert.throws(() => verifyHookCall({ secrets: ['a', 'b', 'c'], pluginId, headers, body, now: ts }), /at most 2 secrets/);
  });

  test('names the failure for missing or malformed headers', () => {
    const { 'X-MaiRust-Plugin-Id': _id, ...noId } = headers;
    assert.deepEqual(verifyHookCall({ secrets: [secretNew], pluginId, headers: noId, body, now: ts }), { ok: false, reason: 'missing_header' });
    assert.deepEqual(verifyHookCall({ secrets: [secretNew], pluginId, headers: {}, body, now: ts }), { ok: false, reason: 'missing_header' });
    assert.deepEqual(
      verifyHookCall({ secrets: [secretNew], pluginId, headers: { ...headers, 'X-MaiRust-Timestamp': '17e8' }, body, now: ts }),
      { ok: false, reason: 'malformed_timestamp' },
    );
    assert.deepEqual(
      verifyHookCall({ secrets: [secretNew], pluginId, headers: { ...headers, 'X-MaiRust-Signature': 'sha1=abcd' }, body, now: ts }),
      { ok: false, reason: 'malformed_signature' },
    );
  });
});
