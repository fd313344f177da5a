/**
 * Turns mailauth's `authenticate()` output into our outcome types and into the resinfo list of
 * the Authentication-Results field. Kept apart from verify.ts so the mapping is one readable
 * table of "which mailauth field means what".
 */
import type { AuthenticateResult } from 'mailauth';
import type { ResInfo } from './auth-results.js';
import { normalisePct, parseDmarcPolicy, type Disposition, type DmarcPolicy } from './policy.js';
import type { ArcOutcome, DkimOutcome, DmarcOutcome, SpfOutcome, VerifyInput } from './types.js';

/** RFC 8601 §2.7 result keywords (IANA "Email Authentication Result Names"). */
const RESULT_NAMES = new Set(['pass', 'fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror', 'policy']);

export function normaliseResult(value: unknown): string {
  const r = String(value ?? '').toLowerCase();
  if (r === 'temperr') return 'temperror';
  if (r === 'permerr') return 'permerror';
  return RESULT_NAMES.has(r) ? r : 'none';
}

/**
 * mailauth reports a body hash mismatch as `neutral` (as Gmail writes it). RFC 6376 §6.1.3 makes
 * it a PERMFAIL of the signature: the verification test failed, which RFC 8601 §2.7.1 names
 * `fail`. A reader or a filter looking for dkim=fail must see a tampered body as one.
 */
function dkimResult(result: unknown, comment: string | null): string {
  const r = normaliseResult(result);
  return r === 'neutral' && comment === 'body hash did not verify' ? 'fail' : r;
}

export interface DkimDetail extends DkimOutcome {
  algorithm: string | null;
  /** First characters of b= (RFC 6008 header.b) to tell several signatures of one domain apart. */
  signaturePrefix: string | null;
  comment: string | null;
}

export interface MappedResults {
  spf: SpfOutcome;
  dkim: DkimDetail[];
  dmarc: DmarcOutcome & { pct: number; p: DmarcPolicy | null; sp: DmarcPolicy | null };
  arc: ArcOutcome & { instance: number; comment: string | null };
}

function str(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

function domainOf(address: string): string | null {
  const at = address.lastIndexOf('@');
  const domain = (at >= 0 ? address.slice(at + 1) : address).trim().toLowerCase();
  return domain === '' ? null : domain;
}

export function mapMailauth(res: AuthenticateResult): MappedResults {
  const spf: SpfOutcome = res.spf ? { result: normaliseResult(res.spf.status?.result), domain: str(res.spf.domain) } : { result: 'none', domain: null };

  // mailauth reports an unsigned message as one entry without a signing domain: that is dkim=none.
  const dkim: DkimDetail[] = (res.dkim?.results ?? [])
    .filter((r) => str(r.signingDomain) !== null)
    .map((r) => {
      const loose = r as unknown as { algo?: unknown; status?: { header?: { b?: unknown }; comment?: unknown } };
      const comment = str(loose.status?.comment);
      return {
        result: dkimResult(r.status?.result, comment),
        domain: str(r.signingDomain)?.toLowerCase() ?? null,
        selector: str(r.selector),
        algorithm: str(loose.algo) ?? str(r.algorithm),
        signaturePrefix: str(loose.status?.header?.b),
        comment,
      };
    });

  const from = res.dkim?.headerFrom;
  const fromDomain = Array.isArray(from) && from.length === 1 ? domainOf(from[0]) : null;
  const d = res.dmarc;
  const dmarc: MappedResults['dmarc'] = d
    ? {
        result: normaliseResult(d.status?.result),
        policy: parseDmarcPolicy(d.policy),
        domain: fromDomain,
        pct: normalisePct(d.pct),
        p: parseDmarcPolicy(d.p),
        sp: parseDmarcPolicy(d.sp),
      }
    : { result: 'none', policy: null, domain: fromDomain, pct: 100, p: null, sp: null };

  const a = res.arc;
  const arc: MappedResults['arc'] = a
    ? { result: normaliseResult(a.status?.result), instance: typeof a.i === 'number' ? a.i : 0, comment: str(a.status?.comment) }
    : { result: 'none', instance: 0, comment: null };

  return { spf, dkim, dmarc, arc };
}

/** Every check `temperror`: the verification as a whole ran out of time or failed. */
export function allTemperror(input: VerifyInput): MappedResults {
  return {
    spf: { result: 'temperror', domain: domainOf(input.mailFrom ?? input.helo) },
    dkim: [{ result: 'temperror', domain: null, selector: null, algorithm: null, signaturePrefix: null, comment: null }],
    dmarc: { result: 'temperror', policy: null, domain: null, pct: 100, p: null, sp: null },
    arc: { result: 'temperror', instance: 0, comment: null },
  };
}

/** The resinfos, in the order spf, dkim, dmarc, arc. */
export function resinfos(m: MappedResults, input: VerifyInput, disposition: Disposition, opts: { arc: boolean; note?: string }): ResInfo[] {
  const out: ResInfo[] = [];

  // RFC 8601 §2.7.2: smtp.mailfrom is the MAIL FROM address; with the null sender only HELO was checked.
  const spfProps: [string, string][] = [];
  if (input.mailFrom) spfProps.push(['smtp.mailfrom', input.mailFrom]);
  if (input.helo) spfProps.push(['smtp.helo', input.helo]);
  out.push({ method: 'spf', result: m.spf.result, comment: m.spf.result === 'temperror' ? opts.note : undefined, properties: spfProps });

  if (m.dkim.length === 0) out.push({ method: 'dkim', result: 'none' });
  for (const sig of m.dkim) {
    // RFC 8601 §2.7.1 header.d; RFC 6008 header.b; header.s and header.a as mailauth and others write them.
    const props: [string, string][] = [];
    if (sig.domain) props.push(['header.d', sig.domain]);
    if (sig.selector) props.push(['header.s', sig.selector]);
    if (sig.algorithm) props.push(['header.a', sig.algorithm]);
    if (sig.signaturePrefix) props.push(['header.b', sig.signaturePrefix]);
    const comment = sig.result === 'temperror' && opts.note ? opts.note : sig.result === 'pass' ? undefined : (sig.comment ?? undefined);
    out.push({ method: 'dkim', result: sig.result, comment, properties: props });
  }

  // RFC 7489 §11.2: dmarc reports header.from; the policy and what we did with it go in a comment.
  const policyNote = [
    m.dmarc.p ? `p=${m.dmarc.p}` : null,
    m.dmarc.sp && m.dmarc.sp !== m.dmarc.p ? `sp=${m.dmarc.sp}` : null,
    m.dmarc.p && m.dmarc.pct !== 100 ? `pct=${m.dmarc.pct}` : null,
    m.dmarc.result === 'fail' ? `dis=${disposition}` : null,
  ].filter((x): x is string => x !== null);
  const dmarcComment = m.dmarc.result === 'temperror' && opts.note ? opts.note : policyNote.join(' ') || undefined;
  out.push({ method: 'dmarc', result: m.dmarc.result, comment: dmarcComment, properties: m.dmarc.domain ? [['header.from', m.dmarc.domain]] : [] });

  if (opts.arc) {
    const arcComment = m.arc.result === 'temperror' && opts.note ? opts.note : m.arc.instance > 0 ? `i=${m.arc.instance}` : undefined;
    out.push({ method: 'arc', result: m.arc.result, comment: arcComment });
  }
  return out;
}
