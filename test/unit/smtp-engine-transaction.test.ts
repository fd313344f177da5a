/**
 * MailTransaction (src/protocols/smtp/engine/transaction.ts), one mail transaction of RFC 5321 §3.3
 * against the pipeline contract: what it refuses before the pipeline is asked (SIZE, SMTPUTF8, the
 * recipient limit), the DATA/BDAT mixing rule of RFC 3030 §2, and reset (abort) mid-message.
 *
 * The pipeline here is a small scripted implementation of the InboundPipeline contract (our own
 * seam, not a mail peer): it records every call and answers what each test tells it to.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import type { AcceptedRecipient, Envelope, InboundPipeline, SmtpSessionInfo, Verdict } from '../../src/pipeline/inbound/contract.js';
import { createLogger } from '../../src/observability/logger.js';
import { DEFAULT_SMTP_LIMITS, type SmtpLimits } from '../../src/protocols/smtp/limits.js';
import { REPLIES, formatReply, type SmtpReply } from '../../src/protocols/smtp/replies.js';
import type { MailParams } from '../../src/protocols/smtp/engine/command-parser.js';
import { MailTransaction } from '../../src/protocols/smtp/engine/transaction.js';

const log = createLogger({ level: 'silent', format: 'json' });
const session: SmtpSessionInfo = { id: 's-1', listener: 'mx', remoteAddress: '192.0.2.1', remotePort: 40000, helo: 'client.test', secure: false };

/** An answer the scripted pipeline gives: a verdict, a thrown error, or never. */
type Answer<V> = V | Error | 'hang';

function answer<V>(a: Answer<V>): Promise<V> {
  if (a === 'hang') return new Promise<V>(() => {});
  if (a instanceof Error) return Promise.reject(a);
  return Promise.resolve(a);
}

class ScriptedPipeline implements InboundPipeline {
  /** Every call, in order, e.g. `checkSender a@remote.test 1000`, `checkRecipient b@example.test`. */
  readonly calls: string[] = [];
  /** The envelope the pipeline saw at each RCPT and at receive. */
  readonly envelopes: Envelope[] = [];
  /** Messages read to their end. */
  readonly received: string[] = [];
  /** Errors the message stream failed with (destroyed: reset, size limit). */
  readonly streamErrors: Error[] = [];
  sender: Answer<Verdict> = { ok: true };
  /** Per address (lower case); unlisted addresses are accepted as local recipients. */
  recipients = new Map<string, Answer<Verdict & { recipient?: AcceptedRecipient }>>();

  checkSender(_s: SmtpSessionInfo, mailFrom: string | null, declaredSize?: number): Promise<Verdict> {
    this.calls.push(`checkSender ${mailFrom ?? '<>'}${declaredSize === undefined ? '' : ` ${declaredSize}`}`);
    return answer(this.sender);
  }

  checkRecipient(_s: SmtpSessionInfo, envelope: Envelope, address: string): Promise<Verdict & { recipient?: AcceptedRecipient }> {
    this.calls.push(`checkRecipient ${address}`);
    this.envelopes.push(envelope);
    const scripted = this.recipients.get(address.toLowerCase());
    if (scripted !== undefined) return answer(scripted);
    return answer({ ok: true, recipient: { address, tenantId: 't-1', mailboxIds: [`mb-${address.split('@')[0].toLowerCase()}`] } });
  }

  async receive(_s: SmtpSessionInfo, envelope: Envelope, data: Readable): Promise<Verdict & { messageId?: string }> {
    this.calls.push('receive');
    this.envelopes.push(envelope);
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of data) chunks.push(chunk as Buffer);
    } catch (err) {
      this.streamErrors.push(err as Error);
      throw err;
    }
    this.received.push(Buffer.concat(chunks).toString());
    return { ok: true, messageId: `m-${this.received.length}` };
  }
}

const line = (reply: SmtpReply) => formatReply(reply);
const mailbox = (address: string) => ({ address, utf8: /[^\x00-\x7f]/.test(address) });
const params = (p: Partial<MailParams> = {}): MailParams => ({ smtputf8: false, ...p });

function setup(limits: Partial<SmtpLimits> = {}) {
  const pipeline = new ScriptedPipeline();
  const deps = { pipeline, limits: { ...DEFAULT_SMTP_LIMITS, maxMessageBytes: 1000, maxRecipients: 3, ...limits }, log };
  return { pipeline, tx: () => new MailTransaction(deps) };
}

/** A transaction after an accepted MAIL FROM and the given recipients. */
async function withRecipients(tx: MailTransaction, ...to: string[]): Promise<MailTransaction> {
  assert.equal(line(await tx.mail(session, { from: mailbox('a@remote.test'), params: params() })), '250 2.1.0 Sender OK');
  for (const address of to) assert.equal(line(await tx.rcpt(session, mailbox(address))), '250 2.1.5 Recipient OK');
  return tx;
}

test('MAIL: SIZE over the maximum is 552 5.3.4 before the pipeline is asked; the maximum itself passes', async () => {
  const { pipeline, tx } = setup();
  for (const size of [1001, Infinity]) {
    const t = tx();
    assert.equal(line(await t.mail(session, { from: mailbox('a@remote.test'), params: params({ size }) })), '552 5.3.4 Message size exceeds fixed maximum message size');
    assert.equal(t.started, false);
  }
  assert.deepEqual(pipeline.calls, []);
  const t = tx();
  assert.equal(line(await t.mail(session, { from: mailbox('a@remote.test'), params: params({ size: 1000 }) })), '250 2.1.0 Sender OK');
  assert.equal(t.started, true);
  assert.deepEqual(pipeline.calls, ['checkSender a@remote.test 1000']);
  assert.deepEqual(t.envelope(), { mailFrom: 'a@remote.test', declaredSize: 1000, recipients: [] });
});

test('MAIL: a non-ASCII sender needs SMTPUTF8 (553 5.6.7); <> is the null sender', async () => {
  const { pipeline, tx } = setup();
  const t = tx();
  assert.equal(line(await t.mail(session, { from: mailbox('ユーザー@例え.jp'), params: params() })), '553 5.6.7 Non-ASCII address requires SMTPUTF8');
  assert.equal(t.started, false);
  assert.deepEqual(pipeline.calls, []);
  assert.equal(line(await t.mail(session, { from: mailbox('ユーザー@例え.jp'), params: params({ smtputf8: true }) })), '250 2.1.0 Sender OK');
  const bounce = tx();
  assert.equal(line(await bounce.mail(session, { from: null, params: params() })), '250 2.1.0 Sender OK');
  assert.equal(bounce.envelope().mailFrom, null);
  assert.deepEqual(pipeline.calls, ['checkSender ユーザー@例え.jp', 'checkSender <>']);
});

test('MAIL: the pipeline refuses with its own reply; a pipeline that throws or hangs is 451 4.3.0; none starts a transaction', async () => {
  const { pipeline, tx } = setup({ dataTimeoutMs: 50 });
  const from = { from: mailbox('a@remote.test'), params: params() };
  const cases: [Answer<Verdict>, string][] = [
    [{ ok: false, reply: REPLIES.SENDER_NOT_OWNED }, '553 5.7.1 Sender address not owned by the authenticated user'],
    [new Error('database down'), '451 4.3.0 Temporary local problem, please try again later'],
    ['hang', '451 4.3.0 Temporary local problem, please try again later'],
  ];
  for (const [sender, expected] of cases) {
    pipeline.sender = sender;
    const t = tx();
    assert.equal(line(await t.mail(session, from)), expected);
    assert.equal(t.started, false);
  }
  // A verdict may carry its own success reply.
  pipeline.sender = { ok: true, reply: REPLIES.OK };
  assert.equal(line(await tx().mail(session, from)), '250 2.0.0 OK');
});

test('RCPT: at most maxRecipients; the next one is 452 4.5.3 and the pipeline is not asked', async () => {
  const { pipeline, tx } = setup({ maxRecipients: 3 });
  const t = await withRecipients(tx(), 'a@example.test', 'b@example.test', 'c@example.test');
  assert.equal(line(await t.rcpt(session, mailbox('d@example.test'))), '452 4.5.3 Too many recipients');
  assert.equal(line(await t.rcpt(session, mailbox('e@example.test'))), '452 4.5.3 Too many recipients');
  assert.deepEqual(pipeline.calls, ['checkSender a@remote.test', 'checkRecipient a@example.test', 'checkRecipient b@example.test', 'checkRecipient c@example.test']);
  assert.deepEqual(t.envelope().recipients.map((r) => r.address), ['a@example.test', 'b@example.test', 'c@example.test']);
  // The pipeline sees the recipients accepted before each RCPT.
  assert.deepEqual(pipeline.envelopes.map((e) => e.recipients.length), [0, 1, 2]);
});

test('RCPT: a repeated recipient (any case) replaces the earlier one and does not count, also at the limit', async () => {
  const { pipeline, tx } = setup({ maxRecipients: 3 });
  const t = await withRecipients(tx(), 'a@example.test', 'b@example.test', 'c@example.test');
  pipeline.recipients.set('b@example.test', { ok: true, recipient: { address: 'B@Example.Test', tenantId: 't-2', mailboxIds: ['mb-other'] } });
  assert.equal(line(await t.rcpt(session, mailbox('B@Example.Test'))), '250 2.1.5 Recipient OK');
  assert.deepEqual(t.envelope().recipients, [
    { address: 'a@example.test', tenantId: 't-1', mailboxIds: ['mb-a'] },
    { address: 'B@Example.Test', tenantId: 't-2', mailboxIds: ['mb-other'] },
    { address: 'c@example.test', tenantId: 't-1', mailboxIds: ['mb-c'] },
  ]);
  assert.equal(line(await t.rcpt(session, mailbox('d@example.test'))), '452 4.5.3 Too many recipients');
});

test('RCPT: refused recipients do not count toward the limit; a throwing pipeline is 451 4.3.0', async () => {
  const { pipeline, tx } = setup({ maxRecipients: 2 });
  pipeline.recipients.set('nobody@example.test', { ok: false, reply: REPLIES.RCPT_UNKNOWN_USER });
  pipeline.recipients.set('x@elsewhere.test', { ok: false, reply: REPLIES.RELAY_DENIED });
  pipeline.recipients.set('broken@example.test', new Error('database down'));
  const t = await withRecipients(tx());
  assert.equal(line(await t.rcpt(session, mailbox('nobody@example.test'))), '550 5.1.1 No such user here');
  assert.equal(line(await t.rcpt(session, mailbox('x@elsewhere.test'))), '554 5.7.1 Relay access denied');
  assert.equal(line(await t.rcpt(session, mailbox('broken@example.test'))), '451 4.3.0 Temporary local problem, please try again later');
  assert.equal(line(await t.rcpt(session, mailbox('a@example.test'))), '250 2.1.5 Recipient OK');
  assert.equal(line(await t.rcpt(session, mailbox('b@example.test'))), '250 2.1.5 Recipient OK');
  assert.equal(line(await t.rcpt(session, mailbox('c@example.test'))), '452 4.5.3 Too many recipients');
  // When the recipient's verdict names no resolution, the address alone is kept.
  const u = await withRecipients(tx());
  pipeline.recipients.set('plain@example.test', { ok: true });
  await u.rcpt(session, mailbox('plain@example.test'));
  assert.deepEqual(u.envelope().recipients, [{ address: 'plain@example.test' }]);
});

test('RCPT: a non-ASCII recipient needs SMTPUTF8 on MAIL (553 5.6.7)', async () => {
  const { tx } = setup();
  const t = await withRecipients(tx());
  assert.equal(line(await t.rcpt(session, mailbox('ユーザー@example.test'))), '553 5.6.7 Non-ASCII address requires SMTPUTF8');
  const u = tx();
  await u.mail(session, { from: mailbox('a@remote.test'), params: params({ smtputf8: true }) });
  assert.equal(line(await u.rcpt(session, mailbox('ユーザー@example.test'))), '250 2.1.5 Recipient OK');
});

test('DATA and BDAT: both need an accepted recipient (554 5.5.1); once one started, the other is refused (RFC 3030 §2)', async () => {
  const { pipeline, tx } = setup();
  const empty = await withRecipients(tx());
  assert.equal(line(empty.refuseData()!), '554 5.5.1 No valid recipients');
  assert.equal(line(empty.refuseBdat()!), '554 5.5.1 No valid recipients');

  const bdat = await withRecipients(tx(), 'a@example.test');
  assert.equal(bdat.refuseData(), null);
  assert.equal(bdat.refuseBdat(), null);
  assert.equal(bdat.opened, false);
  bdat.open(session, 'bdat');
  assert.equal(bdat.opened, true);
  assert.equal(line(bdat.refuseData()!), '503 5.5.1 DATA cannot follow BDAT in one transaction');
  assert.equal(bdat.refuseBdat(), null, 'further chunks are fine');
  assert.equal(line(await bdat.rcpt(session, mailbox('late@example.test'))), '503 5.5.1 Bad sequence of commands');

  const data = await withRecipients(tx(), 'a@example.test');
  data.open(session);
  assert.equal(line(data.refuseBdat()!), '503 5.5.1 Bad sequence of commands');
  assert.equal(line(await data.rcpt(session, mailbox('late@example.test'))), '503 5.5.1 Bad sequence of commands');
  assert.ok(!pipeline.calls.includes('checkRecipient late@example.test'));

  bdat.abort(new Error('test over'));
  data.abort(new Error('test over'));
});

test('the message: chunks reach the pipeline with the envelope, finish answers 250 with the message id', async () => {
  const { pipeline, tx } = setup();
  const t = await withRecipients(tx(), 'a@example.test', 'b@example.test');
  t.open(session);
  await t.write([Buffer.from('Subject: hi\r\n'), Buffer.from('\r\n')]);
  await t.write([Buffer.from('body\r\n')]);
  assert.equal(t.overLimit, false);
  assert.deepEqual(await t.finish(), { reply: REPLIES.MESSAGE_ACCEPTED, result: 'accepted', size: 21, messageId: 'm-1' });
  assert.deepEqual(pipeline.received, ['Subject: hi\r\n\r\nbody\r\n']);
  assert.deepEqual(pipeline.envelopes.at(-1)!.recipients.map((r) => r.address), ['a@example.test', 'b@example.test']);
});

test('the message over maxMessageBytes: overLimit, 552 5.3.4, and the pipeline stored nothing', async () => {
  const { pipeline, tx } = setup({ maxMessageBytes: 10 });
  const t = await withRecipients(tx(), 'a@example.test');
  t.open(session, 'bdat');
  await t.write([Buffer.from('0123456789')]);
  assert.equal(t.overLimit, false);
  await t.write([Buffer.from('x')]);
  assert.equal(t.overLimit, true);
  const outcome = await t.finish();
  assert.equal(line(outcome.reply), '552 5.3.4 Message size exceeds fixed maximum message size');
  assert.equal(outcome.result, 'rejected');
  assert.deepEqual(pipeline.received, []);
  assert.equal((pipeline.streamErrors[0] as Error & { code?: string }).code, 'MESSAGE_TOO_LARGE');
});

test('reset: abort mid-message fails the pipeline stream with the reason and nothing is received; before a message it is a no-op', async () => {
  const { pipeline, tx } = setup();
  const idle = await withRecipients(tx(), 'a@example.test');
  idle.abort(new Error('transaction reset'));
  assert.equal(idle.opened, false);

  const t = await withRecipients(tx(), 'a@example.test');
  t.open(session);
  await t.write([Buffer.from('Subject: half a message\r\n')]);
  t.abort(new Error('transaction reset'));
  // The pipeline notices on its next read.
  for (let i = 0; i < 20 && pipeline.streamErrors.length === 0; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(pipeline.streamErrors.map((e) => e.message), ['transaction reset']);
  assert.deepEqual(pipeline.received, []);
  // A second abort (RSET after the socket closed) changes nothing.
  t.abort(new Error('again'));
  assert.equal(pipeline.streamErrors.length, 1);
});

test('envelope() is a copy: the pipeline cannot change the transaction through it', async () => {
  const { tx } = setup();
  const t = await withRecipients(tx(), 'a@example.test');
  const copy = t.envelope();
  copy.recipients.push({ address: 'injected@example.test' });
  copy.mailFrom = 'other@remote.test';
  assert.deepEqual(t.envelope(), { mailFrom: 'a@remote.test', declaredSize: undefined, recipients: [{ address: 'a@example.test', tenantId: 't-1', mailboxIds: ['mb-a'] }] });
});
