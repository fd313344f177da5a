/**
 * Every POP3 status line MaiRust sends, in one table, so wording and response codes change in one
 * place. Lines are given without CRLF; the session adds it.
 *
 * Response codes (RFC 2449 §8, RFC 3206), announced with CAPA RESP-CODES and AUTH-RESP-CODE:
 * - `[AUTH]`: the credentials were wrong (the client may ask the user for a new password);
 * - `[SYS/TEMP]`: a temporary problem on our side (lockout, database or blob store down, shutdown);
 *   the client should try again later and not ask for a new password;
 * - `[SYS/PERM]`: a permanent problem the user cannot fix by retrying or retyping the password
 *   (no mailbox, plaintext login refused);
 * - `[IN-USE]`: the maildrop is locked by another POP3 session (RFC 2449 §8.1.1).
 */

export const REPLIES = Object.freeze({
  // Session
  /** RFC 1939 §4; the `<…>` timestamp is the APOP banner form (APOP itself is not supported). */
  greeting: (timestamp: string) => `+OK MaiRust POP3 server ready ${timestamp}`,
  OK: '+OK',
  CAPA: '+OK Capability list follows',
  SIGN_OFF: '+OK MaiRust POP3 server signing off',
  signOffWithMessages: (left: number) => `+OK MaiRust POP3 server signing off (${left === 0 ? 'maildrop empty' : `${left} messages left`})`,

  // Errors of the command line (count as bad commands)
  UNKNOWN_COMMAND: '-ERR Unknown command',
  SYNTAX_ERROR: '-ERR Syntax error',
  BAD_MESSAGE_NUMBER: '-ERR Invalid message number',
  LINE_TOO_LONG: '-ERR Line too long',
  WRONG_STATE: '-ERR Command not valid in this state',
  TOO_MANY_BAD_COMMANDS: '-ERR Too many bad commands, closing connection',

  // Connection-level limits
  TOO_MANY_CONNECTIONS: '-ERR [SYS/TEMP] Too many connections from your address, try again later',
  IDLE_TIMEOUT: '-ERR Autologout: idle for too long',
  SHUTTING_DOWN: '-ERR [SYS/TEMP] Server shutting down, try again later',
  TEMP_ERROR: '-ERR [SYS/TEMP] Temporary server error, try again later',

  // STLS (RFC 2595 §4)
  STLS_READY: '+OK Begin TLS negotiation',
  TLS_ALREADY_ACTIVE: '-ERR TLS already active',
  TLS_NOT_AVAILABLE: '-ERR TLS not available',

  // Authorization (RFC 1939 §7, RFC 5034, RFC 3206)
  TLS_REQUIRED: '-ERR [SYS/PERM] TLS required: use STLS first',
  USER_OK: '+OK Send your password',
  USER_FIRST: '-ERR Send USER first',
  APOP_NOT_SUPPORTED: '-ERR APOP not supported, use USER/PASS or AUTH PLAIN',
  AUTH_MECHANISMS: '+OK SASL mechanisms follow',
  AUTH_CONTINUE: '+ ',
  AUTH_MECHANISM_UNSUPPORTED: '-ERR Unsupported authentication mechanism',
  AUTH_CANCELLED: '-ERR Authentication cancelled',
  AUTH_BAD_RESPONSE: '-ERR Cannot decode the authentication response',
  AUTH_FAILED: '-ERR [AUTH] Authentication failed',
  AUTH_LOCKED: '-ERR [SYS/TEMP] Too many failed logins, try again later',
  AUTH_UNAVAILABLE: '-ERR [SYS/TEMP] Authentication temporarily unavailable, try again later',
  NO_MAILBOX: '-ERR [SYS/PERM] This account has no mailbox',
  IN_USE: '-ERR [IN-USE] Mailbox already in use by another POP3 session',
  MAILDROP_UNAVAILABLE: '-ERR [SYS/TEMP] Cannot open the mailbox, try again later',
  loggedIn: (count: number, octets: number) => `+OK Mailbox open, ${count} messages (${octets} octets)`,

  // Transaction (RFC 1939 §5)
  stat: (count: number, octets: number) => `+OK ${count} ${octets}`,
  scanListing: (count: number, octets: number) => `+OK ${count} messages (${octets} octets)`,
  scanLine: (msg: number, octets: number) => `+OK ${msg} ${octets}`,
  UIDL_LISTING: '+OK Unique-ID listing follows',
  uidlLine: (msg: number, uid: string) => `+OK ${msg} ${uid}`,
  NO_SUCH_MESSAGE: '-ERR No such message',
  message: (octets: number) => `+OK ${octets} octets`,
  TOP: '+OK Top of message follows',
  MESSAGE_GONE: '-ERR Message is no longer available',
  CONTENT_UNAVAILABLE: '-ERR [SYS/TEMP] Message content temporarily unavailable, try again later',
  deleted: (msg: number) => `+OK Message ${msg} deleted`,
  reset: (count: number, octets: number) => `+OK Maildrop has ${count} messages (${octets} octets)`,

  // UPDATE (RFC 1939 §6)
  UPDATE_FAILED: '-ERR [SYS/TEMP] Could not remove the deleted messages; nothing was deleted',
});

