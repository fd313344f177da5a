/**
 * A private, throw-away Postfix instance for the comparison (TEST-PEERS.md "SMTP peers and load"):
 * `postfix -c DIR/conf` with its own queue, data and log, smtpd on a loopback port, one virtual
 * mailbox delivered into Maildir by virtual(8). Postfix must be installed (Debian `postfix`, by
 * scripts/peers/install-smtp-peers.sh) and this must run as root (master starts as root and
 * drops to the `postfix` user; virtual delivers as `nobody`).
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchTarget } from './target.js';

const TEMPLATES = fileURLToPath(new URL('./postfix/', import.meta.url));
const NOBODY = 65534; // virtual_uid_maps / virtual_gid_maps in main.cf.in

/** Why the peer cannot run here, or null when it can. */
export function postfixUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root (postfix -c DIR start needs root)';
  for (const bin of ['/usr/sbin/postfix', '/usr/sbin/postmap']) {
    if (!existsSync(bin)) return `${bin} is missing (run scripts/peers/install-smtp-peers.sh)`;
  }
  return null;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
}

function fill(template: string, values: Record<string, string>): string {
  return readFileSync(join(TEMPLATES, template), 'utf8').replace(/@([A-Z]+)@/g, (m, k: string) => values[k] ?? m);
}

/** Postfix's version, for the results header. */
export function postfixVersion(): string {
  const r = spawnSync('/usr/sbin/postconf', ['-d', '-h', 'mail_version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

export interface PostfixOptions {
  dir: string;
  port: number;
  domain: string;
  user: string;
  /** Row label in the results table; default `Postfix → Maildir`. */
  name?: string;
  /** Extra main.cf lines, appended after the template (a later setting wins in main.cf). */
  mainCf?: string[];
}

export async function startPostfix(opts: PostfixOptions): Promise<BenchTarget> {
  const { dir, port, domain, user } = opts;
  const conf = join(dir, 'conf');
  for (const d of ['conf', 'queue', 'data', 'mail']) mkdirSync(join(dir, d), { recursive: true });
  // The queue and data directories are used by the unprivileged `postfix` user, the Maildir by `nobody`.
  const postfixUid = Number(spawnSync('id', ['-u', 'postfix'], { encoding: 'utf8' }).stdout.trim());
  if (!Number.isInteger(postfixUid)) throw new Error('no `postfix` system user (is Postfix installed?)');
  chownSync(join(dir, 'data'), postfixUid, 0);
  chownSync(join(dir, 'mail'), NOBODY, NOBODY);
  const values = { DIR: dir, PORT: String(port), DOMAIN: domain };
  const extra = opts.mainCf?.length ? `${opts.mainCf.join('\n')}\n` : '';
  writeFileSync(join(conf, 'main.cf'), fill('main.cf.in', values) + extra);
  writeFileSync(join(conf, 'master.cf'), fill('master.cf.in', values));
  // virtual(8): a result ending in "/" means Maildir (relative to virtual_mailbox_base).
  writeFileSync(join(conf, 'vmailbox'), `${user}@${domain} ${domain}/${user}/\n`);
  run('/usr/sbin/postmap', ['-c', conf, `hash:${join(conf, 'vmailbox')}`]);
  run('/usr/sbin/postfix', ['-c', conf, 'start']);
  const maildirNew = join(dir, 'mail', domain, user, 'new');
  return {
    name: opts.name ?? 'Postfix → Maildir',
    host: '127.0.0.1',
    port,
    recipient: `${user}@${domain}`,
    async storedCount() {
      // Maildir (virtual(8)): a message appears in new/ only after it was written and fsync'ed in tmp/.
      return existsSync(maildirNew) ? readdirSync(maildirNew).length : 0;
    },
    async close() {
      spawnSync('/usr/sbin/postfix', ['-c', conf, 'stop'], { timeout: 60_000 });
    },
  };
}
