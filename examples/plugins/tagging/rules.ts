/**
 * Tagging rules: `{ "rules": [{ "tag": "invoice", "subject": "regex", "sender": "regex" }, …] }`.
 * A rule matches when every pattern it names matches (case-insensitive); `sender` is tried on the
 * envelope sender and on the From header. Pure: loading and matching only, no I/O.
 */

export interface Rule {
  tag: string;
  subject?: RegExp;
  sender?: RegExp;
}

/** What a matching message carries; the bounds are MaiRust's for a hook response (SPEC §6). */
export const MAX_TAGS = 32;
const TAG = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
const MAX_RULES = 500;
const MAX_PATTERN = 256;
/** Like MaiRust's own hook filters, only the start of a long header is matched. */
const MATCH_CHARS = 1000;

export class RulesError extends Error {}

function pattern(value: unknown, where: string): RegExp | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_PATTERN) {
    throw new RulesError(`${where}: must be a regular expression of 1-${MAX_PATTERN} characters`);
  }
  try {
    return new RegExp(value, 'i');
  } catch (err) {
    throw new RulesError(`${where}: ${(err as Error).message}`);
  }
}

/** Parses and checks a rules document; every problem names the rule it is in. */
export function parseRules(json: string): Rule[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new RulesError(`rules are not JSON: ${(err as Error).message}`);
  }
  const list = (doc as { rules?: unknown } | null)?.rules;
  if (!Array.isArray(list) || list.length > MAX_RULES) throw new RulesError(`"rules" must be an array of at most ${MAX_RULES} rules`);
  return list.map((raw: unknown, i) => {
    const r = (raw ?? {}) as Record<string, unknown>;
    for (const key of Object.keys(r)) {
      if (!['tag', 'subject', 'sender'].includes(key)) throw new RulesError(`rules[${i}]: unknown key "${key}"`);
    }
    if (typeof r.tag !== 'string' || !TAG.test(r.tag)) {
      throw new RulesError(`rules[${i}].tag: 1-64 characters of letters, digits, ".", "_", ":" or "-"`);
    }
    const rule: Rule = { tag: r.tag, subject: pattern(r.subject, `rules[${i}].subject`), sender: pattern(r.sender, `rules[${i}].sender`) };
    if (!rule.subject && !rule.sender) throw new RulesError(`rules[${i}]: needs "subject" or "sender"`);
    return rule;
  });
}

export interface Subject {
  subject: string;
  /** The envelope sender and the From header values. */
  senders: string[];
}

/** The tags of every matching rule, de-duplicated, in rule order, at most MAX_TAGS. */
export function matchTags(rules: readonly Rule[], message: Subject): string[] {
  const subject = message.subject.slice(0, MATCH_CHARS);
  const senders = message.senders.map((s) => s.slice(0, MATCH_CHARS));
  const tags: string[] = [];
  for (const rule of rules) {
    if (tags.includes(rule.tag)) continue;
    if (rule.subject && !rule.subject.test(subject)) continue;
    if (rule.sender && !senders.some((s) => rule.sender!.test(s))) continue;
    tags.push(rule.tag);
    if (tags.length === MAX_TAGS) break;
  }
  return tags;
}
