/**
 * `/api/v1/auth/*` (SPEC §2 "Admin UI auth" and "API auth", §10, §11 `auth`): sign-in, token
 * refresh, sign-out, the caller's own account, the TOTP second factor with recovery codes, password
 * change, and emergency access.
 *
 * Sign-in (`POST /auth/login`):
 *  - Lockout (SPEC §10): 5 failures → 15 minutes, counted under the account AND the client address
 *    (security/lockout.ts). A locked key is answered 429 RATE_LIMITED with `Retry-After` (SPEC §11
 *    pairs 429 with Retry-After; the client learns when to try again) and the password is NOT
 *    verified, so a locked account cannot be probed. This reveals nothing about which accounts exist:
 *    the account key is the login name as typed, locked after 5 failures whether or not such a user
 *    exists.
 *  - An unknown e-mail and a wrong password get the same 401 and cost the same Argon2 verification
 *    (Users.authenticate verifies against a dummy hash): no user enumeration.
 *  - A correct password for a disabled account or an inactive (suspended/deleted) tenant is 403
 *    (SPEC §9: suspended tenants cannot sign in); with a wrong password it is the ordinary 401.
 *  - Second factor: a user with TOTP enabled signs in with `totp_code` or `recovery_code`; without
 *    one, the reply is `mfa_required: true` with an *mfa-pending* credential (10 minutes, no refresh
 *    token) that only reaches me, logout and the second-factor routes (policy.ts `duringMfa`).
 *    A tenant that requires MFA (`tenants.mfa_required`) gives a user who is not enrolled a pending
 *    credential with `mfa_enrollment_required: true`: until they enrol, the password is their only
 *    factor, so enrolment (enrol + confirm) completes that sign-in.
 *    Wrong second-factor codes count as failed logins (otherwise one password would allow unlimited
 *    code guessing), and the account's count is only cleared once both factors succeeded.
 *  - `client: "browser"` creates a server-side session (cookies HttpOnly, Secure, SameSite=Lax; CSRF
 *    token also in the body). Its id is always new and a session cookie sent with the request is
 *    revoked (session fixation). `client: "api"` (default) returns a bearer access token (1 h) and a
 *    rotating refresh token.
 *  - Completing the second factor (mfa/verify, or totp/confirm during forced enrolment) issues a NEW
 *    credential and revokes the pending one: the privilege change rotates the session id as a login does.
 *
 * Re-authentication: disabling TOTP, regenerating recovery codes and changing the password need the
 * current password (and disabling a valid code). These checks go through the same lockout, and they
 * are refused for a pending credential — otherwise the password alone could mint recovery codes and
 * bypass the second factor. The second factor and the password are never changed with an API key.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { systemScope } from '../../../core/scope.js';
import { NotFoundError, isUniqueViolation } from '../../../core/tenancy/errors.js';
import type { Tenant, User } from '../../../core/tenancy/types.js';
import { peerKey } from '../../../protocols/net/peer-key.js';
import { writeAudit, type AuditActor } from '../../../security/audit.js';
import { BearerTokenStore } from '../../../security/credentials/bearer-tokens.js';
import { SessionStore } from '../../../security/credentials/sessions.js';
import { hashToken } from '../../../security/credentials/token.js';
import { accountLockKey, addressLockKey } from '../../../security/lockout.js';
import { MfaError, MfaService, type MfaUser, type SecondFactor } from '../../../security/mfa.js';
import { MAX_RECOVERY_CODE_INPUT } from '../../../security/recovery-codes.js';
import { PASSWORD_MAX_BYTES } from '../../../security/passwords.js';
import { ApiError } from '../../errors.js';
import { SESSION_COOKIE, clearSessionCookies, principalOf, setSessionCookies } from '../auth-hook.js';
import type { ApiDeps } from '../deps.js';
import { ALL_SCOPES, auditActor, type CredentialKind, type Principal } from '../principal.js';
import { scopeOf } from '../policy.js';
import { Data, NullableTimestamp, Timestamp, errors, iso } from '../schemas.js';
import { callService } from '../service-errors.js';

/** An mfa-pending credential only has to last while the user opens the authenticator app. */
export const MFA_PENDING_TTL_MS = 10 * 60_000;
/** SPEC §10 emergency access: a short-lived super-admin token. */
export const EMERGENCY_TOKEN_TTL_MS = 15 * 60_000;
/** The `/me` alias is deprecated in favour of `/auth/me` (SPEC §11 deprecation headers). */
export const ME_DEPRECATION = { since: '2026-11-01', sunset: '2027-06-30', successor: '/api/v1/auth/me' } as const;

const TAGS = ['auth'];
const INVALID_LOGIN = 'invalid e-mail or password';
const INVALID_CODE = 'invalid authentication code';

// ---------------------------------------------------------------------------------------------
// Schemas

const Email = Type.String({ minLength: 1, maxLength: 320, description: 'The login e-mail address.' });
const Password = Type.String({ minLength: 1, maxLength: PASSWORD_MAX_BYTES });
const TotpCode = Type.String({ pattern: '^[0-9]{6}$', description: 'The current 6-digit code of the authenticator app.' });
const RecoveryCode = Type.String({ minLength: 1, maxLength: MAX_RECOVERY_CODE_INPUT, description: 'One of the recovery codes (`xxxx-xxxx-xxxx`); each works once.' });
const Via = Type.Union([Type.Literal('session'), Type.Literal('bearer'), Type.Literal('api_key')]);

const MeSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  display_name: Type.String(),
  role: Type.Union([Type.Literal('super_admin'), Type.Literal('tenant_admin'), Type.Literal('domain_admin'), Type.Literal('user')]),
  tenant: Type.Object({ id: Type.String({ format: 'uuid' }), name: Type.String(), mfa_required: Type.Boolean() }),
  domain_scope: Type.Array(Type.String(), { description: 'Domain ids a domain_admin manages; empty for other roles.' }),
  locale: Type.String(),
  last_login_at: NullableTimestamp,
  mfa: Type.Object({ enabled: Type.Boolean(), recovery_codes_remaining: Type.Integer({ minimum: 0 }) }),
  auth: Type.Object({
    via: Via,
    mfa_pending: Type.Boolean({ description: 'Signed in with the password; the second factor (or the enrolment the tenant requires) is still due.' }),
    scopes: Type.Array(Type.String()),
  }),
});
type MeView = Static<typeof MeSchema>;

const TokenFields = {
  token_type: Type.Literal('Bearer'),
  access_token: Type.String({ description: 'Send as `Authorization: Bearer <token>`. Shown once.' }),
  refresh_token: Type.String({ description: 'Exchange at POST /auth/refresh; each use replaces it. Shown once.' }),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires.' }),
};

const SignInSchema = Type.Object({
  mfa_required: Type.Boolean({ description: 'The second factor is still due: call POST /auth/mfa/verify (or enrol, see mfa_enrollment_required) with this credential.' }),
  mfa_enrollment_required: Type.Boolean({ description: 'The tenant requires MFA and the user has none: enrol with POST /auth/totp/enrol and /auth/totp/confirm.' }),
  token_type: Type.Optional(TokenFields.token_type),
  access_token: Type.Optional(TokenFields.access_token),
  refresh_token: Type.Optional(Type.String({ description: 'Shown once; not issued while the second factor is pending.' })),
  expires_in: Type.Optional(TokenFields.expires_in),
  csrf_token: Type.Optional(Type.String({ description: 'Browser sign-in: send as `X-CSRF-Token` on state-changing requests (also in the `mairust_csrf` cookie).' })),
  session_expires_at: Type.Optional(Timestamp),
  user: MeSchema,
});
type SignInView = Static<typeof SignInSchema>;

const TokenPairSchema = Type.Object(TokenFields);

const LoginBody = Type.Object(
  {
    email: Email,
    password: Password,
    totp_code: Type.Optional(TotpCode),
    recovery_code: Type.Optional(RecoveryCode),
    client: Type.Optional(Type.Union([Type.Literal('api'), Type.Literal('browser')], { default: 'api', description: '`browser`: session cookies; `api`: bearer tokens.' })),
  },
  { additionalProperties: false },
);
const RefreshBody = Type.Object({ refresh_token: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false });
const LogoutBody = Type.Object(
  { refresh_token: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'Also end the sign-in this refresh token belongs to (one of yours).' })) },
  { additionalProperties: false },
);
const SecondFactorBody = Type.Object({ code: Type.Optional(TotpCode), recovery_code: Type.Optional(RecoveryCode) }, { additionalProperties: false });
const ConfirmBody = Type.Object({ code: TotpCode }, { additionalProperties: false });
const DisableBody = Type.Object({ password: Password, code: Type.Optional(TotpCode), recovery_code: Type.Optional(RecoveryCode) }, { additionalProperties: false });
const PasswordOnlyBody = Type.Object({ password: Password }, { additionalProperties: false });
const ChangePasswordBody = Type.Object({ current_password: Password, new_password: Password }, { additionalProperties: false });
const EmergencyBody = Type.Object({ token: Type.String({ minLength: 1, maxLength: 512 }) }, { additionalProperties: false });

const RecoveryCodes = Type.Array(Type.String(), { description: 'One-time recovery codes. Shown once: store them safely.' });

// ---------------------------------------------------------------------------------------------

function mfaUser(u: User): MfaUser {
  return { id: u.id, tenantId: u.tenantId, email: u.email };
}

/** The second factor a body carries: exactly one of `code` / `recovery_code`, or none. */
function secondFactorOf(code: string | undefined, recovery: string | undefined, codeField: string): SecondFactor | null {
  if (code !== undefined && recovery !== undefined) {
    throw new ApiError('VALIDATION_ERROR', `give either ${codeField} or recovery_code, not both`, { field: codeField });
  }
  if (code !== undefined) return { code };
  if (recovery !== undefined) return { recoveryCode: recovery };
  return null;
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Constant-time equality of two secrets of any length (compares their digests). */
function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

export default async function authRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { tenancy, db, logger } = deps.app;
  const log = logger.child({ component: 'api-auth' });
  const now = deps.now ?? Date.now;
  const mfa = new MfaService({ db, secrets: deps.secrets, now });
  // Pending (second factor due) and emergency credentials live briefly and have no usable refresh
  // token: the refresh tokens these stores must issue with each pair expire after 1 ms and are
  // never shown, so such a credential cannot be stretched by refreshing.
  const pendingSessions = new SessionStore(db, { ttlMs: MFA_PENDING_TTL_MS, now });
  const pendingTokens = new BearerTokenStore(db, { accessTtlMs: MFA_PENDING_TTL_MS, refreshTtlMs: 1, now });
  const emergencyTokens = new BearerTokenStore(db, { accessTtlMs: EMERGENCY_TOKEN_TTL_MS, refreshTtlMs: 1, now });

  const audit = (tenantId: string | null, eventType: string, actor: AuditActor, target: { type: string; id: string }, metadata: Record<string, unknown> = {}) =>
    writeAudit(db, { tenantId, eventType, actor, target, metadata });

  const userActor = (u: User, ip: string): AuditActor => ({ type: 'user', id: u.id, email: u.email, ip });

  /** Lockout keys of a sign-in: the account (login as typed) and the client's address (IPv6 /64). */
  const lockKeys = (login: string, ip: string) => [accountLockKey(login), addressLockKey(peerKey(ip))];

  /** 429 RATE_LIMITED + Retry-After while any of the keys is locked (SPEC §10, §11). */
  async function refuseIfLocked(keys: string[], reply: FastifyReply): Promise<void> {
    const lock = await deps.lockout.checkAny(keys);
    if (!lock.locked) return;
    const seconds = Math.max(1, Math.ceil(lock.retryAfterMs / 1000));
    reply.header('retry-after', String(seconds));
    throw new ApiError('RATE_LIMITED', `too many failed sign-in attempts; try again in ${seconds} seconds`, { retry_after_seconds: seconds });
  }

  /**
   * Second factor and password are the account's own security settings: changed by the person
   * signed in (session or bearer token), never by an API key — a key given to an integration must
   * not be able to lock its owner out by enrolling an authenticator, or to take part in a takeover.
   */
  function requireSignIn(p: Principal): void {
    if (p.via === 'api_key') throw new ApiError('FORBIDDEN', 'this needs a sign-in (session or bearer token from /auth/login), not an API key');
  }

  /** Refuses re-authenticated account changes to a credential whose second factor is still due. */
  function requireFullSignIn(p: Principal): void {
    if (p.mfaPending) throw new ApiError('FORBIDDEN', 'complete the second factor first (POST /api/v1/auth/mfa/verify)', { mfa_required: true });
  }

  /** The caller's current password, checked under the login lockout; 403 when wrong. */
  async function requirePassword(p: Principal, password: string, field: string, reply: FastifyReply): Promise<void> {
    const keys = lockKeys(p.user.email, p.ip);
    await refuseIfLocked(keys, reply);
    const ok = await tenancy.authenticate(scopeOf(p), p.user.email, password);
    if (!ok || ok.id !== p.user.id) {
      await deps.lockout.recordFailure(keys);
      throw new ApiError('FORBIDDEN', 'the password is not correct', { field });
    }
  }

  async function meView(user: User, tenant: Tenant, via: CredentialKind, mfaPending: boolean, scopes: ReadonlySet<string>): Promise<MeView> {
    const status = await mfa.status(user.id);
    return {
      id: user.id,
      email: user.email,
      display_name: user.displayName,
      role: user.role,
      tenant: { id: tenant.id, name: tenant.name, mfa_required: tenant.mfaRequired },
      domain_scope: user.domainScope,
      locale: user.locale,
      last_login_at: iso(user.lastLoginAt),
      mfa: { enabled: status.enabled, recovery_codes_remaining: status.recoveryCodesRemaining },
      auth: { via, mfa_pending: mfaPending, scopes: [...scopes].sort() },
    };
  }

  /** A session cookie sent with a sign-in is ended whatever it is: the new session never reuses it. */
  async function revokePresentedSession(request: FastifyRequest): Promise<void> {
    const cookie = request.cookies?.[SESSION_COOKIE];
    if (cookie && cookie.length <= 128) await deps.sessions.revoke(hashToken(cookie));
  }

  /**
   * Issues the credential of a sign-in: a new session + cookies (browser) or a token pair (API);
   * pending ones from the short-lived stores.
   */
  async function issueCredential(
    request: FastifyRequest,
    reply: FastifyReply,
    user: User,
    tenant: Tenant,
    o: { browser: boolean; pending: boolean; enrollment: boolean },
  ): Promise<SignInView> {
    const base = { mfa_required: o.pending, mfa_enrollment_required: o.pending && o.enrollment };
    if (o.browser) {
      await revokePresentedSession(request);
      const ua = request.headers['user-agent'];
      const session = await (o.pending ? pendingSessions : deps.sessions).create({
        tenantId: user.tenantId,
        userId: user.id,
        mfaPending: o.pending,
        ip: request.ip,
        userAgent: typeof ua === 'string' ? ua : undefined,
      });
      setSessionCookies(request, reply, session);
      return { ...base, csrf_token: session.csrfToken, session_expires_at: iso(session.expiresAt), user: await meView(user, tenant, 'session', o.pending, ALL_SCOPES) };
    }
    if (o.pending) {
      const pair = await pendingTokens.issue({ tenantId: user.tenantId, userId: user.id, mfaPending: true });
      return { ...base, token_type: 'Bearer', access_token: pair.accessToken, expires_in: pair.expiresIn, user: await meView(user, tenant, 'bearer', true, ALL_SCOPES) };
    }
    const pair = await deps.tokens.issue({ tenantId: user.tenantId, userId: user.id });
    return {
      ...base,
      token_type: 'Bearer',
      access_token: pair.accessToken,
      refresh_token: pair.refreshToken,
      expires_in: pair.expiresIn,
      user: await meView(user, tenant, 'bearer', false, ALL_SCOPES),
    };
  }

  /** Both factors done: stamp the login, clear the account's failure count, audit. */
  async function completeSignIn(user: User, ip: string, metadata: Record<string, unknown>): Promise<void> {
    await deps.lockout.recordSuccess(accountLockKey(user.email));
    await tenancy.users.recordLogin(systemScope, user.id, now());
    await audit(user.tenantId, 'auth.login_succeeded', userActor(user, ip), { type: 'user', id: user.id }, metadata);
  }

  /**
   * The pending credential of `p` is replaced by a full one of the same kind (session → session,
   * bearer → bearer): a new id after the privilege change, the old one revoked.
   */
  async function upgradePendingCredential(request: FastifyRequest, reply: FastifyReply, p: Principal): Promise<SignInView> {
    if (p.via === 'session') await deps.sessions.revoke(p.credentialId);
    else await deps.tokens.revokeFamily(p.credentialId);
    const user = await tenancy.users.get(systemScope, p.user.id);
    return issueCredential(request, reply, user, p.tenant, { browser: p.via === 'session', pending: false, enrollment: false });
  }

  // -------------------------------------------------------------------------------------------

  app.post(
    '/auth/login',
    {
      config: { public: true },
      schema: {
        tags: TAGS,
        summary: 'Sign in with e-mail and password (and a second factor)',
        description:
          'Returns bearer tokens (`client: "api"`, default) or sets a session cookie (`client: "browser"`). With TOTP enabled, pass `totp_code` or `recovery_code`; ' +
          'without one the reply has `mfa_required: true` and a credential that only reaches /auth/mfa/verify, /auth/me and /auth/logout. ' +
          '5 failed attempts per account or per client address lock sign-in for 15 minutes (429 with Retry-After).',
        security: [],
        body: LoginBody,
        response: { 200: Data(SignInSchema), ...errors(422) },
      },
    },
    async (request, reply) => {
      const body = request.body as Static<typeof LoginBody>;
      const ip = request.ip;
      const browser = body.client === 'browser';
      const factor = secondFactorOf(body.totp_code, body.recovery_code, 'totp_code');
      const keys = lockKeys(body.email, ip);
      const login = body.email.trim().toLowerCase().slice(0, 320);
      const failed = (tenantId: string | null, target: { type: string; id: string }, reason: string, actor: AuditActor = { type: 'user', email: login, ip }) =>
        audit(tenantId, 'auth.login_failed', actor, target, { reason, client: browser ? 'browser' : 'api' });

      try {
        await refuseIfLocked(keys, reply);
      } catch (err) {
        await failed(null, { type: 'login', id: login }, 'locked');
        throw err;
      }

      const checked = await tenancy.users.verifyCredentials(systemScope, body.email, body.password);
      const account = checked.user;
      if (account && checked.passwordOk && (account.status !== 'active' || checked.tenantStatus !== 'active')) {
        // Only someone who proved the password learns why the account cannot sign in.
        const reason = checked.tenantStatus !== 'active' ? `tenant_${checked.tenantStatus}` : 'user_disabled';
        await failed(account.tenantId, { type: 'user', id: account.id }, reason, userActor(account, ip));
        throw new ApiError('FORBIDDEN', checked.tenantStatus !== 'active' ? `the tenant is ${checked.tenantStatus}; sign-in is not possible` : 'the account is disabled');
      }
      const user: User | null = account && checked.passwordOk ? account : null;
      if (!user) {
        await deps.lockout.recordFailure(keys);
        await failed(account?.tenantId ?? null, account ? { type: 'user', id: account.id } : { type: 'login', id: login }, 'invalid_credentials');
        throw new ApiError('UNAUTHORIZED', INVALID_LOGIN);
      }
      const tenant = await tenancy.tenants.get(systemScope, user.tenantId);

      const status = await mfa.status(user.id);
      let pending = false;
      let enrollment = false;
      let used: string = 'none';
      if (status.enabled) {
        if (factor) {
          const kind = await mfa.verify(mfaUser(user), factor, userActor(user, ip));
          if (!kind) {
            await deps.lockout.recordFailure(keys);
            await failed(user.tenantId, { type: 'user', id: user.id }, 'invalid_second_factor', userActor(user, ip));
            throw new ApiError('UNAUTHORIZED', INVALID_CODE, { field: 'code' in factor ? 'totp_code' : 'recovery_code' });
          }
          used = kind;
        } else {
          pending = true;
        }
      } else if (tenant.mfaRequired) {
        pending = true;
        enrollment = true;
      }

      const data = await issueCredential(request, reply, user, tenant, { browser, pending, enrollment });
      if (pending) {
        await audit(user.tenantId, 'auth.mfa_challenged', userActor(user, ip), { type: 'user', id: user.id }, { client: browser ? 'browser' : 'api', enrollment_required: enrollment });
      } else {
        await completeSignIn(user, ip, { client: browser ? 'browser' : 'api', second_factor: used });
      }
      return { data };
    },
  );

  app.post(
    '/auth/refresh',
    {
      config: { public: true },
      schema: {
        tags: TAGS,
        summary: 'Exchange a refresh token for a new token pair',
        description:
          'The refresh token is spent: the reply carries a new access token and a new refresh token. Presenting a spent refresh token again means it was copied: ' +
          'every token of that sign-in is revoked and the reply is 401.',
        security: [],
        body: RefreshBody,
        response: { 200: Data(TokenPairSchema), ...errors(422) },
      },
    },
    async (request) => {
      const { refresh_token } = request.body as Static<typeof RefreshBody>;
      const out = await deps.tokens.refresh(refresh_token);
      if (!out.ok) {
        if (out.reason === 'reused') {
          log.warn({ remote_addr: request.ip }, 'refresh token reused: its token family was revoked');
          throw new ApiError('UNAUTHORIZED', 'this refresh token was already used; every token of its sign-in has been revoked — sign in again');
        }
        throw new ApiError('UNAUTHORIZED', 'invalid, expired or revoked refresh token');
      }
      // The account or its tenant may have been disabled since the sign-in (SPEC §9).
      let active = false;
      try {
        const user = await tenancy.users.get(systemScope, out.userId);
        const tenant = await tenancy.tenants.get(systemScope, user.tenantId);
        active = user.status === 'active' && tenant.status === 'active';
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
      if (!active) {
        await deps.tokens.revokeFamily(out.pair.familyId);
        throw new ApiError('UNAUTHORIZED', 'the account or its tenant is no longer active');
      }
      const { pair } = out;
      return { data: { token_type: 'Bearer' as const, access_token: pair.accessToken, refresh_token: pair.refreshToken, expires_in: pair.expiresIn } };
    },
  );

  app.post(
    '/auth/logout',
    {
      config: { action: 'self.read' },
      // The body is optional: a request without one is validated as `{}`.
      preValidation: async (request) => {
        if (request.body === undefined || request.body === null) request.body = {};
      },
      schema: {
        tags: TAGS,
        summary: 'Sign out: end this session or token family',
        description: 'A session is revoked and its cookies cleared; a bearer token ends with every token of its sign-in. An optional `refresh_token` of yours ends that sign-in too.',
        body: LogoutBody,
        response: { 200: Data(Type.Object({ logged_out: Type.Literal(true) })), ...errors(422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const body = request.body as Static<typeof LogoutBody>;
      if (p.via === 'api_key') throw new ApiError('INVALID_REQUEST', 'an API key is not a sign-in; revoke the key instead (/api/v1/api-keys)');
      if (p.via === 'session') {
        await deps.sessions.revoke(p.credentialId);
        clearSessionCookies(request, reply);
      } else {
        await deps.tokens.revokeFamily(p.credentialId);
      }
      if (body.refresh_token) {
        // Only a sign-in of the caller's own: a token of someone else's is ignored, not revealed.
        const row = await db.kysely
          .selectFrom('auth_tokens')
          .select(['family_id', 'user_id'])
          .where('token_hash', '=', hashToken(body.refresh_token))
          .where('kind', '=', 'refresh')
          .executeTakeFirst();
        if (row && row.user_id === p.user.id) await deps.tokens.revokeFamily(row.family_id);
      }
      await audit(p.user.tenantId, 'auth.logout', auditActor(p), { type: 'user', id: p.user.id }, { via: p.via });
      return { data: { logged_out: true as const } };
    },
  );

  const meSchema = (deprecated: boolean) => ({
    tags: TAGS,
    summary: deprecated ? 'The signed-in user (deprecated alias of GET /auth/me)' : 'The signed-in user',
    description: deprecated
      ? `Deprecated since ${ME_DEPRECATION.since}, removed after ${ME_DEPRECATION.sunset}: use GET ${ME_DEPRECATION.successor}.`
      : 'Account, tenant, role, second-factor state and how this request authenticated. Never contains secrets.',
    response: { 200: Data(MeSchema), ...errors() },
  });
  const meHandler = async (request: FastifyRequest) => {
    const p = principalOf(request);
    return { data: await meView(p.user, p.tenant, p.via, p.mfaPending, p.scopes) };
  };
  app.get('/auth/me', { config: { action: 'self.read' }, schema: meSchema(false) }, meHandler);
  app.get('/me', { config: { action: 'self.read', deprecated: { ...ME_DEPRECATION } }, schema: meSchema(true) }, meHandler);

  app.post(
    '/auth/mfa/verify',
    {
      config: { action: 'self.update' },
      schema: {
        tags: TAGS,
        summary: 'Complete a sign-in with the second factor',
        description:
          'With the mfa-pending credential from /auth/login: a TOTP `code` (each code works once) or a `recovery_code` (each works once). ' +
          'Returns a new full credential (the pending one is revoked); wrong codes count as failed logins (lockout).',
        body: SecondFactorBody,
        response: { 200: Data(SignInSchema), ...errors(409, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      requireSignIn(p);
      const body = request.body as Static<typeof SecondFactorBody>;
      const factor = secondFactorOf(body.code, body.recovery_code, 'code');
      if (!factor) throw new ApiError('VALIDATION_ERROR', 'give code or recovery_code', { field: 'code' });
      if (!p.mfaPending) throw new ApiError('CONFLICT', 'this sign-in has no second factor due');
      if (!(await mfa.isEnrolled(p.user.id))) {
        throw new ApiError('CONFLICT', 'no second factor is enrolled: enrol with POST /api/v1/auth/totp/enrol and /api/v1/auth/totp/confirm', { mfa_enrollment_required: true });
      }
      const keys = lockKeys(p.user.email, p.ip);
      await refuseIfLocked(keys, reply);
      const kind = await mfa.verify(mfaUser(p.user), factor, auditActor(p));
      if (!kind) {
        await deps.lockout.recordFailure(keys);
        await audit(p.user.tenantId, 'auth.login_failed', auditActor(p), { type: 'user', id: p.user.id }, { reason: 'invalid_second_factor', client: p.via === 'session' ? 'browser' : 'api' });
        throw new ApiError('UNAUTHORIZED', INVALID_CODE, { field: 'code' in factor ? 'code' : 'recovery_code' });
      }
      const data = await upgradePendingCredential(request, reply, p);
      await completeSignIn(p.user, p.ip, { client: p.via === 'session' ? 'browser' : 'api', second_factor: kind });
      return { data };
    },
  );

  app.post(
    '/auth/totp/enrol',
    {
      config: { action: 'self.update' },
      schema: {
        tags: TAGS,
        summary: 'Start TOTP enrolment',
        description: 'Returns a new secret (base32) and its `otpauth://` URI for an authenticator app, shown once. Confirm with POST /auth/totp/confirm. Starting again replaces an unconfirmed secret.',
        response: {
          200: Data(Type.Object({ secret: Type.String({ description: 'Base32 TOTP secret; shown once.' }), otpauth_url: Type.String({ description: 'otpauth://totp/… URI (QR code content).' }) })),
          ...errors(409),
        },
      },
    },
    async (request) => {
      const p = principalOf(request);
      requireSignIn(p);
      const out = await mfaCall(() => mfa.beginEnrolment(mfaUser(p.user)));
      return { data: { secret: out.secret, otpauth_url: out.otpauthUrl } };
    },
  );

  app.post(
    '/auth/totp/confirm',
    {
      config: { action: 'self.update' },
      schema: {
        tags: TAGS,
        summary: 'Confirm TOTP enrolment with a code',
        description:
          'Turns TOTP on and returns 10 recovery codes (shown once). If the tenant required enrolment to finish a sign-in, the reply also carries the new full credential in `sign_in`.',
        body: ConfirmBody,
        response: {
          200: Data(Type.Object({ enabled: Type.Literal(true), recovery_codes: RecoveryCodes, sign_in: Type.Optional(SignInSchema) })),
          ...errors(409, 422),
        },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      requireSignIn(p);
      const { code } = request.body as Static<typeof ConfirmBody>;
      const codes = await mfaCall(() => mfa.confirmEnrolment(mfaUser(p.user), code, auditActor(p)));
      if (!p.mfaPending) return { data: { enabled: true as const, recovery_codes: codes } };
      const sign_in = await upgradePendingCredential(request, reply, p);
      await completeSignIn(p.user, p.ip, { client: p.via === 'session' ? 'browser' : 'api', second_factor: 'totp_enrolment' });
      return { data: { enabled: true as const, recovery_codes: codes, sign_in } };
    },
  );

  app.post(
    '/auth/totp/disable',
    {
      config: { action: 'self.update' },
      schema: {
        tags: TAGS,
        summary: 'Turn TOTP off',
        description: 'Needs the password and a current `code` (or a `recovery_code`). Refused (403) when the tenant requires MFA.',
        body: DisableBody,
        response: { 200: Data(Type.Object({ enabled: Type.Literal(false) })), ...errors(409, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      requireSignIn(p);
      const body = request.body as Static<typeof DisableBody>;
      requireFullSignIn(p);
      const factor = secondFactorOf(body.code, body.recovery_code, 'code');
      if (!factor) throw new ApiError('VALIDATION_ERROR', 'give code or recovery_code', { field: 'code' });
      if (p.tenant.mfaRequired) throw new ApiError('FORBIDDEN', 'your tenant requires a second factor; TOTP cannot be turned off');
      await requirePassword(p, body.password, 'password', reply);
      try {
        await mfa.disable(mfaUser(p.user), factor, auditActor(p));
      } catch (err) {
        if (err instanceof MfaError && err.reason === 'invalid_code') {
          await deps.lockout.recordFailure(lockKeys(p.user.email, p.ip));
          throw new ApiError('FORBIDDEN', INVALID_CODE, { field: 'code' in factor ? 'code' : 'recovery_code' });
        }
        throw mfaApiError(err);
      }
      return { data: { enabled: false as const } };
    },
  );

  app.post(
    '/auth/recovery-codes',
    {
      config: { action: 'self.update' },
      schema: {
        tags: TAGS,
        summary: 'Replace the recovery codes',
        description: 'Needs the password. The old codes stop working; the 10 new ones are shown once.',
        body: PasswordOnlyBody,
        response: { 200: Data(Type.Object({ recovery_codes: RecoveryCodes })), ...errors(409, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      requireSignIn(p);
      const { password } = request.body as Static<typeof PasswordOnlyBody>;
      requireFullSignIn(p);
      await requirePassword(p, password, 'password', reply);
      const codes = await mfaCall(() => mfa.regenerateRecoveryCodes(mfaUser(p.user), auditActor(p)));
      return { data: { recovery_codes: codes } };
    },
  );

  app.post(
    '/auth/password',
    {
      config: { action: 'self.update' },
      schema: {
        tags: TAGS,
        summary: 'Change your password',
        description:
          'Needs the current password. The new one must have at least 12 characters and not be one of the last 5 (422 VALIDATION_ERROR says why). ' +
          'Every other session and token of yours is revoked; the one making this request stays signed in.',
        body: ChangePasswordBody,
        response: { 200: Data(Type.Object({ changed: Type.Literal(true) })), ...errors(422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      requireSignIn(p);
      const body = request.body as Static<typeof ChangePasswordBody>;
      requireFullSignIn(p);
      await requirePassword(p, body.current_password, 'current_password', reply);
      // Users.setPassword enforces the policy and the last-5 history and audits user.password_changed.
      await callService(() => tenancy.users.setPassword(scopeOf(p), p.user.id, body.new_password, auditActor(p)), { password: 'new_password' });
      // Whoever else holds a credential of this account (perhaps why the password changes) is out.
      await deps.sessions.revokeAllForUser(p.user.id, p.via === 'session' ? p.credentialId : undefined);
      await deps.tokens.revokeAllForUser(p.user.id, p.via === 'bearer' ? p.credentialId : undefined);
      return { data: { changed: true as const } };
    },
  );

  /**
   * Emergency access (SPEC §10): `MAIRUST_EMERGENCY_TOKEN` (≥ 32 characters) exchanged once for a
   * 15-minute access token of the oldest active super-admin, e.g. when every admin lost their second
   * factor. The token's SHA-256 is inserted into `emergency_token_uses` — the primary key makes the
   * insert the claim, so a second use fails even when two requests race. THE OPERATOR MUST CHANGE
   * (or unset) MAIRUST_EMERGENCY_TOKEN AFTER USE: the used value is dead, and a new one is needed for
   * the next emergency. Every use is audited (`auth.emergency_access`, with the client address).
   */
  app.post(
    '/auth/emergency',
    {
      config: { public: true },
      schema: {
        tags: TAGS,
        summary: 'One-time emergency access with MAIRUST_EMERGENCY_TOKEN',
        description: 'Exchanges the configured emergency token (once) for a 15-minute access token of the oldest active super-admin. Audited. Change the environment variable afterwards.',
        security: [],
        body: EmergencyBody,
        response: {
          200: Data(
            Type.Object({
              token_type: TokenFields.token_type,
              access_token: TokenFields.access_token,
              expires_in: TokenFields.expires_in,
              user: Type.Object({ id: Type.String({ format: 'uuid' }), email: Type.String() }),
            }),
          ),
          ...errors(409, 422),
        },
      },
    },
    async (request) => {
      const { token } = request.body as Static<typeof EmergencyBody>;
      const expected = deps.emergencyToken;
      if (!expected || !sameSecret(token, expected)) {
        log.warn({ remote_addr: request.ip }, 'emergency access refused: wrong or unconfigured token');
        throw new ApiError('UNAUTHORIZED', 'invalid emergency token');
      }
      const admin = await db.kysely
        .selectFrom('users')
        .innerJoin('tenants', 'tenants.id', 'users.tenant_id')
        .select(['users.id as id'])
        .where('users.role', '=', 'super_admin')
        .where('users.status', '=', 'active')
        .where('tenants.status', '=', 'active')
        .orderBy('users.created_at')
        .orderBy('users.id')
        .limit(1)
        .executeTakeFirst();
      if (!admin) throw new ApiError('CONFLICT', 'there is no active super-admin to act as; create one with the CLI (`mairust user add … --role super_admin`)');
      try {
        await db.kysely.insertInto('emergency_token_uses').values({ token_hash: hashToken(expected), used_at: now(), ip: request.ip.slice(0, 64) }).execute();
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        log.warn({ remote_addr: request.ip }, 'emergency access refused: the token was already used');
        throw new ApiError('UNAUTHORIZED', 'this emergency token was already used; set a new MAIRUST_EMERGENCY_TOKEN');
      }
      const user = await tenancy.users.get(systemScope, admin.id);
      const pair = await emergencyTokens.issue({ tenantId: user.tenantId, userId: user.id });
      await audit(user.tenantId, 'auth.emergency_access', { type: 'system', id: 'emergency_token', ip: request.ip }, { type: 'user', id: user.id }, { expires_in_seconds: pair.expiresIn });
      log.warn({ remote_addr: request.ip, user_id: user.id }, 'emergency access granted; change MAIRUST_EMERGENCY_TOKEN now');
      return { data: { token_type: 'Bearer' as const, access_token: pair.accessToken, expires_in: pair.expiresIn, user: { id: user.id, email: user.email } } };
    },
  );
}

/** MfaService refusals in API terms. */
function mfaApiError(err: unknown): unknown {
  if (!(err instanceof MfaError)) return err;
  switch (err.reason) {
    case 'invalid_code':
      return new ApiError('VALIDATION_ERROR', err.message, { field: 'code', errors: [{ path: '/code', message: err.message }] });
    case 'already_enabled':
    case 'not_enabled':
    case 'no_enrolment':
      return new ApiError('CONFLICT', err.message, { reason: err.reason });
  }
}

async function mfaCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw mfaApiError(err);
  }
}
