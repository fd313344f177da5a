/**
 * The second sign-in factor of a user (SPEC §2, §10): TOTP (RFC 6238, totp.ts) with one-time
 * recovery codes (recovery-codes.ts), over the `user_mfa` table (migration 0008).
 *
 * Life cycle of a user's row:
 *   begin enrolment  → secret generated, sealed in the secret store (envelope encryption, SPEC §10),
 *                      `enabled = 0`; the secret is returned once, for the authenticator app;
 *   confirm (a code) → `enabled = 1`, 10 recovery codes generated and returned once (only their
 *                      hashes are kept);
 *   verify           → a TOTP code (each time step accepted once) or a recovery code (each once);
 *   disable          → secret and codes deleted.
 * Beginning again before confirming replaces the unconfirmed secret; once enabled, TOTP must be
 * disabled before a new secret can be enrolled.
 *
 * The password checks that disabling and regenerating need are the caller's (the HTTP layer verifies
 * the password with the login lockout applied); this service checks the second factor.
 * Every change that matters to an administrator is audited in the same transaction:
 * `user.mfa_enabled`, `user.mfa_disabled`, `user.recovery_codes_regenerated`,
 * `user.recovery_code_used`.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../store/db/database.js';
import type { DB, UserMfaTable } from '../store/db/types.js';
import { writeAudit, type AuditActor } from './audit.js';
import type { SecretStore } from './secrets/types.js';
import { checkTotp, generateTotpSecret, totpUri } from './totp.js';
import { findRecoveryCode, generateRecoveryCodes, hashRecoveryCode } from './recovery-codes.js';

export interface MfaUser {
  id: string;
  tenantId: string;
  email: string;
}

export interface MfaStatus {
  /** TOTP confirmed and required at sign-in. */
  enabled: boolean;
  /** An enrolment was begun but not confirmed yet. */
  pending: boolean;
  recoveryCodesRemaining: number;
  enrolledAt: number | null;
}

export type MfaErrorReason = 'already_enabled' | 'not_enabled' | 'no_enrolment' | 'invalid_code';

/** A refused MFA operation; `reason` lets the HTTP layer pick the status. */
export class MfaError extends Error {
  constructor(
    readonly reason: MfaErrorReason,
    message: string,
  ) {
    super(message);
    this.name = 'MfaError';
  }
}

/** What proves the second factor: a TOTP code or a recovery code. */
export type SecondFactor = { code: string } | { recoveryCode: string };

export type SecondFactorKind = 'totp' | 'recovery_code';

export interface MfaServiceOptions {
  db: Database;
  secrets: SecretStore;
  /** Clock for TOTP time steps (tests inject one). */
  now?: () => number;
}

/** Optimistic updates of the recovery-code list retry this often under contention. */
const MAX_CAS_ATTEMPTS = 5;

function hashesOf(row: Pick<UserMfaTable, 'recovery_codes_json'>): string[] {
  const v = JSON.parse(row.recovery_codes_json) as unknown;
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

export class MfaService {
  private readonly db: Database;
  private readonly secrets: SecretStore;
  private readonly now: () => number;

  constructor(opts: MfaServiceOptions) {
    this.db = opts.db;
    this.secrets = opts.secrets;
    this.now = opts.now ?? Date.now;
  }

  private row(userId: string, db: Kysely<DB> = this.db.kysely): Promise<UserMfaTable | undefined> {
    return db.selectFrom('user_mfa').selectAll().where('user_id', '=', userId).executeTakeFirst();
  }

  async status(userId: string): Promise<MfaStatus> {
    const row = await this.row(userId);
    if (!row) return { enabled: false, pending: false, recoveryCodesRemaining: 0, enrolledAt: null };
    const enabled = Number(row.enabled) === 1;
    return {
      enabled,
      pending: !enabled && row.totp_secret_id !== null,
      recoveryCodesRemaining: enabled ? hashesOf(row).length : 0,
      enrolledAt: row.enrolled_at === null ? null : Number(row.enrolled_at),
    };
  }

  /** Whether the user signs in with a second factor. */
  async isEnrolled(userId: string): Promise<boolean> {
    return (await this.status(userId)).enabled;
  }

  /**
   * Starts (or restarts) enrolment: a new secret, sealed; returns it in base32 and as an
   * `otpauth://` URI. Shown once — the store never returns it again.
   */
  async beginEnrolment(user: MfaUser): Promise<{ secret: string; otpauthUrl: string }> {
    const secret = generateTotpSecret();
    const t = this.now();
    await this.db.kysely.transaction().execute(async (trx) => {
      const existing = await this.row(user.id, trx);
      if (existing && Number(existing.enabled) === 1) throw new MfaError('already_enabled', 'TOTP is already enabled; disable it before enrolling a new authenticator');
      if (existing?.totp_secret_id) await this.secrets.delete(existing.totp_secret_id, trx);
      const secretId = await this.secrets.put({ tenantId: user.tenantId, kind: 'totp', plaintext: secret }, trx);
      await trx
        .insertInto('user_mfa')
        .values({ user_id: user.id, tenant_id: user.tenantId, totp_secret_id: secretId, enabled: 0, recovery_codes_json: '[]', last_step: 0, enrolled_at: null, updated_at: t })
        .onConflict((oc) => oc.column('user_id').doUpdateSet({ totp_secret_id: secretId, enabled: 0, recovery_codes_json: '[]', last_step: 0, enrolled_at: null, updated_at: t }))
        .execute();
    });
    return { secret, otpauthUrl: totpUri(secret, user.email) };
  }

  /** Confirms the enrolment with a code from the app: TOTP is on; returns the recovery codes (once). */
  async confirmEnrolment(user: MfaUser, code: string, actor: AuditActor): Promise<string[]> {
    const row = await this.row(user.id);
    if (row && Number(row.enabled) === 1) throw new MfaError('already_enabled', 'TOTP is already enabled');
    if (!row?.totp_secret_id) throw new MfaError('no_enrolment', 'no TOTP enrolment in progress; start one with POST /api/v1/auth/totp/enrol');
    const check = checkTotp(await this.secretOf(row.totp_secret_id), code, this.now(), Number(row.last_step));
    if (!check.ok) throw new MfaError('invalid_code', 'the code does not match the enrolled secret; check the device clock and try the current code');
    const codes = generateRecoveryCodes();
    const t = this.now();
    await this.db.kysely.transaction().execute(async (trx) => {
      // Conditional on the row still being the unconfirmed enrolment we checked the code against.
      const res = await trx
        .updateTable('user_mfa')
        .set({ enabled: 1, last_step: check.step, recovery_codes_json: JSON.stringify(codes.map((c) => hashRecoveryCode(user.id, c))), enrolled_at: t, updated_at: t })
        .where('user_id', '=', user.id)
        .where('enabled', '=', 0)
        .where('totp_secret_id', '=', row.totp_secret_id)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows ?? 0) !== 1) throw new MfaError('no_enrolment', 'the enrolment changed meanwhile; start again');
      await writeAudit(trx, { tenantId: user.tenantId, eventType: 'user.mfa_enabled', actor, target: { type: 'user', id: user.id }, metadata: { email: user.email, method: 'totp' } });
    });
    return codes;
  }

  /**
   * Checks a second factor of an enabled user; returns which kind matched, or null. A TOTP code is
   * spent by advancing `last_step` with a conditional update, a recovery code by removing its hash
   * with a compare-and-set of the list: of two concurrent uses of one code, one wins.
   */
  async verify(user: MfaUser, factor: SecondFactor, actor: AuditActor): Promise<SecondFactorKind | null> {
    const row = await this.row(user.id);
    if (!row || Number(row.enabled) !== 1 || !row.totp_secret_id) return null;
    if ('code' in factor) return (await this.spendTotp(row, factor.code)) ? 'totp' : null;
    return (await this.spendRecoveryCode(user, factor.recoveryCode, actor)) ? 'recovery_code' : null;
  }

  private async spendTotp(row: UserMfaTable, code: string): Promise<boolean> {
    const check = checkTotp(await this.secretOf(row.totp_secret_id!), code, this.now(), Number(row.last_step));
    if (!check.ok) return false;
    const res = await this.db.kysely
      .updateTable('user_mfa')
      .set({ last_step: check.step, updated_at: this.now() })
      .where('user_id', '=', row.user_id)
      .where('enabled', '=', 1)
      .where('last_step', '<', check.step)
      .executeTakeFirst();
    return Number(res.numUpdatedRows ?? 0) === 1;
  }

  private async spendRecoveryCode(user: MfaUser, presented: string, actor: AuditActor): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const row = await this.row(user.id);
      if (!row || Number(row.enabled) !== 1) return false;
      const hashes = hashesOf(row);
      const i = findRecoveryCode(hashes, user.id, presented);
      if (i < 0) return false;
      const rest = hashes.filter((_, j) => j !== i);
      const spent = await this.db.kysely.transaction().execute(async (trx) => {
        const res = await trx
          .updateTable('user_mfa')
          .set({ recovery_codes_json: JSON.stringify(rest), updated_at: this.now() })
          .where('user_id', '=', user.id)
          .where('recovery_codes_json', '=', row.recovery_codes_json)
          .executeTakeFirst();
        if (Number(res.numUpdatedRows ?? 0) !== 1) return false;
        await writeAudit(trx, { tenantId: user.tenantId, eventType: 'user.recovery_code_used', actor, target: { type: 'user', id: user.id }, metadata: { email: user.email, remaining: rest.length } });
        return true;
      });
      if (spent) return true;
    }
    return false;
  }

  /**
   * Turns TOTP off after checking a second factor (the caller has checked the password). Deletes the
   * sealed secret and the recovery codes.
   */
  async disable(user: MfaUser, factor: SecondFactor, actor: AuditActor): Promise<void> {
    const row = await this.row(user.id);
    if (!row || Number(row.enabled) !== 1) throw new MfaError('not_enabled', 'TOTP is not enabled');
    if (!(await this.verify(user, factor, actor))) throw new MfaError('invalid_code', 'invalid authentication code');
    await this.db.kysely.transaction().execute(async (trx) => {
      await trx.deleteFrom('user_mfa').where('user_id', '=', user.id).execute();
      if (row.totp_secret_id) await this.secrets.delete(row.totp_secret_id, trx);
      await writeAudit(trx, { tenantId: user.tenantId, eventType: 'user.mfa_disabled', actor, target: { type: 'user', id: user.id }, metadata: { email: user.email } });
    });
  }

  /**
   * An administrator removes a user's TOTP enrolment (device and recovery codes lost). No second
   * factor is checked — the caller's authorization is the check — and the user signs in with the
   * password alone until they enrol again (or must enrol at once where the tenant requires MFA).
   * Returns whether there was an enrolment to remove.
   */
  async reset(user: MfaUser, actor: AuditActor): Promise<boolean> {
    const row = await this.row(user.id);
    if (!row) return false;
    await this.db.kysely.transaction().execute(async (trx) => {
      await trx.deleteFrom('user_mfa').where('user_id', '=', user.id).execute();
      if (row.totp_secret_id) await this.secrets.delete(row.totp_secret_id, trx);
      await writeAudit(trx, { tenantId: user.tenantId, eventType: 'user.mfa_reset', actor, target: { type: 'user', id: user.id }, metadata: { email: user.email } });
    });
    return true;
  }

  /** A new set of recovery codes replaces the old one (the caller has checked the password). */
  async regenerateRecoveryCodes(user: MfaUser, actor: AuditActor): Promise<string[]> {
    const codes = generateRecoveryCodes();
    await this.db.kysely.transaction().execute(async (trx) => {
      const res = await trx
        .updateTable('user_mfa')
        .set({ recovery_codes_json: JSON.stringify(codes.map((c) => hashRecoveryCode(user.id, c))), updated_at: this.now() })
        .where('user_id', '=', user.id)
        .where('enabled', '=', 1)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows ?? 0) !== 1) throw new MfaError('not_enabled', 'TOTP is not enabled; recovery codes come with it');
      await writeAudit(trx, { tenantId: user.tenantId, eventType: 'user.recovery_codes_regenerated', actor, target: { type: 'user', id: user.id }, metadata: { email: user.email, count: codes.length } });
    });
    return codes;
  }

  private async secretOf(secretId: string): Promise<string> {
    return (await this.secrets.get(secretId)).toString('utf8');
  }
}
