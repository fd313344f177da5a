/**
 * Parses the `dns.servers` entries. node:dns `setServers` takes IP addresses only (it does not
 * resolve a host name to find its resolver), with an optional port: `192.0.2.53`,
 * `192.0.2.53:5353`, `2001:db8::53`, `[2001:db8::53]`, `[2001:db8::53]:5353`. Checking here gives
 * the operator an error that names the bad entry instead of Node's ERR_INVALID_IP_ADDRESS.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface DnsServerAddress {
  host: string;
  port: number;
}

export const DEFAULT_DNS_PORT = 53;

export class InvalidDnsServerError extends Error {
  readonly code = 'INVALID_DNS_SERVER';
  constructor(entry: string, why: string) {
    super(`invalid DNS server ${JSON.stringify(entry)}: ${why} (expected an IP address, optionally with :port; IPv6 with a port as [addr]:port)`);
    this.name = 'InvalidDnsServerError';
  }
}

function parsePort(entry: string, text: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new InvalidDnsServerError(entry, `bad port ${JSON.stringify(text)}`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw new InvalidDnsServerError(entry, `port ${port} is out of range 1–65535`);
  return port;
}

export function parseDnsServer(entry: string): DnsServerAddress {
  const text = entry.trim();
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) throw new InvalidDnsServerError(entry, 'missing "]"');
    const host = text.slice(1, close);
    if (!isIPv6(host)) throw new InvalidDnsServerError(entry, 'not an IPv6 address inside [ ]');
    const rest = text.slice(close + 1);
    if (rest === '') return { host, port: DEFAULT_DNS_PORT };
    if (!rest.startsWith(':')) throw new InvalidDnsServerError(entry, `unexpected ${JSON.stringify(rest)} after "]"`);
    return { host, port: parsePort(entry, rest.slice(1)) };
  }
  if (isIPv6(text)) return { host: text, port: DEFAULT_DNS_PORT };
  const colon = text.lastIndexOf(':');
  const host = colon < 0 ? text : text.slice(0, colon);
  if (!isIPv4(host)) throw new InvalidDnsServerError(entry, 'not an IP address (host names are not accepted)');
  return { host, port: colon < 0 ? DEFAULT_DNS_PORT : parsePort(entry, text.slice(colon + 1)) };
}

/** The form node:dns `setServers` accepts. */
export function formatDnsServer({ host, port }: DnsServerAddress): string {
  if (isIPv6(host)) return port === DEFAULT_DNS_PORT ? host : `[${host}]:${port}`;
  return port === DEFAULT_DNS_PORT ? host : `${host}:${port}`;
}
