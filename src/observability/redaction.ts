/**
 * One list of field names whose values never reach a log line (SPEC §10: "API responses never
 * contain … secrets or tokens"; logs are held to the same rule because they are shipped to
 * places with weaker access control than the database).
 *
 * Used twice: as pino `redact` paths for structured fields, and to scrub query strings in the
 * HTTP access log (a token in `?access_token=` is as secret as one in a JSON body).
 */

/** Exact field names (compared case-sensitively by pino, so common spellings are listed). */
export const SECRET_FIELD_NAMES: readonly string[] = [
  'password',
  'passwd',
  'new_password',
  'current_password',
  'secret',
  'client_secret',
  'token',
  'access_token',
  'refresh_token',
  'emergency_token',
  'api_key',
  'apiKey',
  'authorization',
  'Authorization',
  'cookie',
  'Cookie',
  'set-cookie',
  'master_key',
  'secret_access_key',
  'secretAccessKey',
  'private_key',
];

/** How deep below the top level a secret field is still found (0 = top level only). */
export const REDACT_DEPTH = 3;

export const REDACTED = '[redacted]';

/** pino redact paths: `name`, `*.name`, `*.*.name`, `*.*.*.name` for every secret field. */
export function redactPaths(names: readonly string[] = SECRET_FIELD_NAMES, depth = REDACT_DEPTH): string[] {
  const paths: string[] = [];
  for (let d = 0; d <= depth; d++) {
    const prefix = '*.'.repeat(d);
    // Bracket notation is required for names that are not identifiers (`set-cookie`).
    for (const n of names) paths.push(/^[A-Za-z_$][\w$]*$/.test(n) ? `${prefix}${n}` : `${prefix}["${n}"]`);
  }
  return paths;
}

// Query parameters are matched loosely (substring), because names vary by client and a false
// positive only costs a little debugging convenience.
const SECRET_QUERY_PARAM = /pass|secret|token|key|auth|sig|cookie|code|session/i;

/**
 * The request target with the values of secret-looking query parameters replaced, for the access
 * log. The path is kept verbatim; the query is re-assembled by hand (not via URLSearchParams) so
 * that the logged text matches what the client sent apart from the redacted values.
 */
export function redactUrlQuery(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const parts = url.slice(q + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=');
    if (eq < 0) return pair;
    let name = pair.slice(0, eq);
    try {
      name = decodeURIComponent(name.replace(/\+/g, ' '));
    } catch {
      // Malformed escapes: match against the raw text.
    }
    return SECRET_QUERY_PARAM.test(name) ? `${pair.slice(0, eq)}=${REDACTED}` : pair;
  });
  return `${url.slice(0, q)}?${parts.join('&')}`;
}

/**
 * `scheme://user:password@host` → `scheme://user:***@host` anywhere in a text: driver errors
 * sometimes quote the connection string they failed with, and health output is not secret.
 */
export function scrubCredentials(text: string): string {
  return text.replace(/(\/\/[^\s:/@]+:)[^\s@/]*@/g, '$1***@');
}
