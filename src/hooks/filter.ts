/**
 * Hook filters (SPEC §6 `filter`): decide whether a hook runs for a message. Filter regexes come
 * from tenant admins, and they run on attacker-controlled input (addresses, subjects) inside the SMTP
 * session, so they must not be able to backtrack catastrophically (ReDoS). Node's regex engine
 * backtracks, so instead of a different engine we refuse every pattern that could:
 *  - longer than FILTER_REGEX_MAX_LENGTH characters;
 *  - nested quantifiers / star height > 1 or too many repetitions (`safe-regex2`): `(a+)+`, `(.*a){20}`;
 *  - a quantified alternation whose branches can match the same text (`(a|aa)+`, `(\w|\d)*`), which
 *    safe-regex2 does not see (star height 1) but is exponential all the same;
 *  - backreferences and lookbehind, which make matching non-regular and are never needed here.
 * Inputs are additionally truncated to MATCH_INPUT_LIMIT characters, which bounds the polynomial cases.
 */
import safeRegex from 'safe-regex2';
import { FILTER_REGEX_MAX_LENGTH, type FilterSubject, type HookFilter } from './types.js';

/** Inputs longer than this are matched on their first MATCH_INPUT_LIMIT characters only. */
export const MATCH_INPUT_LIMIT = 1000;

export class FilterPatternError extends Error {
  readonly code = 'hook_filter_pattern';
  constructor(
    /** e.g. `filter.subject_matches` */
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
    this.name = 'FilterPatternError';
  }
}

export type FilterPredicate = (subject: FilterSubject) => boolean;

const REGEX_KEYS = ['recipient_matches', 'recipient_not_matches', 'sender_matches', 'sender_not_matches', 'subject_matches'] as const;

/**
 * Compiles a filter into a predicate; every given key must hold (AND). Throws FilterPatternError
 * naming the field for a refused pattern. An absent or empty filter matches everything.
 *
 * Recipients: `recipient_matches` holds when at least one recipient matches; `recipient_not_matches`
 * holds when at least one recipient does not match. Both lean towards running the hook for a mixed
 * recipient list, because skipping a (possibly security) hook for a message that partly qualifies is
 * the worse mistake. Matching is case-insensitive (addresses are, in practice).
 */
export function compileFilter(filter: HookFilter | undefined, path = 'filter'): FilterPredicate {
  if (!filter) return () => true;
  const re: Partial<Record<(typeof REGEX_KEYS)[number], RegExp>> = {};
  for (const key of REGEX_KEYS) {
    const source = filter[key];
    if (source !== undefined) re[key] = compileSafeRegex(source, `${path}.${key}`);
  }
  const { has_attachments: hasAttachments, size_gt: sizeGt, size_lt: sizeLt } = filter;
  return (s) => {
    if (re.recipient_matches && !s.recipients.some((r) => test(re.recipient_matches!, r))) return false;
    if (re.recipient_not_matches && !s.recipients.some((r) => !test(re.recipient_not_matches!, r))) return false;
    if (re.sender_matches && !test(re.sender_matches, s.sender)) return false;
    if (re.sender_not_matches && test(re.sender_not_matches, s.sender)) return false;
    if (re.subject_matches && !test(re.subject_matches, s.subject)) return false;
    if (hasAttachments !== undefined && s.hasAttachments !== hasAttachments) return false;
    if (sizeGt !== undefined && !(s.size > sizeGt)) return false;
    if (sizeLt !== undefined && !(s.size < sizeLt)) return false;
    return true;
  };
}

function test(re: RegExp, input: string): boolean {
  return re.test(input.length > MATCH_INPUT_LIMIT ? input.slice(0, MATCH_INPUT_LIMIT) : input);
}

/**
 * Compiles one filter regex or throws FilterPatternError(path, reason). The regex is compiled
 * without `g`/`y` (so `test` is stateless) and with `i`.
 */
export function compileSafeRegex(source: string, path: string): RegExp {
  if (typeof source !== 'string' || source.length === 0) throw new FilterPatternError(path, 'pattern must be a non-empty string');
  if (source.length > FILTER_REGEX_MAX_LENGTH) {
    throw new FilterPatternError(path, `pattern is ${source.length} characters long; at most ${FILTER_REGEX_MAX_LENGTH} are allowed`);
  }
  let re: RegExp;
  try {
    re = new RegExp(source, 'i');
  } catch (err) {
    throw new FilterPatternError(path, `invalid regular expression: ${(err as Error).message}`);
  }
  const structural = structuralProblem(source);
  if (structural) throw new FilterPatternError(path, structural);
  if (!safeRegex(source)) {
    throw new FilterPatternError(path, 'pattern may backtrack catastrophically (nested quantifiers or too many repetitions); simplify it');
  }
  return re;
}

interface Group {
  /** Index where the current branch of this group starts. */
  branchStart: number;
  branches: string[];
  /** Alternation groups nested in this one (including itself once closed), for the repeat check. */
  alternations: string[][];
}

/**
 * Scans the pattern once for what safe-regex2 does not catch: backreferences, lookbehind, and
 * ambiguous alternations under a quantifier. Returns the reason for refusing, or undefined.
 */
function structuralProblem(src: string): string | undefined {
  const root: Group = { branchStart: 0, branches: [], alternations: [] };
  const stack: Group[] = [root];
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') {
      const next = src[i + 1] ?? '';
      if (!inClass && /[1-9]/.test(next)) return 'backreferences (\\1 …) are not allowed';
      if (!inClass && next === 'k' && src[i + 2] === '<') return 'named backreferences (\\k<…>) are not allowed';
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      continue;
    }
    const top = stack[stack.length - 1];
    if (c === '(') {
      if (src.startsWith('(?<=', i) || src.startsWith('(?<!', i)) return 'lookbehind ((?<= …) / (?<! …)) is not allowed';
      // Skip the group prefix so that `?:`, `?=`, `?!`, `?<name>` are not taken for branch text.
      const prefix = /^\(\?(?::|=|!|<[A-Za-z_$][\w$]*>)/.exec(src.slice(i));
      const start = i + (prefix ? prefix[0].length : 1);
      stack.push({ branchStart: start, branches: [], alternations: [] });
      i = start - 1;
      continue;
    }
    if (c === '|') {
      top.branches.push(src.slice(top.branchStart, i));
      top.branchStart = i + 1;
      continue;
    }
    if (c === ')' && stack.length > 1) {
      const group = stack.pop()!;
      if (group.branches.length > 0) {
        group.branches.push(src.slice(group.branchStart, i));
        group.alternations.push(group.branches);
      }
      if (isRepeated(src, i + 1)) {
        for (const branches of group.alternations) {
          const problem = ambiguousAlternation(branches);
          if (problem) return problem;
        }
      }
      stack[stack.length - 1].alternations.push(...group.alternations);
    }
  }
  return undefined;
}

/** Whether the quantifier at `pos` (if any) lets the preceding atom repeat more than once. */
function isRepeated(src: string, pos: number): boolean {
  const c = src[pos];
  if (c === '*' || c === '+') return true;
  if (c !== '{') return false;
  const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(pos));
  if (!m) return false;
  if (m[2] === undefined) return Number(m[1]) > 1;
  return m[3] === '' || Number(m[3]) > 1;
}

/**
 * An alternation under a quantifier is accepted only when every branch is a plain literal and no
 * branch is a prefix of another: such branches form a prefix code, so the input splits into branches
 * in at most one way and there is nothing to backtrack over. Anything else (`a|aa`, `\w|\d`, an empty
 * branch) is refused — conservative, but filters rarely need more.
 */
function ambiguousAlternation(branches: string[]): string | undefined {
  const literals: string[] = [];
  for (const b of branches) {
    if (!/^(?:[^\\^$.|?*+()[\]{}]|\\[^\dA-Za-z])+$/.test(b)) {
      return `a repeated alternation may only contain plain literal branches (got '${branches.join('|')}'), because overlapping branches backtrack catastrophically`;
    }
    literals.push(b.replace(/\\(.)/g, '$1').toLowerCase());
  }
  for (const a of literals) {
    for (const b of literals) {
      if (a !== b ? b.startsWith(a) : literals.indexOf(a) !== literals.lastIndexOf(a)) {
        return `a repeated alternation has overlapping branches ('${branches.join('|')}'), which backtracks catastrophically`;
      }
    }
  }
  return undefined;
}
