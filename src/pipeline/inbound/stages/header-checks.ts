/**
 * Stage `header-checks` (SPEC §3.1 step 3, §3.2 step 1): reads the header section once and
 *  - marks Authentication-Results fields that claim our authserv-id for removal (RFC 8601 §5:
 *    a receiver MUST remove or rename them, or a sender could forge our verdict);
 *  - on submission, requires every `From:` address to be owned by the authenticated user
 *    (553 5.7.1), as the envelope sender was at MAIL FROM.
 * The header section is bounded (`inbound.max_header_bytes`, 552 5.3.4 beyond it).
 */
import { parseAddressHeader, type EmailAddress } from 'mailparser';
import { isForgedAuthResults } from '../../../emailauth/index.js';
import { REPLIES } from '../../../protocols/smtp/replies.js';
import { current, type InboundPipelineDeps } from '../deps.js';
import { fieldsNamed, parseHeaderBlock } from '../header-block.js';
import type { InboundMessage } from '../message-context.js';
import { currentUser, ownership } from '../sender.js';
import type { InboundStage } from '../stages.js';

/** RFC 5322 §3.6.2 allows several mailboxes in From:; more than this is not a real message. */
const MAX_FROM_ADDRESSES = 100;

function addressesOf(list: EmailAddress[], out: string[]): void {
  for (const a of list) {
    if (a.group) addressesOf(a.group, out);
    else out.push(a.address ?? '');
  }
}

/** Every address of every From: field; null when one of them cannot be parsed. */
function fromAddresses(msg: InboundMessage): string[] | null {
  const out: string[] = [];
  for (const field of fieldsNamed(msg.headers!, 'from')) {
    addressesOf(parseAddressHeader(field.value).value, out);
    if (out.length > MAX_FROM_ADDRESSES) return null;
  }
  return out.some((a) => a === '') ? null : out;
}

export function headerChecksStage(deps: InboundPipelineDeps): InboundStage {
  return {
    name: 'header-checks',
    async run(msg) {
      const source = msg.source!;
      const max = current(deps.config).max_header_bytes;
      const head = await source.head(max + 1);
      const block = parseHeaderBlock(head.subarray(0, Math.min(head.length, max)));
      // No end of the header section within the limit, and more message follows: too large.
      if (block.bodyStart === null && source.size > max) return { ok: false, reply: REPLIES.HEADER_TOO_BIG };
      msg.headers = block;

      for (const field of fieldsNamed(block, 'authentication-results')) {
        if (isForgedAuthResults(`${field.name}: ${field.value}`, [deps.hostname.toLowerCase()])) msg.dropRanges.push([field.start, field.end]);
      }

      const user = msg.session.listener === 'submission' ? msg.session.user : undefined;
      if (user) {
        const froms = fromAddresses(msg);
        const u = await currentUser(deps.tenancy, user);
        if (!froms || !u) return { ok: false, reply: REPLIES.SENDER_NOT_OWNED };
        for (const address of froms) {
          if (!(await ownership(deps.tenancy, u, address)).owned) return { ok: false, reply: REPLIES.SENDER_NOT_OWNED };
        }
      }
    },
  };
}
