/**
 * DKIM signing keys, one set per domain (SPEC §3.2 step 3, §10 "secrets at rest").
 *
 * A key row in `dkim_keys` holds what is public — selector, algorithm, the `p=` value — and the id
 * of a `secrets` row; the private key itself is sealed through the SecretStore (envelope
 * encryption) and never stored, logged or returned in clear. `privateKey` hands the signer a
 * `KeyObject`, which does not print its material when logged.
 *
 * Key generation is described per algorithm in `ALGORITHMS` (RSA-2048 and Ed25519, RFC 8463).
 * `ensureKey` only creates a key when the domain has no active one; `generate` always adds one;
 * `rotate` adds one and moves the previous active keys to `retiring` (still published, no longer
 * signing); `retire` withdraws a key. Every change is audited in its transaction.
 */
import { createPrivateKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { Kysely } from 'kysely';
import { inScope, type Scope } from '../core/scope.js';
import { ConflictError, NotFoundError, isUniqueViolation } from '../core/tenancy/errors.js';
import { writeAudit, type AuditActor } from '../security/audit.js';
import type { Domain } from '../core/tenancy/types.js';
import { newId, type Database } from '../store/db/database.js';
import type { DB, DkimKeysTable } from '../store/db/types.js';
import type { SecretStore } from '../security/secrets/types.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export type DkimAlgorithm = DkimKeysTable['algorithm'];
export type DkimKeyStatus = DkimKeysTable['status'];

/** A domain's DKIM key as the rest of the server sees it: public parts only. */
export interface DkimKey {
  id: string;
  tenantId: string;
  domainId: string;
  selector: string;
  algorithm: DkimAlgorithm;
  /** Base64 of the public key exactly as published in the `p=` tag. */
  publicKey: string;
  status: DkimKeyStatus;
  createdAt: number;
  retiredAt: number | null;
}

interface GeneratedKey {
  /** `p=` value (base64). */
  publicKey: string;
  /** PKCS#8 PEM; sealed at once, never kept. */
  privatePem: string;
}

interface AlgorithmSpec {
  /** The `k=` tag of the DNS record (RFC 6376 §3.6.1). */
  k: 'rsa' | 'ed25519';
  generate(): Promise<GeneratedKey>;
}

/**
 * RSA-2048: RFC 8301 §3.2 requires signers to use at least 1024 bits and recommends 2048; 2048
 * still fits a TXT record (about 400 characters, split into 255-byte strings).
 * `p=` is the DER SubjectPublicKeyInfo in base64 (RFC 6376 §3.6.1).
 */
export const RSA_BITS = 2048;

const ALGORITHMS: Record<DkimAlgorithm, AlgorithmSpec> = {
  'rsa-sha256': {
    k: 'rsa',
    async generate() {
      const { publicKey, privateKey } = await generateKeyPairAsync('rsa', { modulusLength: RSA_BITS, publicExponent: 0x10001 });
      return {
        publicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
        privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      };
    },
  },
  /**
   * RFC 8463 §4.2: `p=` is the raw 32-byte Ed25519 public key in base64 — not the SPKI DER that
   * RSA uses — so it is the last 32 bytes of the (fixed 12-byte prefix) SPKI encoding.
   */
  'ed25519-sha256': {
    k: 'ed25519',
    async generate() {
      const { publicKey, privateKey } = await generateKeyPairAsync('ed25519');
      return {
        publicKey: publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('base64'),
        privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      };
    },
  },
};

export const DKIM_ALGORITHMS: readonly DkimAlgorithm[] = ['rsa-sha256', 'ed25519-sha256'];

/** The key type (`k=`) published for an algorithm. */
export function keyTypeOf(algorithm: DkimAlgorithm): 'rsa' | 'ed25519' {
  return algorithm === 'ed25519-sha256' ? 'ed25519' : 'rsa';
}

/**
 * Selector of a key created at `at`: `mr<yyyymm>` (UTC), so a rotated key gets a new name each
 * month. `taken` are the domain's existing selectors; a second key in the same month gets a
 * suffix (`mr202501-2`) because (domain, selector) is unique and published names must not be
 * reused for a different key while resolvers may still cache the old one.
 */
export function selectorFor(at: number, taken: readonly string[] = []): string {
  const d = new Date(at);
  const base = `mr${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
  if (!taken.includes(base)) return base;
  for (let n = 2; ; n++) {
    const candidate = `${base}-${n}`;
    if (!taken.includes(candidate)) return candidate;
  }
}

/** The TXT value to publish at `<selector>._domainkey.<domain>` (RFC 6376 §3.6.1). */
export function publicRecord(key: Pick<DkimKey, 'algorithm' | 'publicKey'>): string {
  return `v=DKIM1; k=${keyTypeOf(key.algorithm)}; p=${key.publicKey}`;
}

/**
 * A TXT value as the character-strings of one record (RFC 1035 §3.3.14: each at most 255 octets;
 * RFC 6376 §3.6.2.2: a verifier joins them without spaces). The values here are ASCII, so
 * characters are octets. A zone file writes them as `"…" "…"` on one record.
 */
export function txtStrings(value: string, max = 255): string[] {
  if (value.length === 0) return [''];
  const out: string[] = [];
  for (let i = 0; i < value.length; i += max) out.push(value.slice(i, i + max));
  return out;
}

function toKey(row: DkimKeysTable): DkimKey {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    domainId: row.domain_id,
    selector: row.selector,
    algorithm: row.algorithm,
    publicKey: row.public_key,
    status: row.status,
    createdAt: Number(row.created_at),
    retiredAt: row.retired_at === null ? null : Number(row.retired_at),
  };
}

export interface DkimKeyServiceDeps {
  db: Database;
  secrets: SecretStore;
  now?: () => number;
}

export class DkimKeyService {
  private readonly now: () => number;

  constructor(private readonly deps: DkimKeyServiceDeps) {
    this.now = deps.now ?? Date.now;
  }

  private get kysely(): Kysely<DB> {
    return this.deps.db.kysely;
  }

  /**
   * The domain's active key, creating an RSA-2048 key when it has none. Idempotent and safe to
   * race: two callers creating at once collide on the unique (domain, selector) index, and the
   * loser returns the winner's key.
   */
  async ensureKey(scope: Scope, domain: Pick<Domain, 'id'>, algorithm: 'rsa-sha256' = 'rsa-sha256'): Promise<DkimKey> {
    const existing = await this.activeKeys(scope, domain.id);
    const same = existing.find((k) => k.algorithm === algorithm);
    if (same) return same;
    // Generated before the transaction: RSA generation takes tens of milliseconds, too long to
    // hold the (SQLite: only) write transaction open for.
    const generated = await ALGORITHMS[algorithm].generate();
    try {
      return await this.kysely.transaction().execute(async (trx) => {
        const d = await trx.selectFrom('domains').select(['id', 'tenant_id']).where('id', '=', domain.id).where(inScope(scope)).executeTakeFirst();
        if (!d) throw new NotFoundError('domain not found');
        const again = await this.activeRows(trx, scope, d.id);
        const raced = again.find((r) => r.algorithm === algorithm);
        if (raced) return toKey(raced);
        const taken = (await trx.selectFrom('dkim_keys').select('selector').where('domain_id', '=', d.id).where(inScope(scope)).execute()).map((r) => r.selector);
        const row = await this.insertKey(trx, d, algorithm, generated, taken);
        return toKey(row);
      });
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      const winner = (await this.activeKeys(scope, domain.id)).find((k) => k.algorithm === algorithm);
      if (!winner) throw err;
      return winner;
    }
  }

  /**
   * A new key for the domain (new selector, status `active`), whatever keys it already has: the
   * operator's explicit `mairust dkim generate` / `POST /domains/:id/dkim-keys`. With two active
   * keys the signer uses the newest (dkim-sign.ts); both are published.
   */
  async generate(scope: Scope, domain: Pick<Domain, 'id'>, algorithm: DkimAlgorithm, actor: AuditActor): Promise<DkimKey> {
    return this.createKey(scope, domain.id, algorithm, actor, 'generated');
  }

  /**
   * Rotation (RFC 6376 §3.1 "selectors" exist for this; M3AAWG key rotation practice): a new key
   * becomes active and signs from now on; the keys that were active become `retiring` — no longer
   * used to sign but still published, because mail signed with them may still be in transit or
   * waiting in queues and is verified against DNS on arrival. `retire` later withdraws them.
   * `algorithm` defaults to the newest active key's (RSA when the domain has none).
   */
  async rotate(scope: Scope, domain: Pick<Domain, 'id'>, actor: AuditActor, algorithm?: DkimAlgorithm): Promise<{ key: DkimKey; retiring: DkimKey[] }> {
    const before = await this.activeKeys(scope, domain.id);
    const algo = algorithm ?? before[before.length - 1]?.algorithm ?? 'rsa-sha256';
    const key = await this.createKey(scope, domain.id, algo, actor, 'rotated', async (trx, tenantId) => {
      const olds = await this.activeRows(trx, scope, domain.id);
      const ids = olds.map((r) => r.id).filter((id) => before.some((k) => k.id === id));
      if (ids.length) await trx.updateTable('dkim_keys').set({ status: 'retiring' }).where('id', 'in', ids).where('tenant_id', '=', tenantId).execute();
      return { retiring: ids };
    });
    const retiring = (await this.keysOf(scope, domain.id)).filter((k) => k.status === 'retiring' && before.some((b) => b.id === k.id));
    return { key, retiring };
  }

  /**
   * Withdraws a key: `retired` (no longer signs nor published; the row stays for the record). The
   * domain's last active key cannot be retired (409): the domain would silently stop signing —
   * rotate first. Not found outside the scope.
   */
  async retire(scope: Scope, keyId: string, actor: AuditActor): Promise<DkimKey> {
    return this.kysely.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('dkim_keys').selectAll().where('id', '=', keyId).where(inScope(scope)).executeTakeFirst();
      if (!row) throw new NotFoundError('DKIM key not found');
      if (row.status === 'retired') return toKey(row);
      if (row.status === 'active') {
        const active = await this.activeRows(trx, scope, row.domain_id);
        if (active.length <= 1) throw new ConflictError('this is the domain\'s only active DKIM key; rotate to a new key before retiring it');
      }
      const t = this.now();
      await trx.updateTable('dkim_keys').set({ status: 'retired', retired_at: t }).where('id', '=', row.id).where('tenant_id', '=', row.tenant_id).execute();
      await writeAudit(trx, {
        tenantId: row.tenant_id,
        eventType: 'dkim.key_retired',
        actor,
        target: { type: 'dkim_key', id: row.id },
        metadata: { domain_id: row.domain_id, selector: row.selector, algorithm: row.algorithm, previous_status: row.status },
      });
      return toKey({ ...row, status: 'retired', retired_at: t });
    });
  }

  /** Keys to publish in DNS: active and retiring (a retiring key still verifies mail in transit), oldest first. */
  async publishedKeys(scope: Scope, domainId: string): Promise<DkimKey[]> {
    return (await this.keysOf(scope, domainId)).filter((k) => k.status !== 'retired');
  }

  /** One key by id, public parts only; not found outside the scope. */
  async get(scope: Scope, keyId: string): Promise<DkimKey> {
    const row = await this.kysely.selectFrom('dkim_keys').selectAll().where('id', '=', keyId).where(inScope(scope)).executeTakeFirst();
    if (!row) throw new NotFoundError('DKIM key not found');
    return toKey(row);
  }

  /** Creates and audits a new active key; `extra` runs in the same transaction (rotation). */
  private async createKey(
    scope: Scope,
    domainId: string,
    algorithm: DkimAlgorithm,
    actor: AuditActor,
    verb: 'generated' | 'rotated',
    extra?: (trx: Kysely<DB>, tenantId: string) => Promise<Record<string, unknown>>,
  ): Promise<DkimKey> {
    const spec = ALGORITHMS[algorithm];
    if (!spec) throw new NotFoundError(`unknown DKIM algorithm ${String(algorithm)}`);
    // Generated before the transaction (see ensureKey).
    const generated = await spec.generate();
    // A concurrent creation in the same month can take the selector between our read and insert:
    // the unique index refuses ours, and a second attempt picks the next free name.
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.kysely.transaction().execute(async (trx) => {
          const d = await trx.selectFrom('domains').select(['id', 'tenant_id', 'name']).where('id', '=', domainId).where(inScope(scope)).executeTakeFirst();
          if (!d) throw new NotFoundError('domain not found');
          const taken = (await trx.selectFrom('dkim_keys').select('selector').where('domain_id', '=', d.id).where(inScope(scope)).execute()).map((r) => r.selector);
          const more = extra ? await extra(trx, d.tenant_id) : {};
          const row = await this.insertKey(trx, d, algorithm, generated, taken);
          await writeAudit(trx, {
            tenantId: d.tenant_id,
            eventType: `dkim.key_${verb}`,
            actor,
            target: { type: 'dkim_key', id: row.id },
            metadata: { domain_id: d.id, domain: d.name, selector: row.selector, algorithm, ...more },
          });
          return toKey(row);
        });
      } catch (err) {
        if (!isUniqueViolation(err) || attempt >= 3) throw err;
      }
    }
  }

  /** Seals the private key and writes an active key row with a fresh selector (inside `trx`). */
  private async insertKey(
    trx: Kysely<DB>,
    d: { id: string; tenant_id: string },
    algorithm: DkimAlgorithm,
    generated: GeneratedKey,
    takenSelectors: readonly string[],
  ): Promise<DkimKeysTable> {
    const secretId = await this.deps.secrets.put({ tenantId: d.tenant_id, kind: 'dkim', plaintext: generated.privatePem }, trx);
    const t = this.now();
    const row: DkimKeysTable = {
      id: newId(),
      tenant_id: d.tenant_id,
      domain_id: d.id,
      selector: selectorFor(t, takenSelectors),
      algorithm,
      public_key: generated.publicKey,
      private_key_secret_id: secretId,
      status: 'active',
      created_at: t,
      retired_at: null,
    };
    await trx.insertInto('dkim_keys').values(row).execute();
    return row;
  }

  private activeRows(db: Kysely<DB>, scope: Scope, domainId: string): Promise<DkimKeysTable[]> {
    return db
      .selectFrom('dkim_keys')
      .selectAll()
      .where('domain_id', '=', domainId)
      .where('status', '=', 'active')
      .where(inScope(scope))
      .orderBy('created_at')
      .orderBy('selector')
      .execute();
  }

  /** Keys that sign and must be published, oldest first. */
  async activeKeys(scope: Scope, domainId: string): Promise<DkimKey[]> {
    return (await this.activeRows(this.kysely, scope, domainId)).map(toKey);
  }

  /** Every key of the domain, whatever its status (a retiring key must stay published a while). */
  async keysOf(scope: Scope, domainId: string): Promise<DkimKey[]> {
    const rows = await this.kysely.selectFrom('dkim_keys').selectAll().where('domain_id', '=', domainId).where(inScope(scope)).orderBy('created_at').orderBy('selector').execute();
    return rows.map(toKey);
  }

  /** The TXT value to publish for `key` (full value; see `txtStrings` for the zone-file split). */
  publicRecord(key: Pick<DkimKey, 'algorithm' | 'publicKey'>): string {
    return publicRecord(key);
  }

  /** The private key of `keyId`, unsealed, for the signer. Not found outside the scope. */
  async privateKey(scope: Scope, keyId: string): Promise<KeyObject> {
    const row = await this.kysely.selectFrom('dkim_keys').select(['private_key_secret_id']).where('id', '=', keyId).where(inScope(scope)).executeTakeFirst();
    if (!row) throw new NotFoundError('DKIM key not found');
    const pem = await this.deps.secrets.get(row.private_key_secret_id);
    return createPrivateKey({ key: pem, format: 'pem' });
  }

  /**
   * Deletes the sealed private keys no key row refers to any more, and returns how many. A removed
   * domain takes its `dkim_keys` rows with it (ON DELETE CASCADE) but not the `secrets` rows they
   * pointed at; this sweeps those up. Being a sweep rather than a step of the removal, it also
   * cleans up after a crash between the two. It cannot take a key being created: `ensureKey`
   * commits the secret and its key row in one transaction, so no committed secret lacks its row.
   */
  async deleteOrphanedSecrets(scope: Scope): Promise<number> {
    const orphans = await this.kysely
      .selectFrom('secrets')
      .select('id')
      .where('kind', '=', 'dkim')
      .where(inScope(scope))
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('dkim_keys').select('dkim_keys.id').whereRef('dkim_keys.private_key_secret_id', '=', 'secrets.id'))))
      .execute();
    for (const o of orphans) await this.deps.secrets.delete(o.id);
    return orphans.length;
  }
}
