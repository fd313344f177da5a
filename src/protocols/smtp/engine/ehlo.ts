/**
 * The EHLO reply (RFC 5321 §4.1.1.1): the server name, then one service extension per line.
 * What is offered depends on the listener and the session's TLS state (SPEC §2, §5.1):
 * - STARTTLS (RFC 3207) only while the session is not yet encrypted;
 * - AUTH (RFC 4954) only on submission and only under TLS — never advertised on plaintext;
 * - DSN is not offered yet.
 * Per RFC 2034 §3 the EHLO and HELO replies carry no enhanced status code.
 */
export interface EhloInput {
  hostname: string;
  maxMessageBytes: number;
  secure: boolean;
  /** Submission listener: AUTH is offered under TLS. */
  authAvailable: boolean;
}

export function ehloKeywords(input: EhloInput): string[] {
  const keywords = [
    'PIPELINING', // RFC 2920
    `SIZE ${input.maxMessageBytes}`, // RFC 1870
    '8BITMIME', // RFC 6152
    'SMTPUTF8', // RFC 6531
    'ENHANCEDSTATUSCODES', // RFC 2034
    'CHUNKING', // RFC 3030
  ];
  if (!input.secure) keywords.push('STARTTLS');
  if (input.secure && input.authAvailable) keywords.push('AUTH PLAIN LOGIN');
  return keywords;
}

/** The whole multi-line reply (RFC 5321 §4.2.1: `250-` on every line but the last). */
export function ehloReply(input: EhloInput): string {
  const lines = [input.hostname, ...ehloKeywords(input)];
  return lines.map((line, i) => `250${i === lines.length - 1 ? ' ' : '-'}${line}\r\n`).join('');
}
