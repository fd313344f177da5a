/**
 * The contract of the running hook system (SPEC §6), between:
 *  - the hook source (store.ts: hooks from the API in the `hooks` table + hooks from the config file),
 *  - the hook manager (manager.ts: runs a chain — order, filters, breaker, executors, timeouts,
 *    permission filtering of responses, aggregation, metrics, plugin logs),
 *  - the writers of results (apply.ts: tags/flags/moves/metadata/deletes through mailbox-state),
 *  - and its callers: the inbound pipeline (pre_receive, pre_delivery), the post_receive queue
 *    worker (post-receive.ts), the outbound pipeline (pre_send, issue 7), the REST API's test endpoint.
 */
import type { AuditActor } from '../security/audit.js';
import type { HookPayloadSource, Permissions, WriteKind } from '../plugins/permissions.js';
import type { AggregateDecision } from './aggregate.js';
import type { BreakerSnapshot } from './circuit-breaker.js';
import type { ExecResult } from './executors/types.js';
import type { FilterSubject, HookConfig, HookConfigInput, HookResponse, HookType } from './types.js';

/** A hook as stored: the validated config plus where it came from. */
export interface StoredHook extends HookConfig {
  /** `config`: from the config file (read-only through the API). */
  source: 'api' | 'config';
  createdAt: number | null;
  updatedAt: number | null;
}

export interface HookSource {
  /** Enabled hooks of `type` that apply to these tenants: the global ones and those of the tenants, ordered (orderHooks). */
  active(type: HookType, tenantIds: readonly string[]): Promise<StoredHook[]>;
  get(id: string): Promise<StoredHook | null>;
}

/** Management of API hooks (store.ts). Ids are unique across API and config hooks. */
export interface HookManagement extends HookSource {
  /** All hooks, or a tenant's (tenantId) / the global ones (tenantId: null). */
  list(filter?: { tenantId?: string | null; type?: HookType; pluginId?: string }): Promise<StoredHook[]>;
  /** Throws HookValidationError (422) / HookConflictError (409: id taken) / HookReadOnlyError (409: config hook). */
  create(input: HookConfigInput | unknown, actor: AuditActor): Promise<StoredHook>;
  update(id: string, input: unknown, actor: AuditActor): Promise<StoredHook>;
  delete(id: string, actor: AuditActor): Promise<boolean>;
}

/** How one hook call went, for logs, metrics, the API's test endpoint and the job's last error. */
export type CallOutcome =
  | 'ok' // a valid response
  | 'timeout'
  | 'error' // transport error, bad JSON, invalid response, non-2xx
  | 'open' // breaker open: not called
  | 'unavailable' // plugin not installed / disabled / not approved / not enabled for the tenant
  | 'filtered'; // the hook's filter did not match: not called

export interface HookCallRecord {
  hookId: string;
  pluginId: string;
  hookType: HookType;
  /** Tenant the call was made for (null: a global hook over several tenants). */
  tenantId: string | null;
  outcome: CallOutcome;
  /** The action this call contributed to the chain (after on_timeout/on_error/on_open); absent when it contributed nothing. */
  action?: HookResponse['action'];
  durationMs: number;
  /** For failures: one line, no secrets. */
  error?: string;
  /** Writes the response asked for that the plugin's permissions do not grant (ignored + logged + audited). */
  refusedWrites?: WriteKind[];
}

/** One response that took part in aggregation, with what is needed to apply it. */
export interface AppliedResult {
  hook: StoredHook;
  pluginId: string;
  permissions: Permissions;
  /** Already stripped of ungranted writes. */
  response: HookResponse;
}

export interface ChainOutcome {
  decision: AggregateDecision;
  calls: HookCallRecord[];
  results: AppliedResult[];
}

/** Input of one chain run. */
export interface ChainInput {
  type: HookType;
  /** Tenants concerned (recipient tenants on inbound; the sender's on outbound). */
  tenantIds: readonly string[];
  /** What filters look at. */
  subject: FilterSubject;
  /** Builds the full (unfiltered) payload for a tenant, or null for a global hook; called lazily and cached per tenant. */
  payload(tenantId: string | null): Promise<HookPayloadSource>;
  /** For logs and plugin logs. */
  messageId: string | null;
  /**
   * pre_send only (SPEC §6 `requires_before_policy`): `before` runs just the hooks that must see
   * the message before the outbound policy engine, `after` the others; absent = all of them.
   */
  policyPhase?: 'before' | 'after';
  /** Cancels the chain (shutdown / client gone). */
  signal?: AbortSignal;
}

/** The raw exchange of one call (POST /admin/hooks/:id/test). */
export interface HookExchange {
  hook: StoredHook;
  request: { payload: unknown; bytes: number };
  result: ExecResult;
  /** The validated response, or the validation errors. */
  response: HookResponse | null;
  validationErrors: string[];
  outcome: CallOutcome;
}

export interface HookRunner {
  runChain(input: ChainInput): Promise<ChainOutcome>;
  /**
   * One hook, one call, with the breaker (post_receive jobs): `record` is the outcome after
   * on_timeout/on_error; `exchange` is null when the call was not made (open / unavailable).
   */
  runOne(hook: StoredHook, tenantId: string | null, payload: () => Promise<HookPayloadSource>, opts?: { messageId?: string | null; signal?: AbortSignal; bypassBreaker?: boolean }): Promise<{ record: HookCallRecord; result: AppliedResult | null; exchange: HookExchange | null }>;
  breakerState(hook: Pick<StoredHook, 'id' | 'plugin_id' | 'type'>): Promise<BreakerSnapshot>;
  resetBreaker(hook: Pick<StoredHook, 'id' | 'plugin_id'>): Promise<void>;
}

export class HookValidationError extends Error {
  constructor(readonly issues: { path: string; message: string }[]) {
    super(`invalid hook: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`);
    this.name = 'HookValidationError';
  }
}
export class HookConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HookConflictError';
  }
}
export class HookReadOnlyError extends Error {
  constructor(readonly hookId: string) {
    super(`hook ${hookId} comes from the config file; change it there and reload`);
    this.name = 'HookReadOnlyError';
  }
}
