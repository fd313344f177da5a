/**
 * The administrator's egress allowlist for HTTP plugin endpoints (SPEC §7 "Egress: a plugin
 * endpoint must match the admin's allowlist"; config `plugins.egress_allowlist`). Pure functions:
 * the install path checks `entry.endpoint` / `entry.health_endpoint` with them.
 *
 * Pattern forms (case-insensitive):
 *   - `host`           any port of exactly that host;
 *   - `host:port`      only that port (the URL's effective port: 80/443 when it names none);
 *   - `*.domain`       any name *below* domain, at any depth (`a.example.com`, `b.a.example.com`),
 *                      but not `domain` itself — list it separately if it is meant;
 *   - `*.domain:port`  the same, on one port;
 *   - `[v6]`, `[v6]:port` an IPv6 literal, in brackets as in URLs (RFC 3986 §3.2.2).
 * IPv4 literals are plain hosts. A trailing dot on a name is ignored. This check is about names;
 * whether the name *resolves* to an acceptable address is decided again at every call
 * (src/webhooks/egress.ts), because DNS can change after installation.
 */

export interface AllowlistPattern {
  /** Normalised like URL.hostname (lower-case, A-labels, IPv6 in brackets); without `*.` for wildcards. */
  host: string;
  wildcard: boolean;
  /** null: any port. */
  port: number | null;
}

/** Parses one allowlist entry; null when it is not one of the accepted forms. */
export function parseAllowlistPattern(raw: string): AllowlistPattern | null {
  const text = raw.trim().toLowerCase();
  if (text === '' || /[\s/\\@?#]/.test(text)) return null;
  let hostPart: string;
  let portPart: string | undefined;
  if (text.startsWith('[')) {
    const m = /^(\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/.exec(text);
    if (!m) return null;
    [, hostPart, portPart] = m;
  } else {
    const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(text);
    if (!m) return null;
    [, hostPart, portPart] = m;
  }
  let wildcard = false;
  if (hostPart.startsWith('*.')) {
    wildcard = true;
    hostPart = hostPart.slice(2);
  }
  // Only a single leading `*.` label is a wildcard; a `*` anywhere else is not a host.
  if (hostPart.includes('*')) return null;
  const host = normaliseHost(hostPart);
  if (host === null) return null;
  if (wildcard && host.startsWith('[')) return null;
  let port: number | null = null;
  if (portPart !== undefined) {
    port = Number(portPart);
    if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  }
  return { host, wildcard, port };
}

/** The entries of `allowlist` that are not valid patterns (for config checks and error messages). */
export function invalidAllowlistPatterns(allowlist: readonly string[]): string[] {
  return allowlist.filter((p) => parseAllowlistPattern(p) === null);
}

/** Host (as URL.hostname) and effective port of an http(s) URL; null when it is not one. */
export function endpointHostPort(url: string | URL): { host: string; port: number } | null {
  let u: URL;
  try {
    u = typeof url === 'string' ? new URL(url) : url;
  } catch {
    return null;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  const host = normaliseHost(u.hostname);
  if (host === null) return null;
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  return { host, port };
}

/** Whether the URL's host (and port) matches one of the patterns. Invalid patterns match nothing. */
export function isEndpointAllowed(url: string | URL, allowlist: readonly string[]): boolean {
  const target = endpointHostPort(url);
  if (target === null) return false;
  for (const raw of allowlist) {
    const p = parseAllowlistPattern(raw);
    if (p === null) continue;
    if (p.port !== null && p.port !== target.port) continue;
    if (p.wildcard ? target.host.endsWith(`.${p.host}`) : target.host === p.host) return true;
  }
  return false;
}

/**
 * The WHATWG URL host serialisation of `host` (lower-case, IDNs as A-labels, IPv4 in dotted form,
 * IPv6 compressed in brackets), without a trailing dot; null when it is not a valid host.
 */
function normaliseHost(host: string): string | null {
  const bare = host.endsWith('.') ? host.slice(0, -1) : host;
  if (bare === '') return null;
  try {
    const u = new URL(`http://${bare}/`);
    if (u.hostname === '' || u.port !== '' || u.username !== '' || u.pathname !== '/') return null;
    return u.hostname.endsWith('.') ? u.hostname.slice(0, -1) : u.hostname;
  } catch {
    return null;
  }
}
