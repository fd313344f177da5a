/**
 * The DNS resolver port: every lookup the server makes (MX, SPF, DKIM, DMARC, ARC, MTA-STS, PTR,
 * DNSBL) goes through one of these, so the servers it asks are configuration (TEST-PEERS.md
 * "DNS"), answers are cached in one bounded place, and timeouts are the same everywhere.
 *
 * Built on node:dns/promises `Resolver` (c-ares: UDP with retry over TCP when an answer is
 * truncated, EDNS). Results and errors have the shape of `dns.promises.resolve`, which is what
 * mailauth expects of its `resolver` option:
 *   - ENOTFOUND: the name does not exist (NXDOMAIN); ENODATA: it exists without records of the type;
 *   - ETIMEOUT, ESERVFAIL, ECONNREFUSED, EREFUSED: temporary trouble (the caller's "temperror").
 */
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { CaaRecord, MxRecord, SoaRecord, SrvRecord } from 'node:dns';
import type { DnsConfig } from '../config/sections/dns.js';
import { ExpiringLruCache } from './cache.js';
import { formatDnsServer, parseDnsServer } from './servers.js';

export type { MxRecord } from 'node:dns';

export const SUPPORTED_RRTYPES = ['A', 'AAAA', 'CAA', 'CNAME', 'MX', 'NS', 'PTR', 'SOA', 'SRV', 'TXT'] as const;
export type RrType = (typeof SUPPORTED_RRTYPES)[number];

export type DnsAnswer = string[] | string[][] | MxRecord[] | SrvRecord[] | CaaRecord[] | SoaRecord;

/** Error codes as node:dns reports them. */
export const DnsErrorCode = {
  NOT_FOUND: 'ENOTFOUND',
  NO_DATA: 'ENODATA',
  TIMEOUT: 'ETIMEOUT',
  SERVER_FAILURE: 'ESERVFAIL',
  REFUSED: 'EREFUSED',
  CONNECTION_REFUSED: 'ECONNREFUSED',
  BAD_NAME: 'EBADNAME',
} as const;

/** "Nothing there": a definite answer, cached for `negative_cache_ttl_seconds`. */
export function isNoRecordError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === DnsErrorCode.NOT_FOUND || code === DnsErrorCode.NO_DATA;
}

/** Anything else a lookup can fail with is temporary: it may succeed if tried again later. */
export function isTemporaryDnsError(err: unknown): boolean {
  return !isNoRecordError(err) && (err as { code?: unknown } | null)?.code !== DnsErrorCode.BAD_NAME;
}

export interface DnsError extends Error {
  code: string;
  syscall: string;
  hostname: string;
}

/** An error shaped like the ones node:dns throws (`queryTxt ENOTFOUND example.test`). */
export function dnsError(code: string, syscall: string, hostname: string): DnsError {
  return Object.assign(new Error(`${syscall} ${code} ${hostname}`), { code, syscall, hostname });
}

export interface DnsResolver {
  /** Same contract as `dns.promises.resolve(name, rrtype)`; the default type is A. */
  resolve(name: string, rrtype?: 'A' | 'AAAA' | 'CNAME' | 'NS' | 'PTR'): Promise<string[]>;
  resolve(name: string, rrtype: 'TXT'): Promise<string[][]>;
  resolve(name: string, rrtype: 'MX'): Promise<MxRecord[]>;
  resolve(name: string, rrtype: string): Promise<DnsAnswer>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  resolveMx(name: string): Promise<MxRecord[]>;
  resolveTxt(name: string): Promise<string[][]>;
  /** PTR names of an IP address (the `in-addr.arpa` / `ip6.arpa` lookup). */
  reverse(ip: string): Promise<string[]>;
  /** Servers asked, as given to node:dns (the system's when none are configured). */
  servers(): string[];
  stats(): { hits: number; misses: number; entries: number };
  clearCache(): void;
}

export interface ResolverOptions {
  /** Clock for cache expiry (tests). */
  now?: () => number;
}

type Cached = { ok: true; value: DnsAnswer } | { ok: false; code: string; syscall: string };

/** RFC 1035 §2.3.4: at most 255 octets on the wire, i.e. 253 characters in text; labels 1–63. */
const MAX_NAME_LENGTH = 253;

function checkName(name: string, syscall: string): string {
  if (typeof name !== 'string') throw dnsError(DnsErrorCode.BAD_NAME, syscall, String(name).slice(0, 300));
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  const bad =
    bare.length === 0 ||
    bare.length > MAX_NAME_LENGTH ||
    // printable ASCII only: callers convert IDNs to A-labels (punycode) first
    !/^[\x21-\x7e]+$/.test(bare) ||
    bare.split('.').some((label) => label.length === 0 || label.length > 63);
  if (bad) throw dnsError(DnsErrorCode.BAD_NAME, syscall, name.slice(0, 300));
  return bare.toLowerCase();
}

function minTtl(records: { ttl: number }[]): number {
  return records.reduce((min, r) => Math.min(min, r.ttl), Number.POSITIVE_INFINITY);
}

function syscallFor(type: string): string {
  return `query${type.charAt(0)}${type.slice(1).toLowerCase()}`;
}

export function createResolver(cfg: DnsConfig, opts: ResolverOptions = {}): DnsResolver {
  const native = new Resolver({ timeout: cfg.timeout_ms, tries: cfg.tries });
  if (cfg.servers.length > 0) native.setServers(cfg.servers.map((s) => formatDnsServer(parseDnsServer(s))));

  const cache = new ExpiringLruCache<Cached>(cfg.cache_max_entries, opts.now);
  const capMs = cfg.cache_ttl_seconds * 1000;
  const negativeMs = Math.min(cfg.negative_cache_ttl_seconds * 1000, capMs);
  // Concurrent identical lookups (a burst of messages from one domain) share one query.
  const inFlight = new Map<string, Promise<Cached>>();
  let hits = 0;
  let misses = 0;

  /** One query to the servers; the TTL is null where node:dns does not report it. */
  async function query(name: string, type: RrType): Promise<{ value: DnsAnswer; ttl: number | null }> {
    switch (type) {
      case 'A': {
        const recs = await native.resolve4(name, { ttl: true });
        return { value: recs.map((r) => r.address), ttl: minTtl(recs) };
      }
      case 'AAAA': {
        const recs = await native.resolve6(name, { ttl: true });
        return { value: recs.map((r) => r.address), ttl: minTtl(recs) };
      }
      case 'MX':
        return { value: await native.resolveMx(name), ttl: null };
      case 'TXT':
        return { value: await native.resolveTxt(name), ttl: null };
      case 'PTR':
        return { value: await native.resolvePtr(name), ttl: null };
      case 'CNAME':
        return { value: await native.resolveCname(name), ttl: null };
      case 'NS':
        return { value: await native.resolveNs(name), ttl: null };
      case 'SRV':
        return { value: await native.resolveSrv(name), ttl: null };
      case 'CAA':
        return { value: await native.resolveCaa(name), ttl: null };
      case 'SOA':
        return { value: await native.resolveSoa(name), ttl: null };
    }
  }

  async function lookup(key: string, run: () => Promise<{ value: DnsAnswer; ttl: number | null }>, syscall: string): Promise<Cached> {
    try {
      const { value, ttl } = await run();
      const ttlMs = ttl === null ? capMs : Math.min(ttl * 1000, capMs);
      const entry: Cached = { ok: true, value };
      cache.set(key, entry, ttlMs);
      return entry;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && isNoRecordError(err)) {
        const entry: Cached = { ok: false, code, syscall };
        cache.set(key, entry, negativeMs);
        return entry;
      }
      throw err; // temporary: never cached, the next lookup asks again
    }
  }

  async function cachedLookup(key: string, hostname: string, syscall: string, run: () => Promise<{ value: DnsAnswer; ttl: number | null }>): Promise<DnsAnswer> {
    let entry = cache.get(key);
    if (entry) {
      hits++;
    } else {
      let pending = inFlight.get(key);
      if (!pending) {
        misses++;
        pending = lookup(key, run, syscall).finally(() => inFlight.delete(key));
        inFlight.set(key, pending);
      }
      entry = await pending;
    }
    if (!entry.ok) throw dnsError(entry.code, entry.syscall, hostname);
    // A copy, so a caller that changes the arrays cannot change what later callers get.
    return structuredClone(entry.value);
  }

  function resolve(name: string, rrtype: string = 'A'): Promise<DnsAnswer> {
    const type = String(rrtype).toUpperCase();
    if (!(SUPPORTED_RRTYPES as readonly string[]).includes(type)) {
      return Promise.reject(Object.assign(new TypeError(`unsupported DNS record type ${JSON.stringify(rrtype)} (supported: ${SUPPORTED_RRTYPES.join(', ')})`), { code: 'ERR_INVALID_ARG_VALUE' }));
    }
    const syscall = syscallFor(type);
    let key: string;
    try {
      key = `${type} ${checkName(name, syscall)}`;
    } catch (err) {
      return Promise.reject(err);
    }
    return cachedLookup(key, name, syscall, () => query(name, type as RrType));
  }

  return {
    resolve: resolve as DnsResolver['resolve'],
    resolve4: (name) => resolve(name, 'A') as Promise<string[]>,
    resolve6: (name) => resolve(name, 'AAAA') as Promise<string[]>,
    resolveMx: (name) => resolve(name, 'MX') as Promise<MxRecord[]>,
    resolveTxt: (name) => resolve(name, 'TXT') as Promise<string[][]>,
    reverse(ip: string) {
      if (isIP(ip) === 0) return Promise.reject(dnsError(DnsErrorCode.BAD_NAME, 'getHostByAddr', String(ip).slice(0, 100)));
      return cachedLookup(`REVERSE ${ip.toLowerCase()}`, ip, 'getHostByAddr', async () => ({ value: await native.reverse(ip), ttl: null })) as Promise<string[]>;
    },
    servers: () => native.getServers(),
    stats: () => ({ hits, misses, entries: cache.size }),
    clearCache: () => cache.clear(),
  };
}
