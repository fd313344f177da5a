/**
 * Stage `outbound-policy` (SPEC §3.2 step 2, §8, §6 `requires_before_policy`): for submissions
 * only (SMTP submission and the API's send, which uses the same listener kind); MX mail passes
 * untouched.
 *
 *  1. An account the policy has suspended (or a domain stopped) sends nothing: the decision's reply,
 *     for a suspension exactly `550 5.7.1 Sending from this account is temporarily suspended.
 *     Please contact your administrator.` (SPEC §8).
 *  2. pre_send hooks with `requires_before_policy: true` (they must see the message before the
 *     policy engine counts or judges it).
 *  3. The policy engine (rate limiter + scoring): `block` → its reply; `delay` → the message is
 *     accepted and its outbound job waits `delayMs` (msg.outboundDelayMs, read by the commit's
 *     outbound hand-off); `allow` → go on. The decision is kept on msg.policyDecision for the
 *     outbound queue record.
 *  4. The other pre_send hooks: reject / tempfail refuse the message.
 *
 * Placed right after `header-checks`, so everything the policy counts was sent by the owner of
 * every From: address, and before the spam check and storage work.
 */
import { createHash } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { tenantScope } from '../../../core/scope.js';
import { tryParseAddress } from '../../../core/tenancy/addresses.js';
import type { TenancyService } from '../../../core/tenancy/service.js';
import type { PolicyDecision, SendAttempt } from '../../../outbound/types.js';
import { REPLIES, type SmtpReply } from '../../../protocols/smtp/replies.js';
import type { AuthenticatedUser } from '../contract.js';
import type { InboundPipelineDeps } from '../deps.js';
import type { Rejection } from '../hook-slots.js';
import type { InboundMessage } from '../message-context.js';
import type { InboundStage } from '../stages.js';

/** SendAttempt.bodyText bound (src/outbound/types.ts): 64 KiB of decoded text. */
export const MAX_POLICY_TEXT = 64 * 1024;
/** Messages larger than this are not parsed for content signals (the rate signals still count them). */
export const MAX_POLICY_PARSE_BYTES = 10 * 1024 * 1024;
/** URLs handed to the policy, at most. */
export const MAX_POLICY_URLS = 200;

export function outboundPolicyStage(deps: InboundPipelineDeps): InboundStage {
  return {
    name: 'outbound-policy',
    async run(msg) {
      const user = msg.session.listener === 'submission' ? msg.session.user : undefined;
      const out = deps.outbound;
      if (!user || !out) return;
      const policy = out.policy ?? null;
      const preSend = out.preSend ?? null;

      if (policy) {
        const blocked = await policy.accountBlocked(user.tenantId, user.id);
        if (blocked) return refusal(blocked);
      }
      if (preSend) {
        const r = await preSend(msg, 'before');
        if (r) return r;
      }
      if (policy) {
        const decision = await policy.evaluate(await sendAttemptOf(deps.tenancy, msg, user));
        msg.policyDecision = decision;
        if (decision.action === 'block') {
          deps.logger.warn({ queue_id: msg.queueId, tenant_id: user.tenantId, user_id: user.id, level: decision.level, score: decision.score, reason: decision.reason }, 'submission blocked by the outbound policy');
          return refusal(decision);
        }
        if (decision.action === 'delay') msg.outboundDelayMs = Math.max(0, decision.delayMs);
      }
      if (preSend) {
        const r = await preSend(msg, 'after');
        if (r) return r;
      }
    },
  };
}

/** The policy's reply when it gave one (validated shape), else the SPEC §8 suspension reply. */
function refusal(decision: PolicyDecision): Rejection {
  const r = decision.reply;
  const valid = r && Number.isInteger(r.code) && r.code >= 400 && r.code < 600 && /^[45]\.\d{1,3}\.\d{1,3}$/.test(r.enhanced) && r.enhanced[0] === String(r.code)[0] && !/[\r\n]/.test(r.message);
  const reply: SmtpReply = valid ? { code: r.code, enhanced: r.enhanced, message: r.message } : REPLIES.SENDING_SUSPENDED;
  return { ok: false, reply };
}

/** `via`: the API's send marks its session (see routes/send.ts); SMTP sessions are `submission`. */
function viaOf(msg: InboundMessage): SendAttempt['via'] {
  return (msg.session as { via?: string }).via === 'api' ? 'api' : 'submission';
}

async function domainIdOf(tenancy: TenancyService, tenantId: string, address: string | null): Promise<string | null> {
  const parsed = address ? tryParseAddress(address) : null;
  if (!parsed) return null;
  try {
    return (await tenancy.domains.get(tenantScope(tenantId), parsed.domain)).id;
  } catch (err) {
    if ((err as { code?: string }).code === 'NOT_FOUND') return null;
    throw err;
  }
}

const URL_RE = /\bhttps?:\/\/[^\s<>"'()]+/gi;

function urlsOf(text: string, html: string): string[] {
  const out = new Set<string>();
  for (const source of [text, html]) {
    for (const m of source.matchAll(URL_RE)) {
      out.add(m[0].replace(/[.,;:!?]+$/, ''));
      if (out.size >= MAX_POLICY_URLS) return [...out];
    }
  }
  return [...out];
}

/**
 * "Repeated identical content" (SPEC §8) must not be defeated by a changed greeting line's
 * spacing or case: the hash is over the decoded text, lower-cased, whitespace collapsed.
 */
export function contentHashOf(text: string): string {
  return createHash('sha256').update(text.toLowerCase().replace(/\s+/g, ' ').trim(), 'utf8').digest('hex');
}

/** What the policy engine sees of one submission (src/outbound/types.ts SendAttempt). */
export async function sendAttemptOf(tenancy: TenancyService, msg: InboundMessage, user: AuthenticatedUser): Promise<SendAttempt> {
  const source = msg.source!;
  let subject = '';
  let text = '';
  let html = '';
  let userAgent: string | null = null;
  if (source.size <= MAX_POLICY_PARSE_BYTES) {
    const parsed = await simpleParser(await source.readAll(), { skipImageLinks: true, skipTextToHtml: true, skipTextLinks: true, maxHtmlLengthToParse: MAX_POLICY_TEXT * 4 });
    subject = parsed.subject ?? '';
    text = parsed.text ?? '';
    html = typeof parsed.html === 'string' ? parsed.html : '';
    const ua = parsed.headers.get('user-agent') ?? parsed.headers.get('x-mailer');
    userAgent = typeof ua === 'string' ? ua.slice(0, 256) : null;
    if (!text && html) text = html.replace(/<[^>]*>/g, ' ');
  }
  const bodyText = text.slice(0, MAX_POLICY_TEXT);
  return {
    tenantId: user.tenantId,
    userId: user.id,
    domainId: await domainIdOf(tenancy, user.tenantId, msg.envelope.mailFrom),
    mailFrom: msg.envelope.mailFrom ?? '',
    recipients: msg.envelope.recipients.map((r) => r.address),
    size: source.size,
    clientIp: msg.session.remoteAddress || null,
    via: viaOf(msg),
    subject: subject.slice(0, 998),
    bodyText,
    contentHash: contentHashOf(text),
    urls: urlsOf(bodyText, html.slice(0, MAX_POLICY_TEXT * 4)),
    userAgent,
  };
}
