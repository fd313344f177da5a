/**
 * SPF, DKIM, DMARC and ARC verification of one inbound message (SPEC §3.1 step 3), with mailauth
 * doing the protocol work and our resolver doing every DNS lookup.
 *
 * Bounded in time: after `emailauth.timeout_ms` every DNS lookup still waiting fails (the checks
 * that needed it report `temperror`), and if mailauth has still not finished shortly after, the
 * whole result is `temperror`. Our own trouble (DNS down, a timeout, an internal error) never
 * rejects or quarantines a message: the disposition is then `accept`.
 */
import { authenticate, type AuthenticateResult } from 'mailauth';
import type { Readable } from 'node:stream';
import type { EmailAuthConfig } from '../config/sections/emailauth.js';
import type { DnsResolver } from '../dns/resolver.js';
import { formatAuthResults } from './auth-results.js';
import { resolverWithDeadline } from './deadline.js';
import { allTemperror, mapMailauth, resinfos, type MappedResults } from './mailauth-map.js';
import { dmarcDisposition } from './policy.js';
import type { EmailAuthResult, VerifyInput } from './types.js';

export interface VerifyLogger {
  warn(obj: object, msg: string): void;
}

export interface VerifyDeps {
  resolver: DnsResolver;
  config: EmailAuthConfig;
  logger?: VerifyLogger;
  /** [0, 1) source for DMARC pct= sampling (tests make it deterministic). */
  random?: () => number;
}

/**
 * Time mailauth gets after the DNS deadline to finish with the answers it has (everything left is
 * CPU work: hashing and signature checks already under way). After that the result is all
 * `temperror` and mailauth's late answer is ignored.
 */
export const GRACE_MS = 500;

const TIMEOUT_NOTE = 'verification timed out';

type Outcome = { kind: 'done'; res: AuthenticateResult } | { kind: 'error'; err: unknown } | { kind: 'timeout' };

function notChecked(): EmailAuthResult {
  return {
    spf: { result: 'none', domain: null },
    dkim: [],
    dmarc: { result: 'none', policy: null, domain: null },
    arc: { result: 'none' },
    header: '',
    disposition: 'accept',
  };
}

export async function verifyMessage(input: VerifyInput, deps: VerifyDeps): Promise<EmailAuthResult> {
  const { config } = deps;
  if (!config.enabled) return notChecked();

  const deadline = new AbortController();
  let dnsDeadlinePassed = false;
  const dnsTimer = setTimeout(() => {
    dnsDeadlinePassed = true;
    deadline.abort();
  }, config.timeout_ms);
  let hardTimer: NodeJS.Timeout | undefined;
  let stream: Readable | undefined;

  const run: Promise<Outcome> = (async () => {
    stream = input.source.open();
    const res = await authenticate(stream, {
      ip: input.remoteAddress,
      helo: input.helo || undefined,
      // An empty sender makes mailauth check postmaster@<helo> (RFC 7208 §2.4). Never let it fall
      // back to the message's Return-Path: that is text the sender wrote.
      sender: input.mailFrom ?? '',
      mta: input.receiverHostname,
      trustReceived: false,
      resolver: resolverWithDeadline(deps.resolver, deadline.signal),
      minBitLength: config.min_rsa_key_bits,
      disableArc: !config.arc,
      disableBimi: true, // BIMI is a display feature for mail clients, not a receiving decision
    });
    return { kind: 'done', res } as const;
  })().catch((err: unknown) => ({ kind: 'error', err }) as const);

  const hardLimit = new Promise<Outcome>((resolve) => {
    hardTimer = setTimeout(() => resolve({ kind: 'timeout' }), config.timeout_ms + GRACE_MS);
  });

  let outcome: Outcome;
  try {
    outcome = await Promise.race([run, hardLimit]);
  } finally {
    clearTimeout(dnsTimer);
    clearTimeout(hardTimer);
    deadline.abort(); // anything mailauth still waits for fails now
  }

  let mapped: MappedResults;
  let note: string | undefined;
  if (outcome.kind === 'done') {
    mapped = mapMailauth(outcome.res);
    if (dnsDeadlinePassed && dnsTimedOut(mapped)) {
      note = TIMEOUT_NOTE;
      deps.logger?.warn({ timeout_ms: config.timeout_ms }, 'email authentication: DNS lookups timed out');
    }
  } else {
    stream?.destroy();
    mapped = allTemperror(input);
    if (outcome.kind === 'timeout') {
      note = TIMEOUT_NOTE;
      deps.logger?.warn({ timeout_ms: config.timeout_ms }, 'email authentication timed out');
    } else {
      note = 'internal error';
      deps.logger?.warn({ err: outcome.err }, 'email authentication failed');
    }
  }

  const disposition = dmarcDisposition(mapped.dmarc, config.dmarc, deps.random);
  return {
    spf: mapped.spf,
    dkim: mapped.dkim.map(({ result, domain, selector }) => ({ result, domain, selector })),
    dmarc: { result: mapped.dmarc.result, policy: mapped.dmarc.policy, domain: mapped.dmarc.domain },
    arc: { result: mapped.arc.result },
    header: formatAuthResults(input.receiverHostname, resinfos(mapped, input, disposition, { arc: config.arc, note })),
    disposition,
  };
}

function dnsTimedOut(m: MappedResults): boolean {
  return m.spf.result === 'temperror' || m.dmarc.result === 'temperror' || m.arc.result === 'temperror' || m.dkim.some((d) => d.result === 'temperror');
}
