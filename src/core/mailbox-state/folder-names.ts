/**
 * Folder names: validation and normalisation (pure).
 *
 * Names are stored as UTF-8 with "/" as the hierarchy delimiter; the IMAP layer converts to and
 * from modified UTF-7 for IMAP4rev1 clients (RFC 9051 §5.1.3).
 */
import { InvalidFolderNameError } from './errors.js';
import { MAX_FOLDER_DEPTH, MAX_FOLDER_NAME_BYTES } from './limits.js';

export const DELIMITER = '/';
export const INBOX = 'INBOX';

// C0 controls, DEL and C1 controls: invisible, and CTL is excluded from IMAP atoms (RFC 9051 §9).
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Validates a name and returns its canonical form: Unicode NFC (RFC 6855 §3 asks for NFC names)
 * and "INBOX" in upper case when it is the first level — INBOX is case-insensitive
 * (RFC 9051 §5.1), so "inbox/Work" and "INBOX/Work" are the same folder.
 */
export function normaliseFolderName(input: string): string {
  if (typeof input !== 'string' || input.length === 0) throw new InvalidFolderNameError(String(input ?? ''), 'empty');
  if (LONE_SURROGATE.test(input)) throw new InvalidFolderNameError(input, 'not valid Unicode');
  const name = input.normalize('NFC');
  if (Buffer.byteLength(name, 'utf8') > MAX_FOLDER_NAME_BYTES) {
    throw new InvalidFolderNameError(name, `longer than ${MAX_FOLDER_NAME_BYTES} bytes (UTF-8)`);
  }
  if (CONTROL.test(name)) throw new InvalidFolderNameError(name, 'control characters are not allowed');
  // "*" and "%" are LIST wildcards (RFC 9051 §6.3.9): a folder named with them could not be listed exactly.
  if (/[*%]/.test(name)) throw new InvalidFolderNameError(name, '"*" and "%" are not allowed (IMAP LIST wildcards)');
  if (name.startsWith(DELIMITER) || name.endsWith(DELIMITER)) {
    throw new InvalidFolderNameError(name, 'must not start or end with the hierarchy delimiter "/"');
  }
  const segments = name.split(DELIMITER);
  if (segments.some((s) => s.length === 0)) throw new InvalidFolderNameError(name, 'empty hierarchy level ("//")');
  if (segments.length > MAX_FOLDER_DEPTH) {
    throw new InvalidFolderNameError(name, `more than ${MAX_FOLDER_DEPTH} hierarchy levels`);
  }
  if (segments[0].toUpperCase() === INBOX) segments[0] = INBOX;
  return segments.join(DELIMITER);
}

export function isInbox(name: string): boolean {
  return name.toUpperCase() === INBOX;
}

/** "a/b/c" → ["a", "a/b"]: the superior names RFC 9051 §6.3.4 says a server SHOULD create. */
export function superiorNames(name: string): string[] {
  const segments = name.split(DELIMITER);
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) out.push(segments.slice(0, i).join(DELIMITER));
  return out;
}

/** True when `name` lies below `parent` in the hierarchy ("a/b" is inferior to "a", "ab" is not). */
export function isInferior(name: string, parent: string): boolean {
  return name.startsWith(parent + DELIMITER);
}

/**
 * Name given to a deleted folder's tombstone row. "%" can never appear in a valid name, so the
 * tombstone cannot collide with a live folder and frees the original name for re-creation.
 */
export function tombstoneName(folderId: string): string {
  return `%deleted%${DELIMITER}${folderId}`;
}
