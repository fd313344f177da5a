/**
 * Config section `imap`: the limits of the IMAP listeners (SPEC §5.3). Which ports they bind is
 * `listeners.imap` (STARTTLS) and `listeners.imaps` (implicit TLS); the largest APPEND is
 * `mail.max_message_bytes` (announced as APPENDLIMIT, RFC 7889). Handed to the listeners at start.
 */
import { Type, type Static } from '@sinclair/typebox';

export const ImapConfigSchema = Type.Object(
  {
    max_line_bytes: Type.Integer({
      minimum: 1024,
      maximum: 1_048_576,
      default: 65536,
      description: 'Longest command line (without literals), octets; longer lines are answered BAD and discarded (RFC 9051 §4 leaves the limit to the server; RFC 7162 §4 suggests at least 8192).',
    }),
    max_literal_bytes: Type.Integer({
      minimum: 1024,
      maximum: 16_777_216,
      default: 65536,
      description: 'Largest literal outside an APPEND message (mailbox names, search strings), octets; larger ones get NO/BAD [TOOBIG].',
    }),
    max_command_bytes: Type.Integer({
      minimum: 4096,
      maximum: 67_108_864,
      default: 1_048_576,
      description: 'Largest command including its literals, except the APPEND message, octets.',
    }),
    max_bad_commands: Type.Integer({
      minimum: 1,
      maximum: 1000,
      default: 20,
      description: 'Syntax errors and unknown commands a session may send; the next one ends it with `* BYE`.',
    }),
    idle_timeout_minutes: Type.Integer({
      minimum: 30,
      maximum: 1440,
      default: 30,
      description: 'Autologout of an authenticated session that sends nothing (RFC 9051 §5.4: at least 30 minutes); IDLE clients re-issue IDLE before it.',
    }),
    preauth_timeout_seconds: Type.Integer({
      minimum: 10,
      maximum: 3600,
      default: 60,
      description: 'Autologout of a session that has not logged in yet.',
    }),
    max_connections_per_ip: Type.Integer({
      minimum: 1,
      maximum: 100000,
      default: 50,
      description: 'Simultaneous connections from one client address (IPv6: one /64) over both IMAP listeners of this node; more are greeted with `* BYE` and closed.',
    }),
    max_connections_per_user: Type.Integer({
      minimum: 1,
      maximum: 10000,
      default: 100,
      description: 'Simultaneous logged-in IMAP sessions of one user on this node; a login over it is answered NO [LIMIT].',
    }),
  },
  { additionalProperties: false, default: {}, description: 'IMAP listener limits (STARTTLS and implicit TLS).' },
);

export type ImapConfig = Static<typeof ImapConfigSchema>;
