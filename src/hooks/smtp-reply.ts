/**
 * The SMTP reply for a hook's reject/tempfail (SPEC §6). A plugin may supply `smtp_code`,
 * `smtp_enhanced` and `smtp_message`; they go out verbatim on the wire, so each is checked and, when
 * wrong, replaced by the default (never the whole decision — a reject stays a reject):
 *  - the code must be of the action's class: 5yz for reject, 4yz for tempfail, with y in 0–5
 *    (RFC 5321 §4.2.1 defines the second digit's categories 0–5);
 *  - the enhanced code must follow RFC 3463 §2 (`class.subject.detail`, subject and detail 1–3
 *    digits; leading zeros are refused too, no registered code has them) and have the same class as the reply;
 *  - the text must be printable US-ASCII (RFC 5321 §4.2 `textstring`; no CR/LF, which would let a
 *    plugin inject extra reply lines) and at most SMTP_TEXT_MAX characters.
 */
import type { HookResponse, SmtpReply } from './types.js';

export const SMTP_TEXT_MAX = 200;

export const DEFAULT_SMTP_REPLIES: Readonly<Record<'reject' | 'tempfail', SmtpReply>> = {
  reject: { code: 550, enhanced: '5.7.1', text: 'Message rejected by content policy' },
  tempfail: { code: 451, enhanced: '4.7.1', text: 'Message temporarily deferred by content policy, try again later' },
};

export interface HookSmtpReply extends SmtpReply {
  /** Why a plugin-supplied part was replaced by the default (for the logs); empty when none was. */
  fallbacks: string[];
}

type ReplyFields = Pick<HookResponse, 'smtp_code' | 'smtp_enhanced' | 'smtp_message'>;

export function hookSmtpReply(action: 'reject' | 'tempfail', response?: ReplyFields): HookSmtpReply {
  const def = DEFAULT_SMTP_REPLIES[action];
  const cls = action === 'reject' ? 5 : 4;
  const fallbacks: string[] = [];
  let code = def.code;
  let enhanced = def.enhanced;
  let text = def.text;

  const c = response?.smtp_code;
  if (c !== undefined && c !== null) {
    if (Number.isInteger(c) && Math.floor(c / 100) === cls && Math.floor(c / 10) % 10 <= 5) code = c;
    else fallbacks.push(`smtp_code ${String(c)} is not a valid ${cls}xx code for ${action}`);
  }

  const e = response?.smtp_enhanced;
  if (e !== undefined && e !== null) {
    const m = typeof e === 'string' ? /^([245])\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/.exec(e) : null;
    if (!m) fallbacks.push(`smtp_enhanced '${printable(e)}' is not an RFC 3463 status code`);
    else if (Number(m[1]) !== cls) fallbacks.push(`smtp_enhanced '${e}' is not of class ${cls} for ${action}`);
    else enhanced = e;
  }

  const t = response?.smtp_message;
  if (t !== undefined && t !== null) {
    const trimmed = typeof t === 'string' ? t.trim() : '';
    if (typeof t !== 'string' || /[^\x20-\x7e]/.test(t)) fallbacks.push('smtp_message contains CR/LF, control or non-ASCII characters');
    else if (trimmed.length === 0) fallbacks.push('smtp_message is empty');
    else if (trimmed.length > SMTP_TEXT_MAX) fallbacks.push(`smtp_message is ${trimmed.length} characters long; at most ${SMTP_TEXT_MAX} are allowed`);
    else text = trimmed;
  }

  return { code, enhanced, text, fallbacks };
}

/** A short, log-safe rendering of a rejected value. */
function printable(v: unknown): string {
  return String(v).replace(/[^\x20-\x7e]/g, '?').slice(0, 32);
}
