/**
 * The built-in spam checker: reads a bounded sample of the message, runs the built-in rules
 * (builtin-rules.ts) and maps their summed score onto rspamd's actions with the configured
 * thresholds (`spam.builtin.add_header_score`, `spam.builtin.reject_score`).
 */
import type { BuiltinSpamRulesConfig } from '../config/sections/spam.js';
import { evaluateBuiltinRules } from './builtin-rules.js';
import { readMessageSample } from './message-sample.js';
import { parseMessageSample } from './mime-sample.js';
import type { SpamCheckInput, SpamChecker } from './spam-checker.js';
import { formatSpamHeader } from './spam-header.js';
import type { SpamAction, SpamVerdict } from './verdict.js';

export function builtinAction(score: number, cfg: Pick<BuiltinSpamRulesConfig, 'add_header_score' | 'reject_score'>): SpamAction {
  if (score >= cfg.reject_score) return 'reject';
  if (score >= cfg.add_header_score) return 'add header';
  return 'no action';
}

export class BuiltinSpamChecker implements SpamChecker {
  constructor(private readonly cfg: BuiltinSpamRulesConfig) {}

  async check(input: Pick<SpamCheckInput, 'source'>): Promise<SpamVerdict> {
    const raw = await readMessageSample(input.source, this.cfg.sample_bytes);
    const symbols: Record<string, number> = evaluateBuiltinRules(parseMessageSample(raw.bytes, raw.truncated));
    // Summed in a fixed order and rounded to hundredths, so equal messages give equal scores.
    const score = Math.round(Object.values(symbols).reduce((sum, s) => sum + s, 0) * 100) / 100;
    const verdict = { score, requiredScore: this.cfg.reject_score, action: builtinAction(score, this.cfg), symbols, source: 'builtin' as const };
    return { ...verdict, header: formatSpamHeader(verdict) };
  }
}
