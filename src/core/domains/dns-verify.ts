/**
 * Checks a domain's published DNS against the records it must publish (dns-records.ts), through
 * the server's DnsResolver port (src/dns). Per record the outcome is:
 *
 *  - `ok`       — the record is there and does what it must;
 *  - `missing`  — DNS answered definitely that there is no such record (NXDOMAIN / no data, or
 *                 no record of the kind at that name: no `v=spf1` TXT, no `v=DMARC1` TXT);
 *  - `mismatch` — records are there but wrong (MX elsewhere, a different DKIM key, two SPF records…);
 *  - `error`    — DNS could not answer (timeout, SERVFAIL, refused): a temporary state that says
 *                 nothing about the zone, so it is never reported as `missing`.
 *
 * `found` lists what DNS returned that is relevant to the record (MX as `<pref> <host>`, TXT
 * strings joined as RFC 7208 §3.3 / RFC 6376 §3.6.2.2 join them), so an administrator can see
 * what to change. The domain is verified when every record is `ok`.
 *
 * The rules, deliberately limited to what can be decided without evaluating someone else's policy:
 *
 *  - MX: one of the domain's MX hosts is `server.hostname`. A null MX (RFC 7505) is a mismatch.
 *  - SPF: exactly one `v=spf1` record (RFC 7208 §4.5: two or more are a permerror), whose terms,
 *    read left to right as RFC 7208 §4.6.2 does, reach a mechanism that covers this server with
 *    a pass qualifier (`+` or none) before any `all`:
 *      · `mx` or `mx:<the domain>` — the MX record check above makes that this server;
 *      · `a:<server.hostname>` (or bare `a` when the domain is the hostname);
 *      · `ip4:` / `ip6:` (with an optional prefix length) containing an address of
 *        `server.hostname` (its A/AAAA records, looked up through the same resolver).
 *    `include:`, `exists:`, `ptr`, `redirect=` and mechanisms naming other hosts are not followed:
 *    they depend on other zones; name this server in the domain's own record instead. A pass `all`
 *    reached first (`+all`) is a mismatch: it authorises every host on the Internet.
 *  - DKIM: a TXT record at `<selector>._domainkey.<domain>` whose `p=` (whitespace removed, RFC
 *    6376 §3.6.1) is the key's public key and whose `k=` (default `rsa`) is the key's type.
 *  - DMARC: exactly one TXT record at `_dmarc.<domain>` starting `v=DMARC1` (RFC 7489 §6.6.3: more
 *    than one means no policy), with `p=` none, quarantine or reject. Any published policy is
 *    accepted: choosing how strict is the domain owner's decision.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { isNoRecordError, type DnsResolver, type MxRecord } from '../../dns/index.js';
import type { ExpectedDnsRecord } from './dns-records.js';

export type DnsCheckStatus = 'ok' | 'missing' | 'mismatch' | 'error';

export interface DnsRecordCheck extends ExpectedDnsRecord {
  status: DnsCheckStatus;
  /** The relevant records DNS returned (empty when missing or on error). */
  found: string[];
  /** Why the status is what it is, for the administrator. */
  message: string;
}

export interface DomainDnsCheck {
  verified: boolean;
  records: DnsRecordCheck[];
}

export interface VerifyInput {
  domain: string;
  hostname: string;
  records: readonly ExpectedDnsRecord[];
}

type Lookup<T> = { ok: true; value: T } | { ok: false; missing: boolean; code: string };

interface Outcome {
  status: DnsCheckStatus;
  found: string[];
  message: string;
}

function bare(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

/** The node:dns error code of a failed lookup, for the message (never a stack or a server address). */
function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z_]{1,32}$/.test(code) ? code : 'EUNKNOWN';
}

async function attempt<T>(run: () => Promise<T>): Promise<Lookup<T>> {
  try {
    return { ok: true, value: await run() };
  } catch (err) {
    return { ok: false, missing: isNoRecordError(err), code: codeOf(err) };
  }
}

function failed(l: { missing: boolean; code: string }, name: string, what: string): Outcome {
  return l.missing
    ? { status: 'missing', found: [], message: `no ${what} at ${name}` }
    : { status: 'error', found: [], message: `DNS lookup of ${name} failed (${l.code}); try again later` };
}

/**
 * RFC 6376 §3.2 tag-list: `name=value` pairs separated by `;`, whitespace around both allowed.
 * Tag names are case-sensitive there; the first occurrence of a name wins.
 */
export function parseTagList(text: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name && !tags.has(name)) tags.set(name, part.slice(eq + 1).trim());
  }
  return tags;
}

// ---------------------------------------------------------------------------------------------
// MX

function checkMx(hostname: string, domain: string, mx: Lookup<MxRecord[]>): Outcome {
  if (!mx.ok) return failed(mx, domain, 'MX record');
  const sorted = [...mx.value].sort((a, b) => a.priority - b.priority);
  const found = sorted.map((r) => `${r.priority} ${bare(r.exchange) || '.'}`);
  if (sorted.length === 0) return { status: 'missing', found, message: `no MX record at ${domain}` };
  // RFC 7505: a single MX with the root as exchange says "this domain accepts no mail".
  if (sorted.length === 1 && bare(sorted[0].exchange) === '') {
    return { status: 'mismatch', found, message: `${domain} publishes a null MX (accepts no mail); point it at ${hostname}` };
  }
  if (sorted.some((r) => bare(r.exchange) === hostname)) return { status: 'ok', found, message: `MX points at ${hostname}` };
  return { status: 'mismatch', found, message: `no MX of ${domain} points at ${hostname}` };
}

// ---------------------------------------------------------------------------------------------
// SPF

const SPF_VERSION = /^v=spf1(\s|$)/i;
const MECHANISM = /^([+\-~?]?)(all|include|a|mx|ptr|ip4|ip6|exists)(?::([^/\s]*))?(?:\/(\d{1,3}))?(?:\/\/(\d{1,3}))?$/i;

interface HostAddresses {
  v4: Lookup<string[]>;
  v6: Lookup<string[]>;
}

function inNetwork(addresses: string[], network: string, prefix: number | undefined, family: 'ipv4' | 'ipv6'): boolean {
  const list = new BlockList();
  const max = family === 'ipv4' ? 32 : 128;
  const bits = prefix ?? max;
  if (bits > max) return false;
  try {
    list.addSubnet(network, bits, family);
  } catch {
    return false; // malformed network: RFC 7208 makes it a permerror; here it matches nothing
  }
  return addresses.some((a) => list.check(a, family));
}

const NOT_FOLLOWED = 'include:, exists:, ptr and redirect= are not followed';

/** The server's address lookup failed, and only an ip4:/ip6: term could have authorised it. */
function unchecked(found: string[], hostname: string): Outcome {
  return { status: 'error', found, message: `the addresses of ${hostname} could not be looked up to check the ip4:/ip6: terms; try again later` };
}

async function checkSpf(
  domain: string,
  hostname: string,
  txt: Lookup<string[][]>,
  hostAddresses: () => Promise<HostAddresses>,
): Promise<Outcome> {
  if (!txt.ok) return failed(txt, domain, 'SPF (v=spf1) record');
  const all = txt.value.map((chunks) => chunks.join(''));
  const spf = all.filter((t) => SPF_VERSION.test(t.trim()));
  if (spf.length === 0) return { status: 'missing', found: [], message: `no v=spf1 record among the ${all.length} TXT record(s) of ${domain}` };
  if (spf.length > 1) return { status: 'mismatch', found: spf, message: `${domain} has ${spf.length} v=spf1 records; RFC 7208 §4.5 makes that a permanent error: merge them into one` };

  let uncertain = false;
  const terms = spf[0].trim().split(/\s+/).slice(1);
  for (const term of terms) {
    const m = MECHANISM.exec(term);
    if (!m) continue; // a modifier (redirect=, exp=) or an unknown term: not followed
    const qualifier = m[1] || '+';
    const name = m[2].toLowerCase();
    const arg = m[3] === undefined ? undefined : bare(m[3]);
    let matches = false;
    switch (name) {
      case 'all':
        if (qualifier === '+') return { status: 'mismatch', found: spf, message: `"${term}" authorises every host on the Internet; end the record with -all or ~all` };
        if (uncertain) return unchecked(spf, hostname);
        return { status: 'mismatch', found: spf, message: `the record does not authorise ${hostname} before "${term}": add "mx" or "a:${hostname}" ahead of it (${NOT_FOLLOWED})` };
      case 'mx':
        matches = arg === undefined || arg === domain;
        break;
      case 'a':
        matches = arg === hostname || (arg === undefined && domain === hostname);
        break;
      case 'ip4':
      case 'ip6': {
        if (arg === undefined) break;
        const addrs = await hostAddresses();
        const family = name === 'ip4' ? 'ipv4' : 'ipv6';
        const lookup = name === 'ip4' ? addrs.v4 : addrs.v6;
        const network = m[3]!;
        if ((family === 'ipv4' && !isIPv4(network)) || (family === 'ipv6' && !isIPv6(network))) break;
        if (!lookup.ok) {
          if (!lookup.missing) uncertain = true;
          break;
        }
        matches = inNetwork(lookup.value, network, m[4] === undefined ? undefined : Number(m[4]), family);
        break;
      }
      default:
        break; // include, exists, ptr: depend on other zones, not followed
    }
    if (!matches) continue;
    if (qualifier === '+') return { status: 'ok', found: spf, message: `"${term}" authorises ${hostname}` };
    return { status: 'mismatch', found: spf, message: `"${term}" matches ${hostname} but does not pass it (qualifier "${qualifier}")` };
  }
  if (uncertain) return unchecked(spf, hostname);
  return { status: 'mismatch', found: spf, message: `the SPF record does not authorise ${hostname}: add "mx" or "a:${hostname}" (${NOT_FOLLOWED})` };
}

// ---------------------------------------------------------------------------------------------
// DKIM

function checkDkim(record: ExpectedDnsRecord, txt: Lookup<string[][]>): Outcome {
  if (!txt.ok) return failed(txt, record.name, 'DKIM key record');
  const found = txt.value.map((chunks) => chunks.join(''));
  if (found.length === 0) return { status: 'missing', found, message: `no DKIM key record at ${record.name}` };
  const want = parseTagList(record.value);
  const wantP = (want.get('p') ?? '').replace(/\s+/g, '');
  const wantK = (want.get('k') ?? 'rsa').toLowerCase();
  for (const value of found) {
    const tags = parseTagList(value);
    const v = tags.get('v');
    if (v !== undefined && v !== 'DKIM1') continue;
    const p = (tags.get('p') ?? '').replace(/\s+/g, '');
    const k = (tags.get('k') ?? 'rsa').toLowerCase();
    if (p === wantP && k === wantK) return { status: 'ok', found, message: `the published key matches selector ${record.selector ?? ''}`.trim() };
  }
  return { status: 'mismatch', found, message: `the record at ${record.name} does not publish this server's key (p= differs); replace it with the expected value` };
}

// ---------------------------------------------------------------------------------------------
// DMARC

const DMARC_VERSION = /^v\s*=\s*DMARC1\s*(;|$)/;
const DMARC_POLICIES = new Set(['none', 'quarantine', 'reject']);

function checkDmarc(record: ExpectedDnsRecord, txt: Lookup<string[][]>): Outcome {
  if (!txt.ok) return failed(txt, record.name, 'DMARC record');
  const found = txt.value.map((chunks) => chunks.join(''));
  // RFC 7489 §6.6.3: records not starting with v=DMARC1 are ignored.
  const dmarc = found.filter((t) => DMARC_VERSION.test(t.trim()));
  if (dmarc.length === 0) return { status: 'missing', found, message: `no v=DMARC1 record at ${record.name}` };
  if (dmarc.length > 1) return { status: 'mismatch', found, message: `${record.name} has ${dmarc.length} DMARC records; RFC 7489 §6.6.3 then applies no policy: keep one` };
  const p = parseTagList(dmarc[0]).get('p')?.toLowerCase();
  if (p === undefined || !DMARC_POLICIES.has(p)) return { status: 'mismatch', found, message: 'the DMARC record has no valid policy: add p=quarantine (or none / reject)' };
  return { status: 'ok', found, message: `DMARC policy ${p} is published` };
}

// ---------------------------------------------------------------------------------------------

/** Looks every expected record up (concurrently, each name once) and grades it. */
export async function verifyDnsRecords(resolver: DnsResolver, input: VerifyInput): Promise<DomainDnsCheck> {
  const domain = bare(input.domain);
  const hostname = bare(input.hostname);
  const memo = new Map<string, Promise<Lookup<unknown>>>();
  function once<T>(key: string, run: () => Promise<T>): Promise<Lookup<T>> {
    let p = memo.get(key);
    if (!p) {
      p = attempt(run);
      memo.set(key, p);
    }
    return p as Promise<Lookup<T>>;
  }
  const txt = (name: string) => once(`TXT ${name}`, () => resolver.resolveTxt(name));
  const hostAddresses = async (): Promise<HostAddresses> => ({
    v4: await once(`A ${hostname}`, () => resolver.resolve4(hostname)),
    v6: await once(`AAAA ${hostname}`, () => resolver.resolve6(hostname)),
  });

  const checks = input.records.map(async (record): Promise<DnsRecordCheck> => {
    const name = bare(record.name);
    let outcome: Outcome;
    switch (record.purpose) {
      case 'mx':
        outcome = checkMx(hostname, name, await once(`MX ${name}`, () => resolver.resolveMx(name)));
        break;
      case 'spf':
        outcome = await checkSpf(domain, hostname, await txt(name), hostAddresses);
        break;
      case 'dkim':
        outcome = checkDkim(record, await txt(name));
        break;
      case 'dmarc':
        outcome = checkDmarc(record, await txt(name));
        break;
    }
    return { ...record, ...outcome };
  });
  const records = await Promise.all(checks);
  return { verified: records.length > 0 && records.every((r) => r.status === 'ok'), records };
}
