/** The inbound pipeline's explicit stage list (SPEC §3.1): names and order are part of the design. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { inboundStages, runStages, StageError, type InboundStage } from '../../src/pipeline/inbound/stages.js';
import { newInboundMessage } from '../../src/pipeline/inbound/message-context.js';
import { REPLIES } from '../../src/protocols/smtp/replies.js';
import type { InboundPipelineDeps } from '../../src/pipeline/inbound/deps.js';

test('stage order: data → header-checks → outbound-policy → email-auth → spam-check → pre_receive → pre_delivery → dkim-sign → commit → post_receive', () => {
  const names = inboundStages({} as InboundPipelineDeps).map((s) => s.name);
  assert.deepEqual(names, ['data', 'header-checks', 'outbound-policy', 'email-auth', 'spam-check', 'pre_receive', 'pre_delivery', 'dkim-sign', 'commit', 'post_receive']);
});

function msg() {
  return newInboundMessage(
    { id: 's', listener: 'mx', remoteAddress: '192.0.2.1', remotePort: 1, helo: 'h', secure: false },
    { mailFrom: null, recipients: [] },
    Readable.from([]),
    'q1',
  );
}

test('the first rejection stops the list and names its stage', async () => {
  const ran: string[] = [];
  const stage = (name: string, reject = false): InboundStage => ({
    name,
    run: async () => {
      ran.push(name);
      return reject ? { ok: false, reply: REPLIES.SPAM_REJECT } : undefined;
    },
  });
  const stop = await runStages([stage('a'), stage('b', true), stage('c')], msg());
  assert.deepEqual(ran, ['a', 'b']);
  assert.equal(stop?.stage, 'b');
  assert.equal(stop?.rejection.reply.code, 550);
  assert.equal(await runStages([stage('x')], msg()), null);
});

test('a thrown error is wrapped with the stage it came from', async () => {
  const boom = new Error('db down');
  await assert.rejects(runStages([{ name: 'commit', run: async () => { throw boom; } }], msg()), (err: unknown) => {
    assert.ok(err instanceof StageError);
    assert.equal(err.stage, 'commit');
    assert.equal(err.cause, boom);
    return true;
  });
});
