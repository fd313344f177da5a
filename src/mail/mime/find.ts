/**
 * Navigating a MIME structure by IMAP part specifiers (RFC 9051 §6.4.5).
 */
import type { MimePart } from './structure.js';

function isMultipart(part: MimePart): boolean {
  return part.contentType.type === 'multipart' && part.children.length > 0;
}

/**
 * The part that an IMAP section part specifier names, or null. '' is the root message. The body of
 * a non-multipart message is its part 1 (so '1' of a single-part message is the root, and '2.1' of
 * a message/rfc822 part '2' holding a single-part message is that message's root); the parts of a
 * message encapsulated in part '2' are '2.1', '2.2'…
 *
 * A multipart whose boundary never occurred has no children and is addressed like a leaf.
 */
export function findPart(root: MimePart, specifier: string): MimePart | null {
  if (specifier === '') return root;
  if (!/^[1-9]\d{0,8}(\.[1-9]\d{0,8})*$/.test(specifier)) return null;
  const numbers = specifier.split('.').map(Number);
  // `scope` is a message (the root or an encapsulated one) or a multipart whose parts the next number picks.
  let scope: MimePart = root;
  let current: MimePart | null = null;
  for (const n of numbers) {
    if (current !== null) {
      if (current.message !== null) scope = current.message;
      else if (isMultipart(current)) scope = current;
      else return null;
    }
    if (isMultipart(scope)) current = scope.children[n - 1] ?? null;
    else current = n === 1 ? scope : null;
    if (current === null) return null;
  }
  return current;
}

/** Every part, depth first in document order, encapsulated messages' roots included. */
export function listParts(root: MimePart): MimePart[] {
  const out: MimePart[] = [];
  const stack: MimePart[] = [root];
  while (stack.length > 0) {
    const part = stack.pop()!;
    out.push(part);
    if (part.message) stack.push(part.message);
    for (let i = part.children.length - 1; i >= 0; i--) stack.push(part.children[i]);
  }
  return out;
}
