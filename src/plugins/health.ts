/**
 * Plugin health checks (SPEC §7 "Health checks every 30 s; failures feed the breaker").
 *
 * Every `intervalMs()` each runnable plugin that declares a check is probed:
 *  - `health_endpoint` (http plugins): a GET, egress-checked exactly like hook calls — the host is
 *    resolved and every address checked (src/webhooks/egress.ts), the socket pinned to the checked
 *    address, private targets only with the plugin's `allowPrivate`; redirects are not followed
 *    (a 3xx is a failure); 2xx within the timeout is healthy;
 *  - `health_cmd` (script plugins): spawned in the plugin's directory with the clean environment of
 *    script plugins (src/hooks/executors/script.ts), its process group killed at the timeout;
 *    exit status 0 is healthy.
 * Each result goes to `registry.recordHealth` and to `onResult`, where the composition root feeds
 * the circuit breakers. Plugins without a check are skipped. Runs never overlap: the next one is
 * scheduled when the previous has finished, so a slow run delays it.
 */
import { spawn } from 'node:child_process';
import type { Logger } from 'pino';
import type { DnsResolver } from '../dns/index.js';
import { scriptEnvironment } from '../hooks/executors/script.js';
import { bareHost, pinnedPostOptions, resolveEgress } from '../webhooks/egress.js';
import { isEndpointAllowed } from './egress-allowlist.js';
import type { InstalledPlugin, PluginManagement } from './types.js';

export const HEALTH_TIMEOUT_MS = 5000;
const DEFAULT_CONCURRENCY = 4;
const MAX_ERROR_CHARS = 500;
const STDERR_TAIL_BYTES = 2048;

export interface HealthResult {
  ok: boolean;
  error: string | null;
}

export interface HealthCheckOptions {
  registry: Pick<PluginManagement, 'list' | 'recordHealth'>;
  resolver: Pick<DnsResolver, 'resolve4' | 'resolve6'>;
  /** Read before each wait: `plugins.health_interval_seconds` is reloadable. */
  intervalMs: () => number;
  onResult: (pluginId: string, ok: boolean, error: string | null) => void | Promise<void>;
  /** Accepted for symmetry with the other services; results are timestamped by the registry's clock. */
  now?: () => number;
  logger?: Logger;
  /** Per check (default 5 s). */
  timeoutMs?: number;
  /** Checks run at the same time within one run (default 4). */
  concurrency?: number;
  /** When given, a health endpoint whose host left the allowlist since install is not called. */
  egressAllowlist?: () => readonly string[];
}

export interface HealthChecker {
  /** Stops the schedule, cancels checks in flight (their results are not recorded) and waits for the run. */
  stop(): Promise<void>;
  /** One run now (or the run already in progress). */
  runOnce(): Promise<void>;
}

export function startHealthChecks(opts: HealthCheckOptions): HealthChecker {
  const timeoutMs = opts.timeoutMs ?? HEALTH_TIMEOUT_MS;
  const concurrency = Math.max(1, opts.concurrency ?? DEFAULT_CONCURRENCY);
  const stopping = new AbortController();
  let running: Promise<void> | null = null;
  let timer: NodeJS.Timeout | null = null;

  const checkOne = async (p: InstalledPlugin): Promise<void> => {
    const entry = p.manifest.entry;
    let result: HealthResult;
    if (entry.protocol === 'http' && entry.health_endpoint) {
      const allowlist = opts.egressAllowlist?.();
      result = allowlist && !isEndpointAllowed(entry.health_endpoint, allowlist)
        ? { ok: false, error: 'health endpoint host is no longer in plugins.egress_allowlist' }
        : await checkHttpHealth(entry.health_endpoint, { allowPrivate: p.allowPrivate, resolver: opts.resolver, timeoutMs, signal: stopping.signal });
    } else if (entry.protocol === 'script' && entry.health_cmd) {
      result = await checkCommandHealth(entry.health_cmd, p.installDir, { timeoutMs, signal: stopping.signal });
    } else {
      return;
    }
    // A check cut short by shutdown says nothing about the plugin.
    if (stopping.signal.aborted) return;
    try {
      await opts.registry.recordHealth(p.id, result.ok, result.error);
    } catch (err) {
      opts.logger?.warn({ pluginId: p.id, err: (err as Error).message }, 'could not record a plugin health result');
    }
    try {
      await opts.onResult(p.id, result.ok, result.error);
    } catch (err) {
      opts.logger?.warn({ pluginId: p.id, err: (err as Error).message }, 'plugin health result handler failed');
    }
  };

  const run = async (): Promise<void> => {
    let plugins: InstalledPlugin[];
    try {
      plugins = (await opts.registry.list()).filter((p) => p.runnable && hasHealthCheck(p));
    } catch (err) {
      opts.logger?.warn({ err: (err as Error).message }, 'plugin health checks: could not list plugins');
      return;
    }
    let next = 0;
    const worker = async () => {
      while (next < plugins.length && !stopping.signal.aborted) await checkOne(plugins[next++]);
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, plugins.length) }, worker));
  };

  const runOnce = (): Promise<void> => {
    if (!running) running = run().finally(() => { running = null; });
    return running;
  };

  const schedule = () => {
    if (stopping.signal.aborted) return;
    timer = setTimeout(() => {
      timer = null;
      void runOnce().then(schedule);
    }, Math.max(1, opts.intervalMs()));
    timer.unref();
  };
  schedule();

  return {
    runOnce,
    async stop() {
      stopping.abort();
      if (timer) clearTimeout(timer);
      timer = null;
      await running;
    },
  };
}

export function hasHealthCheck(p: Pick<InstalledPlugin, 'manifest'>): boolean {
  const e = p.manifest.entry;
  return e.protocol === 'http' ? e.health_endpoint !== null : e.health_cmd !== null;
}

/** GET `url` once; 2xx within the timeout is healthy. Never throws. */
export async function checkHttpHealth(
  url: string,
  o: { allowPrivate: boolean; resolver: Pick<DnsResolver, 'resolve4' | 'resolve6'>; timeoutMs: number; signal?: AbortSignal },
): Promise<HealthResult> {
  const controller = new AbortController();
  const onStop = () => controller.abort();
  o.signal?.addEventListener('abort', onStop, { once: true });
  const timer = setTimeout(() => controller.abort(), o.timeoutMs);
  const timeoutError = () => ({ ok: false, error: `no answer within ${o.timeoutMs} ms` });
  try {
    const u = new URL(url);
    const host = bareHost(u.hostname);
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
    });
    aborted.catch(() => undefined);
    let pinned;
    try {
      pinned = await Promise.race([
        resolveEgress(o.resolver as DnsResolver, host, o.allowPrivate, 'private endpoints are not allowed for this plugin'),
        aborted,
      ]);
    } catch (err) {
      return controller.signal.aborted ? timeoutError() : { ok: false, error: bound((err as Error).message) };
    }
    const { mod, options } = pinnedPostOptions(u, host, pinned, controller.signal);
    options.method = 'GET';
    options.headers = { Accept: 'application/json, text/plain;q=0.9, */*;q=0.5' };
    return await new Promise<HealthResult>((resolve) => {
      const req = mod.request(options, (res) => {
        const status = res.statusCode ?? 0;
        // Only the status matters; the body is not read.
        res.destroy();
        resolve(status >= 200 && status < 300 ? { ok: true, error: null } : { ok: false, error: `HTTP ${status} from the health endpoint` });
      });
      req.on('error', (err) => resolve(controller.signal.aborted ? timeoutError() : { ok: false, error: bound(err.message) }));
      req.end();
    });
  } catch (err) {
    return { ok: false, error: bound((err as Error).message) };
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onStop);
  }
}

/** Runs `command` in `cwd`; exit 0 within the timeout is healthy. Never throws. */
export function checkCommandHealth(
  command: readonly string[], cwd: string, o: { timeoutMs: number; signal?: AbortSignal },
): Promise<HealthResult> {
  return new Promise<HealthResult>((resolve) => {
    let stderr = Buffer.alloc(0);
    let timedOut = false;
    let settled = false;
    const child = spawn(command[0], command.slice(1), {
      cwd,
      env: scriptEnvironment(cwd),
      stdio: ['ignore', 'ignore', 'pipe'],
      // Own process group, so the timeout reaches whatever the check started.
      detached: true,
    });
    const kill = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const finish = (r: HealthResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onStop);
      kill();
      resolve(r);
    };
    const onStop = () => {
      timedOut = true;
      kill();
    };
    const timer = setTimeout(onStop, o.timeoutMs);
    o.signal?.addEventListener('abort', onStop, { once: true });
    child.stderr.on('data', (c: Buffer) => {
      stderr = Buffer.concat([stderr, c]);
      if (stderr.length > STDERR_TAIL_BYTES) stderr = stderr.subarray(stderr.length - STDERR_TAIL_BYTES);
    });
    child.on('error', (err) => finish({ ok: false, error: bound(`health_cmd could not start: ${err.message}`) }));
    child.on('close', (code, signal) => {
      if (timedOut) return finish({ ok: false, error: `health_cmd did not finish within ${o.timeoutMs} ms` });
      if (code === 0) return finish({ ok: true, error: null });
      const tail = stderr.toString('utf8').trim().split('\n').pop() ?? '';
      const how = code !== null ? `exited with status ${code}` : `was killed by ${signal}`;
      finish({ ok: false, error: bound(`health_cmd ${how}${tail ? `: ${tail}` : ''}`) });
    });
  });
}

function bound(message: string): string {
  return message.length > MAX_ERROR_CHARS ? message.slice(0, MAX_ERROR_CHARS) : message;
}
