/**
 * The folders every mailbox starts with, and the special-use attributes of RFC 6154.
 */
import { InvalidSpecialUseError } from './errors.js';
import { INBOX } from './folder-names.js';

export interface SpecialFolder {
  name: string;
  /** RFC 6154 §2 attribute; INBOX has none (it is special by name, RFC 9051 §5.1). */
  specialUse: string | null;
}

export const SPECIAL_FOLDERS: readonly SpecialFolder[] = Object.freeze([
  { name: INBOX, specialUse: null },
  { name: 'Sent', specialUse: '\\Sent' },
  { name: 'Drafts', specialUse: '\\Drafts' },
  { name: 'Junk', specialUse: '\\Junk' },
  { name: 'Trash', specialUse: '\\Trash' },
  { name: 'Archive', specialUse: '\\Archive' },
]);

/**
 * Attributes a stored folder may carry. \All and \Flagged (RFC 6154 §2) describe virtual folders
 * computed from other folders, which this server does not offer, so they are refused.
 */
export const SPECIAL_USES = ['\\Archive', '\\Drafts', '\\Junk', '\\Sent', '\\Trash'] as const;

const CANONICAL = new Map<string, string>(SPECIAL_USES.map((u) => [u.toLowerCase(), u]));

/** Canonical spelling of a special-use attribute (they are case-insensitive like flags), or null. */
export function normaliseSpecialUse(value: string | null | undefined): string | null {
  if (value === null || value === undefined || value === '') return null;
  const canonical = CANONICAL.get(String(value).toLowerCase());
  if (!canonical) throw new InvalidSpecialUseError(String(value), SPECIAL_USES);
  return canonical;
}
