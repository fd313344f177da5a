/**
 * The capability list a session announces (RFC 9051 §6.1.1, §7.2.2). It depends on the session:
 * - in clear on the STARTTLS port nothing may log in, so STARTTLS and LOGINDISABLED are announced
 *   and no AUTH= mechanism (RFC 9051 §6.2.1, §11.1; RFC 8314 §4.1);
 * - under TLS before login, the SASL mechanism (PLAIN only, RFC 4616);
 * - after login, every extension of the authenticated and selected states. APPENDLIMIT carries
 *   the largest APPEND (RFC 7889 §3); COMPRESS=DEFLATE disappears once compression is active
 *   (RFC 4978 §3: a second COMPRESS is an error, so it is not offered).
 */
export interface CapabilityInput {
  /** TLS active (implicit or after STARTTLS). */
  secure: boolean;
  /** STARTTLS can be offered (clear connection on the STARTTLS listener with a certificate). */
  startTlsAvailable: boolean;
  authenticated: boolean;
  compressed: boolean;
  /** APPENDLIMIT value, octets. */
  appendLimit: number;
}

const BASE = ['IMAP4rev1', 'IMAP4rev2'];

export function capabilityList(c: CapabilityInput): string[] {
  if (!c.authenticated) {
    if (!c.secure) {
      return [...BASE, ...(c.startTlsAvailable ? ['STARTTLS'] : []), 'LOGINDISABLED', 'SASL-IR', 'LITERAL+', 'ENABLE', 'ID'];
    }
    return [...BASE, 'AUTH=PLAIN', 'SASL-IR', 'LITERAL+', 'ENABLE', 'ID'];
  }
  return [
    ...BASE,
    'LITERAL+',
    'SASL-IR',
    'ENABLE',
    'ID',
    'IDLE',
    'NAMESPACE',
    'UNSELECT',
    'UIDPLUS',
    'MOVE',
    'CONDSTORE',
    'QRESYNC',
    'SPECIAL-USE',
    'LIST-EXTENDED',
    'LIST-STATUS',
    'CHILDREN',
    'ESEARCH',
    'SEARCHRES',
    'WITHIN',
    'BINARY',
    `APPENDLIMIT=${c.appendLimit}`,
    'QUOTA',
    'QUOTA=RES-STORAGE',
    'STATUS=SIZE',
    'UTF8=ACCEPT',
    ...(c.compressed ? [] : ['COMPRESS=DEFLATE']),
  ];
}
