/**
 * Runs the real `mairust` CLI (bin/mairust.mjs) as a child process, the way an operator does,
 * with an environment for the current test shape.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { freshDatabase, s3TestSettings, shape, tempDir, type TestDatabase } from './shape.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const bin = `${repoRoot}bin/mairust.mjs`;

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

export interface ShapeEnv {
  env: Record<string, string>;
  dataDir: string;
  httpPort: number;
  smtpPorts: { smtp: number; submission: number; smtps: number };
  /** IMAP (STARTTLS), IMAPS, POP3 (STLS) and POP3S ports. */
  mailPorts: { imap: number; imaps: number; pop3: number; pop3s: number };
  db?: TestDatabase;
  cleanup(): Promise<void>;
}

/**
 * Environment for a server of the current shape: a fresh data dir (embedded) or a fresh PostgreSQL
 * database and S3 bucket (cluster), and free ports for HTTP and the SMTP listeners, so parallel
 * test files never collide.
 */
export async function shapeEnv(): Promise<ShapeEnv> {
  const dir = tempDir('mairust-e2e-');
  const httpPort = await freePort();
  const smtpPorts = { smtp: await freePort(), submission: await freePort(), smtps: await freePort() };
  const mailPorts = { imap: await freePort(), imaps: await freePort(), pop3: await freePort(), pop3s: await freePort() };
  const env: Record<string, string> = {
    MAIRUST_DATA_DIR: dir.path,
    MAIRUST__LISTENERS__HTTP__PORT: String(httpPort),
    MAIRUST__LISTENERS__SMTP__PORT: String(smtpPorts.smtp),
    MAIRUST__LISTENERS__SUBMISSION__PORT: String(smtpPorts.submission),
    MAIRUST__LISTENERS__SMTPS__PORT: String(smtpPorts.smtps),
    MAIRUST__LISTENERS__IMAP__PORT: String(mailPorts.imap),
    MAIRUST__LISTENERS__IMAPS__PORT: String(mailPorts.imaps),
    MAIRUST__LISTENERS__POP3__PORT: String(mailPorts.pop3),
    MAIRUST__LISTENERS__POP3S__PORT: String(mailPorts.pop3s),
    MAIRUST_CONFIG: `${dir.path}/config.yaml`,
  };
  // An empty config file: the tests write settings into it when they need some.
  writeFileSync(env.MAIRUST_CONFIG, '');
  let db: TestDatabase | undefined;
  if (shape === 'cluster') {
    db = await freshDatabase({ migrate: false });
    await db.db.close();
    const s3 = s3TestSettings();
    Object.assign(env, {
      MAIRUST_DATABASE_URL: db.url,
      MAIRUST_STORAGE_BACKEND: 's3',
      MAIRUST_S3_ENDPOINT: s3.endpoint,
      MAIRUST_S3_REGION: s3.region,
      MAIRUST_S3_ACCESS_KEY_ID: s3.accessKeyId,
      MAIRUST_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      MAIRUST_S3_BUCKET: `mairust-e2e-${randomBytes(5).toString('hex')}`,
      MAIRUST__STORAGE__S3__CREATE_BUCKET: 'true',
      // Every node of a cluster shares one master key (ADR 0008); there is no generated default.
      MAIRUST_MASTER_KEY: randomBytes(32).toString('base64'),
    });
  }
  return {
    env,
    dataDir: dir.path,
    httpPort,
    smtpPorts,
    mailPorts,
    db,
    cleanup: async () => {
      dir.remove();
      if (db) await dropQuietly(db);
    },
  };
}

async function dropQuietly(db: TestDatabase) {
  try {
    await db.drop();
  } catch {
    /* already closed or dropped */
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one CLI command to completion. */
export function runCli(args: string[], env: Record<string, string>, input?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env: cleanEnv(env), cwd: repoRoot });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  // Start from the parent's environment minus any MAIRUST_* settings, so only what the test sets applies.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MAIRUST')));
  return { ...base, ...env };
}

export interface ServerProcess {
  child: ChildProcess;
  output(): string;
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export function startServerProcess(env: Record<string, string>, args: string[] = []): ServerProcess {
  const child = spawn(process.execPath, [bin, ...args, 'serve'], { env: cleanEnv(env), cwd: repoRoot });
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => { for (const w of waiters) w(); resolve(code); }));
  return {
    child,
    exited,
    output: () => out,
    waitForOutput(re, timeoutMs = 30000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(re);
          if (m) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(m);
          } else if (child.exitCode !== null) {
            waiters.delete(check);
            clearTimeout(timer);
            reject(new Error(`server exited (${child.exitCode}) before ${re}; output:\n${out}`));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${re}; output:\n${out}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

export async function waitForReady(port: number, timeoutMs = 30000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
      if (res.status === 200) return res;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`/health/ready did not answer 200 within ${timeoutMs} ms: ${String(last)}`);
}
