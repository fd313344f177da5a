/**
 * The rspamd side of the bridge, pure (no I/O): the message and request headers sent to rspamd's
 * `POST /checkv2` (https://rspamd.com/doc/developers/protocol.html) and the mapping of its answer
 *
 *   {"action": "add header", "score": 7.3, "required_score": 15, "symbols": {…}, "messages": {…}}
 *
 * to a hook response (SPEC §6):
 *
 *   reject, discard             → reject    550 5.7.1, with rspamd's smtp_message when it gives one
 *   soft reject                 → tempfail  451 4.7.1
 *   add header, rewrite subject → tag "spam"
 *   quarantine                  → quarantine (MaiRust files it into Junk/Quarantine), tag "spam"
 *   greylist, no action         → allow
 *
 * always with rspamd's score, and its action and strongest symbols as metadata.
 */
import type { HookPayload, HookResponse } from '../../../sdk/src/index.js';

/** rspamd refuses header values with CR/LF; long ones are cut (an address is ≤ 254 octets). */
const MAX_HEADER_VALUE = 512;
/** Headers that describe the original MIME encoding, which the decoded text no longer has. */
const MIME_HEADERS = new Set(['mime-version', 'content-type', 'content-transfer-encoding']);
/** RFC 5322 §2.2: a field name is printable ASCII except ":". */
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;
/** SPEC §6: SMTP reply text is printable ASCII, one line; MaiRust accepts up to 200 characters. */
const MAX_SMTP_MESSAGE = 200;
const TOP_SYMBOLS = 20;

function oneLine(value: string, max: number): string {
  return value.replace(/[\r\n\t]+/g, ' ').replace(/[\x00-\x1f\x7f]/g, '').trim().slice(0, max);
}

/** `message-id` → `Message-Id`: the case rspamd and humans expect in a message. */
function fieldName(name: string): string {
  return name.split('-').map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('-');
}

/**
 * Rebuilds a message from the payload: the header fields (MIME structure headers replaced, since
 * `body.full` is the decoded text, not the original MIME body) and the text as UTF-8 text/plain.
 * rspamd therefore scores the words and headers, not the original MIME structure or attachments.
 */
export function buildMessage(payload: HookPayload): Buffer {
  const lines: string[] = [];
  for (const [name, values] of Object.entries(payload.headers ?? {})) {
    if (MIME_HEADERS.has(name.toLowerCase()) || !FIELD_NAME.test(name)) continue;
    for (const value of values) lines.push(`${fieldName(name)}: ${oneLine(value, 998 - name.length - 2)}`);
  }
  lines.push('MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit');
  const text = (payload.body.full ?? payload.body.preview ?? '').replace(/\r?\n/g, '\r\n');
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${text}`, 'utf8');
}

function headerValue(text: string): string {
  // Node writes header strings as Latin-1: pass UTF-8 addresses (RFC 6531) as their bytes.
  return Buffer.from(oneLine(text, MAX_HEADER_VALUE), 'utf8').toString('latin1');
}

/** The SMTP context rspamd uses for SPF, host and envelope checks. */
export function rspamdHeaders(payload: HookPayload, size: number): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {
    'Content-Length': String(size),
    // `<>`: the null reverse-path (RFC 5321 §4.5.5), e.g. a bounce.
    From: payload.envelope.from === '' ? '<>' : headerValue(payload.envelope.from),
    'Queue-Id': headerValue(payload.message_id),
  };
  if (payload.metadata.client_ip) headers.IP = headerValue(payload.metadata.client_ip);
  const rcpts = payload.envelope.to.map(headerValue).filter((r) => r !== '');
  // One Rcpt header per recipient (node:http sends an array as repeated headers).
  if (rcpts.length > 0) headers.Rcpt = rcpts;
  return headers;
}

export class RspamdAnswerError extends Error {}

interface RspamdAnswer {
  action: string;
  score: number;
  required_score?: number;
  symbols?: Record<string, { score?: number }>;
  messages?: { smtp_message?: string };
}

function parseAnswer(text: string): RspamdAnswer {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new RspamdAnswerError('rspamd answer is not JSON');
  }
  const a = json as Partial<RspamdAnswer> | null;
  if (!a || typeof a.action !== 'string') throw new RspamdAnswerError('rspamd answer has no action');
  if (typeof a.score !== 'number' || !Number.isFinite(a.score)) throw new RspamdAnswerError('rspamd answer has no score');
  return a as RspamdAnswer;
}

/** The names of the symbols that weigh most, strongest first. */
function topSymbols(symbols: RspamdAnswer['symbols']): string[] {
  if (!symbols || typeof symbols !== 'object') return [];
  return Object.entries(symbols)
    .map(([name, s]) => [name, typeof s?.score === 'number' ? s.score : 0] as const)
    .sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]) || (x[0] < y[0] ? -1 : 1))
    .slice(0, TOP_SYMBOLS)
    .map(([name]) => name.slice(0, 64));
}

/** Maps rspamd's /checkv2 answer (raw JSON text) to this plugin's hook response. */
export function mapVerdict(pluginId: string, answerText: string): HookResponse {
  const answer = parseAnswer(answerText);
  const score = Math.round(answer.score * 100) / 100;
  const metadata = {
    rspamd_action: answer.action,
    score,
    required_score: typeof answer.required_score === 'number' ? answer.required_score : null,
    symbols: topSymbols(answer.symbols),
  };
  const base = { plugin_id: pluginId, score, metadata };
  const told = typeof answer.messages?.smtp_message === 'string' ? oneLine(answer.messages.smtp_message, MAX_SMTP_MESSAGE) : '';
  // Printable ASCII only: anything else would make MaiRust fall back to its default reply text.
  const smtpMessage = (fallback: string) => told.replace(/[^\x20-\x7e]/g, '') || fallback;
  switch (answer.action) {
    case 'reject':
    case 'discard':
      return { ...base, action: 'reject', smtp_code: 550, smtp_enhanced: '5.7.1', smtp_message: smtpMessage('Message rejected as spam') };
    case 'soft reject':
      return { ...base, action: 'tempfail', smtp_code: 451, smtp_enhanced: '4.7.1', smtp_message: smtpMessage('Try again later') };
    case 'add header':
    case 'rewrite subject':
      return { ...base, action: 'tag', tags: ['spam'] };
    case 'quarantine':
      return { ...base, action: 'quarantine', tags: ['spam'] };
    case 'greylist':
    case 'no action':
      return { ...base, action: 'allow' };
    default:
      throw new RspamdAnswerError(`unknown rspamd action ${JSON.stringify(answer.action.slice(0, 40))}`);
  }
}
