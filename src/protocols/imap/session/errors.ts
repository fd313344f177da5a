/** Errors the session raises into command handlers (mapped to responses in ../commands/_errors.ts). */

/** The connection closed while a handler waited for the client (IDLE, AUTHENTICATE): no response. */
export class SessionClosedError extends Error {
  constructor() {
    super('the IMAP connection closed');
    this.name = 'SessionClosedError';
  }
}

/** The client's line for readLine was unusable (over-long, …): the command answers BAD with this text. */
export class LineRejected extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LineRejected';
  }
}
