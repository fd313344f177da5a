/**
 * The part of a client address that one client controls, used as the key of per-address limits
 * (connections per IP, login lockout). An IPv4 address is itself; an IPv6 client normally holds a
 * whole /64 (RFC 4291 §2.5.1 interface identifiers; SLAAC and privacy addresses rotate inside it), so
 * a per-address limit on IPv6 would be bypassed by changing the low 64 bits.
 */
import net from 'node:net';

export function peerKey(address: string): string {
  const bare = address.replace(/%.*$/, '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  if (net.isIPv4(bare)) return bare;
  if (!net.isIPv6(bare)) return bare.toLowerCase();
  const groups = ipv6Groups(bare);
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (callers check it with net.isIPv6 first). */
export function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase();
  // An embedded IPv4 tail (::ffff:192.0.2.1, 64:ff9b::192.0.2.1) is two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : new Array(8 - headGroups.length - tailGroups.length).fill('0');
  return [...headGroups, ...zeros, ...tailGroups].map((g) => parseInt(g, 16));
}
