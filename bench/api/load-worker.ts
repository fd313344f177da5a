/**
 * One autocannon run in a worker thread (started by load.ts): the load generator must not share an
 * event loop with the API server it measures, or the server's latency would include the client's
 * work. Paths are drawn from `paths` at random (seeded) for every request.
 *
 * Latency percentiles are computed here from every response's own time (autocannon's 'response'
 * event), because autocannon's summary has no p95; autocannon's counters give requests/s, errors
 * and non-2xx answers.
 */
import { parentPort, workerData } from 'node:worker_threads';
import autocannon from 'autocannon';
import { prng } from './messages.js';

export interface LoadJob {
  url: string;
  paths: string[];
  token: string;
  connections: number;
  durationSeconds: number;
  seed: number;
}

export interface LoadResult {
  requests: number;
  requestsPerSecond: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCounts: Record<string, number>;
  /** Mean response size (headers and body), bytes. */
  meanResponseBytes: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  // Nearest-rank definition: the smallest value with at least p % of the samples at or below it.
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

async function run(job: LoadJob): Promise<LoadResult> {
  const random = prng(job.seed);
  const latencies: number[] = [];
  let responseBytes = 0;
  const statusCounts: Record<string, number> = {};
  const instance = autocannon({
    url: job.url,
    connections: job.connections,
    duration: job.durationSeconds,
    timeout: 30,
    headers: { authorization: `Bearer ${job.token}`, accept: 'application/json' },
    requests: [
      {
        method: 'GET',
        setupRequest: (req) => ({ ...req, path: job.paths[Math.floor(random() * job.paths.length)] }),
      },
    ],
  });
  instance.on('response', (_client: unknown, statusCode: number, bytes: number, responseTime: number) => {
    latencies.push(responseTime);
    responseBytes += bytes;
    statusCounts[statusCode] = (statusCounts[statusCode] ?? 0) + 1;
  });
  const result = await instance;
  const sorted = Float64Array.from(latencies).sort();
  return {
    requests: latencies.length,
    requestsPerSecond: latencies.length / result.duration,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    statusCounts,
    meanResponseBytes: latencies.length ? responseBytes / latencies.length : 0,
  };
}

if (parentPort) {
  run(workerData as LoadJob).then(
    (r) => parentPort!.postMessage({ ok: true, result: r }),
    (err: unknown) => parentPort!.postMessage({ ok: false, error: String((err as Error)?.stack ?? err) }),
  );
}
