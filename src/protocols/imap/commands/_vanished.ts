/**
 * VANISHED (EARLIER) computations of QRESYNC (RFC 7162 §3.2.5 SELECT/EXAMINE (QRESYNC …), §3.2.6
 * UID FETCH … (CHANGEDSINCE m VANISHED)): pure functions over UID lists and sequence sets.
 */
import { lowerBound } from '../session/selected-mailbox.js';
import type { SequenceSet } from '../parser/types.js';

/**
 * True when `uid` is in a UID set as the client wrote it. `*` counts as unbounded here: the set
 * describes UIDs the client asks about, and an expunged UID above the last live one is still one
 * of them.
 */
export function uidInSet(uid: number, set: SequenceSet): boolean {
  if (set.kind !== 'ranges') return false;
  return set.ranges.some((r) => {
    const a = r.from === '*' ? Infinity : r.from;
    const b = r.to === '*' ? Infinity : r.to;
    return uid >= Math.min(a, b) && uid <= Math.max(a, b);
  });
}

/**
 * The UIDs of `known` (the client's known-uids) that are not live any more, below `uidNext`, as a
 * compressed sequence set ('' when none). Works on ranges: `1:4294967295` is not enumerated, and
 * the cost is O(ranges + live UIDs in them). Exact even after the expunged rows were purged.
 */
export function vanishedFromKnown(known: SequenceSet, live: readonly number[], uidNext: number): string {
  if (known.kind !== 'ranges') return '';
  // Normalise the ranges: ascending, merged, clipped to UIDs that can have existed.
  const ranges = known.ranges
    .map((r) => {
      const a = r.from === '*' ? uidNext - 1 : r.from;
      const b = r.to === '*' ? uidNext - 1 : r.to;
      return [Math.min(a, b), Math.min(Math.max(a, b), uidNext - 1)] as [number, number];
    })
    .filter(([a, b]) => a <= b)
    .sort((x, y) => x[0] - y[0]);
  const merged: [number, number][] = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  const out: string[] = [];
  const push = (a: number, b: number) => {
    if (a <= b) out.push(a === b ? String(a) : `${a}:${b}`);
  };
  for (const [a, b] of merged) {
    let next = a;
    for (let i = lowerBound(live, a); i < live.length && live[i] <= b; i++) {
      push(next, live[i] - 1);
      next = live[i] + 1;
    }
    push(next, b);
  }
  return out.join(',');
}
