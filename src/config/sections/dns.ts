/**
 * `dns:` — the resolver every lookup of the server goes through (MX, SPF, DKIM, DMARC, ARC,
 * MTA-STS, PTR, DNSBL). Configurable servers are what lets tests and air-gapped installs point
 * all lookups at a DNS server of their own (TEST-PEERS.md "DNS").
 */
import { Type, type Static } from '@sinclair/typebox';

export const DnsConfigSchema = Type.Object(
  {
    servers: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
      default: [],
      maxItems: 16,
      description:
        'DNS servers as IP addresses, optionally with a port: `192.0.2.53`, `192.0.2.53:5353`, `2001:db8::53`, `[2001:db8::53]:5353`. Empty = the system resolver configuration (/etc/resolv.conf).',
    }),
    timeout_ms: Type.Integer({
      minimum: 100,
      maximum: 30000,
      default: 2000,
      description: 'Time to wait for the first answer from a server before retrying; the resolver doubles it on each retry.',
    }),
    tries: Type.Integer({ minimum: 1, maximum: 5, default: 2, description: 'Attempts per server before a lookup fails with a timeout.' }),
    cache_ttl_seconds: Type.Integer({
      minimum: 0,
      maximum: 86400,
      default: 300,
      description:
        'Longest time an answer is cached (0 = no cache). A/AAAA answers are kept for min(record TTL, this); other types for this long, because node:dns does not report their TTL.',
    }),
    negative_cache_ttl_seconds: Type.Integer({
      minimum: 0,
      maximum: 3600,
      default: 60,
      description: 'How long "no such name" and "no such record" answers are cached (never longer than cache_ttl_seconds). Timeouts and server failures are never cached.',
    }),
    cache_max_entries: Type.Integer({
      minimum: 1,
      maximum: 1000000,
      default: 10000,
      description: 'Entries the answer cache holds; the least recently used is dropped first.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'DNS resolver used for every lookup.' },
);

export type DnsConfig = Static<typeof DnsConfigSchema>;
