/**
 * An in-process MaiRust REST API of the current test shape, wired exactly like `mairust serve`
 * (openApp → buildApiDeps → createHttpServer → mountApi), for route-level tests.
 *
 *   const api = await startApi();
 *   const t = await api.tenant('acme');               // tenant + tenant_admin + bearer token
 *   const res = await api.call('GET', '/api/v1/domains', { token: t.admin.token });
 *   assert.equal(res.status, 200); res.json.data …
 *   await api.close();
 *
 * Requests go through Fastify's `inject` (the whole HTTP pipeline — hooks, validation,
 * serialization — without a socket); `api.url` is also listening for tests that need a real
 * client. Logs go to a file; `api.logText()` returns them so tests can scan them for secrets.
 *
 * Every suite using the harness is also a leak test (SPEC §10: no response and no log line ever
 * contains a password hash, private key, secret or token): `close()` scans every response body and
 * the whole log, and fails when
 *  - a credential (`mra_…`, `mrr_…`, `mk_live_…`, `whsec_…`, or one the harness minted) appears in
 *    the log, or in more than the one response that created it;
 *  - a password the harness set, or a stored password hash, appears in a response or the log;
 *  - anything looking like an Argon2 hash or a PEM private key appears in a response or the log.
 */
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { stringify } from 'yaml';
import { openApp, type AppContext } from '../../src/app/context.js';
import { buildApiDeps, mountApi } from '../../src/app/api.js';
import type { ApiDeps } from '../../src/http/api/deps.js';
import { createHttpServer } from '../../src/http/server.js';
import { createHealth } from '../../src/observability/health.js';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import type { User, UserRole } from '../../src/core/tenancy/types.js';
import { freshDatabase, s3TestSettings, shape, tempDir } from './shape.js';

export const TEST_PASSWORD = 'correct horse battery staple';

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Parsed JSON body (undefined when the body is not JSON). */
  json: any;
  /** Set-Cookie values by cookie name. */
  cookies: Record<string, string>;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Cookie header values by name (for session tests). */
  cookies?: Record<string, string>;
  /** Raw payload (string/Buffer) instead of JSON. */
  payload?: string | Buffer;
  remoteAddress?: string;
}

export interface TestUser {
  user: User;
  password: string;
  /** Bearer access token from POST /auth/login (or minted directly when the login route is absent). */
  token: string;
}

export interface TestTenant {
  id: string;
  name: string;
  admin: TestUser;
}

export interface ApiHarness {
  app: AppContext;
  deps: ApiDeps;
  server: FastifyInstance;
  url: string;
  dataDir: string;
  call(method: string, path: string, opts?: CallOptions): Promise<ApiResponse>;
  /** A super-admin (in tenant "system") with a token. */
  superAdmin(): Promise<TestUser>;
  /** A tenant with one tenant_admin (admin@<name>.test). */
  tenant(name?: string): Promise<TestTenant>;
  /** A user of `tenantId` with a token. `domainScope` are domain ids (domain_admin). */
  user(tenantId: string, opts?: { role?: UserRole; email?: string; domainScope?: string[]; password?: string }): Promise<TestUser>;
  /** A fresh access token for a user (through the token store, as the login route would issue). */
  tokenFor(user: User): Promise<string>;
  /** Everything logged so far. */
  logText(): string;
  close(): Promise<void>;
}

function deepMerge(a: Record<string, any>, b: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && typeof out[k] === 'object' ? deepMerge(out[k], v) : v;
  }
  return out;
}

const CREDENTIAL = /\b(?:mra_|mrr_|mk_live_|whsec_|psec_|plt_)[A-Za-z0-9_-]{16,}/g;

/** The leaks found in `responses` and `log` (see the file comment); empty when there are none. */
export function findLeaks(input: { responses: string[]; log: string; passwords: string[]; minted: string[]; hashes: string[] }): string[] {
  const leaks: string[] = [];
  const seen = new Map<string, number>();
  for (const body of input.responses) {
    for (const m of new Set(body.match(CREDENTIAL) ?? [])) seen.set(m, (seen.get(m) ?? 0) + 1);
  }
  for (const [cred, n] of seen) if (n > 1) leaks.push(`credential ${cred.slice(0, 12)}… appears in ${n} responses`);
  for (const cred of [...seen.keys(), ...input.minted]) if (input.log.includes(cred)) leaks.push(`credential ${cred.slice(0, 12)}… appears in the log`);
  const everything = [...input.responses, input.log];
  for (const text of everything) {
    for (const pw of input.passwords) if (text.includes(pw)) leaks.push(`a password appears in ${text === input.log ? 'the log' : 'a response'}`);
    for (const h of input.hashes) if (text.includes(h)) leaks.push(`a password hash appears in ${text === input.log ? 'the log' : 'a response'}`);
    if (/\$argon2(id|i|d)\$/.test(text)) leaks.push(`an Argon2 hash appears in ${text === input.log ? 'the log' : 'a response'}`);
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) leaks.push(`a PEM private key appears in ${text === input.log ? 'the log' : 'a response'}`);
  }
  return [...new Set(leaks)];
}

export async function startApi(opts: { config?: Record<string, any>; env?: Record<string, string>; now?: () => number; emergencyToken?: string } = {}): Promise<ApiHarness> {
  const dir = tempDir('mairust-api-');
  const dataDir = dir.path;
  mkdirSync(dataDir, { recursive: true });
  const db = await freshDatabase({ migrate: false });
  await db.db.close();
  let config: Record<string, any> = {
    server: { data_dir: dataDir, hostname: 'mail.test' },
    database: { url: shape === 'embedded' ? `sqlite:${join(dataDir, 'mairust.db')}` : db.url },
    // Route tests make many requests as one user; the rate-limit tests set their own limits.
    api: { rate_limit: { per_user_per_minute: 100000, admin_per_ip_per_minute: 100000, anonymous_per_ip_per_minute: 100000, plugin_per_token_per_minute: 100000 } },
    log: { level: 'debug' },
  };
  if (shape === 'cluster') {
    const s3 = s3TestSettings();
    config = deepMerge(config, {
      storage: {
        backend: 's3',
        s3: { endpoint: s3.endpoint, region: s3.region, access_key_id: s3.accessKeyId, secret_access_key: s3.secretAccessKey, bucket: `mairust-api-${randomBytes(5).toString('hex')}`, create_bucket: true },
      },
      security: { master_key: randomBytes(32).toString('base64') },
    });
  }
  config = deepMerge(config, opts.config ?? {});
  const configPath = join(dataDir, 'config.yaml');
  writeFileSync(configPath, stringify(config));
  const logPath = join(dataDir, 'test.log');
  const logFd = openSync(logPath, 'a');
  const app = await openApp({ configPath, env: { ...(opts.env ?? {}) }, logDestination: logFd });
  const deps = await buildApiDeps(app, { emergencyToken: opts.emergencyToken ?? '', now: opts.now });
  const health = createHealth({ database: () => app.db.ping(), blob_store: () => app.blobs.ping(), queue: () => app.queue.ping() });
  const server = createHttpServer({
    logger: app.logger,
    metrics: app.metrics,
    health,
    bodyLimitBytes: app.config.api.body_limit_bytes,
    trustProxy: app.config.api.trusted_proxies.length ? app.config.api.trusted_proxies : false,
  });
  await mountApi(server, deps);
  await server.listen({ host: '127.0.0.1', port: 0 });
  const addr = server.server.address() as { port: number };
  const url = `http://127.0.0.1:${addr.port}`;

  let superAdmin: TestUser | undefined;
  let counter = 0;
  const responses: string[] = [];
  const passwords = new Set<string>();
  const minted: string[] = [];
  passwords.add(TEST_PASSWORD);

  const harness: ApiHarness = {
    app,
    deps,
    server,
    url,
    dataDir,
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      if (o.cookies) headers.cookie = Object.entries(o.cookies).map(([k, v]) => `${k}=${v}`).join('; ');
      let payload: string | Buffer | undefined = o.payload;
      if (payload === undefined && o.body !== undefined) {
        payload = JSON.stringify(o.body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await server.inject({ method: method as any, url: path, headers, payload, remoteAddress: o.remoteAddress ?? '127.0.0.1' });
      let json: any;
      try {
        json = res.body ? JSON.parse(res.body) : undefined;
      } catch {
        json = undefined;
      }
      responses.push(res.body);
      const cookies: Record<string, string> = {};
      for (const c of res.cookies as { name: string; value: string }[]) cookies[c.name] = c.value;
      return { status: res.statusCode, headers: res.headers as ApiResponse['headers'], body: res.body, json, cookies };
    },
    async tokenFor(user) {
      const pair = await deps.tokens.issue({ tenantId: user.tenantId, userId: user.id });
      minted.push(pair.accessToken, pair.refreshToken);
      return pair.accessToken;
    },
    async superAdmin() {
      if (superAdmin) return superAdmin;
      const tenant = await app.tenancy.tenants.create(systemScope, { name: 'system' });
      const user = await app.tenancy.users.add(systemScope, { tenantId: tenant.id, email: 'root@mail.test', password: TEST_PASSWORD, role: 'super_admin' });
      superAdmin = { user, password: TEST_PASSWORD, token: await harness.tokenFor(user) };
      return superAdmin;
    },
    async tenant(name) {
      const tname = name ?? `t${++counter}-${randomBytes(3).toString('hex')}`;
      const tenant = await app.tenancy.tenants.create(systemScope, { name: tname });
      const admin = await harness.user(tenant.id, { role: 'tenant_admin', email: `admin@${tname.toLowerCase()}.test` });
      return { id: tenant.id, name: tname, admin };
    },
    async user(tenantId, o = {}) {
      const email = o.email ?? `u${++counter}-${randomBytes(3).toString('hex')}@users.test`;
      const password = o.password ?? TEST_PASSWORD;
      passwords.add(password);
      const user = await app.tenancy.users.add(tenantScope(tenantId), { tenantId, email, password, role: o.role ?? 'user', domainScope: o.domainScope });
      return { user, password, token: await harness.tokenFor(user) };
    },
    logText() {
      return readFileSync(logPath, 'utf8');
    },
    async close() {
      const hashes = (await app.db.kysely.selectFrom('users').select('password_hash').execute()).map((r) => r.password_hash);
      const leaks = findLeaks({ responses, log: harness.logText(), passwords: [...passwords], minted, hashes });
      await server.close();
      await deps.rateCounter.close();
      await app.close();
      closeSync(logFd);
      if (shape === 'cluster') await db.drop().catch(() => {});
      dir.remove();
      if (leaks.length) throw new Error(`secrets leaked (SPEC §10):\n  ${leaks.join('\n  ')}`);
    },
  };
  return harness;
}

/** Audit rows of `eventType` whose target is `targetId`, oldest first, with actor and metadata decoded. */
export async function auditRowsFor(api: ApiHarness, eventType: string, targetId: string): Promise<{ tenantId: string | null; actor: any; metadata: any }[]> {
  const rows = await api.app.db.kysely.selectFrom('audit_log').selectAll().where('event_type', '=', eventType).orderBy('id').execute();
  return rows
    .filter((r) => JSON.parse(r.target_json).id === targetId)
    .map((r) => ({ tenantId: r.tenant_id, actor: JSON.parse(r.actor_json), metadata: JSON.parse(r.metadata_json) }));
}

/** The audit actor the API records for requests of `u` made through the harness. */
export const actorOf = (u: TestUser) => ({ type: 'user', id: u.user.id, email: u.user.email, ip: '127.0.0.1' });

/** The distinct field paths of a validation error reply. */
export const errorPaths = (res: { json: any }) => [...new Set((res.json.error.details.errors ?? []).map((e: { path: string }) => e.path))];
