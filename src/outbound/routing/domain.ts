/**
 * Destination domain names as routing compares and looks them up: lower case, no root dot,
 * IDNs as A-labels (RFC 5890: DNS holds only the ASCII form), and RFC 5321 §4.1.3 address
 * literals (`[192.0.2.1]`, `[IPv6:2001:db8::1]`) recognised.
 */
import net from 'node:net';
import { domainToASCII } from 'node:url';

/** The lookup form of a domain, or null when it cannot be a DNS name. */
export function normaliseDomain(domain: string): string | null {
  const bare = domain.trim().replace(/\.$/, '').toLowerCase();
  if (bare === '' || bare.length > 253) return null;
  const ascii = /^[\x21-\x7e]+$/.test(bare) ? bare : domainToASCII(bare);
  if (!ascii || ascii.length > 253 || ascii.split('.').some((l) => l.length === 0 || l.length > 63)) return null;
  return ascii;
}

/** The IP address of an address literal domain (`[192.0.2.1]`, `[IPv6:…]`), else null. */
export function addressLiteral(domain: string): string | null {
  const m = /^\[(?:ipv6:)?([^\]]+)\]$/i.exec(domain.trim());
  if (!m) return null;
  const ip = m[1];
  if (/^ipv6:/i.test(domain.trim().slice(1))) return net.isIPv6(ip) ? ip.toLowerCase() : null;
  return net.isIPv4(ip) ? ip : null;
}
