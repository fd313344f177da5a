/**
 * CAPA (RFC 2449 §5): the capabilities of this session.
 *
 * Login mechanisms are offered only under TLS (SPEC §2, RFC 2595 §2.2): before STLS the list has
 * STLS and neither USER nor SASL, so a client that reads CAPA never sends a password in clear.
 * Under TLS (after STLS, or on the implicit-TLS port) STLS is gone and USER and SASL PLAIN appear.
 * APOP is not offered (it needs the plaintext password on the server).
 */
import { SASL_MECHANISMS } from './authorization.js';

export function capabilities(secure: boolean): string[] {
  const list = ['TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE'];
  if (secure) list.push('USER', `SASL ${SASL_MECHANISMS.join(' ')}`);
  else list.push('STLS');
  list.push('IMPLEMENTATION MaiRust');
  return list;
}
