/**
 * Fixed texts of the session's own responses, in one place so the tests can assert them exactly and
 * the wording stays consistent. Response codes are RFC 5530 / RFC 9051 §7.1.
 */
export const TEXT = {
  GREETING: 'MaiRust IMAP4rev2 server ready',
  TOO_MANY_CONNECTIONS: 'Too many connections from your address',
  SHUTTING_DOWN: 'Server shutting down',
  AUTOLOGOUT: 'Autologout; idle for too long',
  TOO_MANY_BAD: 'Too many invalid commands',
  LOGOUT: 'MaiRust IMAP4rev2 server logging out',
  INTERNAL: 'Internal server error',
  UNKNOWN_COMMAND: 'Unknown command',
  NOT_LOGGED_IN: 'Not logged in',
  ALREADY_LOGGED_IN: 'Already logged in',
  NO_MAILBOX_SELECTED: 'No mailbox selected',
  WRONG_STATE: 'Command not valid in this state',
  LITERAL_READY: 'Ready for literal data',
  SERVERBUG: 'Internal error; the problem was logged',
  UNAVAILABLE: 'Mail storage is temporarily unavailable; try again later',
  MAILBOX_GONE: 'Selected mailbox was deleted, have to disconnect',
} as const;
