/**
 * `POST /api/v1/send` (SPEC §3.2, §11) through the in-process API (test/support/api.ts) and THE SAME
 * pipeline as SMTP submission, built here from the app the way src/app/mail-listeners.ts builds it,
 * with the real outbound policy engine and DKIM signer: structured and raw sends, ownership of
 * `from` (another user's address → 403), attachments, Bcc absent from the stored header but
 * delivered, the Sent copy, the DKIM-Signature, validation of header fields.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { text as streamText } from 'node:stream/consumers';
import { Value } from '@sinclair/typebox/value';
import { simpleParser } from 'mailparser';
import { startApi, type ApiHarness, type TestTenant, type TestUser } from '../support/api.js';
import { tenantScope } from '../../src/core/scope.js';
import { InboundPipelineImpl } from '../../src/pipeline/inbound/pipeline.js';
import { createDkimSigner } from '../../src/outbound/dkim-sign.js';
import { createOutboundPolicy } from '../../src/outbound/policy/engine.js';
import { OutboundConfigSchema, type OutboundConfig } from '../../src/config/sections/outbound.js';
import { DatabaseRateCounter } from '../../src/http/api/rate-limit/db-counter.js';

describe('POST /send', () => {
  let api: ApiHarness;
  let acme: TestTenant;
  let ann: TestUser;
  let other: TestUser;
  let annMailbox: string;
  let danMailbox: string;

  before(async () => {
    api = await startApi();
    const app = api.app;
    const config = Value.Default(OutboundConfigSchema, {}) as OutboundConfig;
    api.deps.pipeline = new InboundPipelineImpl({
      tenancy: app.tenancy,
      mailboxState: app.mailboxState,
      queue: app.queue,
      blobs: app.blobs,
      db: app.db,
      emailAuth: null,
      spam: null,
      config: () => app.config.inbound,
      maxMessageBytes: () => app.config.mail.max_message_bytes,
      hostname: app.config.server.hostname,
      spoolDir: resolve(app.config.server.data_dir, 'spool'),
      logger: app.logger.child({ component: 'pipeline' }),
      outbound: {
        policy: createOutboundPolicy({ db: app.db, counter: new DatabaseRateCounter(app.db), tenancy: app.tenancy, config: () => config, logger: app.logger }),
        signer: createDkimSigner({ db: app.db, dkim: api.deps.dkim, tenancy: app.tenancy }),
      },
    });
    acme = await api.tenant('acme');
    // Through the API: adding a domain also creates its DKIM key.
    const d = await api.call('POST', '/api/v1/domains', { token: acme.admin.token, body: { name: 'acme.test' } });
    assert.equal(d.status, 201, d.body);
    const scope = tenantScope(acme.id);
    ann = await api.user(acme.id, { email: 'ann@acme.test' });
    other = await api.user(acme.id, { email: 'olga@acme.test' });
    annMailbox = (await app.tenancy.mailboxes.add(scope, { address: 'ann@acme.test', user: ann.user.id })).id;
    await app.tenancy.mailboxes.add(scope, { address: 'olga@acme.test', user: other.user.id });
    await app.tenancy.mailboxes.add(scope, { address: 'cat@acme.test' });
    danMailbox = (await app.tenancy.mailboxes.add(scope, { address: 'dan@acme.test' })).id;
  });
  after(async () => {
    await api?.close();
  });

  async function stored(messageId: string): Promise<string> {
    return streamText(await api.app.mailboxState.openMessage(tenantScope(acme.id), messageId));
  }

  async function folderNames(messageId: string): Promise<Record<string, string[]>> {
    const scope = tenantScope(acme.id);
    const out: Record<string, string[]> = {};
    for (const e of await api.app.mailboxState.entriesOfMessage(scope, messageId)) {
      (out[e.mailboxId] ??= []).push((await api.app.mailboxState.getFolder(scope, e.folderId)).name);
    }
    return out;
  }

  test('structured: 202, Sent copy, local and Bcc delivery, Bcc not in the header, attachment, DKIM-signed, queued for remote', async () => {
    const pdf = Buffer.from('%PDF-1.4 tiny test document\n');
    const r = await api.call('POST', '/api/v1/send', {
      token: ann.token,
      body: {
        from: 'Ann Example <ann@acme.test>',
        to: ['bob@remote.example'],
        cc: ['cat@acme.test'],
        bcc: ['dan@acme.test'],
        subject: 'Quarterly — 四半期 report',
        text: 'Hello Bob,\nthe report is attached.\n',
        html: '<p>Hello Bob,<br>the report is attached.</p>',
        attachments: [{ filename: 'report.pdf', content_type: 'application/pdf', content_base64: pdf.toString('base64') }],
        headers: { 'X-Campaign': 'q3' },
        reply_to: 'replies@acme.test',
        in_reply_to: '<prev@acme.test>',
      },
    });
    assert.equal(r.status, 202, r.body);
    const data = r.json.data;
    assert.deepEqual(data.accepted.sort(), ['bob@remote.example', 'cat@acme.test', 'dan@acme.test']);
    assert.deepEqual(data.rejected, []);
    assert.ok(data.message_id);
    assert.ok(data.queue_id, 'queued for bob@remote.example');

    const raw = await stored(data.message_id);
    assert.ok(raw.startsWith('DKIM-Signature: '), 'signed with the domain key created with the domain');
    const header = raw.slice(0, raw.indexOf('\r\n\r\n'));
    assert.doesNotMatch(header, /^bcc:/im, 'Bcc is not in the stored header');
    assert.ok(!raw.includes('dan@acme.test'), 'the blind copy is not visible anywhere in the message');
    const parsed = await simpleParser(Buffer.from(raw));
    assert.equal(parsed.subject, 'Quarterly — 四半期 report');
    assert.equal(parsed.headers.get('x-campaign'), 'q3');
    assert.equal(parsed.inReplyTo, '<prev@acme.test>');
    assert.equal(parsed.attachments.length, 1);
    assert.equal(parsed.attachments[0].filename, 'report.pdf');
    assert.equal(parsed.attachments[0].contentType, 'application/pdf');
    assert.deepEqual(parsed.attachments[0].content, pdf);
    assert.match(parsed.text ?? '', /the report is attached/);

    const folders = await folderNames(data.message_id);
    assert.deepEqual(folders[annMailbox], ['Sent'], 'the Sent copy');
    assert.deepEqual(folders[danMailbox], ['INBOX'], 'the Bcc recipient got it');
    const rec = await api.app.db.kysely.selectFrom('outbound_messages').select(['id', 'message_id']).where('id', '=', data.queue_id).executeTakeFirst();
    assert.equal(rec?.message_id, data.message_id);
  });

  test('raw: text with bare LF is normalised to CRLF, Bcc removed, envelope from the header fields', async () => {
    const raw = ['From: Ann <ann@acme.test>', 'To: cat@acme.test', 'Bcc: dan@acme.test', 'Subject: raw send', 'Date: Sun, 29 Nov 2026 10:00:00 +0000', 'Message-ID: <raw-1@acme.test>', '', 'Raw body.', ''].join('\n');
    const r = await api.call('POST', '/api/v1/send', { token: ann.token, body: { raw } });
    assert.equal(r.status, 202, r.body);
    assert.deepEqual(r.json.data.accepted.sort(), ['cat@acme.test', 'dan@acme.test']);
    assert.equal(r.json.data.queue_id, null, 'all recipients local: nothing queued');
    const text = await stored(r.json.data.message_id);
    assert.ok(!/\r?\nBcc:/i.test(text));
    assert.ok(!/[^\r]\n/.test(text), 'CRLF line ends only');
    assert.match(text, /\r\nSubject: raw send\r\n/);

    const b64 = await api.call('POST', '/api/v1/send', { token: ann.token, body: { raw: Buffer.from(raw.replace('raw send', 'base64 send')).toString('base64'), raw_encoding: 'base64', to: ['cat@acme.test'] } });
    assert.equal(b64.status, 202, b64.body);
    assert.deepEqual(b64.json.data.accepted, ['cat@acme.test'], 'the request\'s recipients win over the header fields');
  });

  test('ownership: another user\'s address → 403 with the SMTP reply, as envelope sender and in From:', async () => {
    const r = await api.call('POST', '/api/v1/send', { token: ann.token, body: { from: 'olga@acme.test', to: ['cat@acme.test'], subject: 'x', text: 'x' } });
    assert.equal(r.status, 403, r.body);
    assert.equal(r.json.error.code, 'FORBIDDEN');
    assert.equal(r.json.error.details.smtp, '553 5.7.1 Sender address not owned by the authenticated user');

    const raw = 'From: olga@acme.test\r\nTo: cat@acme.test\r\nSubject: forged\r\n\r\nx\r\n';
    const forged = await api.call('POST', '/api/v1/send', { token: ann.token, body: { raw, from: 'ann@acme.test' } });
    assert.equal(forged.status, 403, forged.body);
    assert.match(forged.json.error.details.smtp, /^553 5\.7\.1 /);
  });

  test('validation: header injection, reserved headers, no recipients, unknown local recipient reported', async () => {
    const inj = await api.call('POST', '/api/v1/send', { token: ann.token, body: { from: 'ann@acme.test', to: ['cat@acme.test'], headers: { 'X-Evil': 'a\r\nBcc: eve@evil.example' }, text: 'x' } });
    assert.equal(inj.status, 422, inj.body);
    const reserved = await api.call('POST', '/api/v1/send', { token: ann.token, body: { from: 'ann@acme.test', to: ['cat@acme.test'], headers: { 'DKIM-Signature': 'v=1' }, text: 'x' } });
    assert.equal(reserved.status, 422, reserved.body);
    const none = await api.call('POST', '/api/v1/send', { token: ann.token, body: { from: 'ann@acme.test', subject: 'x', text: 'x' } });
    assert.equal(none.status, 422, none.body);
    const partly = await api.call('POST', '/api/v1/send', { token: ann.token, body: { from: 'ann@acme.test', to: ['cat@acme.test', 'nobody@acme.test'], subject: 'partly', text: 'x' } });
    assert.equal(partly.status, 202, partly.body);
    assert.deepEqual(partly.json.data.accepted, ['cat@acme.test']);
    assert.equal(partly.json.data.rejected.length, 1);
    assert.equal(partly.json.data.rejected[0].address, 'nobody@acme.test');
    assert.match(partly.json.data.rejected[0].reply, /^550 5\.1\.1 /);
  });

  test('without a pipeline the route answers 503', async () => {
    const saved = api.deps.pipeline;
    api.deps.pipeline = undefined;
    try {
      const r = await api.call('POST', '/api/v1/send', { token: ann.token, body: { from: 'ann@acme.test', to: ['cat@acme.test'], text: 'x' } });
      assert.equal(r.status, 503, r.body);
    } finally {
      api.deps.pipeline = saved;
    }
  });
});
