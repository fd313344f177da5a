/**
 * Runs one load case in a worker thread (load-worker.ts) and returns its figures. Module hooks
 * registered with `--import tsx` do not carry over into worker threads on Node 20, so the worker
 * starts from a small bootstrap that registers tsx's loader before importing the TypeScript file.
 */
import { Worker } from 'node:worker_threads';
import type { LoadJob, LoadResult } from './load-worker.js';

export type { LoadJob, LoadResult };

export function runLoad(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const tsx = import.meta.resolve('tsx/esm/api');
    const file = new URL('./load-worker.ts', import.meta.url).href;
    const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(file)}); });`;
    const worker = new Worker(bootstrap, { eval: true, workerData: job });
    let settled = false;
    worker.once('message', (msg: { ok: true; result: LoadResult } | { ok: false; error: string }) => {
      settled = true;
      if (msg.ok) resolve(msg.result);
      else reject(new Error(`load worker failed: ${msg.error}`));
      void worker.terminate();
    });
    worker.once('error', (err) => {
      if (!settled) reject(err);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`load worker exited with code ${code} before reporting`));
    });
  });
}
