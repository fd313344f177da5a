/**
 * The DER encoders behind the self-signed certificate (X.690), checked against hand-encoded values
 * and against OpenSSL's parser (node:crypto) for the whole certificate in smtp-self-signed.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as der from '../../src/protocols/net/der.js';

const hex = (b: Buffer) => b.toString('hex');

test('lengths: short form below 128, long form above (X.690 §8.1.3)', () => {
  assert.equal(hex(der.encodeLength(0)), '00');
  assert.equal(hex(der.encodeLength(127)), '7f');
  assert.equal(hex(der.encodeLength(128)), '8180');
  assert.equal(hex(der.encodeLength(256)), '820100');
  assert.equal(hex(der.encodeLength(70000)), '83011170');
  assert.throws(() => der.encodeLength(-1), RangeError);
  assert.throws(() => der.encodeLength(0x1000000), RangeError);
});

test('object identifiers (X.690 §8.19)', () => {
  assert.equal(hex(der.objectIdentifier('1.2.840.10045.4.3.2')), '06082a8648ce3d040302'); // ecdsa-with-SHA256
  assert.equal(hex(der.objectIdentifier('2.5.29.17')), '0603551d11'); // subjectAltName
  assert.equal(hex(der.objectIdentifier('1.3.6.1.5.5.7.3.1')), '06082b06010505070301'); // serverAuth
  assert.throws(() => der.objectIdentifier('1'), /bad OID/);
  assert.throws(() => der.objectIdentifier('3.1'), /bad OID/);
  assert.throws(() => der.objectIdentifier('1.x'), /bad OID/);
});

test('unsigned integers are minimal and never negative (X.690 §8.3)', () => {
  assert.equal(hex(der.unsignedInteger(Buffer.from([0x00, 0x00, 0x7f]))), '02017f');
  assert.equal(hex(der.unsignedInteger(Buffer.from([0x80]))), '02020080');
  assert.equal(hex(der.unsignedInteger(Buffer.alloc(0))), '020100');
  assert.equal(hex(der.smallInteger(2)), '020102');
});

test('times: UTCTime until 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)', () => {
  assert.equal(der.time(new Date('2026-11-29T01:02:03.999Z')).toString('latin1'), '\x17\x0d261129010203Z');
  assert.equal(der.time(new Date('2050-01-01T00:00:00Z')).toString('latin1'), '\x18\x0f20500101000000Z');
});

test('constructed and tagged values', () => {
  assert.equal(hex(der.sequence()), '3000');
  assert.equal(hex(der.sequence(der.nullValue(), der.boolean(true))), '30050500' + '0101ff');
  assert.equal(hex(der.bitString(Buffer.from([0x80]), 7)), '03020780');
  assert.equal(hex(der.explicit(0, der.smallInteger(2))), 'a003020102');
  assert.equal(hex(der.implicitPrimitive(2, Buffer.from('a.b'))), '8203612e62');
});
