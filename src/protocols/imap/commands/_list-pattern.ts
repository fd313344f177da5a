/**
 * LIST/LSUB patterns (RFC 9051 §6.3.9): `*` matches anything, `%` anything but the hierarchy
 * delimiter; the reference is prefixed as is. "INBOX" matches case-insensitively at the start of a
 * pattern, since the name is (RFC 9051 §5.1). Shared helper, not a command.
 *
 * Matching is a dynamic program over (pattern, name), O(|pattern|·|name|), never a regular
 * expression: a pattern like `*a*a*a*…b` would make a backtracking regex take exponential time.
 */
import { DELIMITER } from './_mailbox.js';

export interface ListPattern {
  readonly text: string;
  matches(name: string): boolean;
}

export function compilePattern(reference: string, pattern: string): ListPattern {
  let text = reference + pattern;
  // Runs of wildcards match what their widest member matches.
  text = text.replace(/[*%]{2,}/g, (run) => (run.includes('*') ? '*' : '%'));
  if (/^inbox(?=$|\/|\*|%)/i.test(text)) text = `INBOX${text.slice(5)}`;
  const literals = text.replace(/[*%]/g, '').length;
  return {
    text,
    matches(name: string) {
      if (literals > name.length) return false;
      return wildcardMatch(text, name);
    },
  };
}

function wildcardMatch(pattern: string, name: string): boolean {
  const n = name.length;
  // row[j]: pattern[0..i) matches name[0..j).
  let row = new Uint8Array(n + 1);
  row[0] = 1;
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    const next = new Uint8Array(n + 1);
    if (p === '*') {
      let any = 0;
      for (let j = 0; j <= n; j++) {
        any |= row[j];
        next[j] = any;
      }
    } else if (p === '%') {
      let run = 0;
      for (let j = 0; j <= n; j++) {
        if (j > 0 && name[j - 1] === DELIMITER) run = 0;
        run |= row[j];
        next[j] = run;
      }
    } else {
      for (let j = 1; j <= n; j++) next[j] = row[j - 1] && name[j - 1] === p ? 1 : 0;
    }
    row = next;
  }
  return row[n] === 1;
}
