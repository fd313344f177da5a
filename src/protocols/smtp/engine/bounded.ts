/**
 * Waiting with an upper bound: a pipeline call that never settles must not hold a session forever
 * (SPEC §10 "every time bounded"). The late result is ignored; the caller answers 451 4.3.0.
 */
export class TimeoutError extends Error {
  readonly code = 'SMTP_TIMEOUT';
  constructor(what: string, ms: number) {
    super(`${what} did not finish within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

export function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
  });
  // The losing promise's rejection is handled here so it never surfaces as unhandled.
  promise.catch(() => {});
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
