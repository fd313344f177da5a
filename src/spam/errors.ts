/**
 * Why a check with rspamd failed. The reason is the label of the fallback metric and appears in the
 * warning, so an operator can tell "rspamd is down" from "rspamd is slow" from "rspamd answers
 * something we cannot use".
 */
export type RspamdFailureReason =
  /** Connection refused/reset, DNS failure of the rspamd host, or the request stream failed. */
  | 'unreachable'
  /** No complete answer within `spam.rspamd.timeout_ms`. */
  | 'timeout'
  /** An HTTP status other than 200. */
  | 'http_status'
  /** Not JSON, or JSON without a usable score/action. */
  | 'bad_response'
  /** The answer exceeded `spam.rspamd.max_response_bytes`. */
  | 'too_large'
  /** Not asked: rspamd failed recently (`spam.rspamd.retry_after_ms`). */
  | 'recently_failed';

export class RspamdError extends Error {
  readonly code = 'RSPAMD_FAILED';
  constructor(
    readonly reason: RspamdFailureReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RspamdError';
  }
}
