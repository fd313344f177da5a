/**
 * Signals and scoring of the outbound spam policy engine (SPEC §8), all pure functions.
 *
 *   score = w_rate·rate + w_content·content + w_history·history      (weights normalised to sum 1)
 *
 * - rate: the HIGHEST ratio of a counter to its limit (the tightest limit decides), and the burst
 *   (messages in the current minute against a per-minute share of the hourly limit);
 * - content: repeated identical content, recipient count, known spam patterns, dangerous URLs;
 * - history: past blocks and admin reports (30 days), a new client IP, an unusual user agent.
 *   (The contract has three components; the client signals describe the account's own history
 *   of clients, so they sit in `history`.)
 *
 * Inside content and history, independent signals combine as 1 − Π(1 − vᵢ): several weak signals
 * add up, none alone exceeds its own value, and the result stays in 0…1.
 *
 * Every signal carries its value (0…1) and what was measured, so each decision can be explained.
 */
import type { PolicyLevel, PolicySignal } from '../types.js';
import { describeCheck, type LimitCheck } from './rate-limiter.js';

const clamp01 = (v: number) => (Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0);

/** 0 up to `free`, rising linearly to 1 at `full`. */
function ramp(n: number, free: number, full: number): number {
  return clamp01((n - free) / (full - free));
}

// ── rate ──────────────────────────────────────────────────────────────────────────────────────

/** One signal per counted limit: `user_hour_rate` = 212/200 → 1 (capped). */
export function rateSignals(checks: readonly LimitCheck[]): PolicySignal[] {
  return checks.map((c) => ({ name: `${c.name}_rate`, component: 'rate', value: clamp01(c.count / c.limit), detail: describeCheck(c) }));
}

/**
 * Burst: messages in the current minute against a tenth of the hourly limit (at least 20), so a
 * user who sends a whole hour's quota within minutes shows up before the hourly limit is reached.
 */
export function burstThreshold(userPerHour: number): number {
  return Math.max(20, Math.ceil(userPerHour / 10));
}

export function burstSignal(countThisMinute: number, userPerHour: number): PolicySignal {
  const threshold = burstThreshold(userPerHour);
  return { name: 'burst', component: 'rate', value: clamp01(countThisMinute / threshold), detail: `${countThisMinute} in this minute (burst threshold ${threshold})` };
}

// ── content ───────────────────────────────────────────────────────────────────────────────────

/** Same body from one user within the hour: 3 copies are normal (resend, forward), 20 saturate. */
export const REPEAT_FREE = 3;
export const REPEAT_FULL = 20;

export function repeatedContentSignal(copiesThisHour: number): PolicySignal {
  return {
    name: 'repeated_content',
    component: 'content',
    value: ramp(copiesThisHour, REPEAT_FREE, REPEAT_FULL),
    detail: `${copiesThisHour} identical message(s) from this account this hour`,
  };
}

/** Recipients of this message: 10 are normal, 100 saturate (SPEC §8 "recipient count"). */
export const RECIPIENTS_FREE = 10;
export const RECIPIENTS_FULL = 100;

export function recipientCountSignal(recipients: number): PolicySignal {
  return { name: 'recipient_count', component: 'content', value: ramp(recipients, RECIPIENTS_FREE, RECIPIENTS_FULL), detail: `${recipients} recipient(s)` };
}

/**
 * A small built-in list of phrases typical of outbound spam from compromised accounts (advance
 * fee, lottery, crypto, credential phishing). Each match adds 0.35; GTUBE (the standard
 * anti-spam test string) is decisive on its own.
 */
export const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

export const SPAM_PATTERNS: readonly { name: string; re: RegExp }[] = [
  { name: 'lottery', re: /\b(you\s+(have\s+)?won|lottery\s+winner|claim\s+your\s+(prize|winnings))\b/i },
  { name: 'advance_fee', re: /\b(next\s+of\s+kin|inheritance\s+fund|million\s+(us\s+)?dollars|beneficiary\s+of\s+the\s+sum)\b/i },
  { name: 'crypto', re: /\b(bitcoin|btc|crypto(currency)?)\b.{0,60}\b(double|guaranteed|invest(ment)?|profit|wallet)\b/i },
  { name: 'verify_account', re: /\b(verify|confirm|validate|reactivate)\s+your\s+(account|password|identity|mailbox)\b/i },
  { name: 'account_suspension_threat', re: /\byour\s+(account|mailbox)\s+(will\s+be|has\s+been)\s+(suspended|closed|deactivated|locked)\b/i },
  { name: 'urgent_payment', re: /\b(wire\s+transfer|gift\s+cards?)\b.{0,60}\b(urgent|immediately|today)\b/i },
  { name: 'pharma', re: /\b(viagra|cialis|no\s+prescription)\b/i },
];

export function spamPatternSignal(subject: string, bodyText: string): PolicySignal {
  const text = `${subject}\n${bodyText}`;
  if (text.includes(GTUBE)) return { name: 'spam_pattern', component: 'content', value: 1, detail: 'GTUBE test string' };
  const hits = SPAM_PATTERNS.filter((p) => p.re.test(text)).map((p) => p.name);
  return { name: 'spam_pattern', component: 'content', value: clamp01(hits.length * 0.35), detail: hits.length ? `matched: ${hits.join(', ')}` : 'no known pattern' };
}

/** Link shorteners hide the destination; a compromised account's links often use them. */
export const SHORTENERS: ReadonlySet<string> = new Set([
  'bit.ly', 'tinyurl.com', 't.co', 'goo.gl', 'ow.ly', 'is.gd', 'buff.ly', 'cutt.ly', 'rebrand.ly', 'shorturl.at', 'tiny.cc', 'rb.gy', 'v.gd', 't.ly', 'bl.ink', 'shorte.st', 'adf.ly',
]);

const EXECUTABLE = /\.(exe|scr|pif|com|bat|cmd|vbs|js|jar|msi|hta|ps1)$/i;

/** Why one URL is dangerous, or null. */
export function urlDanger(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  // `http://bank.example@evil.test/` shows a trusted name in front of the real host (RFC 3986 §3.2.1).
  if (url.username || url.password || /^[a-z]+:\/\/[^/?#]*@/i.test(raw)) return 'userinfo';
  const host = url.hostname.toLowerCase();
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.startsWith('[')) return 'ip-literal host';
  // IDN labels (RFC 3492 punycode) are how lookalike domains are written on the wire.
  if (host.split('.').some((label) => label.startsWith('xn--'))) return 'punycode host';
  if (SHORTENERS.has(host) || SHORTENERS.has(host.replace(/^www\./, ''))) return 'link shortener';
  if (EXECUTABLE.test(url.pathname)) return 'executable download';
  return null;
}

/** http(s) URLs in a text (bounded), for messages whose caller passed no URL list. */
export function extractUrls(text: string, max = 200): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/https?:\/\/[^\s<>"'()]+/gi)) {
    out.push(m[0].replace(/[.,;:!?]+$/, ''));
    if (out.length >= max) break;
  }
  return out;
}

export function dangerousUrlSignal(urls: readonly string[]): PolicySignal {
  const found: string[] = [];
  for (const u of new Set(urls)) {
    const why = urlDanger(u);
    if (why) found.push(why);
  }
  const kinds = [...new Set(found)];
  // One dangerous link is 0.5, two 0.75, … (1 − 0.5ⁿ).
  return {
    name: 'dangerous_url',
    component: 'content',
    value: clamp01(1 - 0.5 ** found.length),
    detail: found.length ? `${found.length} dangerous URL(s): ${kinds.join(', ')}` : `${urls.length} URL(s), none dangerous`,
  };
}

// ── history (and the account's clients) ───────────────────────────────────────────────────────

export const HISTORY_DAYS = 30;

export function pastBlocksSignal(blocks: number): PolicySignal {
  return { name: 'past_blocks', component: 'history', value: clamp01(blocks * 0.5), detail: `${blocks} block(s)/suspension(s) in ${HISTORY_DAYS} days` };
}

export function adminReportsSignal(reports: number): PolicySignal {
  return { name: 'admin_reports', component: 'history', value: clamp01(reports * 0.5), detail: `${reports} admin report(s) in ${HISTORY_DAYS} days` };
}

/** A client address this account has not sent from in the seen-IPs window (and it has sent before). */
export function newClientIpSignal(isNew: boolean, ip: string | null): PolicySignal {
  return { name: 'new_client_ip', component: 'history', value: isNew ? 0.3 : 0, detail: ip ? (isNew ? `new client address ${ip}` : `known client address ${ip}`) : 'no client address' };
}

/** Scripted mass senders rather than mail clients. */
const SCRIPTED_AGENT = /\b(curl|wget|python|libwww|go-http-client|php|java\/|perl|powershell|sendblaster|mass\s*mail|bulk\s*mail|atomic\s*mail)\b/i;

export function unusualUserAgentSignal(userAgent: string | null, isNewForAccount: boolean): PolicySignal {
  if (!userAgent) return { name: 'unusual_user_agent', component: 'history', value: 0, detail: 'no user agent' };
  const scripted = SCRIPTED_AGENT.test(userAgent);
  const value = (scripted ? 0.4 : 0) + (isNewForAccount ? 0.1 : 0);
  const short = userAgent.slice(0, 80);
  return { name: 'unusual_user_agent', component: 'history', value: clamp01(value), detail: `${scripted ? 'scripted client' : 'client'} "${short}"${isNewForAccount ? ' (new for this account)' : ''}` };
}

// ── scoring and levels ────────────────────────────────────────────────────────────────────────

export interface Weights {
  rate: number;
  content: number;
  history: number;
}

export interface Components {
  rate: number;
  content: number;
  history: number;
}

/** rate: the maximum; content and history: 1 − Π(1 − v). */
export function components(signals: readonly PolicySignal[]): Components {
  let rate = 0;
  let notContent = 1;
  let notHistory = 1;
  for (const s of signals) {
    const v = clamp01(s.value);
    if (s.component === 'rate') rate = Math.max(rate, v);
    else if (s.component === 'content') notContent *= 1 - v;
    else notHistory *= 1 - v;
  }
  return { rate, content: clamp01(1 - notContent), history: clamp01(1 - notHistory) };
}

/** Weights divided by their sum (0.4/0.4/0.2 stay as they are); all zero → score 0. */
export function normaliseWeights(w: Weights): Weights {
  const sum = w.rate + w.content + w.history;
  if (!(sum > 0)) return { rate: 0, content: 0, history: 0 };
  return { rate: w.rate / sum, content: w.content / sum, history: w.history / sum };
}

/** Rounded to 4 places so explanations and the histogram do not show float noise. */
export function score(c: Components, weights: Weights): number {
  const w = normaliseWeights(weights);
  return Math.round(clamp01(w.rate * c.rate + w.content * c.content + w.history * c.history) * 10_000) / 10_000;
}

export interface LevelInput {
  score: number;
  softScore: number;
  hardScore: number;
  /** A user limit (hour/day) exceeded. */
  userHard: boolean;
  /** A domain or tenant limit exceeded. */
  groupHard: boolean;
  /** Any limit over its soft point. */
  overSoft: boolean;
}

/**
 * SPEC §8 levels, strongest first: hard (user limit exceeded or score ≥ hard_score) → domain
 * (domain/tenant limit exceeded) → soft (score ≥ soft_score or over a soft point) → normal.
 */
export function levelFor(i: LevelInput): PolicyLevel {
  if (i.userHard || i.score >= i.hardScore) return 'hard';
  if (i.groupHard) return 'domain';
  if (i.overSoft || i.score >= i.softScore) return 'soft';
  return 'normal';
}

/** The strongest signals first, for the one-line reason. */
export function topSignals(signals: readonly PolicySignal[], n = 3): PolicySignal[] {
  return [...signals].filter((s) => s.value > 0).sort((a, b) => b.value - a.value).slice(0, n);
}
