/**
 * The DNS records a hosted domain must publish (SPEC §11 "domains … DNS records to publish: MX,
 * SPF, DKIM, DMARC"), computed from the server's hostname and the domain's DKIM keys. Pure: no
 * I/O, so every rule is a unit test; dns-verify.ts checks the same list against live DNS.
 *
 * Names are fully qualified without the trailing dot (what DNS hosting panels expect); values are
 * the record data as one string — a TXT value in full, even when longer than the 255 octets one
 * character-string holds (`txtStrings` in src/emailauth/dkim-keys.ts gives the split for a zone file).
 */
import { publicRecord } from '../../emailauth/dkim-keys.js';
import type { DkimKey } from '../../emailauth/dkim-keys.js';

export type DnsRecordPurpose = 'mx' | 'spf' | 'dkim' | 'dmarc';

export interface ExpectedDnsRecord {
  type: 'MX' | 'TXT';
  /** Owner name, e.g. `example.com`, `mr202501._domainkey.example.com`, `_dmarc.example.com`. */
  name: string;
  /** Record data: `10 mail.example.net` for MX, the text for TXT. */
  value: string;
  purpose: DnsRecordPurpose;
  /** One sentence for the administrator: what the record does. */
  description: string;
  /** DKIM only: the key's selector. */
  selector?: string;
}

export interface DnsRecordsInput {
  /** The domain (lower-case A-labels, as stored). */
  domain: string;
  /** `server.hostname`: the name the domain's MX points at and mail is sent from. */
  hostname: string;
  /** The domain's DKIM keys to publish (active, and later also retiring ones). */
  dkimKeys: readonly Pick<DkimKey, 'selector' | 'algorithm' | 'publicKey'>[];
}

/** MX preference of the one MX record (RFC 5321 §5.1: lower is preferred; one host, any value works). */
export const MX_PREFERENCE = 10;

function bare(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

/** A host name with at least one dot: something other hosts can resolve (not `localhost`). */
export function isQualifiedHostname(hostname: string): boolean {
  return bare(hostname).includes('.');
}

/**
 * The SPF record (RFC 7208). `mx` authorises whatever the domain's MX points at — this server,
 * once the MX record below is published. `a:<hostname>` also names this server directly, so mail
 * it sends still passes if the MX is later moved to a filtering service in front of it. Both cost
 * one DNS lookup each of the ten RFC 7208 §4.6.4 allows. `-all`: every other host fails.
 * An unqualified hostname (`localhost`, a development setting) is left out: it resolves nowhere else.
 */
export function spfValue(hostname: string): string {
  const h = bare(hostname);
  return isQualifiedHostname(h) ? `v=spf1 mx a:${h} -all` : 'v=spf1 mx -all';
}

/**
 * RFC 7489 §6.3: `p=quarantine` asks receivers to treat failing mail as suspicious (a safe start
 * that still protects the domain); aggregate reports (`rua`) go to the domain's postmaster, an
 * address every mail domain must have (RFC 5321 §4.5.1).
 */
export function dmarcValue(domain: string): string {
  return `v=DMARC1; p=quarantine; rua=mailto:postmaster@${bare(domain)}`;
}

/** The records to publish, in a stable order: MX, SPF, one DKIM record per key, DMARC. */
export function expectedDnsRecords(input: DnsRecordsInput): ExpectedDnsRecord[] {
  const domain = bare(input.domain);
  const hostname = bare(input.hostname);
  const records: ExpectedDnsRecord[] = [
    {
      type: 'MX',
      name: domain,
      value: `${MX_PREFERENCE} ${hostname}`,
      purpose: 'mx',
      description: `Delivers the domain's incoming mail to this server (${hostname}).`,
    },
    {
      type: 'TXT',
      name: domain,
      value: spfValue(hostname),
      purpose: 'spf',
      description: 'SPF: authorises this server to send mail for the domain; replace any other v=spf1 record (a domain may have only one).',
    },
  ];
  for (const key of input.dkimKeys) {
    records.push({
      type: 'TXT',
      name: `${key.selector}._domainkey.${domain}`,
      value: publicRecord(key),
      purpose: 'dkim',
      selector: key.selector,
      description: `DKIM public key (selector ${key.selector}): lets receivers verify the signatures this server adds to the domain's mail.`,
    });
  }
  records.push({
    type: 'TXT',
    name: `_dmarc.${domain}`,
    value: dmarcValue(domain),
    purpose: 'dmarc',
    description: 'DMARC: tells receivers to quarantine mail that fails SPF and DKIM alignment, and where to send aggregate reports.',
  });
  return records;
}
