/**
 * MessageIntake (src/protocols/smtp/engine/message-intake.ts): one message streamed from the wire
 * into `pipeline.receive`, and the reply it ends in.
 *
 * - size limit while streaming (RFC 1870): the pipeline's stream fails the moment the limit is
 *   crossed, the rest is counted and dropped, the reply is 552 5.3.4;
 * - back-pressure: a pipeline that does not read makes `write` wait, with a bounded buffer, and a
 *   pipeline that takes nothing for `dataTimeoutMs` is given up on (451 4.3.0);
 * - the end: each verdict's reply, early decisions, a pipeline that throws or never decides, abort.
 *
 * The pipelines are small implementations of the InboundPipeline contract (our own seam, not a mail
 * peer) whose `receive` does what each test needs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import type { Envelope, InboundPipeline, SmtpSessionInfo, Verdict } from '../../src/pipeline/inbound/contract.js';
import { REPLIES, formatReply } from '../../src/protocols/smtp/replies.js';
import { BODY_HIGH_WATER_MARK, MessageIntake } from '../../src/protocols/smtp/engine/message-intake.js';

const session: SmtpSessionInfo = { id: 's-1', listener: 'mx', remoteAddress: '192.0.2.1', remotePort: 40000, helo: 'client.test', secure: false };
const envelope: Envelope = { mailFrom: 'a@remote.test', recipients: [{ address: 'b@example.test' }] };
const KIB = 1024;

type Receive = (data: Readable) => Promise<Verdict & { messageId?: string }>;

function pipelineWith(receive: Receive): InboundPipeline {
  return {
    checkSender: async () => ({ ok: true }),
    checkRecipient: async () => ({ ok: true }),
    receive: (_s, _e, data) => receive(data),
  };
}

/** A pipeline that reads the whole message, remembers it, and answers `verdict` (or throws it). */
function reading(verdict: (Verdict & { messageId?: string }) | Error = { ok: true, messageId: 'm-1' }) {
  const got: Buffer[] = [];
  const errors: Error[] = [];
  const pipeline = pipelineWith(async (data) => {
    try {
      for await (const chunk of data) got.push(chunk as Buffer);
    } catch (err) {
      errors.push(err as Error);
      throw err;
    }
    if (verdict instanceof Error) throw verdict;
    return verdict;
  });
  return { pipeline, got: () => Buffer.concat(got), errors };
}

const intake = (pipeline: InboundPipeline, opts: { maxMessageBytes?: number; dataTimeoutMs?: number } = {}) =>
  new MessageIntake(pipeline, session, envelope, { maxMessageBytes: 100 * KIB * KIB, dataTimeoutMs: 60_000, ...opts });

/** `n` chunks of `size` bytes, each filled with its own index, so order and loss show. */
const chunks = (n: number, size: number) => Array.from({ length: n }, (_, i) => Buffer.alloc(size, i % 251));

/** Whether `promise` settles within a few turns of the event loop. */
async function settlesSoon(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 10 && !settled; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  return settled;
}

const codeOf = (err: unknown) => (err as { code?: string }).code;

test('size: a message of exactly maxMessageBytes is passed on whole and accepted', async () => {
  const p = reading();
  const m = intake(p.pipeline, { maxMessageBytes: 100 });
  await m.write([Buffer.alloc(60, 0x61)]);
  await m.write([Buffer.alloc(40, 0x62)]);
  assert.equal(m.bytes, 100);
  assert.equal(m.overLimit, false);
  assert.deepEqual(await m.finish(), { reply: REPLIES.MESSAGE_ACCEPTED, result: 'accepted', size: 100, messageId: 'm-1' });
  assert.deepEqual(p.got(), Buffer.concat([Buffer.alloc(60, 0x61), Buffer.alloc(40, 0x62)]));
});

test('size: one byte over fails the pipeline stream at once (MESSAGE_TOO_LARGE); the rest is counted and dropped; 552 5.3.4', async () => {
  const p = reading();
  const m = intake(p.pipeline, { maxMessageBytes: 100 });
  await m.write([Buffer.alloc(60, 0x61)]);
  // The chunk that crosses the limit and the one after it in the same write are both dropped.
  await m.write([Buffer.alloc(41, 0x62), Buffer.alloc(10, 0x63)]);
  assert.equal(m.overLimit, true);
  assert.equal(m.bytes, 111);
  // Whatever follows is only counted: no waiting on a reader that is gone.
  assert.equal(await settlesSoon(m.write(chunks(64, 16 * KIB))), true);
  assert.equal(m.bytes, 111 + 64 * 16 * KIB);
  const outcome = await m.finish();
  assert.deepEqual(outcome, { reply: REPLIES.MESSAGE_TOO_BIG, result: 'rejected', size: 111 + 64 * 16 * KIB });
  assert.equal(formatReply(outcome.reply), '552 5.3.4 Message size exceeds fixed maximum message size');
  assert.equal(p.errors.length, 1);
  assert.equal(codeOf(p.errors[0]), 'MESSAGE_TOO_LARGE');
  assert.equal(p.errors[0].message, 'message exceeds 100 bytes');
  // The pipeline saw at most the part below the limit, never a byte past it.
  assert.ok(p.got().length <= 60 && p.got().every((b) => b === 0x61), `pipeline got ${p.got().length} bytes`);
});

test('back-pressure: while the pipeline does not read, write waits and the buffer stays bounded; reading lets it go on', async () => {
  let startReading!: () => void;
  const go = new Promise<void>((resolve) => (startReading = resolve));
  let stream!: Readable;
  const got: Buffer[] = [];
  const m = intake(
    pipelineWith(async (data) => {
      stream = data;
      await go;
      for await (const chunk of data) got.push(chunk as Buffer);
      return { ok: true, messageId: 'm-1' };
    }),
  );
  const message = chunks(64, 16 * KIB); // 1 MiB
  const writing = m.write(message);
  assert.equal(await settlesSoon(writing), false, 'write must wait for the pipeline');
  // What is held between the wire and the pipeline: the stream's two buffers of one high-water
  // mark each (writable and readable side of the PassThrough), plus the chunk that filled them.
  const held = stream.readableLength + (stream as unknown as { writableLength: number }).writableLength;
  assert.ok(held <= 2 * BODY_HIGH_WATER_MARK + 16 * KIB, `holds ${held} bytes`);
  assert.ok(m.bytes < 1024 * KIB, `counted ${m.bytes} bytes before the pipeline read any`);
  startReading();
  await writing;
  assert.equal(m.bytes, 1024 * KIB);
  assert.deepEqual(await m.finish(), { reply: REPLIES.MESSAGE_ACCEPTED, result: 'accepted', size: 1024 * KIB, messageId: 'm-1' });
  assert.ok(Buffer.concat(got).equals(Buffer.concat(message)), 'every byte, in order');
});

test('back-pressure: a pipeline that takes nothing for dataTimeoutMs is given up on: write returns, 451 4.3.0', async () => {
  const errors: Error[] = [];
  const m = intake(
    pipelineWith(
      (data) =>
        new Promise((_, reject) =>
          data.once('error', (err) => {
            errors.push(err);
            reject(err);
          }),
        ),
    ),
    { dataTimeoutMs: 100 },
  );
  const started = Date.now();
  await m.write(chunks(64, 16 * KIB));
  assert.ok(Date.now() - started < 10_000, 'bounded by dataTimeoutMs');
  assert.equal(m.bytes, 1024 * KIB, 'the rest is counted and dropped');
  const outcome = await m.finish();
  assert.equal(formatReply(outcome.reply), '451 4.3.0 Temporary local problem, please try again later');
  assert.equal(outcome.result, 'tempfail');
  assert.equal(outcome.size, 1024 * KIB);
  assert.equal(codeOf(outcome.err), 'PIPELINE_STALLED');
  assert.equal((outcome.err as Error).message, 'the pipeline took no message data for 100 ms');
  assert.deepEqual(errors.map(codeOf), ['PIPELINE_STALLED']);
});

test('end: the verdict becomes the reply; 5xx is rejected, 4xx and a throwing pipeline are tempfail', async () => {
  const body = Buffer.from('Subject: x\r\n\r\nhello\r\n');
  const cases: [(Verdict & { messageId?: string }) | Error, object][] = [
    [{ ok: true, messageId: 'm-7' }, { reply: REPLIES.MESSAGE_ACCEPTED, result: 'accepted', size: body.length, messageId: 'm-7' }],
    [{ ok: true, reply: REPLIES.OK }, { reply: REPLIES.OK, result: 'accepted', size: body.length, messageId: undefined }],
    [{ ok: false, reply: REPLIES.SPAM_REJECT }, { reply: REPLIES.SPAM_REJECT, result: 'rejected', size: body.length }],
    [{ ok: false, reply: REPLIES.MAILBOX_FULL }, { reply: REPLIES.MAILBOX_FULL, result: 'tempfail', size: body.length }],
  ];
  for (const [verdict, expected] of cases) {
    const m = intake(reading(verdict).pipeline);
    await m.write([body]);
    assert.deepEqual(await m.finish(), expected, JSON.stringify(verdict));
  }
  const failure = new Error('blob store down');
  const m = intake(reading(failure).pipeline);
  await m.write([body]);
  assert.deepEqual(await m.finish(), { reply: REPLIES.TEMP_LOCAL_ERROR, result: 'tempfail', size: body.length, err: failure });
  // An empty message is still a message.
  assert.deepEqual(await intake(reading().pipeline).finish(), { reply: REPLIES.MESSAGE_ACCEPTED, result: 'accepted', size: 0, messageId: 'm-1' });
});

test('end: a pipeline deciding before the end has its stream closed and the rest dropped; early reject stands, early accept is 451', async () => {
  for (const [verdict, expected] of [
    [{ ok: false, reply: REPLIES.SPAM_REJECT }, '550 5.7.1 Message rejected as spam'],
    [{ ok: true, messageId: 'm-1' }, '451 4.3.0 Temporary local problem, please try again later'],
  ] as const) {
    let stream!: Readable;
    const m = intake(
      pipelineWith(async (data) => {
        stream = data;
        return verdict;
      }),
    );
    await m.write([Buffer.from('Subject: x\r\n')]);
    // Nobody reads the rest: writing it must not wait for a reader.
    assert.equal(await settlesSoon(m.write(chunks(64, 16 * KIB))), true);
    assert.equal(stream.destroyed, true);
    const outcome = await m.finish();
    assert.equal(formatReply(outcome.reply), expected);
    assert.equal(outcome.size, 12 + 1024 * KIB);
    if (verdict.ok) {
      assert.equal(outcome.result, 'tempfail');
      assert.equal((outcome.err as Error).message, 'the pipeline accepted a message before its end');
    } else assert.equal(outcome.result, 'rejected');
  }
});

test('end: a pipeline that does not decide within dataTimeoutMs after the end is 451 4.3.0', async () => {
  const m = intake(
    pipelineWith(async (data) => {
      for await (const _ of data);
      return new Promise(() => {});
    }),
    { dataTimeoutMs: 100 },
  );
  await m.write([Buffer.from('x\r\n')]);
  const started = Date.now();
  const outcome = await m.finish();
  assert.ok(Date.now() - started < 10_000, 'bounded by dataTimeoutMs');
  assert.equal(formatReply(outcome.reply), '451 4.3.0 Temporary local problem, please try again later');
  assert.equal(outcome.result, 'tempfail');
  assert.equal(codeOf(outcome.err), 'SMTP_TIMEOUT');
  assert.equal((outcome.err as Error).message, 'pipeline.receive did not finish within 100 ms');
});

test('abort: the session ends mid-message, the pipeline stream fails with the reason, nothing is accepted', async () => {
  const p = reading();
  const m = intake(p.pipeline);
  await m.write([Buffer.from('Subject: half\r\n')]);
  m.abort(new Error('connection closed before the end of the message'));
  for (let i = 0; i < 20 && p.errors.length === 0; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(p.errors.map((e) => e.message), ['connection closed before the end of the message']);
  // Aborting again, or after the end, does nothing.
  m.abort(new Error('again'));
  assert.equal(p.errors.length, 1);
  const done = intake(reading().pipeline);
  await done.write([Buffer.from('x')]);
  assert.equal((await done.finish()).result, 'accepted');
  done.abort(new Error('late'));
});
