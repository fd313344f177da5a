/**
 * Liveness and readiness (SPEC §12 "Health"): `/health/live` says the process is serving;
 * `/health/ready` says whether it can do useful work, by checking each dependency (database, blob
 * store, queue) and reporting its latency.
 *
 * Every check is bounded by a timeout: a hung database must make readiness fail quickly, not hang
 * the probe (a load balancer that gets no answer cannot tell "slow" from "dead"). A check that is
 * still running from an earlier probe is joined rather than started again, so a hung dependency
 * and a probe every second cannot pile up unbounded pending pings.
 */
import { scrubCredentials } from './redaction.js';

export type HealthCheck = () => Promise<unknown>;

export interface CheckResult {
  status: 'ok' | 'fail';
  latency_ms: number;
  error?: string;
}

export interface ReadyReport {
  status: 'ok' | 'fail';
  checks: Record<string, CheckResult>;
}

export interface Health {
  live(): { status: 'ok' };
  ready(): Promise<ReadyReport>;
  /**
   * Marks the node as shutting down (SPEC §12 graceful shutdown): readiness fails from now on so
   * load balancers stop sending new work, while liveness stays ok until the process exits.
   */
  setDraining(draining: boolean): void;
}

export interface HealthOptions {
  /** Per-check limit (default 2000 ms). */
  timeoutMs?: number;
}

// Long enough for a useful driver message, short enough that a probe body stays small.
const MAX_ERROR_CHARS = 300;

/**
 * A short, safe description of why a check failed: the message only (never a stack), credentials
 * in URLs masked, bounded in length. Some drivers throw errors with an empty message (pg reports
 * a refused connection to several addresses as an AggregateError), so fall back to inner errors
 * and error codes.
 */
export function summarizeError(err: unknown): string {
  let text = '';
  if (err instanceof Error) {
    text = err.message;
    if (!text && err instanceof AggregateError) text = err.errors.map((e) => summarizeError(e)).join('; ');
    const code = (err as { code?: unknown }).code;
    if (!text && typeof code === 'string') text = code;
    if (!text) text = err.name;
  } else {
    text = String(err);
  }
  text = scrubCredentials(text).replace(/\s+/g, ' ').trim();
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS - 1)}…` : text;
}

function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}

export function createHealth(checks: Record<string, HealthCheck>, opts: HealthOptions = {}): Health {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const inFlight = new Map<string, Promise<unknown>>();
  let draining = false;

  function start(name: string, check: HealthCheck): Promise<unknown> {
    let running = inFlight.get(name);
    if (!running) {
      // Promise.resolve().then(): a check that throws synchronously becomes a rejection.
      running = Promise.resolve().then(check);
      inFlight.set(name, running);
      const clear = () => {
        if (inFlight.get(name) === running) inFlight.delete(name);
      };
      running.then(clear, clear);
    }
    return running;
  }

  async function runOne(name: string, check: HealthCheck): Promise<CheckResult> {
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        start(name, check),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      return { status: 'ok', latency_ms: roundMs(performance.now() - t0) };
    } catch (err) {
      return { status: 'fail', latency_ms: roundMs(performance.now() - t0), error: summarizeError(err) };
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    live: () => ({ status: 'ok' }),
    async ready() {
      const names = Object.keys(checks);
      const results = await Promise.all(names.map((n) => runOne(n, checks[n])));
      const report: ReadyReport = { status: 'ok', checks: {} };
      names.forEach((n, i) => {
        report.checks[n] = results[i];
        if (results[i].status === 'fail') report.status = 'fail';
      });
      if (draining) {
        report.status = 'fail';
        report.checks.shutdown = { status: 'fail', latency_ms: 0, error: 'server is shutting down' };
      }
      return report;
    },
    setDraining(value) {
      draining = value;
    },
  };
}
