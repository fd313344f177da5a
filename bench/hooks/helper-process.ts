/**
 * The plugin and policy servers of bench/hooks run in processes of their own, as they would in
 * production (a plugin is a separate program, SPEC §7; so is a Postfix policy service), so their
 * CPU shows up as another process and not inside the server being measured. This forks one with
 * tsx and asks it, over the IPC channel, how many requests it has answered.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../../test/support/server-process.js';

const READY_TIMEOUT_MS = 30_000;
const COUNT_TIMEOUT_MS = 10_000;

export interface HelperProcess<C> {
  /** The helper's counters (what it says it answered so far). */
  count(): Promise<C>;
  close(): Promise<void>;
}

/** Forks `file` (relative to this folder) with `env` and waits for its `{ ready: true }`. */
export async function startHelper<C>(file: string, env: Record<string, string>): Promise<HelperProcess<C>> {
  const child: ChildProcess = fork(fileURLToPath(new URL(file, import.meta.url)), [], {
    cwd: repoRoot,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not start within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    const onMessage = (m: unknown) => {
      if ((m as { ready?: boolean })?.ready) {
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve();
      }
    };
    child.on('message', onMessage);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${file} exited (${code}) before it was ready`));
    });
  });
  return {
    count() {
      return new Promise<C>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${file} did not answer 'count'`)), COUNT_TIMEOUT_MS);
        child.once('message', (m) => {
          clearTimeout(timer);
          resolve(m as C);
        });
        child.send('count');
      });
    },
    close() {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      return new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.disconnect();
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      });
    },
  };
}
