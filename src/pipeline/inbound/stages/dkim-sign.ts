/**
 * Stage `dkim-sign` (SPEC §3.2 step 3, RFC 6376): the last stage before commit, for submissions.
 *
 * What is signed is exactly what is stored (and what the outbound queue later sends): our
 * prepended fields (Received, Authentication-Results, spam) above the message as received minus
 * the dropped forged fields — stored-bytes.ts's view. The DKIM-Signature field is then put ABOVE
 * all of them (msg.prepend.dkim, first in prependedText): RFC 6376 §5.6 has signers prepend the
 * field, fields above a signature do not affect it, and the signed fields (h=) below it are
 * byte-for-byte what a verifier receives. Running last means no later stage changes the header
 * or body after signing.
 *
 * Signing domain: the domain of the (first) From: address — the one DMARC aligns with (RFC 7489
 * §3.1.1), already checked to be the user's own by `header-checks` — else the envelope sender's.
 * The signer returns null when that domain has no active key: the message goes unsigned. A signer
 * failure (e.g. the secret store cannot unseal the key) is thrown: the pipeline answers 451 4.3.0
 * and the client retries, rather than sending mail that DMARC p=reject receivers would refuse.
 */
import { parseAddressHeader } from 'mailparser';
import { tryParseAddress } from '../../../core/tenancy/addresses.js';
import type { InboundPipelineDeps } from '../deps.js';
import { fieldsNamed } from '../header-block.js';
import { checkHeaderText } from '../header-lines.js';
import { signedText, type InboundMessage } from '../message-context.js';
import type { InboundStage } from '../stages.js';
import { storedBytesOf } from '../stored-bytes.js';

/** The domain to sign for: first From: address, else the envelope sender. */
export function signingDomainOf(msg: InboundMessage): string | null {
  for (const field of msg.headers ? fieldsNamed(msg.headers, 'from') : []) {
    for (const a of parseAddressHeader(field.value).value) {
      const parsed = a.address ? tryParseAddress(a.address) : null;
      if (parsed) return parsed.domain;
    }
  }
  const env = msg.envelope.mailFrom ? tryParseAddress(msg.envelope.mailFrom) : null;
  return env?.domain ?? null;
}

export function dkimSignStage(deps: InboundPipelineDeps): InboundStage {
  return {
    name: 'dkim-sign',
    async run(msg) {
      const user = msg.session.listener === 'submission' ? msg.session.user : undefined;
      const signer = deps.outbound?.signer;
      if (!user || !signer) return;
      const domain = signingDomainOf(msg);
      if (!domain) return;
      const field = await signer.sign(user.tenantId, domain, await storedBytesOf(msg, signedText(msg)));
      if (!field) {
        deps.logger.info({ queue_id: msg.queueId, domain }, 'no active DKIM key for the sending domain: message not signed');
        return;
      }
      msg.prepend.dkim = checkHeaderText(field);
    },
  };
}
