/**
 * The limits of one SMTP listener (SPEC §5.1), with the reply each one answers with (replies.ts).
 * `smtpLimitsFromConfig` maps the `smtp` config section plus `mail.max_message_bytes` onto them; the
 * composition root calls it, so nothing in this folder reads config.
 */
import type { SmtpConfig } from '../../config/sections/smtp.js';

export interface SmtpLimits {
  /** Longest command line in octets including CRLF (RFC 5321 §4.5.3.1.4). */
  maxLineLength: number;
  /** Idle time while the server waits for the client (RFC 5321 §4.5.3.2.7) → 421. */
  commandTimeoutMs: number;
  /** Largest message (RFC 1870): announced in EHLO SIZE, checked at MAIL SIZE= and during DATA → 552 5.3.4. */
  maxMessageBytes: number;
  /** Recipients per message → 452 4.5.3 (RFC 5321 §4.5.3.1.10). */
  maxRecipients: number;
  /** Simultaneous connections per client address → 421 4.7.0 at greeting. */
  maxConnectionsPerIp: number;
  /** Pause before the greeting; talking during it → 554 5.5.0 (RFC 5321 §4.3.1). 0 = none. */
  greetingDelayMs: number;
  /** Bad commands (unknown, syntax error, line too long) allowed; the next → 421 4.7.0 and close. */
  maxBadCommands: number;
  /** Longest wait for the pipeline to take more of a message or to decide on it → 451 4.3.0. */
  dataTimeoutMs: number;
}

export const DEFAULT_SMTP_LIMITS: Readonly<SmtpLimits> = Object.freeze({
  maxLineLength: 512,
  commandTimeoutMs: 300_000,
  maxMessageBytes: 25 * 1024 * 1024,
  maxRecipients: 100,
  maxConnectionsPerIp: 20,
  greetingDelayMs: 0,
  maxBadCommands: 10,
  dataTimeoutMs: 600_000,
});

export function smtpLimitsFromConfig(smtp: SmtpConfig, maxMessageBytes: number): SmtpLimits {
  return {
    maxLineLength: smtp.max_line_length,
    commandTimeoutMs: smtp.command_timeout_seconds * 1000,
    maxMessageBytes,
    maxRecipients: smtp.max_recipients,
    maxConnectionsPerIp: smtp.max_connections_per_ip,
    greetingDelayMs: smtp.greeting_delay_ms,
    maxBadCommands: smtp.max_bad_commands,
    dataTimeoutMs: smtp.data_timeout_seconds * 1000,
  };
}
