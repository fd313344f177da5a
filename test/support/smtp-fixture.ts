/**
 * Starts a real SMTP listener on a free loopback port for the SMTP suites: the test pipeline
 * (smtp-test-pipeline.ts), a Lockout on a fresh database of the current shape, a self-signed
 * certificate, and a login table standing in for the user store. Also runs the external clients
 * (swaks, Python smtplib, openssl) the suites talk through.
 */
import { spawn } from 'node:child_process';
import type { AuthenticatedUser } from '../../src/pipeline/inbound/contract.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import type { Authenticate } from '../../src/protocols/smtp/auth.js';
import type { ConnectionLimiter } from '../../src/protocols/net/connection-limiter.js';
import { DEFAULT_SMTP_LIMITS, type SmtpLimits } from '../../src/protocols/smtp/limits.js';
import { createSmtpListener, type SmtpListener } from '../../src/protocols/smtp/listener.js';
import { createSelfSignedCertificate, type CertificatePair } from '../../src/protocols/net/self-signed.js';
import type { TlsMinVersion } from '../../src/protocols/net/tls.js';
import { Lockout, type LockoutOptions } from '../../src/security/lockout.js';
import { freshDatabase, type TestDatabase } from './shape.js';
import { SmtpTestPipeline } from './smtp-test-pipeline.js';

export const TEST_HOSTNAME = 'mx.example.test';
export const TEST_DOMAIN = 'example.test';

/** Logins the fixture's authenticate function knows. */
export const TEST_LOGINS: Record<string, { password: string; user: AuthenticatedUser }> = {
  'alice@example.test': {
    password: 'correct horse battery staple',
    user: { id: 'user-alice', tenantId: 'tenant-1', email: 'alice@example.test', role: 'user' },
  },
  'bob@example.test': {
    password: 'another long passphrase',
    user: { id: 'user-bob', tenantId: 'tenant-1', email: 'bob@example.test', role: 'user' },
  },
};

export const loginTable: Authenticate = async (username, password) => {
  const entry = TEST_LOGINS[username.toLowerCase()];
  return entry && entry.password === password ? entry.user : null;
};

let certificate: CertificatePair | undefined;
/** One self-signed certificate per test process (generation is cheap, but every suite needs one). */
export function testCertificate(): CertificatePair {
  certificate ??= createSelfSignedCertificate(TEST_HOSTNAME);
  return certificate;
}

export interface FixtureOptions {
  kind: 'mx' | 'submission';
  implicitTls?: boolean;
  limits?: Partial<SmtpLimits>;
  /** Share a database (and lockout) between listeners; default: a fresh one owned by the fixture. */
  db?: TestDatabase;
  lockout?: Partial<LockoutOptions>;
  authenticate?: Authenticate;
  minVersion?: TlsMinVersion;
  connectionLimiter?: ConnectionLimiter;
  users?: string[];
  metrics?: Metrics;
}

export interface SmtpFixture {
  port: number;
  listener: SmtpListener;
  pipeline: SmtpTestPipeline;
  lockout: Lockout;
  db: TestDatabase;
  metrics: Metrics;
  /** Closes the listener (no drain) and drops the database if the fixture created it. */
  close(): Promise<void>;
}

export async function startSmtpFixture(opts: FixtureOptions): Promise<SmtpFixture> {
  const ownDb = !opts.db;
  const db = opts.db ?? (await freshDatabase());
  const lockout = new Lockout(db.db, opts.lockout);
  const pipeline = new SmtpTestPipeline({ domain: TEST_DOMAIN, users: opts.users });
  const metrics = opts.metrics ?? createMetrics({ defaultMetrics: false });
  const logger = createLogger({ level: process.env.MAIRUST_TEST_LOG_LEVEL ?? 'silent', format: 'json', destination: 2 });
  const cert = testCertificate();
  const listener = createSmtpListener({
    kind: opts.kind,
    implicitTls: opts.implicitTls ?? false,
    host: '127.0.0.1',
    port: 0,
    hostname: TEST_HOSTNAME,
    pipeline,
    authenticate: opts.authenticate ?? loginTable,
    lockout,
    tls: { key: cert.key, cert: cert.cert, minVersion: opts.minVersion ?? 'TLSv1.2' },
    limits: { ...DEFAULT_SMTP_LIMITS, ...opts.limits },
    logger,
    metrics,
    connectionLimiter: opts.connectionLimiter,
  });
  const { port } = await listener.listen();
  return {
    port,
    listener,
    pipeline,
    lockout,
    db,
    metrics,
    async close() {
      await listener.close(0);
      if (ownDb) await db.drop();
    },
  };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs an external program to completion (killed after `timeoutMs`). */
export function run(command: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** swaks against the fixture; `--hide-all` is not used so failures show the whole dialogue. */
export function swaks(port: number, args: string[]): Promise<RunResult> {
  return run('swaks', ['--server', `127.0.0.1:${port}`, '--helo', 'client.test', '--timeout', '20', ...args]);
}

/** Runs a Python 3 script (smtplib) with the port as argv[1]; the script prints its results. */
export function python(script: string, port: number): Promise<RunResult> {
  return run('python3', ['-c', script, String(port)]);
}

