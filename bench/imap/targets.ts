/**
 * The two servers under test, each started fresh in a directory of the run and stopped at the end:
 *
 *  - Dovecot 2.3 through dovecot.sh (its own config, passwd-file users, Maildir as `vmail`, imaps
 *    on loopback). Memory counted: its `imap` processes (one per logged-in session, Dovecot's
 *    design) and `imap-login` processes (TLS and pre-login); CPU: every process of the instance.
 *  - MaiRust: the real `mairust serve` (bin/mairust.mjs) in a child process, as an operator runs
 *    it, embedded shape (SQLite + files), imaps listener on loopback, with the V8 inspector on a
 *    loopback port so the bench can force a full GC before reading memory. Memory and CPU: that
 *    one node process.
 *
 * Users and passwords are the same on both. The password hash is Argon2id with the same
 * parameters on both (`PasswordCost`): logins are set-up here, not what is measured, and with the
 * production cost (m = 64 MiB, t = 3, p = 4) Dovecot's single auth process needs ≈ 0.35 s per
 * login, i.e. minutes for the 1 000 idle sessions.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { openApp } from '../../src/app/context.js';
import { systemScope } from '../../src/core/scope.js';
import { TenancyService } from '../../src/core/tenancy/service.js';
import { hashPassword, type PasswordHashParams } from '../../src/security/passwords.js';
import { ImapClient } from './client.js';
import { collectGarbage } from './inspector.js';
import type { BenchUser, Target } from './load.js';
import { cpuSeconds, pssKiB, rssKiB, treeCpuSeconds, treeMemory } from './proc.js';

const run = promisify(execFile);
const here = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface RunningTarget extends Target {
  /** The main process (Dovecot's master, MaiRust's node process). */
  pid: number;
  version: string;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `port` greets with `* OK` over TLS. */
async function waitForImaps(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const c = await ImapClient.connect({ host: '127.0.0.1', port, tls: true, timeoutMs: 5000 });
      await c.logout();
      return;
    } catch (err) {
      last = err;
      await sleep(250);
    }
  }
  throw new Error(`no IMAP greeting on 127.0.0.1:${port} within ${timeoutMs} ms: ${String(last)}`);
}

// ---------------------------------------------------------------------------------------------

export async function startDovecot(dir: string, users: BenchUser[], cost: PasswordHashParams): Promise<RunningTarget> {
  mkdirSync(dir, { recursive: true });
  const script = join(here, 'dovecot.sh');
  const [uid, gid] = (await run('bash', [script, 'vmail'])).stdout.trim().split(' ');
  // passwd-file (https://doc.dovecot.org/ "passwd-file"): user:password:uid:gid:(gecos):home:(shell):extra
  const lines = await Promise.all(
    users.map(async (u) => `${u.login}:{ARGON2ID}${await hashPassword(u.password, cost)}:${uid}:${gid}::${join(dir, 'mail', u.login.split('@')[0])}::`),
  );
  writeFileSync(join(dir, 'users'), `${lines.join('\n')}\n`, { mode: 0o600 });
  const port = await freePort();
  const pid = Number((await run('bash', [script, 'start', dir, String(port)])).stdout.trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error('dovecot.sh start printed no master pid');
  const version = (await run('dovecot', ['--version'])).stdout.trim().split(' ')[0];
  const perConnection = (comm: string) => comm === 'imap' || comm === 'imap-login';
  return {
    name: 'Dovecot',
    host: '127.0.0.1',
    port,
    users,
    pid,
    version: `Dovecot ${version} (${process.env.DOVECOT_LOGIN_MODE ?? 'performance'} login mode)`,
    memory: () => treeMemory(pid, perConnection),
    footprint: () => treeMemory(pid),
    cpuSeconds: () => treeCpuSeconds(pid),
    async close() {
      await run('bash', [script, 'stop', dir]).catch(() => {});
    },
  };
}

// ---------------------------------------------------------------------------------------------

const STOP_TIMEOUT_MS = 30_000;

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function waitForHttpReady(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
      if (res.status === 200) return;
      last = res.status;
    } catch (err) {
      last = err;
    }
    await sleep(200);
  }
  throw new Error(`/health/ready did not answer 200 within ${timeoutMs} ms: ${String(last)}`);
}

/**
 * Creates tenant `bench`, the users' domain, and per user a user (role `user`) owning a mailbox of
 * the same address, quota unlimited — through the tenancy service, as `mairust user add` and
 * `mairust mailbox add` do, but in one process instead of 2 × users CLI runs, and with the
 * benchmark's password cost.
 */
export async function provision(configPath: string, env: Record<string, string>, users: BenchUser[], cost: PasswordHashParams, logFd: number): Promise<void> {
  const app = await openApp({ configPath, env, logDestination: logFd });
  try {
    const tenancy = new TenancyService({
      db: app.db,
      plans: app.config.plans,
      defaultPlan: app.config.default_plan,
      createDefaultFolders: async (trx, scope, mailboxId) => {
        await app.mailboxState.createDefaultFolders(scope, mailboxId, trx);
      },
      passwordOptions: cost,
    });
    const tenant = await tenancy.tenants.create(systemScope, { name: 'bench' });
    const domains = new Set(users.map((u) => u.login.split('@')[1]));
    for (const name of domains) await tenancy.domains.add(systemScope, { tenantId: tenant.id, name });
    for (const u of users) {
      const user = await tenancy.users.add(systemScope, { tenantId: tenant.id, email: u.login, password: u.password });
      await tenancy.mailboxes.add(systemScope, { address: u.login, user: user.id, quotaBytes: 0 });
    }
  } finally {
    await app.close();
  }
}

export async function startMairust(dir: string, users: BenchUser[], cost: PasswordHashParams, maxSessions: number): Promise<RunningTarget> {
  mkdirSync(dir, { recursive: true });
  const names = ['http', 'smtp', 'submission', 'smtps', 'imap', 'imaps', 'pop3', 'pop3s'];
  const ports: Record<string, number> = {};
  for (const n of names) ports[n] = await freePort();
  const configPath = join(dir, 'config.yaml');
  // Defaults everywhere except the connection limits the 1 000 idle sessions from one address need.
  writeFileSync(
    configPath,
    stringify({
      imap: { max_connections_per_ip: Math.max(50, maxSessions + 100), max_connections_per_user: Math.min(10000, Math.max(100, maxSessions)) },
    }),
  );
  const env: Record<string, string> = { MAIRUST_DATA_DIR: dir, MAIRUST_CONFIG: configPath };
  for (const n of names) env[`MAIRUST__LISTENERS__${n.toUpperCase()}__PORT`] = String(ports[n]);

  const logFd = openSync(join(dir, 'server.log'), 'a');
  // The inspector lets scenario 2 force a full GC before reading memory (inspector.ts); with no
  // session attached it costs nothing.
  const inspectPort = await freePort();
  let child: ChildProcess;
  try {
    await provision(configPath, env, users, cost, logFd);
    child = spawn(process.execPath, [`--inspect=127.0.0.1:${inspectPort}`, join(repoRoot, 'bin/mairust.mjs'), 'serve'], {
      cwd: repoRoot,
      env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MAIRUST'))), ...env },
      stdio: ['ignore', logFd, logFd],
    });
  } finally {
    closeSync(logFd);
  }
  const started = child;
  try {
    await waitForHttpReady(ports.http, 60_000);
    // /health/ready can answer before the mail listeners are bound.
    await waitForImaps(ports.imaps, 30_000);
  } catch (err) {
    await stopProcess(started);
    throw new Error(`mairust serve: ${(err as Error).message} (log: ${join(dir, 'server.log')})`);
  }
  const pid = started.pid!;
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  return {
    name: 'MaiRust',
    host: '127.0.0.1',
    port: ports.imaps,
    users,
    pid,
    version: `MaiRust ${pkg.version} (embedded shape: SQLite + files)`,
    memory: () => ({ rssKiB: rssKiB(pid), pssKiB: pssKiB(pid), processes: 1 }),
    cpuSeconds: () => cpuSeconds(pid),
    collectGarbage: () => collectGarbage(inspectPort),
    close: () => stopProcess(started),
  };
}
