/**
 * SEARCH and UID SEARCH over the wire (RFC 9051 §6.4.4, RFC 3501 §6.4.4): flag, size, date
 * (internal and SENT…, the latter in the sender's zone), WITHIN (RFC 5032), text keys through the
 * text index with Japanese (an ISO-2022-JP encoded subject, an encoded From name, a Shift_JIS body),
 * FROM/TO/CC told apart, BCC and HEADER read from the header, TEXT covering header fields, boolean
 * combinations, sequence sets; ESEARCH (RFC 4731) incl. IMAP4rev2's default, SAVE and `$`
 * (RFC 5182), the MODSEQ key (RFC 7162 §3.1.5), BADCHARSET and the search text limit.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import iconv from 'iconv-lite';
import { MAX_SEARCH_QUERY_CHARS } from '../../src/core/search/query.js';
import { startImapServer, type ImapTestServer, type ImapWire } from '../support/imap.js';
import type { TestAccount } from '../support/mail-services.js';
import { encodedWordJp } from '../support/real-clients.js';
import { shape } from '../support/shape.js';

const crlf = (lines: string[]) => lines.join('\r\n');

const M1 = crlf([
  'From: Bob <bob@example.net>',
  'To: alice@search.test',
  'Subject: Weekly report',
  'Date: Fri, 10 Jan 2020 09:00:00 +0000',
  'Message-ID: <s1@example.net>',
  '',
  'The numbers are attached.',
  '',
]);

const M2 = Buffer.concat([
  Buffer.from(
    crlf([
      `From: =?UTF-8?B?${Buffer.from('田中太郎').toString('base64')}?= <tanaka@example.jp>`,
      'To: alice@search.test',
      'Cc: Carol <carol@example.org>',
      'Bcc: secret@example.com',
      `Subject: ${encodedWordJp('来週の会議について')}`,
      'Date: Sat, 1 Feb 2020 23:30:00 -0500',
      'Message-ID: <s2@example.jp>',
      'X-Priority: 1',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=Shift_JIS',
      'Content-Transfer-Encoding: 8bit',
      '',
      '',
    ]),
  ),
  iconv.encode('請求書をお送りします。\r\n', 'shift_jis'),
]);

const M3 = crlf(['From: alice@search.test', 'To: Bob <bob@example.net>', 'Subject: Re: Weekly report', '', 'x'.repeat(5000), '']);

describe(`IMAP SEARCH (${shape})`, () => {
  let server: ImapTestServer;
  let alice: TestAccount;
  let wire: ImapWire;
  let n = 0;
  let lastTag = '';

  before(async () => {
    server = await startImapServer();
    alice = await server.fixture.addAccount('alice@search.test');
    await alice.deliver(M1, { flags: ['\\Seen'], internalDate: Date.UTC(2020, 0, 10, 12) });
    await alice.deliver(M2, { flags: ['\\Flagged'], internalDate: Date.UTC(2020, 1, 1, 12) });
    await alice.deliver(M3, { flags: ['$Work'], internalDate: Date.now() - 60_000 });
    wire = await server.login(alice);
    await wire.command('a0 SELECT INBOX');
  });
  after(async () => {
    await server.close();
  });

  async function run(command: string, on = wire) {
    lastTag = `q${++n}`;
    const r = await on.command(`${lastTag} ${command}`);
    return { untagged: r.untagged, tagged: r.tagged.slice(lastTag.length + 1) };
  }

  /** The `* SEARCH` line of a classic search. */
  async function search(keys: string): Promise<string> {
    const r = await run(`SEARCH ${keys}`);
    assert.equal(r.tagged, 'OK SEARCH completed', `SEARCH ${keys}`);
    assert.equal(r.untagged.length, 1, `SEARCH ${keys}: ${JSON.stringify(r.untagged)}`);
    return r.untagged[0];
  }

  test('flags, keywords, NEW/OLD/RECENT, ALL', async () => {
    assert.equal(await search('ALL'), '* SEARCH 1 2 3');
    assert.equal(await search('SEEN'), '* SEARCH 1');
    assert.equal(await search('UNSEEN'), '* SEARCH 2 3');
    assert.equal(await search('FLAGGED'), '* SEARCH 2');
    assert.equal(await search('KEYWORD $work'), '* SEARCH 3');
    assert.equal(await search('UNKEYWORD $Work'), '* SEARCH 1 2');
    assert.equal(await search('NEW'), '* SEARCH');
    assert.equal(await search('RECENT'), '* SEARCH');
    assert.equal(await search('OLD'), '* SEARCH 1 2 3');
  });

  test('size, internal dates, WITHIN', async () => {
    assert.equal(await search('LARGER 4000'), '* SEARCH 3');
    assert.equal(await search('SMALLER 4000'), '* SEARCH 1 2');
    assert.equal(await search('BEFORE 1-Feb-2020'), '* SEARCH 1');
    assert.equal(await search('ON 1-Feb-2020'), '* SEARCH 2');
    assert.equal(await search('SINCE "1-Feb-2020"'), '* SEARCH 2 3');
    assert.equal(await search('YOUNGER 3600'), '* SEARCH 3');
    assert.equal(await search('OLDER 3600'), '* SEARCH 1 2');
  });

  test('SENT… compare the day written in the Date header; without one, the internal date', async () => {
    // 23:30 -0500 on 1 Feb is 2 Feb in UTC: SENTON 1-Feb matches, SENTON 2-Feb does not.
    assert.equal(await search('SENTON 1-Feb-2020'), '* SEARCH 2');
    assert.equal(await search('SENTON 2-Feb-2020'), '* SEARCH');
    assert.equal(await search('SENTBEFORE 1-Feb-2020'), '* SEARCH 1');
    assert.equal(await search('SENTSINCE 1-Jan-2021'), '* SEARCH 3');
  });

  test('SUBJECT, BODY and TEXT, case-insensitive, Japanese included', async () => {
    assert.equal(await search('SUBJECT report'), '* SEARCH 1 3');
    assert.equal(await search('SUBJECT "WEEKLY REPORT"'), '* SEARCH 1 3');
    assert.equal(await search('CHARSET UTF-8 SUBJECT {6}\r\n会議'), '* SEARCH 2');
    assert.equal(await search('CHARSET UTF-8 BODY {9}\r\n請求書'), '* SEARCH 2');
    assert.equal(await search('BODY numbers'), '* SEARCH 1');
    assert.equal(await search('TEXT numbers'), '* SEARCH 1');
    // TEXT also covers header fields the index does not hold.
    assert.equal(await search('TEXT x-priority'), '* SEARCH 2');
    assert.equal(await search('TEXT s2@example'), '* SEARCH 2');
    assert.equal(await search('SUBJECT ""'), '* SEARCH 1 2 3');
  });

  test('FROM, TO and CC are told apart; BCC and HEADER read the header', async () => {
    assert.equal(await search('FROM bob'), '* SEARCH 1');
    assert.equal(await search('TO bob'), '* SEARCH 3');
    assert.equal(await search('CHARSET UTF-8 FROM {6}\r\n田中'), '* SEARCH 2');
    assert.equal(await search('FROM tanaka@example.jp'), '* SEARCH 2');
    assert.equal(await search('CC carol'), '* SEARCH 2');
    assert.equal(await search('BCC SECRET'), '* SEARCH 2');
    assert.equal(await search('HEADER X-Priority 1'), '* SEARCH 2');
    assert.equal(await search('HEADER x-priority ""'), '* SEARCH 2');
    assert.equal(await search('HEADER Message-ID example.net'), '* SEARCH 1');
    assert.equal(await search('HEADER X-Missing ""'), '* SEARCH');
  });

  test('OR, NOT, parentheses, sequence sets and UID SEARCH', async () => {
    assert.equal(await search('OR SEEN FLAGGED'), '* SEARCH 1 2');
    assert.equal(await search('NOT SEEN'), '* SEARCH 2 3');
    assert.equal(await search('(OR SEEN FLAGGED) NOT FROM bob'), '* SEARCH 2');
    assert.equal(await search('2:*'), '* SEARCH 2 3');
    assert.equal(await search('1,3 SUBJECT report'), '* SEARCH 1 3');
    // A SEARCH key is a filter: numbers past the end match nothing.
    assert.equal(await search('5:9'), '* SEARCH');
    const uid = await run('UID SEARCH UID 2:* NOT SEEN');
    assert.deepEqual(uid.untagged, ['* SEARCH 2 3']);
  });

  test('ESEARCH: RETURN options, empty results, UID', async () => {
    let r = await run('SEARCH RETURN (MIN MAX COUNT) ALL');
    assert.deepEqual(r.untagged, [`* ESEARCH (TAG "${lastTag}") MIN 1 MAX 3 COUNT 3`]);
    r = await run('UID SEARCH RETURN () NOT SEEN');
    assert.deepEqual(r.untagged, [`* ESEARCH (TAG "${lastTag}") UID ALL 2:3`]);
    r = await run('SEARCH RETURN (COUNT MIN ALL) DELETED');
    assert.deepEqual(r.untagged, [`* ESEARCH (TAG "${lastTag}") COUNT 0`]);
    assert.equal((await run('SEARCH RETURN (BOGUS) ALL')).tagged, 'BAD Unknown RETURN option');
  });

  test('IMAP4rev2 answers ESEARCH (ALL) without RETURN', async () => {
    const w = await server.login(alice);
    await run('ENABLE IMAP4rev2', w);
    await run('SELECT INBOX', w);
    const r = await run('SEARCH UNSEEN', w);
    assert.deepEqual(r.untagged, [`* ESEARCH (TAG "${lastTag}") ALL 2:3`]);
  });

  test('SAVE and $: RETURN (SAVE) alone answers nothing; with MIN only the minimum is saved', async () => {
    let r = await run('SEARCH RETURN (SAVE) NOT SEEN');
    assert.deepEqual(r.untagged, []);
    assert.equal(r.tagged, 'OK SEARCH completed');
    assert.deepEqual((await run('FETCH $ (UID)')).untagged, ['* 2 FETCH (UID 2)', '* 3 FETCH (UID 3)']);
    assert.equal(await search('$ FLAGGED'), '* SEARCH 2');
    r = await run('SEARCH RETURN (SAVE MIN) NOT SEEN');
    assert.deepEqual(r.untagged, [`* ESEARCH (TAG "${lastTag}") MIN 2`]);
    assert.deepEqual((await run('UID FETCH $ (FLAGS)')).untagged, ['* 2 FETCH (UID 2 FLAGS (\\Flagged))']);
  });

  test('MODSEQ key: (MODSEQ n) with the highest MODSEQ of the matches; CONDSTORE turns on', async () => {
    const w = await server.login(alice);
    await run('SELECT INBOX', w);
    const entries = await server.fixture.state.listEntries(alice.scope, (await alice.folder('INBOX')).id);
    const [e1, e2, e3] = entries;
    let r = await run(`SEARCH MODSEQ ${e2.modseq}`, w);
    assert.deepEqual(r.untagged, [`* SEARCH 2 3 (MODSEQ ${Math.max(e2.modseq, e3.modseq)})`]);
    r = await run(`SEARCH MODSEQ "/flags/\\\\seen" all ${e1.modseq}`, w);
    assert.deepEqual(r.untagged, [`* SEARCH 1 2 3 (MODSEQ ${Math.max(e1.modseq, e2.modseq, e3.modseq)})`]);
    r = await run(`SEARCH MODSEQ ${e3.modseq + 1000}`, w);
    assert.deepEqual(r.untagged, ['* SEARCH']);
    r = await run(`SEARCH RETURN (MIN) MODSEQ ${e1.modseq}`, w);
    assert.deepEqual(r.untagged, [`* ESEARCH (TAG "${lastTag}") MIN 1 MODSEQ ${e1.modseq}`]);
    // CONDSTORE is on now: FETCH responses carry MODSEQ.
    assert.deepEqual((await run('FETCH 1 FLAGS', w)).untagged, [`* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (${e1.modseq}))`]);
  });

  test('errors: BADCHARSET, search text over the limit, syntax', async () => {
    assert.equal((await run('SEARCH CHARSET KOI8-R ALL')).tagged, 'NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset');
    const long = 'a'.repeat(MAX_SEARCH_QUERY_CHARS + 1);
    assert.equal((await run(`SEARCH BODY {${long.length}}\r\n${long}`)).tagged, `NO [LIMIT] search text is ${long.length} characters; the limit is ${MAX_SEARCH_QUERY_CHARS}`);
    assert.equal((await run('SEARCH')).tagged, 'BAD Missing search key');
    assert.equal((await run('SEARCH FOO')).tagged.startsWith('BAD '), true);
  });
});
