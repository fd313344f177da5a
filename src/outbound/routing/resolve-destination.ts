/**
 * Where mail for a domain goes (SPEC §3.3, §5.2): the DestinationResolver of src/outbound/types.ts.
 *
 *   1. a static route for the domain (exact, case-insensitive), else the `*` route (a smarthost);
 *   2. else the MX records (RFC 5321 §5.1): a null MX (RFC 7505) means "accepts no mail"; MX
 *      hosts in preference order, equal preferences shuffled, each with its AAAA then A addresses;
 *      no MX records → the implicit MX, the domain's own addresses;
 *   3. TLS: `required` for `require_tls_domains`, else opportunistic (RFC 7435); an MTA-STS policy
 *      in enforce mode (RFC 8461 §5) keeps only the MX hosts it names and demands verified TLS.
 *
 * Errors are `temporary` when asking again later may help (DNS timeouts, SERVFAIL, no MX allowed
 * by an MTA-STS policy) and permanent when the DNS said definitely (the domain does not exist, or
 * has no host that could take mail), so delivery bounces at once (SPEC §3.3).
 *
 * Config is read on every call: routes and TLS lists are reloadable.
 */
import net from 'node:net';
import { isNoRecordError, type DnsResolver, type MxRecord } from '../../dns/resolver.js';
import type { OutboundConfig, OutboundRoute } from '../../config/sections/outbound.js';
import type { Destination, DestinationHost, DestinationResolver, TlsMode } from '../types.js';
import { addressLiteral, normaliseDomain } from './domain.js';
import { mxMatchesPolicy, type MtaStsCache } from './mta-sts.js';

export interface DestinationResolverOptions {
  resolver: DnsResolver;
  config: () => OutboundConfig;
  /** null = MTA-STS off whatever the config says (e.g. no HTTPS egress). */
  mtaSts: MtaStsCache | null;
  /** Kept for symmetry with the other factories; routing itself needs no clock. */
  now?: () => number;
  /** Shuffles equal MX preferences (tests pass a fixed sequence). */
  random?: () => number;
}

/** MX hosts tried at most (a domain with hundreds of MX records must not cost hundreds of lookups). */
export const MAX_MX_HOSTS = 16;

type AddressResult = { kind: 'ok'; addresses: string[] } | { kind: 'none' } | { kind: 'temporary'; message: string };

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** AAAA then A addresses of a name (RFC 5321 §5.1 leaves the order to the client; IPv6 first). */
async function addressesOf(resolver: DnsResolver, name: string): Promise<AddressResult> {
  const settle = (p: Promise<string[]>) =>
    p.then(
      (v) => ({ ok: true as const, v }),
      (err: unknown) => ({ ok: false as const, err }),
    );
  const [v6, v4] = await Promise.all([settle(resolver.resolve6(name)), settle(resolver.resolve4(name))]);
  const addresses = [...(v6.ok ? v6.v : []), ...(v4.ok ? v4.v : [])];
  if (addresses.length > 0) return { kind: 'ok', addresses };
  for (const r of [v6, v4]) if (!r.ok && !isNoRecordError(r.err)) return { kind: 'temporary', message: message(r.err) };
  return { kind: 'none' };
}

/** Sorted by preference; equal preferences in random order (RFC 5321 §5.1, load spreading). */
export function orderMx(records: MxRecord[], random: () => number = Math.random): MxRecord[] {
  const byPref = new Map<number, MxRecord[]>();
  for (const r of records) byPref.set(r.priority, [...(byPref.get(r.priority) ?? []), r]);
  const out: MxRecord[] = [];
  for (const pref of [...byPref.keys()].sort((a, b) => a - b)) {
    const group = byPref.get(pref)!;
    for (let i = group.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [group[i], group[j]] = [group[j], group[i]];
    }
    out.push(...group);
  }
  return out;
}

function inList(domain: string, list: readonly string[]): boolean {
  return list.some((d) => normaliseDomain(d) === domain);
}

export function createDestinationResolver(opts: DestinationResolverOptions): DestinationResolver {
  const { resolver } = opts;
  const random = opts.random ?? Math.random;

  const error = (domain: string, temporary: boolean, text: string): Destination => ({ kind: 'error', domain, temporary, message: text });

  function findRoute(cfg: OutboundConfig, domain: string): OutboundRoute | null {
    return cfg.routes.find((r) => r.domain !== '*' && normaliseDomain(r.domain) === domain) ?? cfg.routes.find((r) => r.domain === '*') ?? null;
  }

  async function viaRoute(cfg: OutboundConfig, domain: string, route: OutboundRoute): Promise<Destination> {
    const literal = route.host.replace(/^\[(.*)\]$/, '$1');
    let addresses: string[];
    let host = route.host;
    if (net.isIP(literal)) {
      addresses = [literal];
      host = literal;
    } else {
      const name = normaliseDomain(route.host);
      if (name === null) return error(domain, true, `route for ${route.domain}: invalid host ${JSON.stringify(route.host)}`);
      host = name;
      const found = await addressesOf(resolver, name);
      // A route is the administrator's own setting: a host that does not resolve is a
      // configuration problem to fix, not a reason to bounce the sender's mail.
      if (found.kind === 'temporary') return error(domain, true, `route host ${name}: DNS lookup failed (${found.message})`);
      if (found.kind === 'none') return error(domain, true, `route host ${name} has no A/AAAA address`);
      addresses = found.addresses;
    }
    const auth = route.auth_user !== '' ? { user: route.auth_user, password: route.auth_password } : undefined;
    let tls: TlsMode = route.tls;
    // require_tls_domains is a promise about the destination; a route may only make TLS stricter.
    if ((tls === 'opportunistic' || tls === 'none') && inList(domain, cfg.require_tls_domains)) tls = 'required';
    // A relay we authenticate to must prove who it is before it gets the password.
    const verifyCertificate = auth !== undefined && (tls === 'required' || tls === 'implicit');
    const dh: DestinationHost = { host, port: route.port, preference: 0, addresses, tls, verifyCertificate, source: 'route' };
    if (auth) dh.auth = auth;
    return { kind: 'hosts', domain, hosts: [dh], mtaSts: { mode: 'none' } };
  }

  async function viaMx(cfg: OutboundConfig, domain: string): Promise<Destination> {
    let records: MxRecord[];
    try {
      records = await resolver.resolveMx(domain);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ENOTFOUND') return error(domain, false, `domain ${domain} does not exist (NXDOMAIN)`);
      if (!isNoRecordError(err)) return error(domain, true, `MX lookup for ${domain} failed: ${message(err)}`);
      records = [];
    }

    // RFC 7505 §3: one MX with preference 0 and the root as exchange = no mail accepted. node:dns
    // gives the root as ''. A "." mixed with real MX records is a broken set: the real ones are used.
    const isRoot = (r: MxRecord) => r.exchange === '' || r.exchange === '.';
    if (records.length === 1 && isRoot(records[0]) && records[0].priority === 0) return { kind: 'null-mx', domain };
    const usable = records.filter((r) => !isRoot(r));

    const tls: TlsMode = inList(domain, cfg.require_tls_domains) ? 'required' : 'opportunistic';
    let candidates: { host: string; preference: number; source: 'mx' | 'a' }[];
    if (usable.length === 0) {
      // RFC 5321 §5.1: no MX records → the domain itself is the implicit MX (preference 0).
      candidates = [{ host: domain, preference: 0, source: 'a' }];
    } else {
      // RFC 5321 §5.1 / RFC 2181 §10.3: an MX names a host; an IP address written as the exchange
      // is not one, and is skipped rather than guessed at.
      candidates = orderMx(usable, random)
        .map((r) => ({ host: r.exchange.toLowerCase().replace(/\.$/, ''), preference: r.priority, source: 'mx' as const }))
        .filter((c) => net.isIP(c.host.replace(/^\[(.*)\]$/, '$1')) === 0);
      if (candidates.length === 0) return error(domain, false, `the MX records of ${domain} name IP addresses, not hosts`);
    }

    // RFC 8461 §5: with a policy in enforce mode only the MX hosts it names may be used, over
    // TLS with a valid certificate for the MX name (§4.2). Testing mode changes nothing here.
    let mtaSts: { mode: 'enforce' | 'testing' | 'none'; id?: string } = { mode: 'none' };
    let verifyCertificate = false;
    let hostTls = tls;
    if (cfg.mta_sts && opts.mtaSts) {
      const policy = await opts.mtaSts.get(domain);
      if (policy) {
        mtaSts = { mode: policy.mode, id: policy.id };
        if (policy.mode === 'enforce') {
          const allowed = candidates.filter((c) => mxMatchesPolicy(c.host, policy.mx));
          if (allowed.length === 0) {
            return error(
              domain,
              true,
              `MTA-STS policy ${policy.id} of ${domain} (enforce) allows none of the MX hosts ${candidates.map((c) => c.host).join(', ')} (policy mx: ${policy.mx.join(', ')})`,
            );
          }
          candidates = allowed;
          hostTls = 'required';
          verifyCertificate = true;
        }
      }
    }

    candidates = candidates.slice(0, MAX_MX_HOSTS);
    const resolved = await Promise.all(candidates.map((c) => addressesOf(resolver, c.host)));
    const hosts: DestinationHost[] = [];
    const temporary: string[] = [];
    candidates.forEach((c, i) => {
      const r = resolved[i];
      if (r.kind === 'ok') hosts.push({ host: c.host, port: cfg.port, preference: c.preference, addresses: r.addresses, tls: hostTls, verifyCertificate, source: c.source });
      else if (r.kind === 'temporary') temporary.push(`${c.host}: ${r.message}`);
      // kind 'none': a host without addresses is skipped (RFC 5321 §5.1).
    });
    if (hosts.length > 0) return { kind: 'hosts', domain, hosts, mtaSts };
    if (temporary.length > 0) return error(domain, true, `address lookup failed for ${temporary.join('; ')}`);
    return error(
      domain,
      false,
      usable.length === 0 ? `domain ${domain} has no MX and no A/AAAA records` : `no MX host of ${domain} has an address (${candidates.map((c) => c.host).join(', ')})`,
    );
  }

  return {
    async resolve(input: string): Promise<Destination> {
      const cfg = opts.config();
      const literal = addressLiteral(input);
      if (literal !== null) {
        // A smarthost carries everything, address literals too (no direct egress is the usual reason for one).
        const smarthost = cfg.routes.find((r) => r.domain === '*');
        if (smarthost) return viaRoute(cfg, input.trim(), smarthost);
        // RFC 5321 §4.1.3: an address literal names the host directly; no DNS, no MTA-STS.
        return {
          kind: 'hosts',
          domain: input.trim(),
          hosts: [{ host: literal, port: cfg.port, preference: 0, addresses: [literal], tls: 'opportunistic', verifyCertificate: false, source: 'a' }],
          mtaSts: { mode: 'none' },
        };
      }
      const domain = normaliseDomain(input);
      if (domain === null) return error(input, false, `${JSON.stringify(input)} is not a valid domain name`);
      const route = findRoute(cfg, domain);
      if (route) return viaRoute(cfg, domain, route);
      return viaMx(cfg, domain);
    },
  };
}
