/**
 * AUTHENTICATE (RFC 9051 §6.2.2) with the PLAIN mechanism (RFC 4616) only, with or without an
 * initial response (SASL-IR, RFC 4959: `=` is an empty one). Otherwise the server sends an empty
 * challenge (`+ `) and reads one base64 line. A line `*` cancels and invalid base64 is refused, both
 * with BAD (RFC 9051 §6.2.2). Refused before TLS like LOGIN.
 */
import { checkLogin, AUTH_REPLIES } from '../auth.js';
import { asAtom, expectArgs } from '../parser/args.js';
import type { CommandModule } from '../session/types.js';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const authenticate: CommandModule = {
  names: ['AUTHENTICATE'],
  states: ['not-authenticated'],
  async handle(ctx, cmd) {
    expectArgs(cmd.args, 1, 2, 'AUTHENTICATE');
    const mechanism = asAtom(cmd.args[0], 'SASL mechanism').toUpperCase();
    const initial = cmd.args.length === 2 ? asAtom(cmd.args[1], 'initial response') : null;
    if (mechanism !== 'PLAIN') return { status: 'NO', code: 'CANNOT', text: 'Unsupported authentication mechanism' };
    if (!ctx.session.secure) return AUTH_REPLIES.PRIVACY_REQUIRED;
    // An empty challenge is `+ ` followed by nothing (RFC 9051 §7.5 continue-req with empty base64).
    const response = initial ?? (await ctx.continuation(''));
    if (response === '*') return { status: 'BAD', text: 'Authentication cancelled' };
    const decoded = decodeBase64(response === '=' ? '' : response);
    if (decoded === null) return { status: 'BAD', text: 'Invalid base64 in the authentication response' };
    const plain = parsePlain(decoded);
    if (!plain) return { status: 'BAD', text: 'Invalid PLAIN authentication message' };
    return checkLogin(ctx, { mechanism: 'PLAIN', ...plain });
  },
};

function decodeBase64(text: string): Buffer | null {
  if (!BASE64.test(text)) return null;
  return Buffer.from(text, 'base64');
}

/** RFC 4616 §2: [authzid] NUL authcid NUL passwd, each UTF-8 without NUL. */
function parsePlain(message: Buffer): { authzid?: string; username: string; password: string } | null {
  const parts = message.toString('utf8').split('\0');
  if (parts.length !== 3) return null;
  const [authzid, username, password] = parts;
  if (!username || !password) return null;
  return { authzid: authzid || undefined, username, password };
}

export default authenticate;
