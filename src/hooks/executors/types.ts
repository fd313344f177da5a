/**
 * The common contract of the two plugin protocols (SPEC §7 "Protocols"): an executor makes one
 * call — the JSON payload out, one JSON reply back — and reports how it went. It does not judge
 * the reply: the hook manager validates the response schema (SPEC §6 "Response / callback"),
 * applies the permissions and feeds the circuit breaker with `ok`/`kind`.
 */

/** Why a call produced no usable reply: `timeout` (wall time / HTTP timeout) or any other `error`. */
export type ExecFailureKind = 'timeout' | 'error';

interface ExecCommon {
  /** Wall time of the whole call, spawn/DNS included, in milliseconds. */
  durationMs: number;
  /** Payload bytes sent (stdin or request body). */
  bytesOut: number;
  /** Reply bytes received (stdout or response body), counted up to the point the call stopped. */
  bytesIn: number;
  /** Script plugins: the last bytes the script wrote to stderr (bounded), for the plugin's log. */
  stderr?: string;
}

export interface ExecSuccess extends ExecCommon {
  ok: true;
  /** The parsed JSON reply, not yet validated. */
  response: unknown;
}

export interface ExecFailure extends ExecCommon {
  ok: false;
  kind: ExecFailureKind;
  /** One line for logs, the API and the hook test endpoint; never contains secrets. */
  message: string;
}

export type ExecResult = ExecSuccess | ExecFailure;

/** SPEC §7: one JSON reply, bounded. A plugin that answers more is broken, not chatty. */
export const MAX_REPLY_BYTES = 1024 * 1024;
