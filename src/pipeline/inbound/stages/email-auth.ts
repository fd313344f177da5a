/**
 * Stage `email-auth` (SPEC §3.1 step 3): SPF, DKIM, DMARC and ARC for mail from the MX listener,
 * and the Authentication-Results field (RFC 8601) that records them.
 *
 * Submission is authenticated by SMTP AUTH, so no SPF/DKIM/DMARC is evaluated; the field records
 * `auth=pass` with the user instead (RFC 8601 §2.7.4 method "auth", property smtp.auth).
 *
 * DMARC disposition (decided by src/emailauth from its config): `reject` → 550 5.7.1,
 * `quarantine` → every local copy into Junk. Our own trouble (verification throws) never refuses
 * mail: the message goes on without the field and a warning is logged.
 */
import { formatAuthResults } from '../../../emailauth/index.js';
import { REPLIES } from '../../../protocols/smtp/replies.js';
import type { InboundPipelineDeps } from '../deps.js';
import { checkHeaderText, unfoldedValue } from '../header-lines.js';
import type { InboundStage } from '../stages.js';

export function emailAuthStage(deps: InboundPipelineDeps): InboundStage {
  return {
    name: 'email-auth',
    async run(msg) {
      const { session, envelope } = msg;
      if (session.listener === 'submission' && session.user) {
        const properties: [string, string][] = [['smtp.auth', session.user.email]];
        if (envelope.mailFrom) properties.push(['smtp.mailfrom', envelope.mailFrom]);
        const field = formatAuthResults(deps.hostname, [{ method: 'auth', result: 'pass', properties }]);
        msg.prepend.authResults = checkHeaderText(field);
        msg.authResults = unfoldedValue(field);
        return;
      }
      if (!deps.emailAuth) return;
      let result;
      try {
        result = await deps.emailAuth.verify({
          source: msg.source!,
          remoteAddress: session.remoteAddress,
          helo: session.helo,
          mailFrom: envelope.mailFrom,
          receiverHostname: deps.hostname,
        });
      } catch (err) {
        deps.logger.warn({ session_id: session.id, queue_id: msg.queueId, err }, 'email authentication failed; message accepted without Authentication-Results');
        return;
      }
      msg.prepend.authResults = checkHeaderText(result.header);
      msg.authResults = unfoldedValue(result.header);
      msg.disposition = result.disposition;
      if (result.disposition === 'reject') return { ok: false, reply: REPLIES.DMARC_REJECT };
      if (result.disposition === 'quarantine') msg.junk = true;
    },
  };
}
