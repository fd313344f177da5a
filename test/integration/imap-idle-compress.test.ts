/**
 * IDLE (RFC 2177) and COMPRESS=DEFLATE (RFC 4978) over real listeners (both shapes): changes made
 * through the mailbox-state service — as SMTP delivery, the REST API or another node make them —
 * reach an IDLE-ing session as EXISTS / FETCH (FLAGS …) / EXPUNGE without the client asking;
 * DONE ends IDLE; a compressed session works with the raw client and with imapflow.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mailServicesFixture, sampleMessage, type MailServicesFixture, type TestAccount } from '../support/mail-services.js';
import { startImapServer, type ImapTestServer, type ImapWire } from '../support/imap.js';

let fixture: MailServicesFixture;
let srv: ImapTestServer;
let n = 0;

/** How long a pushed change may take to arrive. Generous for a loaded CI; the target is < 1 s. */
const PUSH_MS = 3000;

before(async () => {
  fixture = await mailServicesFixture();
  srv = await startImapServer({ fixture });
});

after(async () => {
  await srv.close();
  await fixture.close();
});

async function session(): Promise<{ account: TestAccount; w: ImapWire }> {
  const i = ++n;
  const account = await fixture.addAccount(`user@i${i}.test`, { tenant: `i${i}` });
  return { account, w: await srv.login(account) };
}

describe('IDLE', () => {
  test('in the authenticated state: + idling, then DONE', async () => {
    const { w } = await session();
    w.send('a1 IDLE\r\n');
    assert.equal(await w.response(), '+ idling');
    w.send('DONE\r\n');
    const r = await w.readUntilTagged('a1');
    assert.deepEqual(r.untagged, []);
    assert.equal(r.tagged, 'a1 OK IDLE terminated');
  });

  test('in the selected state: a delivery and a flag change are pushed; DONE in any case', async () => {
    const { account, w } = await session();
    await account.deliver(sampleMessage({ subject: 'first' }));
    assert.match((await w.command('a1 SELECT INBOX')).tagged, /^a1 OK /);
    w.send('a2 IDLE\r\n');
    assert.equal(await w.response(), '+ idling');

    const { uid } = await account.deliver(sampleMessage({ subject: 'second' }));
    assert.equal(await w.response(PUSH_MS), '* 2 EXISTS');

    const inbox = await account.folder('INBOX');
    await fixture.state.setFlags(account.scope, inbox.id, [uid], 'add', ['\\Flagged']);
    assert.match(await w.response(PUSH_MS), /^\* 2 FETCH \(.*FLAGS \(\\Flagged\)/);

    w.send('done\r\n');
    assert.equal((await w.readUntilTagged('a2')).tagged, 'a2 OK IDLE terminated');
  });

  test('an expunge by another client is pushed during IDLE', async () => {
    const { account, w } = await session();
    const { uid } = await account.deliver(sampleMessage());
    await account.deliver(sampleMessage());
    assert.match((await w.command('a1 SELECT INBOX')).tagged, /^a1 OK /);
    w.send('a2 IDLE\r\n');
    assert.equal(await w.response(), '+ idling');
    const inbox = await account.folder('INBOX');
    await fixture.state.deleteMessages(account.scope, inbox.id, [uid]);
    assert.equal(await w.response(PUSH_MS), `* 1 EXPUNGE`);
    w.send('DONE\r\n');
    assert.equal((await w.readUntilTagged('a2')).tagged, 'a2 OK IDLE terminated');
  });

  test('anything but DONE ends IDLE with BAD; commands pipelined after DONE run', async () => {
    const { w } = await session();
    w.send('a1 IDLE\r\n');
    assert.equal(await w.response(), '+ idling');
    w.send('a2 NOOP\r\n');
    assert.equal((await w.readUntilTagged('a1')).tagged, 'a1 BAD Expected DONE');
    w.send('a3 IDLE\r\n');
    assert.equal(await w.response(), '+ idling');
    w.send('DONE\r\na4 NOOP\r\n');
    assert.equal((await w.readUntilTagged('a3')).tagged, 'a3 OK IDLE terminated');
    assert.equal((await w.readUntilTagged('a4')).tagged, 'a4 OK NOOP completed');
  });

  test('IDLE is not valid before login', async () => {
    const w = await srv.connect();
    assert.equal((await w.command('a1 IDLE')).tagged, 'a1 BAD Not logged in');
  });
});

describe('COMPRESS=DEFLATE', () => {
  test('round trip with the raw client; a second COMPRESS is refused; the capability goes away', async () => {
    const { account, w } = await session();
    await account.deliver(sampleMessage({ subject: 'compressed' }));
    assert.equal((await w.compress()).tagged, 'z1 OK DEFLATE active');
    const caps = await w.command('a1 CAPABILITY');
    assert.equal(caps.untagged.length, 1);
    assert.ok(!caps.untagged[0].includes('COMPRESS=DEFLATE'));
    assert.ok(caps.untagged[0].includes(' IDLE '));
    assert.equal((await w.command('a2 COMPRESS DEFLATE')).tagged, 'a2 NO [COMPRESSIONACTIVE] DEFLATE is already active');
    assert.deepEqual((await w.command('a3 STATUS INBOX (MESSAGES)')).untagged, ['* STATUS "INBOX" (MESSAGES 1)']);
    // Something larger than one deflate window, with a literal.
    const big = sampleMessage({ body: 'lorem ipsum '.repeat(40_000) });
    const r = await w.command(`a4 APPEND INBOX {${Buffer.byteLength(big)}+}\r\n${big}`);
    assert.match(r.tagged, /^a4 OK \[APPENDUID \d+ 2\] APPEND completed$/);
    // IDLE through the compressed stream: the push must be flushed, not held in the compressor.
    assert.match((await w.command('a5 SELECT INBOX')).tagged, /^a5 OK /);
    w.send('a6 IDLE\r\n');
    assert.equal(await w.response(), '+ idling');
    await account.deliver(sampleMessage());
    assert.equal(await w.response(PUSH_MS), '* 3 EXISTS');
    w.send('DONE\r\n');
    assert.equal((await w.readUntilTagged('a6')).tagged, 'a6 OK IDLE terminated');
    const bye = await w.command('a7 LOGOUT');
    assert.equal(bye.tagged, 'a7 OK LOGOUT completed');
    await w.closed();
  });

  test('unknown mechanism and before login', async () => {
    const { w } = await session();
    assert.equal((await w.command('a1 COMPRESS GZIP')).tagged, 'a1 BAD Unknown compression mechanism');
    const anonymous = await srv.connect();
    assert.equal((await anonymous.command('a1 COMPRESS DEFLATE')).tagged, 'a1 BAD Not logged in');
  });

  test('imapflow negotiates COMPRESS and works through it', async () => {
    const { account } = await session();
    await account.deliver(sampleMessage({ subject: 'for imapflow', body: 'body text '.repeat(2000) }));
    const client = await srv.imapflowClient(account);
    try {
      // imapflow compresses whenever the server offers it (RFC 4978).
      assert.ok((client as unknown as { _deflate?: unknown })._deflate, 'imapflow did not enable compression');
      const list = await client.list();
      assert.ok(list.some((m) => m.path === 'INBOX' && m.flags.has('\\HasNoChildren')));
      const status = await client.status('INBOX', { messages: true, uidNext: true });
      assert.ok(status);
      assert.equal(status.messages, 1);
      assert.equal(status.uidNext, 2);
      const lock = await client.getMailboxLock('INBOX');
      try {
        const msg = await client.fetchOne('1', { source: true, envelope: true });
        assert.ok(msg);
        assert.equal(msg.envelope?.subject, 'for imapflow');
        assert.ok(msg.source?.toString('utf8').includes('body text body text'));
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }
  });
});
