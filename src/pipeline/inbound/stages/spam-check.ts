/**
 * Stage `spam-check` (SPEC §3.1 step 3): the spam checker's verdict (rspamd, or the built-in rules)
 * decides by its action:
 *   reject       → 550 5.7.1
 *   soft reject  → 451 4.7.1
 *   add header / rewrite subject → accepted, into Junk (config `inbound.spam_to_junk`). The
 *                  action is the checker's "this is spam" — not `score ≥ requiredScore`: rspamd's
 *                  required_score is its *reject* threshold, so that test would only match mail
 *                  already refused. The subject is never rewritten: the stored message stays
 *                  byte-identical below our prepended fields (and DKIM signatures valid).
 *   greylist     → accepted like "no action": greylisting needs per-triplet state this server
 *                  does not keep, and answering 451 every time would never deliver.
 * Its X-Spam-* fields are stored with every accepted message, so users and filters see the score.
 * Submission is checked only with `inbound.spam_check_submission`. A failing checker never
 * refuses mail (the checker itself falls back to the built-in rules when rspamd is down).
 */
import { REPLIES } from '../../../protocols/smtp/replies.js';
import { isSpam } from '../../../spam/index.js';
import { current, type InboundPipelineDeps } from '../deps.js';
import { checkHeaderText } from '../header-lines.js';
import { storedSource } from '../stored-bytes.js';
import type { InboundStage } from '../stages.js';

export function spamCheckStage(deps: InboundPipelineDeps): InboundStage {
  return {
    name: 'spam-check',
    async run(msg) {
      const config = current(deps.config);
      const { session, envelope } = msg;
      if (!deps.spam) return;
      if (session.listener === 'submission' && !config.spam_check_submission) return;
      let verdict;
      try {
        // The message as it will be stored (our Received and Authentication-Results on top, forged
        // ones removed), before the checker's own X-Spam-* fields.
        const prefix = Buffer.from(msg.prepend.received + msg.prepend.authResults, 'utf8');
        verdict = await deps.spam.check({
          source: storedSource(prefix, msg.source!, msg.dropRanges),
          remoteAddress: session.remoteAddress,
          helo: session.helo,
          mailFrom: envelope.mailFrom,
          recipients: envelope.recipients.map((r) => r.address),
          authenticatedUser: session.user?.email,
          queueId: msg.queueId,
        });
      } catch (err) {
        deps.logger.warn({ session_id: session.id, queue_id: msg.queueId, err }, 'spam check failed; message accepted unchecked');
        return;
      }
      msg.spam = { score: verdict.score, requiredScore: verdict.requiredScore, action: verdict.action, source: verdict.source };
      if (verdict.action === 'reject') return { ok: false, reply: REPLIES.SPAM_REJECT };
      if (verdict.action === 'soft reject') return { ok: false, reply: REPLIES.SPAM_SOFT_REJECT };
      try {
        msg.prepend.spam = checkHeaderText(verdict.header);
      } catch (err) {
        deps.logger.warn({ session_id: session.id, queue_id: msg.queueId, err }, 'spam checker header refused');
      }
      if (config.spam_to_junk && isSpam(verdict.action)) msg.junk = true;
    },
  };
}
