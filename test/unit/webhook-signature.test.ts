/**
 * Webhook signing (SPEC §6 "Signing", used by SPEC §11 event webhooks): the signed string, the
 * header format, the ±5 minute window and the failure reasons of verification.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { SIGNATURE_TOLERANCE_SECONDS, signWebhook, signatureHex, verifyWebhookSignature } from '../../src/webhooks/signature.js';

const secret = 'whsec_0123456789abcdefghijklmnopqrstuvwxyzABCDE';
const id = '7f1c3a5e-2b4d-4e6f-8a9b-0c1d2e3f4a5b';
const body = '{"id":"e1","event":"user.created","occurred_at":"2025-01-01T00:00:00.000Z","tenant_id":"t1","data":{}}';
const ts = 1_700_000_000;

describe('signWebhook', () => {
  test('signs HMAC-SHA256(secret, timestamp \\n id \\n hex(sha256(body))), as sha256=<hex>', () => {
    const bodyHash = createHash('sha256').update(body).digest('hex');
    const expected = createHmac('sha256', secret).update(`${ts}\n${id}\n${bodyHash}`).digest('hex');
    const h = signWebhook({ secret, id, body, timestamp: ts });
    assert.equal(h.timestamp, '1700000000');
    assert.equal(h.signature, `sha256=${expected}`);
    assert.match(h.signature, /^sha256=[0-9a-f]{64}$/);
    assert.equal(signatureHex(secret, '1700000000', id, Buffer.from(body)), expected, 'string and Buffer bodies sign alike');
  });

  test('the id is part of the signed string: another webhook id gives another signature', () => {
    const a = signWebhook({ secret, id, body, timestamp: ts }).signature;
    const b = signWebhook({ secret, id: 'another-id', body, timestamp: ts }).signature;
    assert.notEqual(a, b);
  });

  test('defaults to the current Unix time in seconds', () => {
    const before = Math.floor(Date.now() / 1000);
    const h = signWebhook({ secret, id, body });
    const after = Math.floor(Date.now() / 1000);
    assert.ok(Number(h.timestamp) >= before && Number(h.timestamp) <= after);
  });

  test('refuses an id with a line break (it would change the signed string\'s structure) and a bad timestamp', () => {
    assert.throws(() => signWebhook({ secret, id: 'a\nb', body }), /line breaks/);
    assert.throws(() => signWebhook({ secret, id: '', body }), /non-empty/);
    assert.throws(() => signWebhook({ secret, id, body, timestamp: -1 }), /non-negative integer/);
    assert.throws(() => signWebhook({ secret, id, body, timestamp: 1.5 }), /non-negative integer/);
  });
});

describe('verifyWebhookSignature', () => {
  const signed = signWebhook({ secret, id, body, timestamp: ts });
  const base = { secrets: [secret], id, timestamp: signed.timestamp, signature: signed.signature, body, now: ts };

  test('accepts the signature it made', () => {
    assert.deepEqual(verifyWebhookSignature(base), { ok: true });
    assert.deepEqual(verifyWebhookSignature({ ...base, body: Buffer.from(body) }), { ok: true });
  });

  test('accepts timestamps up to exactly 300 s away in either direction, refuses 301 s', () => {
    assert.equal(SIGNATURE_TOLERANCE_SECONDS, 300);
    assert.deepEqual(verifyWebhookSignature({ ...base, now: ts + 300 }), { ok: true });
    assert.deepEqual(verifyWebhookSignature({ ...base, now: ts - 300 }), { ok: true });
    assert.deepEqual(verifyWebhookSignature({ ...base, now: ts + 301 }), { ok: false, reason: 'timestamp_out_of_range' });
    assert.deepEqual(verifyWebhookSignature({ ...base, now: ts - 301 }), { ok: false, reason: 'timestamp_out_of_range' });
  });

  test('a changed body, id, timestamp or secret does not verify', () => {
    assert.deepEqual(verifyWebhookSignature({ ...base, body: body.replace('user.created', 'user.deleted') }), { ok: false, reason: 'mismatch' });
    assert.deepEqual(verifyWebhookSignature({ ...base, id: 'other' }), { ok: false, reason: 'mismatch' });
    assert.deepEqual(verifyWebhookSignature({ ...base, timestamp: String(ts + 1) }), { ok: false, reason: 'mismatch' });
    assert.deepEqual(verifyWebhookSignature({ ...base, secrets: ['whsec_other'] }), { ok: false, reason: 'mismatch' });
  });

  test('during a rotation either secret verifies', () => {
    assert.deepEqual(verifyWebhookSignature({ ...base, secrets: ['whsec_new', secret] }), { ok: true });
  });

  test('a header with several values verifies when one of them matches', () => {
    const other = signWebhook({ secret: 'whsec_old', id, body, timestamp: ts }).signature;
    assert.deepEqual(verifyWebhookSignature({ ...base, signature: `${other}, ${signed.signature}` }), { ok: true });
    assert.deepEqual(verifyWebhookSignature({ ...base, signature: signed.signature.toUpperCase().replace('SHA256=', 'sha256=') }), { ok: true });
  });

  test('missing and malformed headers are reported as such', () => {
    assert.deepEqual(verifyWebhookSignature({ ...base, signature: undefined }), { ok: false, reason: 'missing_header' });
    assert.deepEqual(verifyWebhookSignature({ ...base, timestamp: undefined }), { ok: false, reason: 'missing_header' });
    assert.deepEqual(verifyWebhookSignature({ ...base, id: '' }), { ok: false, reason: 'missing_header' });
    assert.deepEqual(verifyWebhookSignature({ ...base, secrets: [] }), { ok: false, reason: 'missing_header' });
    assert.deepEqual(verifyWebhookSignature({ ...base, timestamp: '17e8' }), { ok: false, reason: 'malformed_timestamp' });
    assert.deepEqual(verifyWebhookSignature({ ...base, timestamp: '-5' }), { ok: false, reason: 'malformed_timestamp' });
    assert.deepEqual(verifyWebhookSignature({ ...base, signature: 'sha1=abcd' }), { ok: false, reason: 'malformed_signature' });
    assert.deepEqual(verifyWebhookSignature({ ...base, signature: `sha256=${'a'.repeat(63)}` }), { ok: false, reason: 'malformed_signature' });
    assert.deepEqual(verifyWebhookSignature({ ...base, signature: signed.signature.slice('sha256='.length) }), { ok: false, reason: 'malformed_signature' });
  });

  test('the window is checked before the HMAC: an old timestamp fails even with a valid signature', () => {
    const old = signWebhook({ secret, id, body, timestamp: ts - 3600 });
    assert.deepEqual(verifyWebhookSignature({ ...base, ...old }), { ok: false, reason: 'timestamp_out_of_range' });
  });
});
