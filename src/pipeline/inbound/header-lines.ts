/**
 * Checks header text that other components hand to the pipeline for prepending (the
 * Authentication-Results field from email authentication, X-Spam-* fields from the spam check),
 * so nothing they produce can corrupt the stored message or inject fields (SPEC §10): every line
 * ends with CRLF, is at most 998 characters (RFC 5322 §2.1.1), holds no other control characters,
 * and the text is a sequence of complete fields (`Name: value` plus folded continuation lines,
 * RFC 5322 §2.2.3).
 */

/** RFC 5322 §2.1.1: each line MUST be no more than 998 characters, excluding the CRLF. */
export const MAX_HEADER_LINE = 998;
/** Upper bound on what one component may prepend (a few fields; rspamd symbols can be many). */
export const MAX_PREPENDED_BYTES = 64 * 1024;

const FIELD_START = /^[\x21-\x39\x3b-\x7e]+:/;
// Controls other than HTAB (allowed in folding white space); CR and LF are handled as line ends.
const BAD_CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

export class InvalidHeaderTextError extends Error {
  constructor(reason: string) {
    super(`invalid header text: ${reason}`);
    this.name = 'InvalidHeaderTextError';
  }
}

/**
 * Returns `text` normalised to CRLF line ends (a missing final CRLF is added; bare LF is turned
 * into CRLF), or throws InvalidHeaderTextError. Empty text is returned as ''.
 */
export function checkHeaderText(text: string): string {
  if (text === '') return '';
  if (Buffer.byteLength(text, 'utf8') > MAX_PREPENDED_BYTES) throw new InvalidHeaderTextError(`longer than ${MAX_PREPENDED_BYTES} bytes`);
  const body = text.replace(/\r?\n$/, '');
  const lines = body.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.includes('\r')) throw new InvalidHeaderTextError('bare CR');
    if (BAD_CONTROL.test(line)) throw new InvalidHeaderTextError('control character');
    if (line.length > MAX_HEADER_LINE) throw new InvalidHeaderTextError(`line longer than ${MAX_HEADER_LINE} characters`);
    const continuation = line.startsWith(' ') || line.startsWith('\t');
    if (i === 0 ? !FIELD_START.test(line) : !continuation && !FIELD_START.test(line)) {
      throw new InvalidHeaderTextError(`line ${i + 1} is neither a field nor a continuation`);
    }
    if (continuation && line.trim() === '') throw new InvalidHeaderTextError('whitespace-only continuation line');
  });
  return `${lines.join('\r\n')}\r\n`;
}

/** The value of a single field (`Name: value` with folds) unfolded, e.g. for the auth_results column. */
export function unfoldedValue(field: string): string {
  const colon = field.indexOf(':');
  return field
    .slice(colon + 1)
    .replace(/\r?\n(?=[ \t])/g, '')
    .replace(/\r?\n$/, '')
    .trim();
}
