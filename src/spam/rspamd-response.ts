/**
 * Parser for rspamd's `/checkv2` answer (https://rspamd.com/doc/developers/protocol.html):
 *
 *   {"score": 7.3, "required_score": 15.0, "action": "add header",
 *    "symbols": {"RDNS_NONE": {"name": "RDNS_NONE", "score": 1.0, …}, …}, "messages": {…}, …}
 *
 * Pure. An answer without a finite score, required score or a known action is refused with
 * `bad_response` (the built-in rules then decide): a verdict we cannot read must not pass as
 * "no action". Symbols with a name outside SYMBOL_NAME or a non-numeric score are dropped — their
 * names end up in a header field.
 */
import { RspamdError } from './errors.js';
import { SYMBOL_NAME } from './spam-header.js';
import { isSpamAction, type SpamAction } from './verdict.js';

/** More symbols than any real rspamd configuration produces for one message. */
export const MAX_SYMBOLS = 1000;

export interface RspamdResult {
  score: number;
  requiredScore: number;
  action: SpamAction;
  symbols: Record<string, number>;
}

/**
 * Actions rspamd can emit beyond the six of its metric (force_actions, custom actions), mapped to
 * what an MX can do: `discard` would silently drop mail the sender thinks delivered, so the
 * honest equivalent at SMTP time is a reject; `quarantine` means "keep, but not in the inbox".
 */
const ACTION_ALIASES: Record<string, SpamAction> = {
  discard: 'reject',
  quarantine: 'add header',
};

function bad(message: string): RspamdError {
  return new RspamdError('bad_response', `rspamd answer unusable: ${message}`);
}

function finite(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw bad(`"${field}" is not a number`);
  return value;
}

export function parseRspamdResponse(body: string): RspamdResult {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw bad('not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('not a JSON object');
  const o = json as Record<string, unknown>;

  const score = finite(o.score, 'score');
  const requiredScore = finite(o.required_score, 'required_score');
  const rawAction = o.action;
  let action: SpamAction;
  if (isSpamAction(rawAction)) action = rawAction;
  else if (typeof rawAction === 'string' && Object.hasOwn(ACTION_ALIASES, rawAction)) action = ACTION_ALIASES[rawAction];
  else throw bad(`unknown action ${JSON.stringify(String(rawAction).slice(0, 40))}`);

  const symbols: Record<string, number> = {};
  const raw = o.symbols;
  if (raw !== undefined) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('"symbols" is not an object');
    let count = 0;
    for (const [name, entry] of Object.entries(raw as Record<string, unknown>)) {
      if (count >= MAX_SYMBOLS) break;
      if (!SYMBOL_NAME.test(name) || typeof entry !== 'object' || entry === null) continue;
      const s = (entry as Record<string, unknown>).score;
      if (typeof s !== 'number' || !Number.isFinite(s)) continue;
      symbols[name] = s;
      count++;
    }
  }
  return { score, requiredScore, action, symbols };
}
