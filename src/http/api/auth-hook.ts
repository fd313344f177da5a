/**
 * Authentication of API requests (SPEC §10, §11), run before validation on every `/api/v1` route:
 *
 *   1. `Authorization: Bearer mra_…` (access token) or `Bearer mk_live_…` / `X-API-Key: mk_live_…`
 *      (API key); otherwise
 *   2. the session cookie — and then, for every state-changing method, the CSRF double-submit check:
 *      the `X-CSRF-Token` header must equal the `mairust_csrf` cookie *and* be the token issued with
 *      this session (bound in the session row), so neither a forged cross-site request (no header)
 *      nor a cookie planted by a sibling subdomain (not bound to the session) passes.
 *
 * Bearer credentials take precedence over a cookie: a browser never attaches them by itself, so a
 * request carrying one is not a cross-site forgery and needs no CSRF token.
 *
 * The account and its tenant are re-read for every request, so disabling a user or suspending a
 * tenant (SPEC §9) takes effect at once on every node.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { systemScope } from '../../core/scope.js';
import { NotFoundError } from '../../core/tenancy/errors.js';
import { ApiError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { ALL_SCOPES, type CredentialKind, type Principal } from './principal.js';

export const SESSION_COOKIE = 'mairust_session';
export const CSRF_COOKIE = 'mairust_csrf';
export const CSRF_HEADER = 'x-csrf-token';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function unauthorized(message = 'authentication required'): ApiError {
  return new ApiError('UNAUTHORIZED', message);
}

interface Credential {
  via: CredentialKind;
  userId: string;
  credentialId: string;
  mfaPending: boolean;
  scopes: Principal['scopes'];
}

async function credentialOf(request: FastifyRequest, deps: ApiDeps): Promise<Credential | null> {
  const auth = request.headers.authorization;
  const headerKey = request.headers['x-api-key'];
  let bearer: string | undefined;
  if (auth !== undefined) {
    const m = /^Bearer ([\x21-\x7e]{1,512})$/i.exec(auth);
    if (!m) throw unauthorized('malformed Authorization header; use "Bearer <token>"');
    bearer = m[1];
  } else if (typeof headerKey === 'string') {
    bearer = headerKey;
  }
  if (bearer !== undefined) {
    if (bearer.startsWith('mk_live_')) {
      const key = await deps.apiKeys.verify(bearer);
      if (!key) throw unauthorized('invalid, expired or revoked API key');
      return { via: 'api_key', userId: key.userId, credentialId: key.id, mfaPending: false, scopes: new Set(key.scopes) };
    }
    const token = await deps.tokens.verifyAccess(bearer);
    if (!token) throw unauthorized('invalid or expired access token');
    return { via: 'bearer', userId: token.userId, credentialId: token.familyId, mfaPending: token.mfaPending, scopes: ALL_SCOPES };
  }
  const cookie = request.cookies?.[SESSION_COOKIE];
  if (!cookie) return null;
  const session = await deps.sessions.lookup(cookie);
  if (!session) throw unauthorized('session expired; sign in again');
  if (!SAFE_METHODS.has(request.method)) {
    const header = request.headers[CSRF_HEADER];
    const csrfCookie = request.cookies?.[CSRF_COOKIE];
    if (typeof header !== 'string' || !csrfCookie || header !== csrfCookie || !(await deps.sessions.checkCsrf(session.id, header))) {
      throw new ApiError('FORBIDDEN', `missing or invalid CSRF token: send the ${CSRF_COOKIE} cookie's value in the X-CSRF-Token header`, { csrf: true });
    }
  }
  return { via: 'session', userId: session.userId, credentialId: session.id, mfaPending: session.mfaPending, scopes: ALL_SCOPES };
}

/** The request's principal; null when it carries no credential; UNAUTHORIZED for a bad one. */
export async function resolvePrincipal(request: FastifyRequest, deps: ApiDeps): Promise<Principal | null> {
  const cred = await credentialOf(request, deps);
  if (!cred) return null;
  const { tenancy } = deps.app;
  let user, tenant;
  try {
    user = await tenancy.users.get(systemScope, cred.userId);
    tenant = await tenancy.tenants.get(systemScope, user.tenantId);
  } catch (err) {
    if (err instanceof NotFoundError) throw unauthorized('the account no longer exists');
    throw err;
  }
  if (user.status !== 'active') throw unauthorized('the account is disabled');
  if (tenant.status !== 'active') throw unauthorized(`the tenant is ${tenant.status}`);
  return { via: cred.via, user, tenant, scopes: cred.scopes, credentialId: cred.credentialId, mfaPending: cred.mfaPending, ip: request.ip };
}

/** The authenticated principal of a route that declared an action (never null there). */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw unauthorized();
  return request.principal;
}

/** Cookie attributes (SPEC §10): Secure except over plain HTTP to localhost during development. */
export function cookieSecure(request: FastifyRequest): boolean {
  if (request.protocol === 'https') return true;
  const host = (request.hostname ?? '').replace(/:\d+$/, '').toLowerCase();
  return !(host === 'localhost' || host === '127.0.0.1' || host === '[::1]' || host.endsWith('.localhost'));
}

/** Sets the session and CSRF cookies of a new session. */
export function setSessionCookies(request: FastifyRequest, reply: FastifyReply, session: { token: string; csrfToken: string; expiresAt: number }): void {
  const secure = cookieSecure(request);
  const expires = new Date(session.expiresAt);
  reply.setCookie(SESSION_COOKIE, session.token, { path: '/', httpOnly: true, secure, sameSite: 'lax', expires });
  // Readable by the web UI's script, which echoes it in X-CSRF-Token (double submit).
  reply.setCookie(CSRF_COOKIE, session.csrfToken, { path: '/', httpOnly: false, secure, sameSite: 'lax', expires });
}

export function clearSessionCookies(request: FastifyRequest, reply: FastifyReply): void {
  const secure = cookieSecure(request);
  reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, secure, sameSite: 'lax' });
  reply.clearCookie(CSRF_COOKIE, { path: '/', httpOnly: false, secure, sameSite: 'lax' });
}
