/**
 * Errors → tagged responses, for every command module (shared helper, not a command).
 *
 * - Mailbox-state errors map by their stable `code` (src/core/mailbox-state/errors.ts) to the
 *   response codes of RFC 9051 §7.1 and RFC 5530: NONEXISTENT, ALREADYEXISTS, HASCHILDREN, CANNOT,
 *   OVERQUOTA, LIMIT, USEATTR.
 * - Syntax errors found by a grammar helper and bad sequence numbers are `BAD` (RFC 9051 §9).
 * - A database or blob store that cannot be reached is `NO [UNAVAILABLE]` (RFC 5530 §3): try later.
 * - Anything else is a bug: logged with its stack, answered `NO [SERVERBUG]` without details — a
 *   stack trace or SQL text never reaches the client.
 */
import type { Logger } from 'pino';
import type { MailboxStateError, MailboxStateErrorCode } from '../../../core/mailbox-state/errors.js';
import { LineRejected, SessionClosedError } from '../session/errors.js';
import { TEXT } from '../session/replies.js';
import { BadSequenceError, ImapSyntaxError, type CommandResult } from '../session/types.js';

const STATE_ERRORS: Record<MailboxStateErrorCode, (err: MailboxStateError) => CommandResult> = {
  NOT_FOUND: () => ({ status: 'NO', code: 'NONEXISTENT', text: 'No such mailbox' }),
  QUOTA_EXCEEDED: () => ({ status: 'NO', code: 'OVERQUOTA', text: 'Quota exceeded' }),
  INVALID_FOLDER_NAME: () => ({ status: 'NO', code: 'CANNOT', text: 'Invalid mailbox name' }),
  FOLDER_EXISTS: () => ({ status: 'NO', code: 'ALREADYEXISTS', text: 'Mailbox already exists' }),
  FOLDER_HAS_CHILDREN: () => ({ status: 'NO', code: 'HASCHILDREN', text: 'Mailbox has children; delete them first' }),
  FOLDER_PROTECTED: () => ({ status: 'NO', code: 'CANNOT', text: 'This mailbox cannot be deleted or renamed' }),
  INVALID_FLAG: () => ({ status: 'NO', code: 'CANNOT', text: 'Invalid flag' }),
  INVALID_SPECIAL_USE: () => ({ status: 'NO', code: 'USEATTR', text: 'Unsupported special-use attribute' }),
  LIMIT_EXCEEDED: (err) => ({ status: 'NO', code: 'LIMIT', text: `Limit exceeded: ${(err as Error & { limit?: string }).limit ?? 'server limit'}` }),
};

/** The response for a mailbox-state error, or null when `err` is not one. */
export function mailboxStateResult(err: unknown): CommandResult | null {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== 'string' || !(code in STATE_ERRORS) || !(err instanceof Error)) return null;
  return STATE_ERRORS[code as MailboxStateErrorCode](err as MailboxStateError);
}

/**
 * The response for any error a handler threw; null when nothing is to be answered (the connection
 * is gone).
 */
export function resultForError(err: unknown, log: Logger, command: string): CommandResult | null {
  if (err instanceof SessionClosedError) return null;
  if (err instanceof ImapSyntaxError || err instanceof BadSequenceError || err instanceof LineRejected) {
    return { status: 'BAD', text: err.message };
  }
  if ((err as Error)?.name === 'UnsupportedCharsetError') {
    return { status: 'NO', code: 'BADCHARSET (UTF-8 US-ASCII)', text: 'Unsupported charset' };
  }
  const mapped = mailboxStateResult(err);
  if (mapped) return mapped;
  if (isUnavailable(err)) {
    log.warn({ err: { message: (err as Error).message, code: (err as { code?: unknown }).code }, command }, 'storage unavailable');
    return { status: 'NO', code: 'UNAVAILABLE', text: TEXT.UNAVAILABLE };
  }
  log.error({ err, command }, 'IMAP command failed');
  return { status: 'NO', code: 'SERVERBUG', text: TEXT.SERVERBUG };
}

// Codes of the storage ports (src/store) and of drivers that mean "try again later", not "bug".
const UNAVAILABLE_CODES = new Set([
  'DATABASE_UNAVAILABLE',
  'BLOB_STORE_UNAVAILABLE',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_IOERR',
  'SQLITE_FULL',
  // PostgreSQL: too many connections, admin/crash shutdown, cannot connect now (SQLSTATE classes 53, 57P).
  '53300',
  '57P01',
  '57P02',
  '57P03',
]);

/** True when `err` (or an error it wraps) says a database or blob store cannot be reached. */
export function isUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (UNAVAILABLE_CODES.has(code) || code.startsWith('SQLITE_IOERR') || code.startsWith('08')) return true;
    }
    const message = (e as { message?: unknown }).message;
    if (typeof message === 'string' && /Connection terminated|connection timeout|timeout exceeded when trying to connect/i.test(message)) return true;
  }
  return false;
}
