/** DNS: the resolver port every lookup goes through. */
export {
  createResolver,
  dnsError,
  isNoRecordError,
  isTemporaryDnsError,
  DnsErrorCode,
  SUPPORTED_RRTYPES,
  type DnsAnswer,
  type DnsError,
  type DnsResolver,
  type MxRecord,
  type ResolverOptions,
  type RrType,
} from './resolver.js';
export { parseDnsServer, formatDnsServer, InvalidDnsServerError, DEFAULT_DNS_PORT, type DnsServerAddress } from './servers.js';
export { ExpiringLruCache } from './cache.js';
export { DnsConfigSchema, type DnsConfig } from '../config/sections/dns.js';
