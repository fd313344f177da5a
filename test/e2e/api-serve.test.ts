/**
 * The REST API of a real `mairust serve` process, driven by curl (a real HTTP client): sign-in
 * with the bootstrap super-admin, administration through the API, a browser session with its
 * CSRF token from curl's cookie jar, and event webhooks delivered to a receiver on loopback —
 * `user.created` from the API and `message.received` from mail sent with swaks.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { shapeEnv, startServerProcess, waitForReady, type ServerProcess, type ShapeEnv } from '../support/server-process.js';
import { shape } from '../support/shape.js';
import { verifyWebhookSignature } from '../../src/webhooks/signature.js';

const run = promisify(execFile);
const ADMIN = 'root@example.test';
const ADMIN_PASSWORD = 'a long bootstrap password 42';

interface Curl {
  status: number;
  json: any;
}

async function curl(args: string[]): Promise<Curl> {
  const { stdout } = await run('curl', ['-sS', '-w', '\n%{http_code}', ...args]);
  const i = stdout.lastIndexOf('\n');
  const body = stdout.slice(0, i);
  let json: any;
  try {
    json = body ? JSON.parse(body) : undefined;
  } catch {
    json = body;
  }
  return { status: Number(stdout.slice(i + 1)), json };
}

interface Delivery {
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describe(`REST API through mairust serve, with curl (${shape})`, () => {
  let s: ShapeEnv;
  let server: ServerProcess;
  let receiver: Server;
  let hookUrl: string;
  const deliveries: Delivery[] = [];
  let base: string;
  let token: string;

  before(async () => {
    s = await shapeEnv();
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
    // Webhooks to loopback are refused by default (SSRF); this test's receiver is on loopback.
    writeFileSync(s.env.MAIRUST_CONFIG, 'webhooks:\n  allow_private_addresses: true\n  backoff_seconds: [1]\nqueue:\n  poll_interval_ms: 200\n');
    server = startServerProcess({ ...s.env, MAIRUST_ADMIN_EMAIL: ADMIN, MAIRUST_ADMIN_PASSWORD: ADMIN_PASSWORD });
    await waitForReady(s.httpPort);
    base = `http://127.0.0.1:${s.httpPort}/api/v1`;
  });
  after(async () => {
    await server?.stop('SIGTERM');
    receiver?.close();
    await s?.cleanup();
  });

  async function waitForDelivery(event: string, timeoutMs = 20_000): Promise<Delivery> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const d = deliveries.find((x) => JSON.parse(x.body).event === event);
      if (d) return d;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no ${event} delivery within ${timeoutMs} ms; got ${deliveries.map((d) => JSON.parse(d.body).event).join(', ')}`);
  }

  test('the bootstrap super-admin signs in and administers through the API', async () => {
    const login = await curl(['-X', 'POST', '-H', 'content-type: application/json', '-d', JSON.stringify({ email: ADMIN, password: ADMIN_PASSWORD }), `${base}/auth/login`]);
    assert.equal(login.status, 200, JSON.stringify(login.json));
    assert.match(login.json.data.access_token, /^mra_/);
    token = login.json.data.access_token;
    const auth = ['-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/json'];

    const me = await curl([...auth, `${base}/auth/me`]);
    assert.equal(me.status, 200);
    assert.equal(me.json.data.email, ADMIN);
    assert.equal(me.json.data.role, 'super_admin');

    const tenant = await curl([...auth, '-X', 'POST', '-d', JSON.stringify({ name: 'acme' }), `${base}/admin/tenants`]);
    assert.equal(tenant.status, 201, JSON.stringify(tenant.json));
    const tenantId = tenant.json.data.id;
    const domain = await curl([...auth, '-X', 'POST', '-d', JSON.stringify({ name: 'acme.test', tenant_id: tenantId }), `${base}/domains`]);
    assert.equal(domain.status, 201, JSON.stringify(domain.json));
    const records = await curl([...auth, `${base}/domains/${domain.json.data.id}/dns-records`]);
    assert.equal(records.status, 200);
    assert.ok(records.json.data.records.some((r: { type: string; value: string }) => r.type === 'TXT' && r.value.startsWith('v=DKIM1')), JSON.stringify(records.json));

    const hook = await curl([...auth, '-X', 'POST', '-d', JSON.stringify({ url: hookUrl, events: ['user.created', 'message.received'], tenant_id: tenantId }), `${base}/webhooks`]);
    assert.equal(hook.status, 201, JSON.stringify(hook.json));
    const secret: string = hook.json.data.secret;
    assert.match(secret, /^whsec_/);

    const user = await curl([...auth, '-X', 'POST', '-d', JSON.stringify({ email: 'alice@acme.test', password: 'alice has a long password', tenant_id: tenantId }), `${base}/users`]);
    assert.equal(user.status, 201, JSON.stringify(user.json));
    const mailbox = await curl([...auth, '-X', 'POST', '-d', JSON.stringify({ address: 'alice@acme.test', user_id: user.json.data.id }), `${base}/mailboxes`]);
    assert.equal(mailbox.status, 201, JSON.stringify(mailbox.json));

    // user.created reaches the receiver, signed with the webhook's secret.
    const created = await waitForDelivery('user.created');
    const check = verifyWebhookSignature({
      secrets: [secret],
      id: String(created.headers['x-mairust-webhook-id']),
      timestamp: String(created.headers['x-mairust-timestamp']),
      signature: String(created.headers['x-mairust-signature']),
      body: created.body,
    });
    assert.equal(check.ok, true, JSON.stringify(check));
    assert.equal(JSON.parse(created.body).data.email ?? JSON.parse(created.body).data.user?.email, 'alice@acme.test');

    // Mail received over SMTP raises message.received.
    await run('swaks', ['--hide-informational', '--timeout', '20', '--server', `127.0.0.1:${s.smtpPorts.smtp}`, '--from', 'sender@example.org', '--to', 'alice@acme.test', '--header', 'Subject: hello over smtp']);
    const received = await waitForDelivery('message.received');
    assert.equal(JSON.parse(received.body).data.subject, 'hello over smtp');

    // Alice reads it through the API with her own token.
    const aliceLogin = await curl(['-X', 'POST', '-H', 'content-type: application/json', '-d', JSON.stringify({ email: 'alice@acme.test', password: 'alice has a long password' }), `${base}/auth/login`]);
    assert.equal(aliceLogin.status, 200);
    const list = await curl(['-H', `authorization: Bearer ${aliceLogin.json.data.access_token}`, `${base}/messages`]);
    assert.equal(list.status, 200, JSON.stringify(list.json));
    assert.deepEqual(list.json.data.map((m: { subject: string }) => m.subject), ['hello over smtp']);

    // No secret in the server's log lines.
    const log = server.output();
    for (const sec of [ADMIN_PASSWORD, token, secret, 'alice has a long password']) assert.ok(!log.includes(sec), 'a secret reached the log');
  });

  test('a browser session: HttpOnly cookie, CSRF token required on state changes', async () => {
    const jar = join(s.dataDir, 'cookies.txt');
    // curl talks to 127.0.0.1 over plain HTTP: the development case where Secure is relaxed.
    const login = await curl(['-c', jar, '-X', 'POST', '-H', 'content-type: application/json', '-d', JSON.stringify({ email: ADMIN, password: ADMIN_PASSWORD, client: 'browser' }), `${base}/auth/login`]);
    assert.equal(login.status, 200, JSON.stringify(login.json));
    const cookies = readFileSync(jar, 'utf8');
    assert.match(cookies, /#HttpOnly_127\.0\.0\.1.*mairust_session/);
    const csrf = /mairust_csrf\t(\S+)/.exec(cookies)![1];

    const me = await curl(['-b', jar, `${base}/auth/me`]);
    assert.equal(me.status, 200);
    const forged = await curl(['-b', jar, '-X', 'POST', '-H', 'content-type: application/json', '-d', '{}', `${base}/auth/logout`]);
    assert.equal(forged.status, 403);
    assert.equal(forged.json.error.code, 'FORBIDDEN');
    const out = await curl(['-b', jar, '-X', 'POST', '-H', 'content-type: application/json', '-H', `x-csrf-token: ${csrf}`, '-d', '{}', `${base}/auth/logout`]);
    assert.equal(out.status, 200, JSON.stringify(out.json));
    const after = await curl(['-b', jar, `${base}/auth/me`]);
    assert.equal(after.status, 401, 'the session ended on the server');
  });
});
