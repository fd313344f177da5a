/**
 * Runs Postfix's load generator `smtp-source` (Debian `postfix`, installed by
 * scripts/peers/install-smtp-peers.sh) against one SMTP server and times it. Every message is the
 * same generated one; smtp-source exits non-zero on the first reply that is not the expected
 * positive one, so a completed run means every message got its `250`.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

export const SMTP_SOURCE = '/usr/sbin/smtp-source';

export interface SourceLoad {
  messages: number;
  sessions: number;
  /** Payload bytes per message (`-l`), not counting the few header lines smtp-source adds. */
  sizeBytes: number;
  /** `-d`: send the next message over the same connection instead of a new one per message. */
  reuse: boolean;
}

export interface SourceTarget {
  host: string;
  port: number;
  from: string;
  to: string;
}

export interface SourceRun {
  /** Wall time from start to exit. */
  ms: number;
  code: number | null;
  /** The end of what smtp-source printed (its error, if any). */
  output: string;
}

/** Keep at most this much of smtp-source's output. */
const MAX_OUTPUT = 16 * 1024;
/** A run that takes longer than this is stuck, not slow. */
const RUN_TIMEOUT_MS = 10 * 60 * 1000;

export function smtpSourceAvailable(): boolean {
  return existsSync(SMTP_SOURCE);
}

export function runSmtpSource(load: SourceLoad, target: SourceTarget): Promise<SourceRun> {
  const args = [
    '-s', String(load.sessions),
    '-m', String(load.messages),
    '-l', String(load.sizeBytes),
    '-f', target.from,
    '-t', target.to,
    '-M', 'client.bench.test',
    ...(load.reuse ? ['-d'] : []),
    `${target.host}:${target.port}`,
  ];
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(SMTP_SOURCE, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (d: Buffer) => {
      output = (output + d.toString()).slice(-MAX_OUTPUT);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ ms: performance.now() - started, code, output: output.trim() });
    });
  });
}
