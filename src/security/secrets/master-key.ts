/**
 * Where the master key comes from (SPEC §10; docs/adr/0008).
 *
 * `security.master_key` — already resolved from `env:`/`file:` and `MAIRUST_MASTER_KEY` by the
 * config loader — is base64 of exactly 32 bytes (`openssl rand -base64 32`) or 64 hex characters.
 *
 * When it is empty:
 * - embedded shape (SQLite): one is generated into `<data_dir>/master.key` (mode 0600) at first
 *   start and read from there afterwards, so the embedded shape keeps working with zero config;
 * - PostgreSQL: refuse to start. Every node must unwrap the same data keys, so a key generated on
 *   one node would make the secrets written there unreadable everywhere else.
 *
 * There is deliberately no list of previous keys: a secret is readable with exactly one key, and
 * `mairust secrets rotate-master-key` is the only code that holds two (see rotate.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, stat, link, unlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { Dialect } from '../../store/db/database.js';
import { KEY_BYTES, masterKeyFromBytes, type MasterKey } from './envelope.js';

export type { MasterKey } from './envelope.js';

/** The generated key's file name inside `server.data_dir`. */
export const MASTER_KEY_FILE = 'master.key';

const GENERATE_HINT = 'generate one with `openssl rand -base64 32`';

export class MasterKeyError extends Error {
  readonly code = 'MASTER_KEY';
  constructor(message: string) {
    super(message);
    this.name = 'MasterKeyError';
  }
}

/**
 * Parses a master key. `source` names where the text came from in error messages
 * (e.g. `security.master_key`); the text itself is never echoed.
 */
export function parseMasterKey(text: string, source = 'master key'): MasterKey {
  // Surrounding whitespace is never part of a key (a trailing newline from `echo`, a stray space in YAML).
  const t = text.trim();
  if (t === '') throw new MasterKeyError(`${source} is empty; ${GENERATE_HINT}`);
  let bytes: Buffer;
  if (/^[0-9a-fA-F]+$/.test(t) && t.length !== 43 && t.length !== 44) {
    // Hex (43/44 characters are only plausible as base64: 32 bytes encode to 43 characters + '=').
    if (t.length !== KEY_BYTES * 2) {
      throw new MasterKeyError(`${source} has ${t.length} hex characters; a master key is ${KEY_BYTES * 2} hex characters or base64 of ${KEY_BYTES} bytes (${GENERATE_HINT})`);
    }
    bytes = Buffer.from(t, 'hex');
  } else {
    // Standard or URL-safe base64 (RFC 4648 §4, §5), padding optional. Buffer.from skips characters
    // outside the alphabet instead of failing, so the alphabet is checked first.
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) {
      throw new MasterKeyError(`${source} is neither base64 nor hex; a master key is base64 of exactly ${KEY_BYTES} bytes or ${KEY_BYTES * 2} hex characters (${GENERATE_HINT})`);
    }
    bytes = Buffer.from(t, 'base64');
    if (bytes.length !== KEY_BYTES) {
      throw new MasterKeyError(`${source} decodes to ${bytes.length} bytes; a master key is exactly ${KEY_BYTES} bytes (${GENERATE_HINT})`);
    }
  }
  try {
    // An all-zero key is a placeholder copied from an example, not a key.
    if (bytes.every((b) => b === 0)) throw new MasterKeyError(`${source} is all zero bytes; ${GENERATE_HINT}`);
    return masterKeyFromBytes(bytes);
  } finally {
    bytes.fill(0);
  }
}

/** Where the key in force came from; printed by the CLI so an operator knows what to change. */
export interface LoadedMasterKey {
  key: MasterKey;
  /** `config`: security.master_key / MAIRUST_MASTER_KEY; `file`: `<data_dir>/master.key` (read or just generated). */
  origin: 'config' | 'file';
  /** The key file, when origin is `file`. */
  path?: string;
  /** True when this call created the key file. */
  generated: boolean;
}

export interface LoadMasterKeyOptions {
  config: Pick<Config, 'security' | 'server'>;
  dialect: Dialect;
  logger?: Pick<Logger, 'info' | 'warn'>;
}

export async function loadMasterKey(opts: LoadMasterKeyOptions): Promise<LoadedMasterKey> {
  const configured = opts.config.security.master_key;
  if (configured !== '') {
    return { key: parseMasterKey(configured, 'security.master_key (MAIRUST_MASTER_KEY)'), origin: 'config', generated: false };
  }
  if (opts.dialect !== 'sqlite') {
    throw new MasterKeyError(
      'security.master_key is not set. With PostgreSQL every node must use the same master key, so none is generated: ' +
        `set MAIRUST_MASTER_KEY to the same value on every node (${GENERATE_HINT}).`,
    );
  }
  const path = resolve(opts.config.server.data_dir, MASTER_KEY_FILE);
  const existing = await readKeyFile(path, opts.logger);
  if (existing) return { key: existing, origin: 'file', path, generated: false };
  const created = await createKeyFile(path);
  if (created) {
    opts.logger?.info({ component: 'secrets', path, key_id: created.id }, 'generated a new master key; back it up with the database: without it the stored secrets cannot be read');
    return { key: created, origin: 'file', path, generated: true };
  }
  // Another process created it between our read and our link: use theirs.
  const theirs = await readKeyFile(path, opts.logger);
  if (!theirs) throw new MasterKeyError(`${path} disappeared while it was being created`);
  return { key: theirs, origin: 'file', path, generated: false };
}

async function readKeyFile(path: string, logger?: Pick<Logger, 'warn'>): Promise<MasterKey | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new MasterKeyError(`cannot read the master key file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const mode = (await stat(path)).mode & 0o777;
  // Warn rather than refuse: a restore from backup with loose permissions should not take mail down.
  if (mode & 0o077) logger?.warn({ component: 'secrets', path, mode: mode.toString(8) }, 'the master key file is readable by other users; run chmod 600 on it');
  return parseMasterKey(text, path);
}

/**
 * Writes a new random key to a private temporary file, then hard-links it into place: link(2)
 * fails with EEXIST if the name exists, so two processes starting at once cannot each write a
 * different key, and a reader never sees a half-written file. Returns null when another process won.
 */
async function createKeyFile(path: string): Promise<MasterKey | null> {
  const dir = resolve(path, '..');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const bytes = randomBytes(KEY_BYTES);
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(`${bytes.toString('base64')}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await link(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return null;
      throw err;
    }
    // Make the new directory entry durable too (the key must survive a crash right after start).
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
    return masterKeyFromBytes(bytes);
  } finally {
    bytes.fill(0);
    await unlink(tmp).catch(() => undefined);
  }
}
