/**
 * The trace header every SMTP server adds when it accepts a message (RFC 5321 §4.4), e.g.
 *
 *   Received: from mail.example.org ([192.0.2.7])
 *           by mx.example.com with ESMTPS id 3f9c2a1b7d4e
 *           for <alice@example.com>; Sat, 29 Nov 2025 10:00:00 +0000
 *
 * Pure: the caller supplies every value. The HELO name and the recipient come from the client, so
 * they are reduced to characters that cannot break out of the field (no CR/LF injection, SPEC §10)
 * and bounded in length.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** RFC 3848 §2-3 "with" protocol types: S = STARTTLS/TLS, A = authenticated. */
export type TraceProtocol = 'SMTP' | 'ESMTP' | 'ESMTPS' | 'ESMTPA' | 'ESMTPSA';

export interface ReceivedInput {
  /** The HELO/EHLO argument as the client sent it. */
  helo: string;
  remoteAddress: string;
  /** Our host name (the "by" domain). */
  hostname: string;
  protocol: TraceProtocol;
  /** Our id for this message (RFC 5321 §4.4 ID clause), an atom. */
  id: string;
  /** Named only for a single recipient: with several, naming one would leak Bcc recipients (RFC 5321 §7.2). */
  recipient?: string;
  date: Date;
}

/** RFC 1035 §2.3.4: 255 octets are the most a domain name can have; longer HELO text is cut. */
const MAX_HELO = 255;
/** RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets. */
const MAX_PATH = 254;

export function traceProtocol(secure: boolean, authenticated: boolean): TraceProtocol {
  if (authenticated) return secure ? 'ESMTPSA' : 'ESMTPA';
  return secure ? 'ESMTPS' : 'ESMTP';
}

/**
 * The HELO argument reduced to what a domain or address literal can contain (RFC 5321 §4.1.2
 * Domain / address-literal); anything else becomes "_" so the field stays parseable.
 */
export function sanitizeHelo(helo: string): string {
  const cleaned = helo.slice(0, MAX_HELO).replace(/[^A-Za-z0-9.:\-[\]_]/g, '_');
  return cleaned === '' ? 'unknown' : cleaned;
}

/** RFC 5321 §4.1.3 address literal: `[192.0.2.1]` or `[IPv6:2001:db8::1]`; IPv4-mapped IPv6 shown as IPv4. */
export function addressLiteral(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped && isIPv4(mapped[1])) return `[${mapped[1]}]`;
  if (isIPv4(ip)) return `[${ip}]`;
  if (isIPv6(ip)) return `[IPv6:${ip}]`;
  return '[unknown]';
}

/** A mailbox for the FOR clause, or null when it cannot be written safely. */
function forPath(address: string | undefined): string | null {
  if (!address) return null;
  if (address.length > MAX_PATH || /[\s<>()\\";\u0000-\u001f\u007f]/.test(address)) return null;
  return `<${address}>`;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');

/** RFC 5322 §3.3 date-time in UTC, e.g. `Sat, 29 Nov 2025 10:00:00 +0000`. */
export function rfc5322Date(d: Date): string {
  return (
    `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`
  );
}

/** The complete field, folded (RFC 5322 §2.2.3) before each clause, ending with CRLF. */
export function receivedHeader(input: ReceivedInput): string {
  const id = input.id.replace(/[^A-Za-z0-9]/g, '').slice(0, 64) || 'unknown';
  const by = sanitizeHelo(input.hostname);
  const lines = [`Received: from ${sanitizeHelo(input.helo)} (${addressLiteral(input.remoteAddress)})`, `\tby ${by} with ${input.protocol} id ${id}`];
  const path = forPath(input.recipient);
  const date = rfc5322Date(input.date);
  if (path) {
    lines.push(`\tfor ${path}; ${date}`);
  } else {
    lines[lines.length - 1] += ';';
    lines.push(`\t${date}`);
  }
  return `${lines.join('\r\n')}\r\n`;
}
