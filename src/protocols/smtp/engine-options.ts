/**
 * How the `smtp-server` library is configured for one listener (docs/adr/0007-smtp-server-library.md).
 * Everything the library decides on its own is pinned here, with the reason.
 */
import type { SMTPServerOptions } from 'smtp-server';
import type { ListenerKind } from '../../pipeline/inbound/contract.js';
import type { SmtpLimits } from './limits.js';
import { replyText } from './reply-error.js';
import { REPLIES } from './replies.js';
import { secureContextOptions, type TlsSettings } from './tls.js';

/**
 * sendmail's WIZ/SHELL/KILL jokes the library answers; disabled so they count as unknown commands.
 * A per-session disabled list replaces the server-wide one in smtp-server, so every list we set
 * includes these.
 */
export const ALWAYS_DISABLED = ['WIZ', 'SHELL', 'KILL'] as const;

/** Submission before TLS: AUTH is neither advertised nor accepted (SPEC §2 "never advertised on plaintext"). */
export const DISABLED_BEFORE_TLS = ['AUTH', ...ALWAYS_DISABLED];

export interface EngineOptionsInput {
  kind: ListenerKind;
  implicitTls: boolean;
  hostname: string;
  limits: SmtpLimits;
  tls: TlsSettings;
}

export function engineOptions(input: EngineOptionsInput): SMTPServerOptions {
  const { kind, implicitTls, hostname, limits, tls } = input;
  return {
    name: hostname,
    // Implicit TLS: the listener completes the handshake (tls-handshake.ts) and hands over a TLS socket.
    secure: implicitTls,
    ...secureContextOptions(tls),
    // RFC 1870: announced in EHLO and checked against MAIL FROM SIZE=; the DATA size is counted by data.ts.
    size: limits.maxMessageBytes,
    // MX (port 25) takes unauthenticated mail only; AUTH is not offered there at all.
    disabledCommands: kind === 'mx' ? ['AUTH', ...ALWAYS_DISABLED] : [...ALWAYS_DISABLED],
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: kind === 'mx',
    authRequiredMessage: replyText(REPLIES.AUTH_REQUIRED),
    // The library's automatic enhanced codes are derived from the basic code alone and contradict the
    // reply table (e.g. 554 → 5.6.0 where the table says 5.7.1); our replies carry the table's code in
    // their text instead, so ENHANCEDSTATUSCODES is not advertised (ADR 0007).
    hideENHANCEDSTATUSCODES: true,
    hideDSN: true,
    hideREQUIRETLS: true,
    // No DNS here, and a PTR lookup per connection costs up to 1.5 s (TEST-PEERS.md).
    disableReverseLookup: true,
    // The library's own log lines would duplicate ours; its errors arrive as 'error' events.
    logger: false,
    socketTimeout: limits.commandTimeoutMs,
    // The library measures the line without CRLF; RFC 5321 §4.5.3.1.4 counts 512 with it.
    maxCommandLength: limits.maxLineLength - 2,
    useProxy: false,
    useXClient: false,
    useXForward: false,
  };
}
