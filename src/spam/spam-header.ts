/**
 * The `X-Spam-*` header fields a verdict adds to the stored message, in the form mail clients and
 * Sieve scripts already filter on (SpamAssassin's `X-Spam-Flag`/`X-Spam-Status`, rspamd's symbol
 * list):
 *
 *   X-Spam-Flag: YES                                    (only when the action means spam)
 *   X-Spam-Score: 7.30
 *   X-Spam-Status: Yes, score=7.30 required=15.00 action="add header" source=rspamd
 *   X-Spam-Symbols: HFILTER_HOSTNAME_UNKNOWN(2.50), AUTH_NA(1.00), …
 *
 * Every value is built from numbers, the closed set of actions and symbol names that match
 * SYMBOL_NAME, so nothing a sender or a misbehaving rspamd controls can inject CR/LF (SPEC §10).
 * Lines are folded (CRLF + TAB) before 78 characters (RFC 5322 §2.1.1, §2.2.3), so a long status
 * or symbol list continues on the next line.
 */
import { isSpam, type SpamAction, type SpamSource } from './verdict.js';

/** Names rspamd and the built-in rules use: letters, digits, `_`, `-`, `.`; at most 128. */
export const SYMBOL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Symbols listed in X-Spam-Symbols; the rest are counted ("+N more"), the header stays small. */
export const MAX_HEADER_SYMBOLS = 50;

const FOLD_AT = 78;

export interface SpamHeaderInput {
  score: number;
  requiredScore: number;
  action: SpamAction;
  symbols: Record<string, number>;
  source: SpamSource;
}

function num(n: number): string {
  return Number.isFinite(n) ? n.toFixed(2) : '0.00';
}

/**
 * One header field from `items` separated by `separator` + space, folded (CRLF + TAB) before a
 * line would pass FOLD_AT characters; an item is never split.
 */
function foldedField(name: string, items: string[], separator: string): string {
  let out = `${name}:`;
  let lineLength = out.length;
  items.forEach((item, i) => {
    const piece = i < items.length - 1 ? `${item}${separator}` : item;
    if (lineLength + 1 + piece.length > FOLD_AT && lineLength > name.length + 1) {
      out += `\r\n\t${piece}`;
      lineLength = 1 + piece.length;
    } else {
      out += ` ${piece}`;
      lineLength += 1 + piece.length;
    }
  });
  return `${out}\r\n`;
}

/** Symbols by weight (largest absolute score first, then name), as `NAME(score)`. */
function symbolItems(symbols: Record<string, number>): string[] {
  const entries = Object.entries(symbols).filter(([name, score]) => SYMBOL_NAME.test(name) && Number.isFinite(score));
  entries.sort(([a, x], [b, y]) => Math.abs(y) - Math.abs(x) || (a < b ? -1 : a > b ? 1 : 0));
  const items = entries.slice(0, MAX_HEADER_SYMBOLS).map(([name, score]) => `${name}(${num(score)})`);
  if (entries.length > MAX_HEADER_SYMBOLS) items.push(`+${entries.length - MAX_HEADER_SYMBOLS} more`);
  return items;
}

export function formatSpamHeader(v: SpamHeaderInput): string {
  const spam = isSpam(v.action);
  let header = spam ? 'X-Spam-Flag: YES\r\n' : '';
  header += `X-Spam-Score: ${num(v.score)}\r\n`;
  const status = [`${spam ? 'Yes' : 'No'},`, `score=${num(v.score)}`, `required=${num(v.requiredScore)}`, `action="${v.action}"`, `source=${v.source}`];
  header += foldedField('X-Spam-Status', status, '');
  const items = symbolItems(v.symbols);
  if (items.length > 0) header += foldedField('X-Spam-Symbols', items, ',');
  return header;
}
