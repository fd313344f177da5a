/**
 * Circuit breaker per (hook, plugin) — SPEC §6.
 *
 * A plugin that keeps failing must not slow every message down: after enough failures the breaker
 * "opens" and calls are refused at once (the hook manager then skips, rejects or tempfails as
 * configured); after `openMs` one probe call is let through ("half-open") and its outcome closes the
 * breaker again or re-opens it for another `openMs`.
 *
 * Two profiles (SPEC §6):
 *  - normal: opens after 10 consecutive failures, or > 80 % failures within 5 minutes;
 *  - strict (`pre_receive`, which holds an SMTP session open): 3 consecutive failures/timeouts,
 *    or > 70 % within 1 minute.
 * A ratio needs a minimum number of calls in the window (10 / 5), so that 1 failure out of 1 call
 * is not "100 %".
 *
 * Everything here is pure: a `BreakerState` value goes in with a timestamp, the next value comes out.
 * There are no timers — "open" turns into "a probe may pass" purely by comparing `now` with
 * `openedAt`, so the same state can live in memory or in a database row shared by all nodes
 * (src/hooks/breaker-store.ts), and tests drive it with a fake clock.
 *
 * The failure window is kept as a few per-`bucketMs` buckets (6 for 1 minute, 30 for 5 minutes with
 * 10-second buckets) rather than one entry per call, so a row stays small whatever the call rate.
 * A bucket counts while any part of it lies within the window, so the window is exact to one bucket.
 */

export type BreakerOutcome = 'success' | 'failure' | 'timeout';
export type BreakerStateName = 'closed' | 'open' | 'half_open';
export type BreakerProfileName = 'normal' | 'strict';

export interface BreakerProfile {
  name: BreakerProfileName;
  /** Consecutive failures (errors or timeouts) that open the breaker. */
  consecutiveFailures: number;
  /** Opens when failures / calls in the window is strictly greater than this (0..1). */
  failureRatio: number;
  /** The ratio is only judged with at least this many calls in the window. */
  minCalls: number;
  /** Length of the failure-ratio window. */
  windowMs: number;
  /** Granularity of the window. */
  bucketMs: number;
  /** How long the breaker stays open before one probe is let through. */
  openMs: number;
  /**
   * How long a probe may stay unanswered before another call may probe (the node that took the
   * probe may have died). Must be at least the hook's timeout.
   */
  probeLeaseMs: number;
}

export const BREAKER_PROFILES: Readonly<Record<BreakerProfileName, Readonly<BreakerProfile>>> = Object.freeze({
  normal: Object.freeze({
    name: 'normal',
    consecutiveFailures: 10,
    failureRatio: 0.8,
    minCalls: 10,
    windowMs: 5 * 60_000,
    bucketMs: 10_000,
    openMs: 60_000,
    // post_receive may run up to 300 s (SPEC §6 table): a probe is not presumed lost before that.
    probeLeaseMs: 300_000,
  }),
  strict: Object.freeze({
    name: 'strict',
    consecutiveFailures: 3,
    failureRatio: 0.7,
    minCalls: 5,
    windowMs: 60_000,
    bucketMs: 10_000,
    openMs: 60_000,
    probeLeaseMs: 60_000,
  }),
});

/** SPEC §6: `pre_receive` runs inside the SMTP session and gets the strict profile. */
export function profileNameForHook(hookType: string): BreakerProfileName {
  return hookType === 'pre_receive' ? 'strict' : 'normal';
}

export interface WindowBucket {
  /** Start of the bucket (multiple of bucketMs). */
  start: number;
  calls: number;
  failures: number;
}

/** The stored state of one breaker. */
export interface BreakerState {
  state: BreakerStateName;
  consecutiveFailures: number;
  buckets: WindowBucket[];
  /** When the breaker last opened (null while closed). */
  openedAt: number | null;
  /** When the current half-open probe was let through (null when no probe is out). */
  probeStartedAt: number | null;
  updatedAt: number;
}

export type BreakerDecision = { allow: true; probe: boolean } | { allow: false; state: 'open' };

/** What the API and the metrics show. */
export interface BreakerSnapshot {
  /** Effective state: an open breaker whose `openMs` has passed shows as `half_open`. */
  state: BreakerStateName;
  consecutiveFailures: number;
  windowCalls: number;
  windowFailures: number;
  openedAt: number | null;
  /** When the next probe may pass (null unless open). */
  probeAt: number | null;
  updatedAt: number | null;
}

/** Value of the `mairust_circuit_breaker_state` gauge. */
export const BREAKER_STATE_VALUE: Readonly<Record<BreakerStateName, number>> = Object.freeze({ closed: 0, open: 1, half_open: 2 });

export function closedState(now: number): BreakerState {
  return { state: 'closed', consecutiveFailures: 0, buckets: [], openedAt: null, probeStartedAt: null, updatedAt: now };
}

function liveBuckets(buckets: readonly WindowBucket[], p: BreakerProfile, now: number): WindowBucket[] {
  return buckets.filter((b) => b.start + p.bucketMs > now - p.windowMs && b.start <= now);
}

function windowTotals(buckets: readonly WindowBucket[], p: BreakerProfile, now: number): { calls: number; failures: number } {
  let calls = 0;
  let failures = 0;
  for (const b of liveBuckets(buckets, p, now)) {
    calls += b.calls;
    failures += b.failures;
  }
  return { calls, failures };
}

/**
 * Whether a call may go to the plugin now. Returns the next state when the decision changes it
 * (a probe being let through); `next: undefined` means "unchanged, nothing to write".
 */
export function decideStep(
  s: BreakerState | null,
  p: BreakerProfile,
  now: number,
): { decision: BreakerDecision; next: BreakerState | undefined } {
  if (!s || s.state === 'closed') return { decision: { allow: true, probe: false }, next: undefined };
  if (s.state === 'open') {
    if (s.openedAt !== null && now < s.openedAt + p.openMs) return { decision: { allow: false, state: 'open' }, next: undefined };
    return { decision: { allow: true, probe: true }, next: { ...s, state: 'half_open', probeStartedAt: now, updatedAt: now } };
  }
  // half_open: one probe at a time; every other call is still refused until it answers.
  if (s.probeStartedAt !== null && now < s.probeStartedAt + p.probeLeaseMs) {
    return { decision: { allow: false, state: 'open' }, next: undefined };
  }
  return { decision: { allow: true, probe: true }, next: { ...s, probeStartedAt: now, updatedAt: now } };
}

/**
 * The state after a call's outcome. `probe` is what `decide` said for this call: `false` marks the
 * late answer of a call let through before the breaker opened, which must not decide for the probe;
 * `undefined` (unknown, e.g. a health check) lets any answer decide while half-open.
 */
export function recordStep(
  s: BreakerState | null,
  p: BreakerProfile,
  outcome: BreakerOutcome,
  now: number,
  probe?: boolean,
): BreakerState {
  const cur = s ?? closedState(now);
  const failed = outcome !== 'success';

  if (cur.state === 'half_open' && probe !== false) {
    // The probe's answer decides. A success starts afresh: the failures that opened the breaker
    // must not re-open it at the next single failure through the ratio.
    if (!failed) return closedState(now);
    return { ...cur, state: 'open', openedAt: now, probeStartedAt: null, consecutiveFailures: cur.consecutiveFailures + 1, updatedAt: now };
  }

  const start = Math.floor(now / p.bucketMs) * p.bucketMs;
  const buckets = liveBuckets(cur.buckets, p, now).map((b) => ({ ...b }));
  let bucket = buckets.find((b) => b.start === start);
  if (!bucket) {
    bucket = { start, calls: 0, failures: 0 };
    buckets.push(bucket);
    buckets.sort((a, b) => a.start - b.start);
  }
  bucket.calls += 1;
  if (failed) bucket.failures += 1;
  const consecutiveFailures = failed ? cur.consecutiveFailures + 1 : 0;
  const next: BreakerState = { ...cur, buckets, consecutiveFailures, updatedAt: now };

  // Late answers of calls that started before the breaker opened are counted but change nothing:
  // only the probe may close an open breaker.
  if (cur.state !== 'closed') return next;

  const { calls, failures } = windowTotals(buckets, p, now);
  const trips = consecutiveFailures >= p.consecutiveFailures || (calls >= p.minCalls && failures / calls > p.failureRatio);
  if (trips) return { ...next, state: 'open', openedAt: now, probeStartedAt: null };
  return next;
}

export function snapshotOf(s: BreakerState | null, p: BreakerProfile, now: number): BreakerSnapshot {
  if (!s) return { state: 'closed', consecutiveFailures: 0, windowCalls: 0, windowFailures: 0, openedAt: null, probeAt: null, updatedAt: null };
  const { calls, failures } = windowTotals(s.buckets, p, now);
  let state = s.state;
  let probeAt: number | null = null;
  if (s.state === 'open' && s.openedAt !== null) {
    probeAt = s.openedAt + p.openMs;
    if (now >= probeAt) state = 'half_open';
  }
  return { state, consecutiveFailures: s.consecutiveFailures, windowCalls: calls, windowFailures: failures, openedAt: s.openedAt, probeAt, updatedAt: s.updatedAt };
}

export type BreakerOnOpen = 'skip' | 'reject' | 'tempfail';

/**
 * What the hook manager does with a call the breaker refuses (SPEC §6 `circuit_breaker.on_open`,
 * default `skip`). A `required` hook must not be silently skipped: it tempfails instead, so the
 * sender retries later (RFC 5321 §4.2.1, 4yz). An explicit `reject` stays a reject.
 */
export function openAction(opts: { onOpen?: BreakerOnOpen; required?: boolean }): BreakerOnOpen {
  const onOpen = opts.onOpen ?? 'skip';
  if (onOpen === 'skip' && opts.required) return 'tempfail';
  return onOpen;
}

// ---------------------------------------------------------------------------------------------
// The breaker over a store.

/** Identity of a breaker: one per (hook, plugin). */
export interface BreakerId {
  hookId: string;
  pluginId: string;
}

/** A breaker key with the hook type that selects the profile. */
export interface BreakerKey extends BreakerId {
  hookType: string;
}

/**
 * Persistence of breaker states. `update` must be atomic per id: `fn` sees the current state and
 * returns the next one (or `undefined` for "unchanged"), with no other update to the same id
 * in between — on every node of a cluster.
 */
export interface BreakerStore {
  read(id: BreakerId): Promise<BreakerState | null>;
  update<T>(id: BreakerId, fn: (current: BreakerState | null) => { next: BreakerState | undefined; result: T }): Promise<T>;
  delete(id: BreakerId): Promise<void>;
  list(): Promise<Array<{ id: BreakerId; state: BreakerState }>>;
}

export interface CircuitBreakerOptions {
  /** Override of the SPEC §6 profiles (tests, or a stricter deployment). */
  profiles?: Partial<Record<BreakerProfileName, BreakerProfile>>;
}

function pendingKey(id: BreakerId): string {
  return `${id.hookId}\u0000${id.pluginId}`;
}

/** `buckets` with one more call in the bucket of `now` (old buckets dropped). */
function addCall(buckets: readonly WindowBucket[], p: BreakerProfile, now: number): WindowBucket[] {
  const start = Math.floor(now / p.bucketMs) * p.bucketMs;
  const out = liveBuckets(buckets, p, now).map((b) => ({ ...b }));
  const b = out.find((x) => x.start === start);
  if (b) b.calls += 1;
  else out.push({ start, calls: 1, failures: 0 });
  return out.sort((a, b2) => a.start - b2.start);
}

/** The stored state with not-yet-written successes added to its window. */
function withPending(cur: BreakerState | null, pending: readonly WindowBucket[], p: BreakerProfile, now: number): BreakerState | null {
  if (pending.length === 0) return cur;
  const base = cur ?? closedState(now);
  const buckets = liveBuckets(base.buckets, p, now).map((b) => ({ ...b }));
  for (const add of liveBuckets(pending, p, now)) {
    const b = buckets.find((x) => x.start === add.start);
    if (b) b.calls += add.calls;
    else buckets.push({ ...add });
  }
  buckets.sort((a, b) => a.start - b.start);
  return { ...base, buckets };
}

export class CircuitBreaker {
  private readonly profiles: Record<BreakerProfileName, BreakerProfile>;

  constructor(
    private readonly store: BreakerStore,
    opts: CircuitBreakerOptions = {},
  ) {
    this.profiles = { ...BREAKER_PROFILES, ...opts.profiles };
  }

  profileFor(hookType: string): BreakerProfile {
    return this.profiles[profileNameForHook(hookType)];
  }

  async decide(key: BreakerKey, now: number): Promise<BreakerDecision> {
    const p = this.profileFor(key.hookType);
    // Fast path: a closed breaker needs no lock (a stale read can only say "closed" a moment late,
    // which lets through a call that would also have passed a moment earlier).
    const seen = await this.store.read(key);
    if (!seen || seen.state === 'closed') return { allow: true, probe: false };
    return this.store.update(key, (cur) => {
      const { decision, next } = decideStep(cur, p, now);
      return { next, result: decision };
    });
  }

  /**
   * Successes of healthy breakers not written yet, per breaker, as window buckets (calls only).
   * Writing every success costs a locked write per plugin call (an fsync on SQLite; bench/hooks
   * measured it). While a breaker is closed with no failure in its window, a success changes no
   * decision, so it is only counted here; the counts are folded into the stored state at the
   * breaker's next write (the next failure), where they dilute the failure ratio as before. In a
   * cluster each node folds in its own successes, so the ratio another node sees may lean towards
   * failures until then — the safe side.
   */
  private readonly pendingSuccesses = new Map<string, WindowBucket[]>();

  /** Counts a call's outcome; pass `probe` as `decide` returned it for that call. */
  async record(key: BreakerKey, outcome: BreakerOutcome, now: number, opts: { probe?: boolean } = {}): Promise<void> {
    const p = this.profileFor(key.hookType);
    const id = pendingKey(key);
    if (outcome === 'success') {
      const seen = await this.store.read(key);
      if (!seen || (seen.state === 'closed' && seen.consecutiveFailures === 0 && windowTotals(seen.buckets, p, now).failures === 0)) {
        this.pendingSuccesses.set(id, addCall(this.pendingSuccesses.get(id) ?? [], p, now));
        return;
      }
    }
    const pending = this.pendingSuccesses.get(id) ?? [];
    this.pendingSuccesses.delete(id);
    await this.store.update(key, (cur) => ({ next: recordStep(withPending(cur, pending, p, now), p, outcome, now, opts.probe), result: undefined }));
  }

  async state(key: BreakerKey, now: number): Promise<BreakerSnapshot> {
    const p = this.profileFor(key.hookType);
    const stored = await this.store.read(key);
    const pending = this.pendingSuccesses.get(pendingKey(key)) ?? [];
    return snapshotOf(pending.length > 0 ? withPending(stored, pending, p, now) : stored, p, now);
  }

  /** Manual reset (API/CLI): the breaker closes with empty counters. */
  async reset(key: BreakerId): Promise<void> {
    this.pendingSuccesses.delete(pendingKey(key));
    await this.store.delete(key);
  }
}
