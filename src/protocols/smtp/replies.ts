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
  GOODBYE: r(221, '2.0.0', 'Bye'),
  STARTTLS_READY: r(220, '2.0.0', 'Ready to start TLS'),
  CHUNK_RECEIVED: r(250, '2.0.0', 'Chunk received'),
  // RFC 5321 §3.5.3: VRFY answered without revealing whether a mailbox exists.
  CANNOT_VRFY: r(252, '2.0.0', 'Cannot VRFY user, but will accept message and attempt delivery'),
  HELP: r(214, '2.0.0', 'See RFC 5321; commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH'),

  // Intermediate replies: RFC 3463 §3.1 defines enhanced codes only for the classes 2, 4 and 5,
  // so a 3xx reply carries none (empty `enhanced`).
  START_DATA: r(354, '', 'End data with <CR><LF>.<CR><LF>'),

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
  COMMAND_UNRECOGNIZED: r(500, '5.5.1', 'Command unrecognized'),
  COMMAND_NOT_IMPLEMENTED: r(502, '5.5.1', 'Command not implemented'),
  SENDER_BAD_SYNTAX: r(501, '5.1.7', 'Bad sender address syntax'),
  RCPT_PATH_SYNTAX: r(501, '5.1.3', 'Bad recipient address syntax'),
  PARAMETER_UNSUPPORTED: r(555, '5.5.4', 'Unsupported parameter'),
  // RFC 6531 §3.5: a non-ASCII address in a transaction that did not ask for SMTPUTF8.
  UTF8_REQUIRED: r(553, '5.6.7', 'Non-ASCII address requires SMTPUTF8'),
  EHLO_REQUIRED: r(503, '5.5.1', 'Send EHLO or HELO first'),
  NESTED_MAIL: r(503, '5.5.1', 'Sender already specified'),
  NEED_MAIL: r(503, '5.5.1', 'Need MAIL command first'),
  // RFC 5321 §3.3: DATA when every RCPT was refused.
  NO_VALID_RECIPIENTS: r(554, '5.5.1', 'No valid recipients'),
  // RFC 3030 §2: BDAT and DATA cannot be mixed in one transaction.
  DATA_AFTER_BDAT: r(503, '5.5.1', 'DATA cannot follow BDAT in one transaction'),
  TLS_ALREADY_ACTIVE: r(503, '5.5.1', 'TLS already active'),
  // RFC 5321 §4.3.1: the client must wait for the greeting (early talker, see greeting_delay_ms).
  EARLY_TALKER: r(554, '5.5.0', 'Protocol error: sent data before the greeting'),
  BAD_SEQUENCE: r(503, '5.5.1', 'Bad sequence of commands'),
  TOO_MANY_BAD_COMMANDS: r(421, '4.7.0', 'Too many errors, closing connection'),
  COMMAND_TIMEOUT: r(421, '4.4.2', 'Timeout, closing connection'),
  TOO_MANY_CONNECTIONS: r(421, '4.7.0', 'Too many connections from your address, try again later'),

  // Authentication (RFC 4954 §6, RFC 3207)
  AUTH_REQUIRED: r(530, '5.7.0', 'Authentication required'),
  ENCRYPTION_REQUIRED: r(538, '5.7.11', 'Encryption required for requested authentication mechanism'),
  AUTH_FAILED: r(535, '5.7.8', 'Authentication credentials invalid'),
  // RFC 4954 §4: `*` cancels the exchange; a response that is not base64 is a syntax error.
  AUTH_CANCELLED: r(501, '5.0.0', 'Authentication cancelled'),
  AUTH_BAD_BASE64: r(501, '5.5.2', 'Cannot decode the authentication response'),
  AUTH_MECHANISM_UNSUPPORTED: r(504, '5.5.4', 'Unrecognized authentication type'),
  AUTH_NOT_ENABLED: r(503, '5.5.1', 'Authentication not enabled'),
  ALREADY_AUTHENTICATED: r(503, '5.5.1', 'Already authenticated'),
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

/** The reply as a wire line without CRLF, e.g. `550 5.1.1 No such user here` (a 3xx has no enhanced code). */
export function formatReply(reply: SmtpReply): string {
  return reply.enhanced ? `${reply.code} ${reply.enhanced} ${reply.message}` : `${reply.code} ${reply.message}`;
}
