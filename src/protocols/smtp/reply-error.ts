/**
 * Replies from the reply table as smtp-server understands them. The library writes
 * `<err.responseCode> <err.message>` for a handler's error and `250 <message>` for a DATA success,
 * and adds no enhanced status code of its own (its automatic codes are switched off, see
 * docs/adr/0007-smtp-server-library.md), so the message carries the table's enhanced code (RFC 3463)
 * and the line on the wire is exactly the table's line, e.g. `550 5.1.1 No such user here`.
 */
import { formatReply, type SmtpReply } from './replies.js';

/** The text after the basic code: `5.1.1 No such user here`. */
export function replyText(reply: SmtpReply): string {
  return `${reply.enhanced} ${reply.message}`;
}

/** The whole line with CRLF, for replies written directly to a socket (refusals, shutdown). */
export function replyLine(reply: SmtpReply): string {
  return `${formatReply(reply)}\r\n`;
}

export class SmtpReplyError extends Error {
  readonly responseCode: number;
  constructor(readonly reply: SmtpReply) {
    super(replyText(reply));
    this.name = 'SmtpReplyError';
    this.responseCode = reply.code;
  }
}

export function replyError(reply: SmtpReply): SmtpReplyError {
  return new SmtpReplyError(reply);
}
