/**
 * RFC 8601 §5: a receiver MUST remove (or rename) Authentication-Results fields that arrive with
 * a message and carry its own authserv-id, before it adds its own. Otherwise a sender could write
 * `Authentication-Results: mx.ours.example; dkim=pass` and a reader downstream (a filter, a
 * mail client) would believe that we checked it.
 *
 * Pure: it takes the message's header fields (each a complete field, possibly folded, as a
 * string or as mailparser's `{ key, line }`) and returns those to keep, in order. Fields of other
 * names are untouched: ARC-Authentication-Results belong to ARC sets (RFC 8617 §4.1.1) and
 * removing them would break the chain.
 */
import { AUTH_RESULTS_FIELD } from './auth-results.js';
import { authservIdOf } from './auth-results-parser.js';

export type HeaderFieldLike = string | { line: string };

function normaliseHost(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

function textOf(field: HeaderFieldLike): string {
  return typeof field === 'string' ? field : field.line;
}

/** True when `field` is an Authentication-Results field claiming one of `ours` as its authserv-id. */
export function isForgedAuthResults(field: HeaderFieldLike, ours: readonly string[]): boolean {
  const text = textOf(field);
  const colon = text.indexOf(':');
  if (colon < 0) return false;
  if (text.slice(0, colon).trim().toLowerCase() !== AUTH_RESULTS_FIELD.toLowerCase()) return false;
  const id = authservIdOf(text.slice(colon + 1));
  return id !== null && ours.includes(normaliseHost(id));
}

/**
 * The fields to keep: every field except Authentication-Results whose authserv-id is
 * `receiverHostname` (or one of several names, when nodes of a cluster use different ones),
 * compared case-insensitively as DNS names are (RFC 4343).
 */
export function stripForgedAuthResults<T extends HeaderFieldLike>(fields: readonly T[], receiverHostname: string | readonly string[]): T[] {
  const ours = (typeof receiverHostname === 'string' ? [receiverHostname] : [...receiverHostname]).map(normaliseHost).filter((h) => h !== '');
  if (ours.length === 0) return [...fields];
  return fields.filter((f) => !isForgedAuthResults(f, ours));
}
