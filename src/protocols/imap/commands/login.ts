/**
 * LOGIN (RFC 9051 §6.2.3): user name and password as astrings. Refused before TLS
 * (`LOGINDISABLED` is announced then; PRIVACYREQUIRED, RFC 5530). The checks are in ../auth.ts.
 */
import { checkLogin, AUTH_REPLIES } from '../auth.js';
import { asAstring, expectArgs } from '../parser/args.js';
import type { CommandModule } from '../session/types.js';

const login: CommandModule = {
  names: ['LOGIN'],
  states: ['not-authenticated'],
  async handle(ctx, cmd) {
    expectArgs(cmd.args, 2, 2, 'LOGIN');
    const username = asAstring(cmd.args[0], 'user name');
    const password = asAstring(cmd.args[1], 'password');
    if (!ctx.session.secure) return AUTH_REPLIES.PRIVACY_REQUIRED;
    return checkLogin(ctx, { mechanism: 'LOGIN', username, password });
  },
};

export default login;
