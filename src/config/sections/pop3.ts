/**
 * Config section `pop3`: the limits of the POP3 listeners (SPEC §5.4). Ports are `listeners.pop3`
 * (STLS) and `listeners.pop3s` (implicit TLS). Handed to the listeners at start.
 */
import { Type, type Static } from '@sinclair/typebox';

export const Pop3ConfigSchema = Type.Object(
  {
    max_line_bytes: Type.Integer({
      minimum: 255,
      maximum: 65536,
      default: 1024,
      description: 'Longest command line in octets including CRLF (RFC 2449 §4: commands up to 255 octets; AUTH PLAIN initial responses need more).',
    }),
    idle_timeout_minutes: Type.Integer({
      minimum: 10,
      maximum: 1440,
      default: 10,
      description: 'Autologout timer (RFC 1939 §3: at least 10 minutes).',
    }),
    max_bad_commands: Type.Integer({
      minimum: 1,
      maximum: 1000,
      default: 10,
      description: 'Unknown or malformed commands a session may send before it is closed.',
    }),
    max_connections_per_ip: Type.Integer({
      minimum: 1,
      maximum: 100000,
      default: 20,
      description: 'Simultaneous connections from one client address (IPv6: one /64) over both POP3 listeners of this node.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'POP3 listener limits (STLS and implicit TLS).' },
);

export type Pop3Config = Static<typeof Pop3ConfigSchema>;
