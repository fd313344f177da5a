/**
 * Bounds the time one message's verification may spend in DNS. mailauth cannot be cancelled, so
 * the resolver it is given is wrapped: once the deadline passes, every pending and every new
 * lookup fails at once with ETIMEOUT, which mailauth reports as `temperror`. The checks that had
 * their answers keep their real results, and mailauth finishes promptly instead of hanging.
 */
import type { DNSResolver } from 'mailauth';
import { dnsError, DnsErrorCode, type DnsResolver } from '../dns/resolver.js';

/** The function form mailauth's `resolver` option takes (like `dns.promises.resolve`). */
export type LookupFunction = DNSResolver;

export function resolverWithDeadline(resolver: DnsResolver, signal: AbortSignal): LookupFunction {
  return (name, rrtype) => {
    const timedOut = () => dnsError(DnsErrorCode.TIMEOUT, `query${rrtype}`, name);
    if (signal.aborted) return Promise.reject(timedOut());
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(timedOut());
      signal.addEventListener('abort', onAbort, { once: true });
      resolver.resolve(name, rrtype).then(
        (answer) => {
          signal.removeEventListener('abort', onAbort);
          // mailauth's typing names only TXT/A answers; MX and the others pass through as node:dns gives them.
          resolve(answer as string[][] | string[]);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  };
}
