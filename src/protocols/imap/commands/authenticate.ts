/**
 * AUTHENTICATE (RFC 9051 §6.2.2) with the PLAIN mechanism (RFC 4616) only, with or without an
 * initial response (SASL-IR, RFC 4959: `=` is an empty one). Otherwise the server sends an empty
 * challenge (`+ `) and reads one base64 line. A line `*` cancels and invalid base64 is refused, both
 * with BAD (RFC 9051 §6.2.2). Refused before TLS like LOGIN.
 */
import { decodePlain, decodeResponse } from '../../net/sasl.js';
import { checkLogin, AUTH_REPLIES } from '../auth.js';
import { asAtom, expectArgs } from '../parser/args.js';
import type { CommandModule } from '../session/types.js';

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
    // The same SASL decoding as SMTP AUTH and POP3 AUTH (src/protocols/net/sasl.ts); an empty line
    // after the challenge is an empty response, like `=`.
    const decoded = decodeResponse(response === '' ? '=' : response);
    if (decoded.kind === 'cancel') return { status: 'BAD', text: 'Authentication cancelled' };
    if (decoded.kind === 'invalid') return { status: 'BAD', text: 'Invalid base64 in the authentication response' };
    const plain = decodePlain(decoded.value);
    if (!plain) return { status: 'BAD', text: 'Invalid PLAIN authentication message' };
    return checkLogin(ctx, { mechanism: 'PLAIN', authzid: plain.authzid || undefined, username: plain.username, password: plain.password });
  },
};

export default authenticate;
