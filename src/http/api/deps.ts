/**
 * What every route module receives: the application's services plus the API's own stores. Built
 * once by the composition root (src/app/api.ts) and by the test harness (test/support/api.ts).
 */
import type { AppContext } from '../../app/context.js';
import type { SessionStore } from '../../security/credentials/sessions.js';
import type { BearerTokenStore } from '../../security/credentials/bearer-tokens.js';
import type { ApiKeyStore } from '../../security/credentials/api-keys.js';
import type { Lockout } from '../../security/lockout.js';
import type { SecretStore } from '../../security/secrets/types.js';
import type { EventPublisher } from '../../webhooks/types.js';
import type { RateCounter } from './rate-limit/types.js';
import type { DkimKeyService } from '../../emailauth/dkim-keys.js';
import type { HookSystem } from '../../app/hooks.js';
import type { InboundPipeline } from '../../pipeline/inbound/contract.js';

export interface ApiDeps {
  app: AppContext;
  sessions: SessionStore;
  tokens: BearerTokenStore;
  apiKeys: ApiKeyStore;
  lockout: Lockout;
  secrets: SecretStore;
  rateCounter: RateCounter;
  events: EventPublisher;
  /** Per-domain DKIM keys (private keys sealed in `secrets`). */
  dkim: DkimKeyService;
  /**
   * Plugins, hooks, breakers (src/app/hooks.ts), shared with the mail pipeline. Optional so that
   * callers building deps by hand still compile; the hook and plugin routes answer 503 without it.
   */
  hookSystem?: HookSystem;
  /**
   * The mail pipeline the submission listeners use: `POST /send` runs through it exactly like SMTP
   * submission (SPEC §3.2). Optional; without it the send route answers 503.
   */
  pipeline?: InboundPipeline;
  /** `MAIRUST_EMERGENCY_TOKEN`, if set (one-time super-admin access, SPEC §10). */
  emergencyToken?: string;
  /** Clock for tests (TOTP, expiry). */
  now?: () => number;
}
