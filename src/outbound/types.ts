/**
 * Contracts of outbound mail (SPEC §3.2, §3.3, §5.2, §8), between the parts built separately:
 *
 *   SMTP client        src/protocols/smtp/client/   (one transaction to one host; pool for reuse)
 *   routing            src/outbound/routing/        (MX / null MX / A-AAAA / static routes, MTA-STS)
 *   policy             src/outbound/policy/         (rate limiter + outbound spam policy engine)
 *   signing            src/outbound/dkim-sign.ts    (DKIM-Signature with the sending domain's key)
 *   delivery           src/outbound/delivery/       (the `outbound` queue's worker, retries, DSNs, records)
 */
import type { Readable } from 'node:stream';

// ── SMTP client ────────────────────────────────────────────────────────────────────────────────

export interface SmtpClientReply {
  code: number;
  /** RFC 3463 enhanced status code when the server sent one (ENHANCEDSTATUSCODES). */
  enhanced: string | null;
  /** All lines' text joined with a space (multi-line replies, RFC 5321 §4.2.1). */
  text: string;
}

export type TlsMode = 'opportunistic' | 'required' | 'implicit' | 'none';

export interface ClientSendInput {
  /** Host name (SNI, certificate name, transcript). */
  host: string;
  /** The IP address to connect to (already resolved; IPv4 or IPv6). */
  address: string;
  port: number;
  heloName: string;
  tls: TlsMode;
  /**
   * Check the certificate against `host` (MTA-STS enforce, smarthosts). Opportunistic TLS without
   * it accepts any certificate (RFC 7435: encryption without authentication beats plain text).
   */
  verifyCertificate: boolean;
  /** Extra trusted CAs (PEM), for tests and private relays. */
  ca?: string[];
  auth?: { user: string; password: string };
  /** Envelope sender; '' = the null sender `<>` (DSNs). */
  mailFrom: string;
  recipients: string[];
  /** Opens the message bytes (CRLF line ends, not dot-stuffed); may be called again on a retry. */
  message: () => Promise<Readable>;
  size: number;
  /** The envelope or header needs SMTPUTF8 (RFC 6531): without the extension the send fails permanently. */
  needsSmtputf8: boolean;
  /** The body has 8-bit octets: BODY=8BITMIME when offered (RFC 6152). */
  eightBit: boolean;
  timeouts: { connectMs: number; commandMs: number; dataMs: number };
  signal?: AbortSignal;
}

export type ClientStage = 'connect' | 'greeting' | 'ehlo' | 'starttls' | 'auth' | 'mail' | 'rcpt' | 'data' | 'done';

export interface ClientSendResult {
  /** Where the transaction ended (`done` when DATA got its final reply). */
  stage: ClientStage;
  /** Failure of the whole transaction (connection, greeting, EHLO, TLS, AUTH, MAIL, DATA, missing SMTPUTF8). */
  error: { temporary: boolean; reply: SmtpClientReply | null; message: string } | null;
  /** One entry per recipient, in input order: the RCPT reply, and whether the message was accepted for it. */
  recipients: { address: string; rcptReply: SmtpClientReply | null; delivered: boolean }[];
  /** The final reply to the message data (null when DATA was not reached). */
  dataReply: SmtpClientReply | null;
  tls: { protocol: string; cipher: string; authorized: boolean } | null;
  /** `C: …` / `S: …` lines (AUTH arguments redacted, message data not included), bounded to ~200 lines. */
  transcript: string[];
}

/** Sends over pooled connections (reused per host+address+port for `connection_idle_seconds`). */
export interface SmtpClientPool {
  send(input: ClientSendInput): Promise<ClientSendResult>;
  close(): Promise<void>;
}

// ── Routing ────────────────────────────────────────────────────────────────────────────────────

export interface DestinationHost {
  host: string;
  port: number;
  /** MX preference (routes: 0). */
  preference: number;
  /** Resolved addresses, IPv6 and IPv4, in the order to try. */
  addresses: string[];
  tls: TlsMode;
  verifyCertificate: boolean;
  auth?: { user: string; password: string };
  source: 'mx' | 'a' | 'route';
}

export type Destination =
  | {
      kind: 'hosts';
      domain: string;
      /** Ordered by preference (equal preferences shuffled, RFC 5321 §5.1). */
      hosts: DestinationHost[];
      /** MTA-STS (RFC 8461) for this domain: enforce → only matching MX, verified TLS. */
      mtaSts: { mode: 'enforce' | 'testing' | 'none'; id?: string };
    }
  /** RFC 7505: the domain accepts no mail — bounce at once. */
  | { kind: 'null-mx'; domain: string }
  | { kind: 'error'; domain: string; temporary: boolean; message: string };

export interface DestinationResolver {
  resolve(domain: string): Promise<Destination>;
}

// ── Policy (rate limiter + policy engine) ──────────────────────────────────────────────────────

export interface SendAttempt {
  tenantId: string;
  userId: string;
  /** The sender address's domain row, when it is one of the tenant's domains. */
  domainId: string | null;
  mailFrom: string;
  /** Every recipient (local and remote). */
  recipients: string[];
  size: number;
  clientIp: string | null;
  via: 'submission' | 'api';
  subject: string;
  /** Decoded text (bounded, ≤ 64 KiB) for content signals. */
  bodyText: string;
  /** SHA-256 hex of the normalised body: "repeated identical content". */
  contentHash: string;
  urls: string[];
  userAgent: string | null;
}

export interface PolicySignal {
  /** e.g. `user_hour_rate`, `burst`, `repeated_content`, `recipient_count`, `new_client_ip`, `spam_pattern`, `dangerous_url`, `past_blocks`, `admin_reports`. */
  name: string;
  component: 'rate' | 'content' | 'history';
  /** 0…1 contribution inside its component. */
  value: number;
  /** What was measured, for the explanation (`212 of 200 per hour`). */
  detail: string;
}

export type PolicyLevel = 'normal' | 'soft' | 'hard' | 'domain';

export interface PolicyDecision {
  level: PolicyLevel;
  /** allow: send now; delay: queue with `delayMs`; block: refuse (the SMTP reply of SPEC §8). */
  action: 'allow' | 'delay' | 'block';
  delayMs: number;
  score: number;
  components: { rate: number; content: number; history: number };
  signals: PolicySignal[];
  /** One sentence: which limit or signals decided. */
  reason: string;
  /** For `block` (and rate-limit refusals): code, enhanced, message. */
  reply?: { code: number; enhanced: string; message: string };
}

export interface OutboundPolicy {
  /** Counts the attempt against the limits and decides; `block` may suspend the account (recorded, audited). */
  evaluate(attempt: SendAttempt): Promise<PolicyDecision>;
  /** Whether the account may send at all right now (suspended → the SPEC §8 reply). */
  accountBlocked(tenantId: string, userId: string): Promise<PolicyDecision | null>;
}

// ── DKIM ───────────────────────────────────────────────────────────────────────────────────────

export interface DkimSigner {
  /** `DKIM-Signature: …\r\n` field(s) for the message, or null when the domain has no active key. */
  sign(tenantId: string, domain: string, raw: Buffer): Promise<string | null>;
}
