/** The shapes email authentication hands to the inbound pipeline. */
import type { MessageSource } from '../mail/message-source.js';
import type { DmarcPolicy, Disposition } from './policy.js';

export interface VerifyInput {
  /** The message as received (DATA/BDAT), readable more than once. */
  source: MessageSource;
  /** The SMTP client's IP address (IPv4, IPv6, or IPv4-mapped IPv6). */
  remoteAddress: string;
  /** The HELO/EHLO argument. */
  helo: string;
  /** The envelope sender; null for the null reverse-path `<>` (SPF then checks the HELO identity, RFC 7208 §2.4). */
  mailFrom: string | null;
  /** Our authserv-id: the host name written into Authentication-Results (RFC 8601 §2.5). */
  receiverHostname: string;
}

/**
 * Result keywords are those of RFC 8601 §2.7 / the IANA "Email Authentication Result Names"
 * registry: pass, fail, softfail, neutral, none, temperror, permerror, policy.
 */
export interface SpfOutcome {
  result: string;
  /** The domain checked: of MAIL FROM, or of HELO for the null sender. */
  domain: string | null;
}

export interface DkimOutcome {
  result: string;
  /** The signature's d= tag. */
  domain: string | null;
  /** The signature's s= tag. */
  selector: string | null;
}

export interface DmarcOutcome {
  result: string;
  /** The published policy that applies to the From domain (p=, or sp= for a sub-domain). */
  policy: DmarcPolicy | null;
  /** The RFC5322.From domain. */
  domain: string | null;
}

export interface ArcOutcome {
  result: string;
}

export interface EmailAuthResult {
  spf: SpfOutcome;
  /**
   * One entry per DKIM-Signature field; empty when the message is not signed (header: dkim=none);
   * a single `temperror` entry without domain when the verification did not finish in time.
   */
  dkim: DkimOutcome[];
  dmarc: DmarcOutcome;
  arc: ArcOutcome;
  /** `Authentication-Results: <receiverHostname>; spf=…; dkim=…; dmarc=…; arc=…\r\n`, folded. Empty when verification is disabled. */
  header: string;
  /** What DMARC asks for, after pct sampling and local config. */
  disposition: Disposition;
}
