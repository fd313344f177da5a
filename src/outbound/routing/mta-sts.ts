/**
 * MTA-STS policy discovery and cache (RFC 8461), for outbound delivery (SPEC §3.3).
 *
 * `get(domain)` answers with the policy to apply to a destination, or null when there is none:
 *   1. the `_mta-sts.<domain>` TXT record (`v=STSv1; id=…`, RFC 8461 §3.1) through the app
 *      resolver, so tests and air-gapped installs use their own DNS servers;
 *   2. when the id is new (or the cached policy expired), the policy file
 *      `https://mta-sts.<domain>/.well-known/mta-sts.txt` (§3.2, §3.3), fetched here rather than
 *      with mailauth's `fetchPolicy`, which is hard-wired to port 443 and the system CAs and
 *      follows no deadline of ours: the name is resolved through the app resolver, the connection
 *      goes to the address with SNI = the name and a certificate checked against it; no
 *      redirects, at most 64 KiB, 10 s;
 *   3. parsing with mailauth's `parsePolicy`.
 *
 * The cache lives in this node's memory only (nothing in the DB): each node of a cluster learns a
 * policy on its own first delivery to the domain, as any sender without state would. A policy is
 * kept for its `max_age` (§3.2); a failed fetch keeps using a cached unexpired policy (§5.1).
 */
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { parsePolicy } from 'mailauth/lib/mta-sts.js';
import { isNoRecordError, type DnsResolver } from '../../dns/resolver.js';
import { ExpiringLruCache } from '../../dns/cache.js';
import { normaliseDomain } from './domain.js';

export interface MtaStsPolicy {
  /** The policy id of the TXT record the policy was fetched for. */
  id: string;
  mode: 'enforce' | 'testing' | 'none';
  /** `mx` patterns, lower case (`mail.example.com`, `*.example.net`). */
  mx: string[];
  maxAgeSeconds: number;
  /** ms since epoch. */
  fetchedAt: number;
  expiresAt: number;
}

export interface MtaStsCache {
  /** The policy to apply to `domain` now, or null (none published, or none could be fetched). Never throws. */
  get(domain: string): Promise<MtaStsPolicy | null>;
  /** Forgets every policy (tests, config reload). */
  clear(): void;
}

export interface MtaStsCacheOptions {
  resolver: DnsResolver;
  /** HTTPS port of the policy host (443; tests use another). */
  port?: number;
  /** Trusted CAs (PEM) instead of the system's, for tests and private PKIs. */
  ca?: string[];
  /** Deadline of one policy fetch (connect + TLS + body). */
  timeoutMs?: number;
  /** Largest policy body accepted. */
  maxBytes?: number;
  /** How long a failed fetch is not retried for the same id when no policy is cached. */
  failureBackoffMs?: number;
  /** Domains remembered at most (least recently used dropped first). */
  maxEntries?: number;
  now?: () => number;
}

export const MTA_STS_DEFAULTS = {
  port: 443,
  timeoutMs: 10_000,
  /** RFC 8461 §3.3 lets senders bound the body; 64 KiB is far above any real policy. */
  maxBytes: 64 * 1024,
  failureBackoffMs: 5 * 60_000,
  maxEntries: 10_000,
} as const;

/** RFC 8461 §3.1: `sts-id = 1*32(ALPHA / DIGIT)`. */
const STS_ID = /^[A-Za-z0-9]{1,32}$/;

export type TxtLookup = { kind: 'id'; id: string } | { kind: 'none' } | { kind: 'error'; message: string };

/**
 * The policy id of `_mta-sts.<domain>`. RFC 8461 §3.1: records not starting with `v=STSv1;` are
 * ignored; anything but exactly one valid record means "no available policy".
 */
export async function lookupPolicyId(resolver: DnsResolver, domain: string): Promise<TxtLookup> {
  let rows: string[][];
  try {
    rows = await resolver.resolveTxt(`_mta-sts.${domain}`);
  } catch (err) {
    if (isNoRecordError(err)) return { kind: 'none' };
    return { kind: 'error', message: (err as Error).message };
  }
  // A TXT record split into several character-strings is one string (RFC 7208-style concatenation).
  const records = rows.map((r) => r.join('')).filter((r) => /^v=STSv1;/.test(r.trimStart()));
  if (records.length !== 1) return { kind: 'none' };
  const fields = new Map<string, string>();
  for (const part of records[0].split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    if (!fields.has(key)) fields.set(key, part.slice(eq + 1).trim());
  }
  const id = fields.get('id');
  return id !== undefined && STS_ID.test(id) ? { kind: 'id', id } : { kind: 'none' };
}

class FetchError extends Error {}

/** Errors where another address of the policy host may do better (nothing was exchanged). */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ECONNRESET']);

export function createMtaStsCache(opts: MtaStsCacheOptions): MtaStsCache {
  const now = opts.now ?? Date.now;
  const port = opts.port ?? MTA_STS_DEFAULTS.port;
  const timeoutMs = opts.timeoutMs ?? MTA_STS_DEFAULTS.timeoutMs;
  const maxBytes = opts.maxBytes ?? MTA_STS_DEFAULTS.maxBytes;
  const backoffMs = opts.failureBackoffMs ?? MTA_STS_DEFAULTS.failureBackoffMs;
  const maxEntries = opts.maxEntries ?? MTA_STS_DEFAULTS.maxEntries;
  const policies = new ExpiringLruCache<MtaStsPolicy>(maxEntries, now);
  /** domain → the id whose fetch failed (no policy was cached then): not refetched until it expires. */
  const failures = new ExpiringLruCache<string>(maxEntries, now);
  /** Concurrent deliveries to one domain share one discovery. */
  const inFlight = new Map<string, Promise<MtaStsPolicy | null>>();

  /** One GET of the policy file from one address; resolves with the body text. */
  function getFrom(address: string, hostname: string, deadline: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = https.request({
        host: address,
        port,
        path: '/.well-known/mta-sts.txt',
        method: 'GET',
        // SNI and the certificate check use the policy host's name, not the address (§3.3).
        servername: hostname,
        headers: { host: hostname, accept: 'text/plain' },
        ca: opts.ca,
        rejectUnauthorized: true,
        agent: false,
      });
      let settled = false;
      // Settles the promise itself rather than relying on which of req/res reports a destroy:
      // once the response has started, node reports errors on the response, or only 'close'.
      const finish = (err: Error | null, body?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          req.destroy();
          reject(err);
        } else {
          resolve(body ?? '');
        }
      };
      const timer = setTimeout(() => finish(new FetchError(`timed out after ${timeoutMs} ms`)), Math.max(1, deadline - now()));
      req.on('error', (err) => finish(err));
      let responded = false;
      const closedEarly = () => finish(new FetchError('connection closed before the policy was read'));
      req.on('close', () => {
        if (!responded) closedEarly();
      });
      req.on('response', (res: IncomingMessage) => {
        responded = true;
        // 'close' after 'end' finds the promise settled; before it, the body was cut short.
        res.on('close', closedEarly);
        // §3.3: "HTTP 3xx redirects MUST NOT be followed" — only 200 is a policy.
        if (res.statusCode !== 200) return finish(new FetchError(`HTTP status ${res.statusCode ?? '-'}`));
        // §3.3: senders SHOULD check the media type is text/plain (guards against user-hosted content).
        const type = String(res.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
        if (type !== 'text/plain') return finish(new FetchError(`media type ${JSON.stringify(type)} instead of text/plain`));
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxBytes) return finish(new FetchError(`policy larger than ${maxBytes} bytes`));
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) return finish(new FetchError(`policy larger than ${maxBytes} bytes`));
          chunks.push(chunk);
        });
        res.on('error', (err) => finish(err));
        res.on('end', () => finish(null, Buffer.concat(chunks).toString('utf8')));
      });
      req.end();
    });
  }

  async function addressesOf(hostname: string): Promise<string[]> {
    const settle = (p: Promise<string[]>) =>
      p.then(
        (v) => ({ ok: true as const, v }),
        (err: unknown) => ({ ok: false as const, err }),
      );
    const [v6, v4] = await Promise.all([settle(opts.resolver.resolve6(hostname)), settle(opts.resolver.resolve4(hostname))]);
    const out = [...(v6.ok ? v6.v : []), ...(v4.ok ? v4.v : [])];
    if (out.length === 0) {
      const temporary = [v6, v4].find((r) => !r.ok && !isNoRecordError(r.err));
      throw new FetchError(temporary && !temporary.ok ? `cannot resolve ${hostname}: ${(temporary.err as Error).message}` : `${hostname} has no address`);
    }
    return out;
  }

  async function fetchPolicy(domain: string, id: string): Promise<MtaStsPolicy> {
    const hostname = `mta-sts.${domain}`;
    const deadline = now() + timeoutMs;
    const addresses = await addressesOf(hostname);
    let body: string | null = null;
    let lastError: Error | null = null;
    for (const address of addresses) {
      if (now() >= deadline) break;
      try {
        body = await getFrom(address, hostname, deadline);
        break;
      } catch (err) {
        lastError = err as Error;
        // Only "could not connect" moves on to the next address; a bad certificate, status or
        // body is the policy host's answer.
        if (!CONNECT_ERRORS.has((err as { code?: string }).code ?? '')) break;
      }
    }
    if (body === null) throw lastError ?? new FetchError('timed out');
    const parsed = parsePolicy(body);
    const maxAgeSeconds = parsed.maxAge ?? 0;
    const fetchedAt = now();
    return { id, mode: parsed.mode, mx: parsed.mx ?? [], maxAgeSeconds, fetchedAt, expiresAt: fetchedAt + maxAgeSeconds * 1000 };
  }

  async function discover(domain: string): Promise<MtaStsPolicy | null> {
    const cached = policies.get(domain) ?? null;
    const txt = await lookupPolicyId(opts.resolver, domain);
    // §5.1: no (valid) TXT record, or a DNS failure: keep applying a cached unexpired policy.
    if (txt.kind !== 'id') return cached;
    if (cached && cached.id === txt.id) return cached;
    if (failures.get(domain) === txt.id) return cached;
    try {
      const policy = await fetchPolicy(domain, txt.id);
      policies.set(domain, policy, policy.expiresAt - now());
      return policy;
    } catch {
      // §5.1: "If a valid TXT record is found but the policy fetch fails, and the sender has a
      // previously cached policy, the sender MUST continue to use the previously cached policy."
      // Without one the domain is treated as having no policy; the id is not refetched for a
      // while (§3.3 lets senders rate-limit fetches) so a dead policy host does not add its
      // timeout to every delivery.
      if (!cached) failures.set(domain, txt.id, backoffMs);
      return cached;
    }
  }

  return {
    async get(domain: string): Promise<MtaStsPolicy | null> {
      const d = normaliseDomain(domain);
      if (d === null) return null;
      let pending = inFlight.get(d);
      if (!pending) {
        pending = discover(d)
          .catch(() => null)
          .finally(() => inFlight.delete(d));
        inFlight.set(d, pending);
      }
      return pending;
    },
    clear() {
      policies.clear();
      failures.clear();
    },
  };
}

/**
 * RFC 8461 §4.1: an `mx` pattern is a host name, or `*.` plus a name where the wildcard stands for
 * exactly one leftmost label. mailauth's `validateMx` lets `*` cover several labels, so the match
 * is checked here.
 */
export function mxMatchesPolicy(mxHost: string, patterns: readonly string[]): boolean {
  const host = mxHost.toLowerCase().replace(/\.$/, '');
  return patterns.some((raw) => {
    const pattern = raw.trim().toLowerCase().replace(/\.$/, '');
    if (pattern.startsWith('*.')) {
      const suffix = pattern.slice(1); // ".example.com"
      if (!host.endsWith(suffix)) return false;
      const label = host.slice(0, -suffix.length);
      return label.length > 0 && !label.includes('.');
    }
    return pattern === host;
  });
}
