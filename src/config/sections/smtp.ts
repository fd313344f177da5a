/**
 * Config section `smtp`: the limits of the SMTP listeners (SPEC §5.1), each answered with a reply
 * from src/protocols/smtp/replies.ts. Which port each listener binds is `listeners.smtp`,
 * `listeners.submission` and `listeners.smtps`; the greeting name is `server.hostname`; the largest
 * message is `mail.max_message_bytes` (announced in EHLO SIZE) — none of them is repeated here.
 *
 * Two limits of the SMTP engine are fixed by the `smtp-server` library and therefore not configurable
 * (docs/adr/0007-smtp-server-library.md): the 100 ms pause before every greeting and the 10
 * unrecognised commands after which a session is closed.
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
  },
  { additionalProperties: false, default: {}, description: 'SMTP listener limits (inbound MX and submission).' },
);

export type SmtpConfig = Static<typeof SmtpConfigSchema>;
