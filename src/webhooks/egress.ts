/**
 * Egress control for outgoing HTTP calls to addresses chosen by tenants (event webhooks, SPEC §11;
 * the same rule as plugin endpoints, SPEC §7 "SSRF protection checks resolved addresses, not
 * names"). A URL's host is resolved through the application's DnsResolver and every address it
 * resolves to is checked; the connection then goes to a checked address (pinned), so a second,
 * different DNS answer (rebinding) cannot redirect the request inside the network.
 */
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import type { DnsResolver } from '../dns/index.js';
import { isNoRecordError } from '../dns/index.js';

/**
 * Ranges that are not the public Internet: a webhook may not reach them unless the operator allows
 * private addresses. IPv4-mapped and NAT64 IPv6 forms are checked through their embedded IPv4.
 */
const BLOCKED_V4: [string, number, string][] = [
  ['0.0.0.0', 8, 'unspecified ("this network", RFC 1122)'],
  ['10.0.0.0', 8, 'private (RFC 1918)'],
  ['100.64.0.0', 10, 'shared address space (RFC 6598)'],
  ['127.0.0.0', 8, 'loopback (RFC 1122)'],
  ['169.254.0.0', 16, 'link-local (RFC 3927)'],
  ['172.16.0.0', 12, 'private (RFC 1918)'],
  ['192.0.0.0', 24, 'IETF protocol assignments (RFC 6890)'],
  ['192.168.0.0', 16, 'private (RFC 1918)'],
  ['198.18.0.0', 15, 'benchmarking (RFC 2544)'],
  ['224.0.0.0', 4, 'multicast (RFC 5771)'],
  ['240.0.0.0', 4, 'reserved (RFC 1112), incl. broadcast'],
];
const BLOCKED_V6: [string, number, string][] = [
  ['::', 128, 'unspecified (RFC 4291)'],
  ['::1', 128, 'loopback (RFC 4291)'],
  ['100::', 64, 'discard-only (RFC 6666)'],
  ['fc00::', 7, 'unique-local (RFC 4193)'],
  ['fe80::', 10, 'link-local (RFC 4291)'],
  ['fec0::', 10, 'site-local (deprecated, RFC 3879)'],
  ['ff00::', 8, 'multicast (RFC 4291)'],
];

const v4Rules = BLOCKED_V4.map(([net, prefix, why]) => {
  const list = new BlockList();
  list.addSubnet(net, prefix, 'ipv4');
  return { list, why };
});
const v6Rules = BLOCKED_V6.map(([net, prefix, why]) => {
  const list = new BlockList();
  list.addSubnet(net, prefix, 'ipv6');
  return { list, why };
});

/** The IPv4 address inside `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2) or `64:ff9b::a.b.c.d` (RFC 6052), else null. */
function embeddedV4(ip: string): string | null {
  const lower = ip.toLowerCase();
  for (const prefix of ['::ffff:', '64:ff9b::']) {
    if (!lower.startsWith(prefix)) continue;
    const rest = lower.slice(prefix.length);
    if (isIP(rest) === 4) return rest;
    // Hex form: ::ffff:7f00:1
    const m = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(rest);
    if (m) {
      const hi = parseInt(m[1], 16);
      const lo = parseInt(m[2], 16);
      return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
    }
  }
  return null;
}

/**
 * Why `ip` is not a public address (e.g. "loopback (RFC 1122)"), or null when it is public.
 * Anything that is not an IP address at all is refused too.
 */
export function nonPublicReason(ip: string): string | null {
  const family = isIP(ip);
  if (family === 4) return v4Rules.find((r) => r.list.check(ip, 'ipv4'))?.why ?? null;
  if (family === 6) {
    const v4 = embeddedV4(ip);
    if (v4 !== null) return nonPublicReason(v4);
    return v6Rules.find((r) => r.list.check(ip, 'ipv6'))?.why ?? null;
  }
  return 'not an IP address';
}

/** `[::1]` → `::1`: URL hostnames keep the brackets of IPv6 literals. */
export function bareHost(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

/** A destination refused by policy: retrying cannot help (the delivery fails permanently). */
export class EgressRefusedError extends Error {
  readonly permanent = true;
  constructor(message: string) {
    super(message);
    this.name = 'EgressRefusedError';
  }
}

/** The host could not be resolved now (may work later: retried). */
export class EgressResolveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EgressResolveError';
  }
}

export interface ResolvedTarget {
  /** The address to connect to (checked). */
  address: string;
  family: 4 | 6;
}

/**
 * Resolves `hostname` (A and AAAA) through `resolver` and checks every answer. With
 * `allowPrivate` false, a single non-public address refuses the whole host: a name that mixes
 * public and private answers is the classic rebinding set-up.
 */
export async function resolveEgress(
  resolver: DnsResolver,
  hostname: string,
  allowPrivate: boolean,
  /** How the caller's operator allows private targets, for the refusal message. */
  hint = 'set webhooks.allow_private_addresses to allow it',
): Promise<ResolvedTarget> {
  const host = bareHost(hostname);
  const literal = isIP(host);
  let addresses: string[];
  if (literal !== 0) {
    addresses = [host];
  } else {
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    addresses = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (addresses.length === 0) {
      const err = v4.status === 'rejected' ? v4.reason : v6.status === 'rejected' ? v6.reason : null;
      const what = err && isNoRecordError(err) ? 'has no A or AAAA records' : `could not be resolved (${(err as { code?: string } | null)?.code ?? 'no answer'})`;
      throw new EgressResolveError(`host ${host} ${what}`);
    }
  }
  if (!allowPrivate) {
    for (const a of addresses) {
      const why = nonPublicReason(a);
      if (why !== null) {
        throw new EgressRefusedError(
          `refused: ${host}${literal ? '' : ` resolves to ${a}, which`} is ${why}; ${hint}`,
        );
      }
    }
  }
  const address = addresses[0];
  return { address, family: isIP(address) === 6 ? 6 : 4 };
}

/**
 * Request options for a POST to `url` whose socket goes to the checked address `pinned` — never a
 * second lookup, so a name cannot be re-bound to another address between the check and the
 * connection (DNS rebinding). TLS still verifies the certificate for the name (SNI). Shared by
 * webhook deliveries and HTTP hook calls.
 */
export function pinnedPostOptions(url: URL, host: string, pinned: ResolvedTarget, signal: AbortSignal): { mod: typeof http | typeof https; options: http.RequestOptions & https.RequestOptions } {
  // Node 20 asks for every address (`all`, for Happy Eyeballs) when autoSelectFamily is on.
  type AllCallback = (err: null, addresses: { address: string; family: number }[]) => void;
  const lookup: LookupFunction = (_name, options, cb) => {
    if ((options as { all?: boolean }).all) (cb as unknown as AllCallback)(null, [{ address: pinned.address, family: pinned.family }]);
    else cb(null, pinned.address, pinned.family);
  };
  return {
    mod: url.protocol === 'https:' ? https : http,
    options: {
      method: 'POST',
      protocol: url.protocol,
      hostname: host,
      port: url.port || (url.protocol === 'https:' ? 443 : 80),
      path: `${url.pathname}${url.search}`,
      lookup,
      // TLS: SNI and certificate checks use the name, whatever address the socket went to.
      servername: isIP(host) === 0 ? host : undefined,
      agent: false,
      signal,
    },
  };
}
