/**
 * Every SMTP reply MaiRust sends, in one table (SPEC §2 "Error codes"): basic code (RFC 5321 §4.2)
 * plus enhanced status code (RFC 3463, registry in RFC 5248). Code elsewhere refers to replies by
 * key, so wording and codes are changed in one place. Engineers may ADD entries; keep keys stable.
 */
export interface SmtpReply {
  code: number;
  enhanced: string;
  message: string;
}

function r(code: number, enhanced: string, message: string): SmtpReply {
  return Object.freeze({ code, enhanced, message });
}

export const REPLIES = Object.freeze({
  // Success
  OK: r(250, '2.0.0', 'OK'),
  SENDER_OK: r(250, '2.1.0', 'Sender OK'),
  RECIPIENT_OK: r(250, '2.1.5', 'Recipient OK'),
  MESSAGE_ACCEPTED: r(250, '2.0.0', 'Message accepted for delivery'),
  AUTH_OK: r(235, '2.7.0', 'Authentication successful'),

  // Recipients and relaying (SPEC §3.1 step 2)
  RCPT_UNKNOWN_USER: r(550, '5.1.1', 'No such user here'),
  RELAY_DENIED: r(554, '5.7.1', 'Relay access denied'),
  TOO_MANY_RECIPIENTS: r(452, '4.5.3', 'Too many recipients'),
  MAILBOX_FULL: r(452, '4.2.2', 'Mailbox full, try again later'),
  MAILBOX_DISABLED: r(550, '5.2.1', 'Mailbox disabled, not accepting messages'),
  RCPT_BAD_SYNTAX: r(553, '5.1.3', 'Bad destination mailbox address syntax'),

  // Size and syntax (RFC 1870 for SIZE)
  MESSAGE_TOO_BIG: r(552, '5.3.4', 'Message size exceeds fixed maximum message size'),
  HEADER_TOO_BIG: r(552, '5.3.4', 'Message header section exceeds the maximum size'),
  LINE_TOO_LONG: r(500, '5.5.2', 'Line too long'),
  SYNTAX_ERROR: r(501, '5.5.4', 'Syntax error in parameters or arguments'),
  BAD_SEQUENCE: r(503, '5.5.1', 'Bad sequence of commands'),
  TOO_MANY_BAD_COMMANDS: r(421, '4.7.0', 'Too many errors, closing connection'),
  COMMAND_TIMEOUT: r(421, '4.4.2', 'Timeout, closing connection'),
  TOO_MANY_CONNECTIONS: r(421, '4.7.0', 'Too many connections from your address, try again later'),

  // Authentication (RFC 4954 §6, RFC 3207)
  AUTH_REQUIRED: r(530, '5.7.0', 'Authentication required'),
  ENCRYPTION_REQUIRED: r(538, '5.7.11', 'Encryption required for requested authentication mechanism'),
  AUTH_FAILED: r(535, '5.7.8', 'Authentication credentials invalid'),
  AUTH_LOCKED: r(454, '4.7.0', 'Temporary authentication failure, try again later'),
  SENDER_NOT_OWNED: r(553, '5.7.1', 'Sender address not owned by the authenticated user'),

  // Policy and content
  DMARC_REJECT: r(550, '5.7.1', 'Rejected by DMARC policy'),
  SPAM_REJECT: r(550, '5.7.1', 'Message rejected as spam'),
  SPAM_SOFT_REJECT: r(451, '4.7.1', 'Message deferred, try again later'),
  SENDING_SUSPENDED: r(550, '5.7.1', 'Sending from this account is temporarily suspended. Please contact your administrator.'),

  // Our own trouble: never lose mail, ask the client to retry (SPEC §4 failure behaviour)
  TEMP_LOCAL_ERROR: r(451, '4.3.0', 'Temporary local problem, please try again later'),
  SHUTTING_DOWN: r(421, '4.3.2', 'Service shutting down, try again later'),
} satisfies Record<string, SmtpReply>);

export type ReplyKey = keyof typeof REPLIES;

/** The reply as a wire line without CRLF, e.g. `550 5.1.1 No such user here`. */
export function formatReply(reply: SmtpReply): string {
  return `${reply.code} ${reply.enhanced} ${reply.message}`;
}
