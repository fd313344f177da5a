/**
 * Config section `smtp`: the limits of the SMTP listeners (SPEC §5.1), each answered with a reply
 * from src/protocols/smtp/replies.ts. Which port each listener binds is `listeners.smtp`,
 * `listeners.submission` and `listeners.smtps`; the greeting name is `server.hostname`; the largest
 * message is `mail.max_message_bytes` (announced in EHLO SIZE) — none of them is repeated here.
 *
 * The protocol engine is MaiRust's own (src/protocols/smtp/engine/, docs/adr/0007-smtp-server-library.md),
 * so the greeting pause and the bad-command limit are configurable here.
 *
 * Nothing here is reloadable: the limits are handed to the listeners when they start.
 */
import { Type, type Static } from '@sinclair/typebox';

export const SmtpConfigSchema = Type.Object(
  {
    max_line_length: Type.Integer({
      minimum: 512,
      maximum: 65536,
      default: 512,
      description:
        'Longest command line in octets including CRLF (RFC 5321 §4.5.3.1.4: at least 512). Note that AUTH PLAIN with an initial response puts the whole credential on one line.',
    }),
    command_timeout_seconds: Type.Integer({
      minimum: 5,
      maximum: 3600,
      default: 300,
      description: 'A session that sends nothing for this long while the server waits for it is closed with 421 (RFC 5321 §4.5.3.2.7: at least 5 minutes).',
    }),
    max_recipients: Type.Integer({
      minimum: 1,
      maximum: 10000,
      default: 100,
      description: 'Recipients per message; the next RCPT is answered 452 4.5.3 (RFC 5321 §4.5.3.1.8: at least 100).',
    }),
    max_connections_per_ip: Type.Integer({
      minimum: 1,
      maximum: 100000,
      default: 20,
      description: 'Simultaneous connections from one client address (IPv6: one /64) over all SMTP listeners of this node; the next one is greeted with 421 4.7.0.',
    }),
    greeting_delay_ms: Type.Integer({
      minimum: 0,
      maximum: 30000,
      default: 0,
      description:
        'Pause before the 220 greeting; a client that sends anything during the pause is answered 554 5.5.0 and disconnected (RFC 5321 §4.3.1, early-talker check against spam bots). 0 = greet at once.',
    }),
    max_bad_commands: Type.Integer({
      minimum: 1,
      maximum: 1000,
      default: 10,
      description:
        'Unrecognised commands, syntax errors and over-long lines a session may send; the next one is answered 421 4.7.0 and the session is closed.',
    }),
    data_timeout_seconds: Type.Integer({
      minimum: 10,
      maximum: 3600,
      default: 600,
      description:
        'Longest wait for the pipeline, after the end of DATA/BDAT, to store the message (or for it to take more of the message while it is arriving); past it the client gets 451 4.3.0 and retries (RFC 5321 §4.5.3.2.6 gives the client 10 minutes).',
    }),
  },
  { additionalProperties: false, default: {}, description: 'SMTP listener limits (inbound MX and submission).' },
);

export type SmtpConfig = Static<typeof SmtpConfigSchema>;
