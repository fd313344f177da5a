/**
 * DKIM signing of submitted mail (SPEC §3.2 step 3; RFC 6376, RFC 8463) with the sending domain's
 * key from DkimKeyService (src/emailauth/dkim-keys.ts). mailauth does the canonicalisation and the
 * signature; this file picks the key and what is signed.
 *
 * - Key: the tenant's domain named by the caller (the From: domain, for DMARC alignment, RFC 7489
 *   §3.1.1), its ACTIVE keys only. During a rotation overlap a domain may have more than one
 *   active key; we sign with the newest only — one signature is enough for every verifier, the
 *   older key stays published (status `retiring` after `rotate`) for mail already in transit, and
 *   a second signature would double the work and the header for nothing. No active key (or a
 *   domain that is not the tenant's) → null: the message goes unsigned.
 * - Canonicalisation relaxed/relaxed (RFC 6376 §3.4.2, §3.4.4): survives the re-folding and
 *   whitespace changes that relays make; `simple` breaks on them.
 * - Algorithm: the key's, `rsa-sha256` or `ed25519-sha256` (RFC 8463). No `l=` (a body length
 *   lets anyone append content, RFC 6376 §8.2), no `x=`; `t=` is the signing time.
 * - Signed fields (`h=`), RFC 6376 §5.4.1's list of what SHOULD be signed: the originator and
 *   recipient fields, subject, date, ids and threading, MIME structure fields, the Resent-* and
 *   List-* fields, and List-Unsubscribe-Post (RFC 8058 §4 requires it signed). Never the trace
 *   fields (Received, Return-Path) nor Authentication-Results, which later hops add or rename
 *   (RFC 6376 §5.4.1 "SHOULD NOT"). Each occurrence present is signed, bottom-up (§5.4.2).
 *
 * The private key is unsealed per signature and exported to PEM only for mailauth's call; it is
 * never logged, stored or returned.
 */
import { dkimSign, type DKIMSignOptions } from 'mailauth';
import { tenantScope } from '../core/scope.js';
import type { TenancyService } from '../core/tenancy/service.js';
import type { DkimKeyService } from '../emailauth/dkim-keys.js';
import type { Database } from '../store/db/database.js';
import type { DkimSigner } from './types.js';

export const SIGNED_HEADER_FIELDS: readonly string[] = [
  'From', 'Sender', 'Reply-To', 'Subject', 'Date', 'Message-ID', 'To', 'Cc',
  'MIME-Version', 'Content-Type', 'Content-Transfer-Encoding', 'Content-ID', 'Content-Description',
  'Resent-Date', 'Resent-From', 'Resent-Sender', 'Resent-To', 'Resent-Cc', 'Resent-Message-ID',
  'In-Reply-To', 'References',
  'List-Id', 'List-Help', 'List-Unsubscribe', 'List-Unsubscribe-Post', 'List-Subscribe', 'List-Post', 'List-Owner', 'List-Archive',
];

export interface DkimSignerDeps {
  /** The composition root's database (keys and domains are read through `dkim` and `tenancy`). */
  db: Database;
  dkim: DkimKeyService;
  tenancy: TenancyService;
  /** Clock for `t=` (tests). */
  now?: () => number;
}

export class DkimSignError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DkimSignError';
  }
}

export function createDkimSigner(deps: DkimSignerDeps): DkimSigner {
  const now = deps.now ?? Date.now;
  return {
    async sign(tenantId, domain, raw) {
      const scope = tenantScope(tenantId);
      let domainRow;
      try {
        domainRow = await deps.tenancy.domains.get(scope, domain.toLowerCase());
      } catch (err) {
        if ((err as { code?: string }).code === 'NOT_FOUND') return null;
        throw err;
      }
      const keys = await deps.dkim.activeKeys(scope, domainRow.id);
      // activeKeys is ordered oldest first: the newest is the one a rotation just made.
      const key = keys[keys.length - 1];
      if (!key) return null;
      const privateKey = (await deps.dkim.privateKey(scope, key.id)).export({ type: 'pkcs8', format: 'pem' }).toString();
      // mailauth's typings want the signing fields at the top level, but its signer reads only
      // `signatureData` (lib/dkim/dkim-signer.js), and `headerList` as one colon-separated string.
      const options = {
        canonicalization: 'relaxed/relaxed',
        algorithm: key.algorithm,
        signTime: new Date(now()),
        headerList: SIGNED_HEADER_FIELDS.join(':'),
        signatureData: [{ signingDomain: domainRow.name, selector: key.selector, privateKey, algorithm: key.algorithm, canonicalization: 'relaxed/relaxed' }],
      } as unknown as DKIMSignOptions;
      const res = await dkimSign(raw, options);
      if (res.errors?.length) {
        const first = res.errors[0] as { err?: Error } | Error;
        const cause = first instanceof Error ? first : first.err;
        throw new DkimSignError(`DKIM signing with ${key.selector}._domainkey.${domainRow.name} failed: ${cause?.message ?? 'unknown error'}`, { cause });
      }
      const field = res.signatures.replace(/(\r\n)+$/, '');
      return field ? `${field}\r\n` : null;
    },
  };
}
