/**
 * Errors a job handler may see as its abort reason, and how any thrown value becomes the text stored
 * in `queue_jobs.last_error` and in log lines.
 */

/** Abort reason when a heartbeat finds the job's lease gone: whatever the handler does next is void. */
export class LeaseLostError extends Error {
  constructor(jobId: string) {
    super(`lease on job ${jobId} was lost (it expired and another worker took the job, or the job was deleted)`);
    this.name = 'LeaseLostError';
  }
}

/** Abort reason when `stop()` ran out of drain time and handed the job back for another worker. */
export class QueueStoppingError extends Error {
  constructor() {
    super('the queue is stopping: the job was handed back for another worker');
    this.name = 'QueueStoppingError';
  }
}

/** Handlers may throw anything; operators read the message, so a bare Error falls back to its name. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

/**
 * A handler throws an error with `permanent: true` when retrying cannot help (a refused webhook
 * address, a 5xx from a mail server): the job goes to the dead letter at once instead of using up
 * its remaining attempts.
 */
export function isPermanentError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { permanent?: unknown }).permanent === true;
}
