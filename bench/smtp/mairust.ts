/**
 * MaiRust as a benchmark target: the real `mairust serve` in a child process (as an operator runs
 * it), set up through the CLI, in the embedded shape (SQLite + files) or the cluster shape
 * (PostgreSQL + S3; the script creates its own database and bucket and removes both afterwards).
 *
 * The server runs with its defaults except for what a benchmark on loopback needs:
 *  - the resolver points at a DNS server on loopback (there is no public DNS here), so SPF/DMARC
 *    verification runs as on a real MX, answered in microseconds;
 *  - `smtp.max_connections_per_ip` is raised from 20 to 200: all 20 sessions come from 127.0.0.1,
 *    and without `-d` a new connection can arrive before the server has counted the old one closed.
 * Its log (one JSON line per message, like Postfix's maillog) goes to a file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/store/db/database.js';
import { bin, freePort, repoRoot, runCli, waitForReady } from '../../test/support/server-process.js';
import { waitForSmtpGreeting } from '../../test/support/smtp-load-client.js';
import type { BenchTarget } from './target.js';

export interface S3Settings {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface MairustOptions {
  dir: string;
  dnsAddress: string;
  domain: string;
  user: string;
  /** Cluster shape: PostgreSQL admin URL (a database is created under it) and the S3 server. */
  cluster?: { pgAdminUrl: string; s3: S3Settings };
  /** Row label in the results table; default by shape. */
  name?: string;
  /** Extra top-level sections for config.yaml (YAML lines, e.g. `plugins:` + its keys for bench/hooks). */
  configLines?: string[];
  /**
   * Runs after the tenant, domain and mailbox exist and before `serve` starts, with the server's
   * environment (for more CLI set-up, e.g. installing a plugin and creating a hook).
   */
  setup?: (ctx: { env: Record<string, string>; dir: string }) => Promise<void>;
}

/** A started MaiRust: a benchmark target plus its HTTP port (for /metrics). */
export interface MairustTarget extends BenchTarget {
  httpPort: number;
}

const STOP_TIMEOUT_MS = 30_000;

function withDatabase(adminUrl: string, name: string): string {
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** Empties and removes the bench bucket (batches of 1000 keys, S3 DeleteObjects). */
export async function removeBucket(s3: S3Settings, bucket: string): Promise<void> {
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  // DeleteObjects must carry Content-MD5 (S3 API); the SDK now sends a CRC32 checksum instead, which
  // Swift's s3api does not accept (TEST-PEERS.md), so the MD5 of the serialized body is added here.
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      if (request.headers && (typeof request.body === 'string' || request.body instanceof Uint8Array)) {
        request.headers['content-md5'] = createHash('md5').update(request.body).digest('base64');
      }
      return next(args);
    },
    { step: 'build', name: 'benchContentMd5' },
  );
  try {
    for (;;) {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000 }));
      const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
      if (keys.length === 0) break;
      await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}

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

export async function startMairust(opts: MairustOptions): Promise<MairustTarget> {
  const { dir, cluster } = opts;
  const ports = { http: await freePort(), smtp: await freePort(), submission: await freePort(), smtps: await freePort() };
  const config = join(dir, 'config.yaml');
  writeFileSync(config, [`dns:`, `  servers: ["${opts.dnsAddress}"]`, `smtp:`, `  max_connections_per_ip: 200`, ...(opts.configLines ?? []), ''].join('\n'));
  const env: Record<string, string> = {
    MAIRUST_DATA_DIR: dir,
    MAIRUST_CONFIG: config,
    MAIRUST__LISTENERS__HTTP__PORT: String(ports.http),
    MAIRUST__LISTENERS__SMTP__PORT: String(ports.smtp),
    MAIRUST__LISTENERS__SUBMISSION__PORT: String(ports.submission),
    MAIRUST__LISTENERS__SMTPS__PORT: String(ports.smtps),
    // Mail access is not measured here: keep the default IMAP/POP3 ports free.
    MAIRUST__LISTENERS__IMAP__ENABLED: 'false',
    MAIRUST__LISTENERS__IMAPS__ENABLED: 'false',
    MAIRUST__LISTENERS__POP3__ENABLED: 'false',
    MAIRUST__LISTENERS__POP3S__ENABLED: 'false',
  };
  let dbName: string | null = null;
  let bucket: string | null = null;
  if (cluster) {
    dbName = `mairust_bench_${randomBytes(5).toString('hex')}`;
    bucket = `mairust-bench-${randomBytes(5).toString('hex')}`;
    await adminQuery(cluster.pgAdminUrl, `CREATE DATABASE ${dbName}`);
    Object.assign(env, {
      MAIRUST_DATABASE_URL: withDatabase(cluster.pgAdminUrl, dbName),
      MAIRUST_STORAGE_BACKEND: 's3',
      MAIRUST_S3_ENDPOINT: cluster.s3.endpoint,
      MAIRUST_S3_REGION: cluster.s3.region,
      MAIRUST_S3_ACCESS_KEY_ID: cluster.s3.accessKeyId,
      MAIRUST_S3_SECRET_ACCESS_KEY: cluster.s3.secretAccessKey,
      MAIRUST_S3_BUCKET: bucket,
      MAIRUST__STORAGE__S3__CREATE_BUCKET: 'true',
      // With PostgreSQL no master key is generated (every node must share one): a throw-away key
      // for this run, the same for the CLI set-up and the server.
      MAIRUST_MASTER_KEY: randomBytes(32).toString('base64'),
    });
  }
  for (const args of [
    ['tenant', 'add', 'bench'],
    ['domain', 'add', opts.domain, '--tenant', 'bench'],
    ['mailbox', 'add', `${opts.user}@${opts.domain}`],
  ]) {
    const r = await runCli(args, env);
    if (r.code !== 0) throw new Error(`mairust ${args.join(' ')}: ${r.stderr}`);
  }
  if (opts.setup) await opts.setup({ env, dir });

  const logFd = openSync(join(dir, 'server.log'), 'a');
  const child = spawn(process.execPath, [bin, 'serve'], {
    cwd: repoRoot,
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MAIRUST'))), ...env },
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  try {
    await waitForReady(ports.http, 60_000);
    // /health/ready can answer before the SMTP listeners are bound.
    await waitForSmtpGreeting(ports.smtp, 30_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`mairust serve did not start (log: ${join(dir, 'server.log')}): ${(err as Error).message}`);
  }

  const db: Database = await openDatabase(env.MAIRUST_DATABASE_URL ?? `sqlite:${join(dir, 'mairust.db')}`);
  const recipient = `${opts.user}@${opts.domain}`;
  return {
    name: opts.name ?? (cluster ? 'MaiRust PostgreSQL + S3' : 'MaiRust SQLite + files'),
    httpPort: ports.http,
    host: '127.0.0.1',
    port: ports.smtp,
    recipient,
    async storedCount() {
      // `250` means "in the mailbox" (SPEC §3.1 step 6): a live INBOX entry per stored message.
      const row = await db.kysely
        .selectFrom('folder_entries as e')
        .innerJoin('folders as f', 'f.id', 'e.folder_id')
        .innerJoin('mailboxes as m', 'm.id', 'e.mailbox_id')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('m.address', '=', recipient)
        .where('f.name', '=', 'INBOX')
        .where('e.deleted_at', 'is', null)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
    async close() {
      await stopProcess(child);
      await db.close();
      if (cluster && dbName) await adminQuery(cluster.pgAdminUrl, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      if (cluster && bucket) await removeBucket(cluster.s3, bucket).catch((err) => console.error(`could not remove bucket ${bucket}: ${(err as Error).message}`));
    },
  };
}
