/**
 * RCPT TO (SPEC §3.1 step 2): what a recipient address resolves to, and whether we take it.
 *
 *  - A hosted mailbox, alias, `user+tag` or catch-all (the tenancy service resolves all four) →
 *    accepted with its tenant and mailboxes, after an early quota check (452 4.2.2).
 *  - Any other address in a domain we host → 550 5.1.1.
 *  - A domain we do not host: only an authenticated submission may send there (the recipient is
 *    remote and goes to the outbound queue); from anyone else it is relaying → 554 5.7.1, so the
 *    server is never an open relay (RFC 5321 §3.6.2, RFC 5068 §3).
 */
import { QuotaExceededError } from '../../core/mailbox-state/errors.js';
import type { MailboxStateService } from '../../core/mailbox-state/service.js';
import { systemScope, tenantScope } from '../../core/scope.js';
import { tryParseAddress } from '../../core/tenancy/addresses.js';
import type { TenancyService } from '../../core/tenancy/service.js';
import { REPLIES } from '../../protocols/smtp/replies.js';
import type { AcceptedRecipient, Envelope, SmtpSessionInfo, Verdict } from './contract.js';

export type RecipientVerdict = Verdict & { recipient?: AcceptedRecipient };

/** A domain we host (active or not): mail for unknown users there is refused, not relayed. */
async function isHostedDomain(tenancy: TenancyService, domain: string): Promise<boolean> {
  try {
    await tenancy.domains.get(systemScope, domain);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'NOT_FOUND') return false;
    throw err;
  }
}

/**
 * Early quota check with the SIZE the client declared (RFC 1870; at least one byte, since even
 * an empty message needs room). Refused only when every target mailbox is full: an alias whose
 * other targets have room is accepted, and the full ones are skipped at commit (commit.ts).
 */
async function anyMailboxHasRoom(mailboxState: MailboxStateService, tenantId: string, mailboxIds: string[], bytes: number): Promise<boolean> {
  for (const id of mailboxIds) {
    try {
      await mailboxState.checkQuota(tenantScope(tenantId), id, bytes);
      return true;
    } catch (err) {
      if (!(err instanceof QuotaExceededError)) throw err;
    }
  }
  return false;
}

export async function checkRecipient(
  deps: { tenancy: TenancyService; mailboxState: MailboxStateService },
  session: SmtpSessionInfo,
  envelope: Envelope,
  address: string,
): Promise<RecipientVerdict> {
  const parsed = tryParseAddress(address);
  if (!parsed) {
    // The SMTP layer already checked RFC 5321 syntax; what fails here is valid on the wire but can
    // never be one of ours (e.g. a quoted local part, or a single-label domain such as `localhost`,
    // which no hosted domain is). From an unauthenticated client that is relaying, like any other
    // foreign address; only a submission client gets the syntax answer for its own input.
    if (session.listener === 'submission' && session.user) return { ok: false, reply: REPLIES.RCPT_BAD_SYNTAX };
    const domain = address.slice(address.lastIndexOf('@') + 1);
    const hosted = domain.includes('.') && (await isHostedDomain(deps.tenancy, domain.toLowerCase()).catch(() => false));
    return { ok: false, reply: hosted ? REPLIES.RCPT_UNKNOWN_USER : REPLIES.RELAY_DENIED };
  }
  const resolved = await deps.tenancy.resolveRecipient(systemScope, parsed.address);
  if (resolved) {
    const bytes = Math.max(1, envelope.declaredSize ?? 0);
    if (!(await anyMailboxHasRoom(deps.mailboxState, resolved.tenantId, resolved.mailboxIds, bytes))) {
      return { ok: false, reply: REPLIES.MAILBOX_FULL };
    }
    const recipient: AcceptedRecipient = { address, tenantId: resolved.tenantId, mailboxIds: resolved.mailboxIds };
    if (resolved.subaddress !== null) recipient.subaddress = resolved.subaddress;
    return { ok: true, reply: REPLIES.RECIPIENT_OK, recipient };
  }
  if (await isHostedDomain(deps.tenancy, parsed.domain)) return { ok: false, reply: REPLIES.RCPT_UNKNOWN_USER };
  if (session.listener === 'submission' && session.user) {
    return { ok: true, reply: REPLIES.RECIPIENT_OK, recipient: { address } };
  }
  return { ok: false, reply: REPLIES.RELAY_DENIED };
}
