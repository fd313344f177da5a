/**
 * The `script` plugin protocol (SPEC §7): MaiRust starts the plugin's command, writes the JSON
 * payload to its stdin, and reads exactly one JSON reply from its stdout.
 *
 * Isolation and limits:
 *   - clean environment: only PATH=/usr/bin:/bin, LANG=C.UTF-8, HOME=<working directory> and the
 *     variables the caller passes explicitly — nothing of MaiRust's own environment (secrets,
 *     database URLs) leaks into a plugin;
 *   - the plugin's own working directory (`cwd`);
 *   - wall time: the command runs as the leader of its own process group (detached = setsid), and
 *     at the limit the whole group gets SIGKILL (`kill(-pid)`), so helpers it started die too;
 *     (a descendant that calls setsid() itself leaves the group and is not reached: only a cgroup
 *     could hold it; the call still ends at the wall time, as the pipes are not waited for);
 *   - memory (`[limits] memory_mb`) and CPU time (`[limits] cpu_ms`): RLIMIT_AS / RLIMIT_CPU set
 *     by `prlimit` from util-linux (/usr/bin/prlimit) when present, which then execs the command
 *     (same pid). Without prlimit the command goes through `/bin/sh -c 'ulimit -v …; ulimit -t …;
 *     exec "$0" "$@"'`, which sets the same two limits. RLIMIT_AS counts *virtual* memory: runtimes
 *     that reserve large address ranges up front need a generous limit (Node.js 20 does not start
 *     below about 1 GiB);
 *   - output: stdout is bounded (1 MiB, more is an error and kills the group); stderr keeps only
 *     its last 8 KiB, for the plugin's log.
 * A non-zero exit, a death by signal, no reply or a reply that is not one JSON value is an `error`.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { MAX_REPLY_BYTES, type ExecResult } from './types.js';

export const PRLIMIT_PATH = '/usr/bin/prlimit';
/** Only the tail of stderr is kept: the last lines are the ones that explain a failure. */
export const MAX_STDERR_BYTES = 8 * 1024;

/** How the memory/CPU limits are applied. */
export type LimitMethod = 'prlimit' | 'ulimit';

export interface ScriptCall {
  /** `[entry] command`: the program and its arguments (no shell). */
  command: readonly string[];
  /** The plugin's own working directory; also HOME. */
  cwd: string;
  /** The JSON payload (serialized here). */
  payload: unknown;
  /** Wall-time limit in milliseconds (the hook's timeout_ms, bounded by `[limits] wall_time_ms`). */
  wallTimeMs: number;
  /** RLIMIT_AS in bytes (`[limits] memory_mb`). */
  memoryBytes?: number;
  /** CPU time in milliseconds (`[limits] cpu_ms`); the kernel counts whole seconds, rounded up. */
  cpuMs?: number;
  /** Explicit extra environment variables (e.g. plugin config); they cannot replace PATH/LANG/HOME. */
  env?: Readonly<Record<string, string>>;
  /** Cancels the call (e.g. shutdown): handled like a timeout, the group is killed. */
  signal?: AbortSignal;
  /** Tests: force a method; default prlimit when /usr/bin/prlimit exists. */
  limitMethod?: LimitMethod;
}

export function defaultLimitMethod(): LimitMethod {
  return existsSync(PRLIMIT_PATH) ? 'prlimit' : 'ulimit';
}

/** The environment of a plugin process: the fixed three win over anything passed in. */
export function scriptEnvironment(cwd: string, extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  return { ...extra, PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: cwd };
}

/**
 * The program and arguments actually spawned: the command itself, or wrapped in prlimit / sh so
 * that the limits hold from the first instruction (a limit set after spawning would race).
 */
export function limitedCommand(
  command: readonly string[],
  limits: { memoryBytes?: number; cpuMs?: number },
  method: LimitMethod,
): { file: string; args: string[] } {
  if (command.length === 0 || command[0] === '') throw new RangeError('script plugin: command is empty');
  const mem = limits.memoryBytes !== undefined && limits.memoryBytes > 0 ? Math.ceil(limits.memoryBytes) : undefined;
  const cpu = limits.cpuMs !== undefined && limits.cpuMs > 0 ? Math.ceil(limits.cpuMs / 1000) : undefined;
  if (mem === undefined && cpu === undefined) return { file: command[0], args: command.slice(1) };
  if (method === 'prlimit') {
    const opts: string[] = [];
    if (mem !== undefined) opts.push(`--as=${mem}`);
    if (cpu !== undefined) opts.push(`--cpu=${cpu}`);
    return { file: PRLIMIT_PATH, args: [...opts, '--', ...command] };
  }
  // POSIX sh: `ulimit -v` is in KiB; "$0" "$@" keeps the arguments exactly as given (no re-parsing).
  const steps: string[] = [];
  if (mem !== undefined) steps.push(`ulimit -v ${Math.max(1, Math.floor(mem / 1024))}`);
  if (cpu !== undefined) steps.push(`ulimit -t ${cpu}`);
  return { file: '/bin/sh', args: ['-c', `${steps.join(' && ')} && exec "$0" "$@"`, ...command] };
}

/** SIGKILL to the whole process group; it may be gone already. */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group has already exited.
  }
}

/** Runs one script call. Never throws: every failure is an ExecResult with ok: false. */
export function runScript(call: ScriptCall): Promise<ExecResult> {
  const started = performance.now();
  const input = Buffer.from(JSON.stringify(call.payload ?? null), 'utf8');
  const elapsed = () => Math.round(performance.now() - started);
  let target: { file: string; args: string[] };
  try {
    target = limitedCommand(call.command, { memoryBytes: call.memoryBytes, cpuMs: call.cpuMs }, call.limitMethod ?? defaultLimitMethod());
  } catch (err) {
    return Promise.resolve({ ok: false, kind: 'error', message: (err as Error).message, durationMs: elapsed(), bytesOut: 0, bytesIn: 0 });
  }

  return new Promise<ExecResult>((resolve) => {
    const stdout: Buffer[] = [];
    let bytesIn = 0;
    let stderrTail = Buffer.alloc(0);
    let bytesOut = 0;
    let failure: { kind: 'timeout' | 'error'; message: string } | null = null;
    let done = false;

    const child = spawn(target.file, target.args, {
      cwd: call.cwd,
      env: scriptEnvironment(call.cwd, call.env),
      stdio: ['pipe', 'pipe', 'pipe'],
      // setsid(): the child leads a new process group, so kill(-pid) reaches its descendants.
      detached: true,
    });

    const finish = (result: ExecResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      call.signal?.removeEventListener('abort', onAbort);
      // Helpers left behind by a script that answered must not outlive the call either.
      killGroup(child.pid);
      resolve({ ...result, stderr: stderrTail.toString('utf8') });
    };
    /** Stops the call with `kind`; the result is reported once the process has exited. */
    const stop = (kind: 'timeout' | 'error', message: string) => {
      if (failure || done) return;
      failure = { kind, message };
      killGroup(child.pid);
      // A descendant that escaped the group could keep the pipes open: do not wait for them.
      child.stdout.destroy();
      child.stderr.destroy();
    };

    const timer = setTimeout(() => stop('timeout', `no reply within ${call.wallTimeMs} ms; the process group was killed`), call.wallTimeMs);
    const onAbort = () => stop('timeout', 'the call was cancelled; the process group was killed');
    if (call.signal?.aborted) onAbort();
    else call.signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout.on('data', (chunk: Buffer) => {
      bytesIn += chunk.length;
      if (bytesIn > MAX_REPLY_BYTES) {
        stop('error', `reply exceeds ${MAX_REPLY_BYTES} bytes on stdout; the process group was killed`);
        return;
      }
      stdout.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      const joined = Buffer.concat([stderrTail, chunk]);
      stderrTail = joined.length > MAX_STDERR_BYTES ? joined.subarray(joined.length - MAX_STDERR_BYTES) : joined;
    });
    // A script that never reads stdin (or exits early) closes the pipe: EPIPE is not our failure.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input, () => {
      bytesOut = input.length;
    });

    child.on('error', (err) => {
      // spawn failure (ENOENT, EACCES): no process exists, 'close' may not follow.
      const code = (err as NodeJS.ErrnoException).code;
      finish({ ok: false, kind: 'error', message: `cannot start ${call.command[0]}: ${code ?? err.message}`, durationMs: elapsed(), bytesOut, bytesIn });
    });

    // 'exit' when stopping (pipes may be held by escaped descendants); 'close' otherwise, so that
    // all of stdout has been read before parsing.
    child.on('exit', () => {
      if (failure) finish({ ok: false, ...failure, durationMs: elapsed(), bytesOut, bytesIn });
    });
    child.on('close', (code, signal) => {
      if (failure) {
        finish({ ok: false, ...failure, durationMs: elapsed(), bytesOut, bytesIn });
        return;
      }
      const common = { durationMs: elapsed(), bytesOut, bytesIn };
      if (signal !== null) {
        const why = signal === 'SIGXCPU' || (signal === 'SIGKILL' && call.cpuMs) ? ' (CPU time limit?)' : '';
        finish({ ok: false, kind: 'error', message: `killed by ${signal}${why}`, ...common });
        return;
      }
      if (code !== 0) {
        const why = call.memoryBytes ? ` (the memory limit is ${call.memoryBytes} bytes)` : '';
        finish({ ok: false, kind: 'error', message: `exited with status ${code}${why}`, ...common });
        return;
      }
      const text = Buffer.concat(stdout).toString('utf8').trim();
      if (text === '') {
        finish({ ok: false, kind: 'error', message: 'no reply on stdout', ...common });
        return;
      }
      try {
        finish({ ok: true, response: JSON.parse(text) as unknown, ...common });
      } catch (err) {
        finish({ ok: false, kind: 'error', message: `reply on stdout is not one JSON value: ${(err as Error).message}`, ...common });
      }
    });
  });
}
