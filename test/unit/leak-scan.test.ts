/** The harness's leak scan (test/support/api.ts findLeaks) must be able to fail. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findLeaks } from '../support/api.js';

const token = 'mra_' + 'A'.repeat(43);
const base = { responses: [] as string[], log: '', passwords: ['hunter2-but-longer'], minted: [] as string[], hashes: ['$argon2id$v=19$m=65536,t=3,p=4$abc$def'] };

test('a credential shown once, in its creating response, is no leak', () => {
  assert.deepEqual(findLeaks({ ...base, responses: [`{"data":{"access_token":"${token}"}}`, '{"data":{}}'] }), []);
});

test('a credential in two responses, or in the log, is a leak', () => {
  assert.equal(findLeaks({ ...base, responses: [token, `x ${token} y`] }).length, 1);
  assert.match(findLeaks({ ...base, responses: [token], log: `{"msg":"${token}"}` })[0], /appears in the log/);
  assert.match(findLeaks({ ...base, minted: [token], log: token })[0], /appears in the log/);
});

test('passwords, hashes and private keys are leaks anywhere', () => {
  assert.match(findLeaks({ ...base, responses: ['{"p":"hunter2-but-longer"}'] })[0], /password appears in a response/);
  assert.match(findLeaks({ ...base, log: 'h=$argon2id$v=19$m=65536,t=3,p=4$abc$def' }).join(), /hash appears in the log/);
  assert.match(findLeaks({ ...base, responses: ['-----BEGIN PRIVATE KEY-----\nMII'] })[0], /PEM private key/);
});
