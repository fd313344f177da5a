/**
 * Against a real rspamd 3.4 (scripts/rspamd/start.sh: Debian's package, no Redis, internet modules
 * off, its resolver a loopback dnsmasq with one test zone: example.com sends from mail.example.com
 * = 192.0.2.10, SPF `ip4:192.0.2.10 -all`; every other name NXDOMAIN). MAIRUST_RSPAMD_URL points
 * at it; under CI the tests fail without it, elsewhere they start it (rspamdUrl in the fixtures).
 *
 * The symbols asserted on are ones rspamd computes offline from what the client sends:
 *   IP        R_SPF_ALLOW from 192.0.2.10, R_SPF_FAIL from elsewhere; no host checks (HFILTER_*)
 *             for 127.0.0.1
 *   Hostname  HFILTER_HOSTNAME_UNKNOWN without one
 *   Helo      HFILTER_HELO_BAREIP for an address literal, HFILTER_HELO_NORES_A_OR_MX for a name
 *             that does not resolve
 *   From      FROM_EQ_ENVFROM / FROM_NEQ_ENVFROM against the From: header
 *   Rcpt      TO_MATCH_ENVRCPT_ALL only when the envelope matches To:
 *   User      host checks skipped for authenticated senders
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../../src/observability/metrics.js';
import { createSpamChecker, type SpamCheckInput, type SpamChecker } from '../../src/spam/index.js';
import { bufferSource, capturedLogger, fixture, rspamdUrl } from '../fixtures/spam/support.js';

const metrics = createMetrics({ defaultMetrics: false });
const log = capturedLogger();
let checker: Promise<SpamChecker> | undefined;

/**
 * The checker against the real rspamd, made once. Awaited inside each test (not in a `before`
 * hook) so that a missing rspamd fails every test instead of cancelling them.
 */
function rspamdChecker(): Promise<SpamChecker> {
  checker ??= rspamdUrl().then((url) =>
    createSpamChecker(
      { rspamd: { url, timeout_ms: 5000, max_response_bytes: 1048576, retry_after_ms: 0 }, builtin: { add_header_score: 5, reject_score: 15, sample_bytes: 262144 } },
      { logger: log.logger, metrics },
    ),
  );
  return checker;
}

/**
 * A fixture as just written: its Date set to now, since rspamd scores dates in the future or more
 * than a day old (DATE_IN_FUTURE, DATE_IN_PAST).
 */
function fresh(message: Buffer): Buffer {
  return Buffer.from(message.toString('latin1').replace(/^Date: [^\r\n]*/m, `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`), 'latin1');
}

/** The clean fixture (From alice@example.com, To bob@example.org) as an MX would see it. */
function mx(changes: Partial<SpamCheckInput> = {}, message = fixture('clean.eml')): SpamCheckInput {
  return {
    source: bufferSource(fresh(message)),
    remoteAddress: '192.0.2.10',
    helo: 'mail.example.com',
    hostname: 'mail.example.com',
    mailFrom: 'alice@example.com',
    recipients: ['bob@example.org'],
    queueId: 'spam-test',
    ...changes,
  };
}

async function rspamdCheck(input: SpamCheckInput) {
  const v = await (await rspamdChecker()).check(input);
  assert.equal(v.source, 'rspamd', `rspamd must decide (log: ${JSON.stringify(log.entries().filter((e) => e.level === 'warn'))})`);
  return v;
}

describe('real rspamd', () => {
  test('GTUBE → reject, decided by rspamd', async () => {
    const v = await rspamdCheck(mx({}, fixture('gtube.eml')));
    assert.equal(v.action, 'reject');
    assert.ok('GTUBE' in v.symbols, JSON.stringify(v.symbols));
    assert.ok(v.score >= v.requiredScore);
    assert.match(v.header, /^X-Spam-Flag: YES\r\n/);
    assert.match(v.header, /source=rspamd/);
  });

  test('a clean message → no action', async () => {
    const v = await rspamdCheck(mx());
    assert.equal(v.action, 'no action', JSON.stringify(v));
    assert.ok(v.score < 1, `score ${v.score}`);
    assert.ok('R_SPF_ALLOW' in v.symbols, JSON.stringify(v.symbols));
    assert.equal(v.requiredScore, 15, "rspamd's required_score is its reject threshold");
    assert.match(v.header, /^X-Spam-Score: [0-9.-]+\r\nX-Spam-Status: No, /);
  });

  test('Japanese mail is not penalised for being Japanese', async () => {
    for (const name of ['japanese-iso2022jp.eml', 'japanese-sjis.eml', 'japanese-utf8-alternative.eml']) {
      const v = await rspamdCheck(mx({ mailFrom: null, recipients: ['hanako@example.org'] }, fixture(name)));
      assert.equal(v.action, 'no action', `${name}: ${JSON.stringify(v.symbols)}`);
    }
  });

  test('IP and Hostname reach rspamd', async () => {
    const allowed = await rspamdCheck(mx());
    assert.ok('R_SPF_ALLOW' in allowed.symbols, JSON.stringify(allowed.symbols));
    const forged = await rspamdCheck(mx({ remoteAddress: '198.51.100.7', hostname: undefined }));
    assert.ok('R_SPF_FAIL' in forged.symbols, JSON.stringify(forged.symbols));
    assert.notEqual(forged.action, 'no action');
    const external = await rspamdCheck(mx({ hostname: undefined }));
    assert.ok('HFILTER_HOSTNAME_UNKNOWN' in external.symbols, JSON.stringify(external.symbols));
    const named = await rspamdCheck(mx());
    assert.ok(!('RDNS_NONE' in named.symbols) && !('HFILTER_HOSTNAME_UNKNOWN' in named.symbols), JSON.stringify(named.symbols));
    const local = await rspamdCheck(mx({ hostname: undefined, remoteAddress: '127.0.0.1' }));
    assert.ok(!Object.keys(local.symbols).some((s) => s.startsWith('HFILTER_')), JSON.stringify(local.symbols));
  });

  test('Helo reaches rspamd', async () => {
    const bare = await rspamdCheck(mx({ helo: '[8.8.8.8]' }));
    assert.ok('HFILTER_HELO_BAREIP' in bare.symbols, JSON.stringify(bare.symbols));
    const unknown = await rspamdCheck(mx({ helo: 'nowhere.example.net' }));
    assert.ok('HFILTER_HELO_NORES_A_OR_MX' in unknown.symbols, JSON.stringify(unknown.symbols));
    const named = await rspamdCheck(mx());
    assert.ok(!Object.keys(named.symbols).some((s) => s.startsWith('HFILTER_HELO')), JSON.stringify(named.symbols));
  });

  test('From and Rcpt reach rspamd', async () => {
    const same = await rspamdCheck(mx());
    assert.ok('FROM_EQ_ENVFROM' in same.symbols, JSON.stringify(same.symbols));
    assert.ok('TO_MATCH_ENVRCPT_ALL' in same.symbols, JSON.stringify(same.symbols));
    const other = await rspamdCheck(mx({ mailFrom: 'bounces@lists.example.net', recipients: ['zed@example.org'] }));
    assert.ok('FROM_NEQ_ENVFROM' in other.symbols, JSON.stringify(other.symbols));
    assert.ok(!('TO_MATCH_ENVRCPT_ALL' in other.symbols), JSON.stringify(other.symbols));
  });

  test('User reaches rspamd: host checks are skipped for an authenticated sender', async () => {
    const authed = await rspamdCheck(mx({ hostname: undefined, authenticatedUser: 'alice@example.com' }));
    assert.ok(!Object.keys(authed.symbols).some((s) => s.startsWith('HFILTER_')), JSON.stringify(authed.symbols));
  });

  test('checks are fast (no DNS timeouts) and counted', async () => {
    const started = Date.now();
    for (let i = 0; i < 20; i++) await rspamdCheck(mx());
    const perCheck = (Date.now() - started) / 20;
    assert.ok(perCheck < 250, `${perCheck} ms per check`);
    const { body } = await metrics.render();
    assert.match(body, /^mairust_spam_checks_total\{source="rspamd",action="no action"\} \d+$/m);
    assert.doesNotMatch(body, /^mairust_spam_rspamd_failures_total\{/m);
  });
});
