/**
 * Address utilities for hosted mail: normalising domain names and local parts into the one form
 * stored in the database and used for every lookup (mailboxes, aliases, user logins).
 *
 * Pure functions; every rejection is a ValidationError whose message says which rule failed.
 */
import { domainToASCII } from 'node:url';
import { ValidationError } from './errors.js';

/** RFC 1035 §2.3.4: a label is at most 63 octets. */
export const MAX_LABEL_OCTETS = 63;
/** RFC 1035 §2.3.4 allows 255 octets on the wire, which is 253 characters in dotted text form. */
export const MAX_DOMAIN_OCTETS = 253;
/** RFC 5321 §4.5.3.1.1: a local part is at most 64 octets. */
export const MAX_LOCAL_PART_OCTETS = 64;
/** RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets, so 254 for the address. */
export const MAX_ADDRESS_OCTETS = 254;

// LDH label (RFC 1035 §2.3.1 as relaxed by RFC 1123 §2.1: a label may start with a digit).
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
// RFC 5322 §3.2.3 atext, extended by RFC 6532 §3.2 with any non-ASCII character (SMTPUTF8, RFC 6531).
const ATEXT = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\u{10FFFF}]+$/u;
// C0/C1 controls and the Unicode line/paragraph separators never belong in an address.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u;

function octets(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function invalid(field: string, value: string, reason: string): ValidationError {
  const shown = value.length > 80 ? `${value.slice(0, 80)}…` : value;
  return new ValidationError(`invalid ${field} "${shown}": ${reason}`, { field, reason });
}

export interface DomainRules {
  /**
   * Accept a single-label name such as `localhost`. Hosted mail domains need at least two labels
   * (RFC 5321 §2.3.5: a fully-qualified domain name); a user's login e-mail need not be hosted.
   */
  allowSingleLabel?: boolean;
}

/**
 * Lower-cases a domain name and converts an IDN to its A-label form (RFC 5890 §2.3.2.1) with the
 * WHATWG/UTS #46 mapping of `node:url`, then checks the LDH rules. One trailing dot (the absolute
 * form of RFC 1034 §3.1) is accepted and removed.
 */
export function normaliseDomain(input: string, field = 'domain', rules: DomainRules = {}): string {
  const raw = input.trim();
  if (raw === '') throw invalid(field, input, 'it is empty');
  if (CONTROL.test(raw)) throw invalid(field, input, 'it contains control characters');
  if (raw.startsWith('[')) throw invalid(field, input, 'address literals cannot be hosted domains');
  const withoutRoot = raw.endsWith('.') ? raw.slice(0, -1) : raw;
  const ascii = domainToASCII(withoutRoot);
  if (ascii === '') throw invalid(field, input, 'it is not a valid (internationalised) domain name');
  if (ascii.length > MAX_DOMAIN_OCTETS) throw invalid(field, input, `it is longer than ${MAX_DOMAIN_OCTETS} characters`);
  const labels = ascii.split('.');
  if (labels.length < 2 && !rules.allowSingleLabel) throw invalid(field, input, 'a mail domain needs at least two labels (e.g. example.com)');
  for (const label of labels) {
    if (label === '') throw invalid(field, input, 'it has an empty label');
    if (label.length > MAX_LABEL_OCTETS) throw invalid(field, input, `label "${label.slice(0, 20)}…" is longer than ${MAX_LABEL_OCTETS} characters`);
    if (!LDH_LABEL.test(label)) {
      throw invalid(field, input, `label "${label}" may only contain letters, digits and inner hyphens`);
    }
    // RFC 5891 §4.2.3.1: "??--" labels are reserved for A-labels (xn--), which domainToASCII has checked.
    if (label.slice(2, 4) === '--' && !label.startsWith('xn--')) {
      throw invalid(field, input, `label "${label}" has hyphens in positions 3 and 4, which are reserved for IDNs`);
    }
  }
  // A dotted quad is an IP address, not a domain (RFC 1123 §2.1: the top-level label is alphabetic).
  if (/^[0-9]+$/.test(labels[labels.length - 1])) throw invalid(field, input, 'the top-level label cannot be numeric');
  return ascii;
}

/**
 * Checks a local part as an RFC 5322 §3.2.3 dot-atom (quoted local parts are not accepted for hosted
 * addresses) of at most 64 octets (RFC 5321 §4.5.3.1.1), and returns its lookup form: NFC
 * (RFC 6532 §3.1) and lower-case. RFC 5321 §2.4 lets a server treat local parts case-insensitively,
 * which is what users expect of hosted mailboxes.
 */
export function normaliseLocalPart(input: string, field = 'local part'): string {
  const lp = input.normalize('NFC');
  if (lp === '') throw invalid(field, input, 'it is empty');
  if (CONTROL.test(lp)) throw invalid(field, input, 'it contains control characters');
  if (lp.startsWith('"')) throw invalid(field, input, 'quoted local parts are not supported for hosted addresses');
  if (octets(lp) > MAX_LOCAL_PART_OCTETS) throw invalid(field, input, `it is longer than ${MAX_LOCAL_PART_OCTETS} octets`);
  if (lp.startsWith('.') || lp.endsWith('.') || lp.includes('..')) {
    throw invalid(field, input, 'dots may not start or end it or appear twice in a row');
  }
  for (const atom of lp.split('.')) {
    if (!ATEXT.test(atom)) throw invalid(field, input, 'it may only contain letters, digits and !#$%&\'*+/=?^_`{|}~- (and dots between them)');
  }
  return lp.toLowerCase();
}

export interface ParsedAddress {
  /** Normalised local part (lookup form). */
  localPart: string;
  /** Normalised domain (A-label, lower-case). */
  domain: string;
  /** `localPart@domain`. */
  address: string;
}

/**
 * Parses `local@domain` (optionally in angle brackets, as in an SMTP path) into its normalised
 * parts. The split is at the last "@" because a dot-atom local part cannot contain one.
 */
export function parseAddress(input: string, field = 'address', rules: DomainRules = {}): ParsedAddress {
  let s = input.trim();
  if (s.startsWith('<') && s.endsWith('>')) s = s.slice(1, -1).trim();
  const at = s.lastIndexOf('@');
  if (at <= 0 || at === s.length - 1) throw invalid(field, input, 'expected local-part@domain');
  const localPart = normaliseLocalPart(s.slice(0, at), `${field} local part`);
  const domain = normaliseDomain(s.slice(at + 1), `${field} domain`, rules);
  const address = `${localPart}@${domain}`;
  if (octets(address) > MAX_ADDRESS_OCTETS) throw invalid(field, input, `it is longer than ${MAX_ADDRESS_OCTETS} octets`);
  return { localPart, domain, address };
}

/** Like parseAddress, but returns null instead of throwing (for lookups of untrusted input). */
export function tryParseAddress(input: string, rules: DomainRules = {}): ParsedAddress | null {
  try {
    return parseAddress(input, 'address', rules);
  } catch {
    return null;
  }
}

/**
 * Plus-addressing ("subaddressing", RFC 5233 §1): `user+tag` delivers to `user` and keeps `tag`
 * (for filing). Only the first "+" separates; a local part starting with "+" has no base.
 */
export function splitSubaddress(localPart: string): { base: string; tag: string } | null {
  const plus = localPart.indexOf('+');
  if (plus <= 0) return null;
  return { base: localPart.slice(0, plus), tag: localPart.slice(plus + 1) };
}
