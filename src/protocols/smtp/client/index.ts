/**
 * MaiRust's outbound SMTP client (SPEC §3.3, §5.2): pure reply parsing and DATA transparency, one
 * connection's conversation, and the pool the delivery worker sends through.
 */
export { createSmtpClientPool, type SmtpClientPoolOptions } from './pool.js';
export { ClientFailure, SmtpClientConnection, connectionKey, sendOverNewConnection } from './session.js';
export {
  MAX_REPLY_LINE_BYTES,
  MAX_REPLY_LINES,
  ReplyParser,
  ReplyProtocolError,
  parseEhlo,
  noCapabilities,
  type ParsedReply,
  type ServerCapabilities,
} from './reply-parser.js';
export { DotStuffTransform, DotStuffer, dotStuff } from './dot-stuff.js';
export { MAX_TRANSCRIPT_LINES, Transcript, redactCommand } from './transcript.js';
