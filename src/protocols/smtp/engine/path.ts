/**
 * Reverse-path and forward-path syntax (RFC 5321 §4.1.2), extended by SMTPUTF8 (RFC 6531 §3.3):
 * pure functions of a string, so they are unit-tested on their own.
 *
 *   Path       = "<" [ A-d-l ":" ] Mailbox ">"      (the source route A-d-l is accepted and dropped, §C)
 *   Mailbox    = Local-part "@" ( Domain / address-literal )
 *   Local-part = Dot-string / Quoted-string
 *
 * Size limits of RFC 5321 §4.5.3.1: local part 64 octets, domain 255 octets, path 256 octets.
 */
import net from 'node:net';

export interface ParsedMailbox {
  /** The mailbox as written between the angle brackets, source route removed. */
  address: string;
  /** Contains non-ASCII characters: only allowed in a transaction with SMTPUTF8 (RFC 6531 §3.5). */
  utf8: boolean;
}

export const MAX_LOCAL_PART_OCTETS = 64;
export const MAX_DOMAIN_OCTETS = 255;
export const MAX_PATH_OCTETS = 256;

/** atext of RFC 5322 §3.2.3 plus UTF8-non-ascii (RFC 6531 §3.3). */
const ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10FFFF}]+$/u;
/** qtextSMTP / quoted-pairSMTP (RFC 5321 §4.1.2) plus UTF8-non-ascii. */
const QUOTED = /^"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\u{10FFFF}]|\\[\x20-\x7e])*"$/u;
/** sub-domain = Let-dig [Ldh-str]; a U-label (RFC 6531) may hold non-ASCII letters. */
const LABEL = /^[A-Za-z0-9\u0080-\u{10FFFF}](?:[A-Za-z0-9\-\u0080-\u{10FFFF}]*[A-Za-z0-9\u0080-\u{10FFFF}])?$/u;
const NON_ASCII = /[^\x00-\x7f]/;

const octets = (s: string) => Buffer.byteLength(s, 'utf8');

export function isDomain(domain: string): boolean {
  if (domain.length === 0 || octets(domain) > MAX_DOMAIN_OCTETS) return false;
  return domain.split('.').every((label) => octets(label) <= 63 && LABEL.test(label));
}

/** address-literal (RFC 5321 §4.1.3): `[192.0.2.1]`, `[IPv6:2001:db8::1]`, or a tagged general literal. */
export function isAddressLiteral(literal: string): boolean {
  const m = /^\[(.*)\]$/.exec(literal);
  if (!m) return false;
  const inner = m[1];
  if (net.isIPv4(inner)) return true;
  if (/^IPv6:/i.test(inner)) return net.isIPv6(inner.slice(5));
  // General-address-literal = Standardized-tag ":" 1*dcontent
  return /^[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+$/.test(inner);
}

function isLocalPart(local: string): boolean {
  if (local.length === 0 || octets(local) > MAX_LOCAL_PART_OCTETS) return false;
  if (local.startsWith('"')) return QUOTED.test(local);
  return local.split('.').every((atom) => ATOM.test(atom));
}

/** Splits at the `@` that ends the local part (a quoted local part may itself contain `@`). */
function splitMailbox(mailbox: string): [string, string] | null {
  let at: number;
  if (mailbox.startsWith('"')) {
    let i = 1;
    while (i < mailbox.length && mailbox[i] !== '"') i += mailbox[i] === '\\' ? 2 : 1;
    at = i + 1;
    if (mailbox[at] !== '@') return null;
  } else {
    at = mailbox.lastIndexOf('@');
    if (at < 0) return null;
  }
  return [mailbox.slice(0, at), mailbox.slice(at + 1)];
}

export function parseMailbox(mailbox: string): ParsedMailbox | null {
  const parts = splitMailbox(mailbox);
  if (!parts) return null;
  const [local, domain] = parts;
  if (!isLocalPart(local)) return null;
  if (!(domain.startsWith('[') ? isAddressLiteral(domain) : isDomain(domain))) return null;
  return { address: mailbox, utf8: NON_ASCII.test(mailbox) };
}

/** `<...>` with an optional source route; returns the text inside, route removed, or null. */
function unbracket(path: string): string | null {
  if (octets(path) > MAX_PATH_OCTETS + 2 || !path.startsWith('<') || !path.endsWith('>')) return null;
  const inner = path.slice(1, -1);
  // A-d-l = At-domain *( "," At-domain ); At-domain = "@" Domain (RFC 5321 §4.1.2, ignored per Appendix C).
  const route = /^(@[^,:@]+(?:,@[^,:@]+)*):/.exec(inner);
  if (!route) return inner;
  const hops = route[1].split(',').map((hop) => hop.slice(1));
  return hops.every(isDomain) ? inner.slice(route[0].length) : null;
}

/** Reverse-path of MAIL FROM: a mailbox, or null for the null path `<>` (RFC 5321 §4.5.5). */
export function parseReversePath(path: string): { ok: true; mailbox: ParsedMailbox | null } | { ok: false } {
  if (path === '<>') return { ok: true, mailbox: null };
  const inner = unbracket(path);
  const mailbox = inner === null ? null : parseMailbox(inner);
  return mailbox ? { ok: true, mailbox } : { ok: false };
}

/** Forward-path of RCPT TO: a mailbox, or `<Postmaster>` without a domain (RFC 5321 §4.1.1.3). */
export function parseForwardPath(path: string): ParsedMailbox | null {
  if (/^<postmaster>$/i.test(path)) return { address: path.slice(1, -1), utf8: false };
  const inner = unbracket(path);
  return inner === null ? null : parseMailbox(inner);
}
