/**
 * Postfix's `smtp-sink` (Debian `postfix`, scripts/peers/install-smtp-peers.sh) as the remote
 * server every outbound message goes to: it answers every command positively and, with
 * `-d DIR/m.`, writes each mail transaction to a file of its own (smtp-sink(1) "DUMP FILE
 * FORMAT": its own X-Client-…, X-Mail-Args, X-Rcpt-Args and Received lines, then the message).
 * Counting those files says how many messages really arrived; reading them says which ones.
 * Run as root it must drop privileges (`-u nobody`), so the dump directory belongs to nobody.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitForSmtpGreeting } from '../../test/support/smtp-load-client.js';

export const SMTP_SINK = '/usr/sbin/smtp-sink';
const NOBODY = 65534;
const PREFIX = 'm.';
/** listen(2) backlog, the last argument smtp-sink requires. */
const BACKLOG = 256;

export interface Sink {
  port: number;
  /** Messages (dump files) received so far. */
  count(): number;
  /** Values of `X-Bench-Seq` in the messages whose `X-Bench-Run` is `run`, one entry per message. */
  sequences(run: string): number[];
  close(): Promise<void>;
}

export function sinkUnavailable(): string | null {
  if (!existsSync(SMTP_SINK)) return `${SMTP_SINK} is missing (run scripts/peers/install-smtp-peers.sh)`;
  if (process.getuid?.() !== 0) return 'not root (smtp-sink -u nobody needs root)';
  return null;
}

export async function startSink(dir: string, port: number): Promise<Sink> {
  mkdirSync(dir, { recursive: true });
  chownSync(dir, NOBODY, NOBODY);
  const child: ChildProcess = spawn(SMTP_SINK, ['-u', 'nobody', '-d', join(dir, PREFIX), `127.0.0.1:${port}`, String(BACKLOG)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4096)));
  try {
    await waitForSmtpGreeting(port, 15_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`smtp-sink did not start: ${(err as Error).message} ${stderr}`);
  }
  const files = () => readdirSync(dir).filter((f) => f.startsWith(PREFIX));
  return {
    port,
    count: () => files().length,
    sequences(run) {
      const out: number[] = [];
      for (const f of files()) {
        const text = readFileSync(join(dir, f), 'latin1');
        // The tags are in the message header, well inside the first few KiB.
        const head = text.slice(0, 8192);
        const r = /^X-Bench-Run: (\S+)\r?$/m.exec(head);
        const s = /^X-Bench-Seq: (\d+)\r?$/m.exec(head);
        if (r?.[1] === run && s) out.push(Number(s[1]));
      }
      return out;
    },
    close() {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      return new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      });
    },
  };
}
