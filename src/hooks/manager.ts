/**
 * The hook manager (SPEC §6): runs the chain of hooks of one type for one message.
 *
 * For each active hook, in order (priority ascending, ties by id — HookSource.active/orderHooks):
 *  1. the hook's filter (compiled once per distinct filter) → `filtered`, not called;
 *  2. availability: the plugin must be runnable (installed, enabled, permissions approved); a
 *     tenant's own hook also needs the plugin enabled for that tenant (SPEC §7 `tenant_plugins`).
 *     Unavailable → skipped, except a `required` hook, which tempfails (SPEC §6);
 *  3. the circuit breaker per (hook, plugin): open → `circuit_breaker.on_open` (skip/reject/tempfail;
 *     `required` turns skip into tempfail), not called;
 *  4. the payload the plugin may see (`filterPayload`, SPEC §7 "the payload contains only what is
 *     granted"), plus `metadata.config` (the tenant's plugin config) for a tenant hook;
 *  5. one call by the manifest's protocol (http: signed JSON POST; script: stdin/stdout under limits);
 *  6. the outcome: timeout → `on_timeout`, error or invalid reply → `on_error` (SPEC §6 defaults
 *     tempfail / allow), each fed to the breaker; a valid reply loses the writes its plugin was not
 *     granted (SPEC §7: ignored, logged, audited);
 *  7. a reject/tempfail stops the chain; the results are aggregated (aggregate.ts).
 *
 * Plugin problems never throw: they become outcomes, plugin log lines and metrics. Only a broken
 * caller (a payload that cannot be built) or a broken database throws.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve as resolvePath } from 'node:path';
import type { DnsResolver } from '../dns/index.js';
import type { AuditEntry } from '../security/audit.js';
import { filterPayload, NO_PERMISSIONS, canWrite, type HookPayloadSource, type Permissions, type WriteKind } from '../plugins/permissions.js';
import type { PluginDirectory, RunnablePlugin } from '../plugins/types.js';
import { isEndpointAllowed } from '../plugins/egress-allowlist.js';
import { aggregate, stopsChain, type ScoreMode } from './aggregate.js';
import { openAction, type BreakerDecision, type BreakerKey, type BreakerSnapshot, type CircuitBreaker } from './circuit-breaker.js';
import { validateHookResponse } from './config.js';
import { callHttpPlugin } from './executors/http.js';
import { runScript, type LimitMethod } from './executors/script.js';
import type { ExecResult } from './executors/types.js';
import { compileFilter, type FilterPredicate } from './filter.js';
import type { HookMetrics } from './metrics.js';
import type {
  AppliedResult,
  CallOutcome,
  ChainInput,
  ChainOutcome,
  HookCallRecord,
  HookExchange,
  HookRunner,
  HookSource,
  StoredHook,
} from './runtime-types.js';
import type { FilterSubject, HookResponse, HookResult, HookType } from './types.js';

export const HOOK_TYPE_HEADER = 'X-MaiRust-Hook-Type';
export const HOOK_ID_HEADER = 'X-MaiRust-Hook-Id';
/** Distinct compiled filters kept (hooks are at most a few thousand; the map is cleared beyond). */
const FILTER_CACHE_MAX = 2_000;
/** Plugin log lines are one line; the registry cuts at 2 000 characters too. */
const LOG_LINE_MAX = 1_000;

export interface HookManagerLogger {
  warn(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
}

export interface HookManagerDeps {
  hooks: HookSource;
  plugins: PluginDirectory;
  breaker: CircuitBreaker;
  /** The application's resolver (A/AAAA of HTTP plugin endpoints, checked for egress). */
  resolver: Pick<DnsResolver, 'resolve4' | 'resolve6'>;
  metrics: HookMetrics | null;
  scoreMode: () => ScoreMode;
  /** The callback URL of a stored message (post_receive payloads), or null when there is none. */
  callbackUrl: (messageId: string) => string | null;
  /** Breaker clock (ms); tests advance it. Default Date.now. */
  now?: () => number;
  logger: HookManagerLogger;
  /** Audit sink for refused writes (`plugin.write_refused`); absent → not audited (tests). */
  audit?: (entry: AuditEntry) => Promise<void>;
  /** Tests: how script limits are applied (default: prlimit when present). */
  scriptLimitMethod?: LimitMethod;
  /**
   * `plugins.egress_allowlist`, read per call (reloadable): an endpoint whose host was removed from
   * the list after the install is not called any more (SPEC §7 egress). Absent → not checked (tests).
   */
  egressAllowlist?: () => readonly string[];
}

/** SPEC §6 table: every type but post_receive runs while a client waits. */
function isSync(type: HookType): boolean {
  return type !== 'post_receive';
}

/** Lines of a successful script call's stderr written to the plugin log. */
const STDERR_LOG_LINES = 20;

function oneLine(text: string): string {
  const line = text.replace(/[\r\n\t]+/g, ' ').trim();
  return line.length > LOG_LINE_MAX ? `${line.slice(0, LOG_LINE_MAX)}…` : line;
}

/** A result MaiRust makes up for a plugin (failure/open/unavailable actions): no writes, default SMTP reply. */
function syntheticResponse(pluginId: string, action: HookResponse['action']): HookResponse {
  return { plugin_id: pluginId, action, tags: [], metadata: {} };
}

/**
 * The response without the writes `p` does not grant (SPEC §7). `quarantine` itself needs no
 * grant — the message goes to the tenant's default quarantine folder — but naming a folder is a
 * move, so the folder is dropped without `move_message`.
 */
export function stripUngrantedWrites(response: HookResponse, p: Permissions): { response: HookResponse; refused: WriteKind[] } {
  const out: HookResponse = { ...response, tags: [...(response.tags ?? [])], metadata: { ...(response.metadata ?? {}) } };
  const refused: WriteKind[] = [];
  if (out.tags.length > 0 && !canWrite(p, 'tags')) {
    refused.push('tags');
    out.tags = [];
  }
  if (out.flags !== undefined && out.flags.length > 0 && !canWrite(p, 'flags')) {
    refused.push('flags');
    delete out.flags;
  }
  if (out.folder !== undefined && !canWrite(p, 'move')) {
    refused.push('move');
    delete out.folder;
  }
  if (Object.keys(out.metadata).length > 0 && !canWrite(p, 'metadata')) {
    refused.push('metadata');
    out.metadata = {};
  }
  return { response: out, refused };
}

/** What one hook call produced (internal). */
interface CallResult {
  record: HookCallRecord;
  result: AppliedResult | null;
  exchange: HookExchange | null;
}

interface CallOptions {
  messageId: string | null;
  signal?: AbortSignal;
  bypassBreaker: boolean;
  /** Filters apply in chains only (a post_receive job was filtered when it was enqueued). */
  subject?: FilterSubject;
}

export class HookManager implements HookRunner {
  private readonly now: () => number;
  private readonly filters = new Map<string, FilterPredicate>();

  constructor(private readonly deps: HookManagerDeps) {
    this.now = deps.now ?? Date.now;
  }

  // ── Chains ───────────────────────────────────────────────────────────────────────────────────

  async runChain(input: ChainInput): Promise<ChainOutcome> {
    const hooks = (await this.deps.hooks.active(input.type, input.tenantIds)).filter(
      (h) => input.policyPhase === undefined || h.requires_before_policy === (input.policyPhase === 'before'),
    );
    const payloads = new Map<string | null, Promise<HookPayloadSource>>();
    const payloadFor = (tenantId: string | null) => {
      let p = payloads.get(tenantId);
      if (!p) {
        p = input.payload(tenantId);
        payloads.set(tenantId, p);
      }
      return p;
    };

    const calls: HookCallRecord[] = [];
    const results: AppliedResult[] = [];
    for (const hook of hooks) {
      if (input.signal?.aborted) {
        // Cancelled (shutdown, client gone): no further calls. A waiting client must not get an
        // "accepted" for a message whose checks did not run, so sync chains end in tempfail.
        if (isSync(input.type)) {
          calls.push({ hookId: hook.id, pluginId: hook.plugin_id, hookType: hook.type, tenantId: hook.tenant_id, outcome: 'timeout', action: 'tempfail', durationMs: 0, error: 'the chain was cancelled' });
          results.push({ hook, pluginId: hook.plugin_id, permissions: NO_PERMISSIONS, response: syntheticResponse(hook.plugin_id, 'tempfail') });
        }
        break;
      }
      const { record, result } = await this.call(hook, hook.tenant_id, () => payloadFor(hook.tenant_id), {
        messageId: input.messageId,
        signal: input.signal,
        bypassBreaker: false,
        subject: input.subject,
      });
      calls.push(record);
      if (result) {
        results.push(result);
        if (stopsChain(result.response.action)) break;
      }
    }
    const forAggregation: HookResult[] = results.map((r) => ({ pluginId: r.pluginId, response: r.response }));
    const decision = aggregate(forAggregation, { score: this.deps.scoreMode() });
    return { decision, calls, results };
  }

  async runOne(
    hook: StoredHook,
    tenantId: string | null,
    payload: () => Promise<HookPayloadSource>,
    opts: { messageId?: string | null; signal?: AbortSignal; bypassBreaker?: boolean } = {},
  ): Promise<{ record: HookCallRecord; result: AppliedResult | null; exchange: HookExchange | null }> {
    return this.call(hook, tenantId, payload, { messageId: opts.messageId ?? null, signal: opts.signal, bypassBreaker: opts.bypassBreaker ?? false });
  }

  // ── Breakers ─────────────────────────────────────────────────────────────────────────────────

  async breakerState(hook: Pick<StoredHook, 'id' | 'plugin_id' | 'type'>): Promise<BreakerSnapshot> {
    return this.deps.breaker.state({ hookId: hook.id, pluginId: hook.plugin_id, hookType: hook.type }, this.now());
  }

  async resetBreaker(hook: Pick<StoredHook, 'id' | 'plugin_id'>): Promise<void> {
    await this.deps.breaker.reset({ hookId: hook.id, pluginId: hook.plugin_id });
    if (this.deps.metrics) {
      const stored = await this.deps.hooks.get(hook.id);
      if (stored) this.deps.metrics.setBreakerState({ hookType: stored.type, pluginId: hook.plugin_id, hookId: hook.id }, 'closed');
    }
  }

  // ── One call ─────────────────────────────────────────────────────────────────────────────────

  private filterOf(hook: StoredHook): FilterPredicate {
    const key = JSON.stringify(hook.filter ?? {});
    let f = this.filters.get(key);
    if (!f) {
      // The config was validated (store.ts), so the patterns compile; the predicate is cached by
      // content, which survives the store's cache refreshes.
      f = compileFilter(hook.filter);
      if (this.filters.size >= FILTER_CACHE_MAX) this.filters.clear();
      this.filters.set(key, f);
    }
    return f;
  }

  /** The plugin if this hook may call it now, else null. */
  private async available(hook: StoredHook): Promise<RunnablePlugin | null> {
    const plugin = await this.deps.plugins.runnable(hook.plugin_id);
    if (!plugin) return null;
    if (hook.tenant_id !== null && !(await this.deps.plugins.enabledForTenant(hook.plugin_id, hook.tenant_id))) return null;
    return plugin;
  }

  private async call(hook: StoredHook, tenantId: string | null, payloadFn: () => Promise<HookPayloadSource>, opts: CallOptions): Promise<CallResult> {
    const base = { hookId: hook.id, pluginId: hook.plugin_id, hookType: hook.type, tenantId };
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);

    // The filter first: it is pure, and a required hook whose filter does not match this message
    // must not tempfail it because its plugin is down.
    if (opts.subject && hook.filter && !this.filterOf(hook)(opts.subject)) {
      return { record: { ...base, outcome: 'filtered', durationMs: elapsed() }, result: null, exchange: null };
    }

    const plugin = await this.available(hook);
    if (!plugin) {
      // SPEC §6: "a required hook whose plugin is unavailable tempfails instead of skipping".
      if (!hook.required) return { record: { ...base, outcome: 'unavailable', durationMs: elapsed() }, result: null, exchange: null };
      return {
        record: { ...base, outcome: 'unavailable', action: 'tempfail', durationMs: elapsed(), error: `plugin ${hook.plugin_id} is not available` },
        result: { hook, pluginId: hook.plugin_id, permissions: NO_PERMISSIONS, response: syntheticResponse(hook.plugin_id, 'tempfail') },
        exchange: null,
      };
    }

    const key: BreakerKey = { hookId: hook.id, pluginId: hook.plugin_id, hookType: hook.type };
    let decision: BreakerDecision = { allow: true, probe: false };
    if (!opts.bypassBreaker) {
      decision = await this.deps.breaker.decide(key, this.now());
      this.deps.metrics?.setBreakerState(key, decision.allow ? (decision.probe ? 'half_open' : 'closed') : 'open');
      if (!decision.allow) {
        const action = openAction({ onOpen: hook.circuit_breaker.on_open, required: hook.required });
        if (action === 'skip') return { record: { ...base, outcome: 'open', durationMs: elapsed() }, result: null, exchange: null };
        return {
          record: { ...base, outcome: 'open', action, durationMs: elapsed() },
          result: { hook, pluginId: plugin.id, permissions: plugin.permissions, response: syntheticResponse(plugin.id, action) },
          exchange: null,
        };
      }
    }

    const payload = await this.payloadFor(hook, plugin, await payloadFn());
    const exec = await this.execute(hook, plugin, payload, opts.signal);
    const requestBytes = exec.bytesOut > 0 ? exec.bytesOut : Buffer.byteLength(JSON.stringify(payload));

    let outcome: CallOutcome;
    let action: HookResponse['action'] | undefined;
    let error: string | undefined;
    let response: HookResponse | null = null;
    let validationErrors: string[] = [];
    let refused: WriteKind[] = [];
    const cancelled = !exec.ok && opts.signal?.aborted === true;

    if (cancelled) {
      // Our cancellation, not the plugin's failure: the breaker is not fed.
      outcome = 'timeout';
      error = 'the call was cancelled';
      action = isSync(hook.type) ? 'tempfail' : undefined;
    } else if (!exec.ok) {
      outcome = exec.kind === 'timeout' ? 'timeout' : 'error';
      error = exec.message;
      action = exec.kind === 'timeout' ? hook.on_timeout : hook.on_error;
    } else {
      const checked = validateHookResponse(exec.response);
      if (!checked.ok) {
        validationErrors = checked.errors.map((e) => `${e.path || '(root)'}: ${e.message}`);
      } else if (checked.response.plugin_id !== plugin.id) {
        validationErrors = [`plugin_id: the reply names ${JSON.stringify(checked.response.plugin_id.slice(0, 100))}, not ${plugin.id}`];
      }
      if (validationErrors.length > 0) {
        outcome = 'error';
        error = `invalid reply: ${validationErrors.slice(0, 5).join('; ')}`;
        action = hook.on_error;
      } else {
        const stripped = stripUngrantedWrites((checked as { ok: true; response: HookResponse }).response, plugin.permissions);
        response = stripped.response;
        refused = stripped.refused;
        outcome = 'ok';
        action = response.action;
      }
    }

    if (!opts.bypassBreaker && !cancelled) {
      const breakerOutcome = outcome === 'ok' ? 'success' : outcome === 'timeout' ? 'timeout' : 'failure';
      const t = this.now();
      await this.deps.breaker.record(key, breakerOutcome, t, { probe: decision.allow ? decision.probe : undefined });
      if (this.deps.metrics) {
        // A success outside a probe leaves a closed breaker closed: no read needed.
        const state = breakerOutcome === 'success' && !(decision.allow && decision.probe) ? 'closed' : (await this.deps.breaker.state(key, t)).state;
        this.deps.metrics.setBreakerState(key, state);
      }
    }

    const durationMs = exec.durationMs;
    this.deps.metrics?.recordCall({
      hookType: hook.type,
      pluginId: plugin.id,
      action,
      outcome: outcome === 'ok' ? 'ok' : outcome === 'timeout' ? 'timeout' : 'error',
      durationMs,
      bytesSent: exec.bytesOut,
      bytesReceived: exec.bytesIn,
      error,
      at: Date.now(),
    });

    if (outcome !== 'ok') await this.logFailure(hook, plugin.id, tenantId, opts.messageId, outcome, error ?? '', exec.stderr, action);
    else if (exec.stderr?.trim()) await this.logStderr(hook, plugin.id, tenantId, opts.messageId, exec.stderr);
    if (refused.length > 0) await this.reportRefused(hook, plugin.id, tenantId, opts.messageId, refused);

    const record: HookCallRecord = { ...base, outcome, durationMs };
    if (action !== undefined) record.action = action;
    if (error !== undefined) record.error = oneLine(error);
    if (refused.length > 0) record.refusedWrites = refused;

    let result: AppliedResult | null = null;
    if (response) result = { hook, pluginId: plugin.id, permissions: plugin.permissions, response };
    else if (action !== undefined) result = { hook, pluginId: plugin.id, permissions: plugin.permissions, response: syntheticResponse(plugin.id, action) };

    const exchange: HookExchange = {
      hook,
      request: { payload, bytes: requestBytes },
      result: exec,
      response,
      validationErrors,
      outcome,
    };
    return { record, result, exchange };
  }

  /** The granted payload (SPEC §6/§7), with the tenant's plugin config for a tenant hook. */
  private async payloadFor(hook: StoredHook, plugin: RunnablePlugin, source: HookPayloadSource): Promise<unknown> {
    const granted = filterPayload(source, plugin.permissions);
    // A callback is only meaningful once the message is stored: post_receive (async) payloads get
    // the callback URL when the caller did not set one.
    if (granted.callback_url === null && hook.type === 'post_receive' && plugin.manifest.entry.callback_api) {
      granted.callback_url = this.deps.callbackUrl(source.message_id);
    }
    if (hook.tenant_id === null) return granted;
    const config = await this.deps.plugins.tenantConfig(plugin.id, hook.tenant_id);
    return { ...granted, metadata: { ...granted.metadata, config } };
  }

  private async execute(hook: StoredHook, plugin: RunnablePlugin, payload: unknown, signal: AbortSignal | undefined): Promise<ExecResult> {
    const entry = plugin.manifest.entry;
    if (entry.protocol === 'http') {
      let secrets: string[];
      try {
        secrets = await plugin.secrets();
      } catch (err) {
        return { ok: false, kind: 'error', message: `signing secrets unavailable: ${(err as Error).message}`, durationMs: 0, bytesOut: 0, bytesIn: 0 };
      }
      const allowlist = this.deps.egressAllowlist?.();
      if (allowlist && !isEndpointAllowed(entry.endpoint, allowlist)) {
        return { ok: false, kind: 'error', message: 'endpoint host is no longer in plugins.egress_allowlist', durationMs: 0, bytesOut: 0, bytesIn: 0 };
      }
      return callHttpPlugin({
        endpoint: entry.endpoint,
        pluginId: plugin.id,
        secrets,
        payload,
        timeoutMs: hook.timeout_ms,
        allowPrivate: plugin.allowPrivate,
        resolver: this.deps.resolver,
        signal,
        headers: { [HOOK_TYPE_HEADER]: hook.type, [HOOK_ID_HEADER]: hook.id },
      });
    }
    const limits = plugin.manifest.limits;
    return runScript({
      command: [resolveCommand(entry.command[0] ?? '', plugin.installDir), ...entry.command.slice(1)],
      cwd: plugin.installDir,
      payload,
      wallTimeMs: Math.min(hook.timeout_ms, limits.wall_time_ms),
      memoryBytes: limits.memory_mb * 1024 * 1024,
      cpuMs: limits.cpu_ms,
      signal,
      limitMethod: this.deps.scriptLimitMethod,
    });
  }

  private async logFailure(
    hook: StoredHook,
    pluginId: string,
    tenantId: string | null,
    messageId: string | null,
    outcome: CallOutcome,
    error: string,
    stderr: string | undefined,
    action: HookResponse['action'] | undefined,
  ): Promise<void> {
    const lastStderr = stderr?.trim().split('\n').pop()?.trim();
    const message = oneLine(
      `${hook.type} hook ${hook.id}${messageId ? ` (message ${messageId})` : ''}: ${outcome}: ${error}` +
        `${action ? ` → ${action}` : ''}${lastStderr ? ` | stderr: ${lastStderr}` : ''}`,
    );
    this.deps.logger.warn({ hookId: hook.id, pluginId, messageId, outcome, action, error: oneLine(error) }, 'hook call failed');
    await this.deps.plugins.log({ pluginId, tenantId, level: 'warn', hookId: hook.id, messageId, message });
  }

  /**
   * A script's stderr is its log (docs/plugins.md "Script plugins"), also when the call succeeded:
   * one row per line, at most STDERR_LOG_LINES per call (the executor already keeps only the last
   * 8 KiB), so a chatty script cannot flood the plugin log.
   */
  private async logStderr(hook: StoredHook, pluginId: string, tenantId: string | null, messageId: string | null, stderr: string): Promise<void> {
    const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean).slice(-STDERR_LOG_LINES);
    for (const line of lines) {
      await this.deps.plugins.log({ pluginId, tenantId, level: 'info', hookId: hook.id, messageId, message: oneLine(line) });
    }
  }

  private async reportRefused(hook: StoredHook, pluginId: string, tenantId: string | null, messageId: string | null, refused: WriteKind[]): Promise<void> {
    const message = oneLine(`${hook.type} hook ${hook.id}${messageId ? ` (message ${messageId})` : ''}: ungranted writes ignored: ${refused.join(', ')}`);
    await this.deps.plugins.log({ pluginId, tenantId, level: 'warn', hookId: hook.id, messageId, message });
    if (!this.deps.audit) return;
    try {
      await this.deps.audit({
        tenantId: tenantId ?? hook.tenant_id,
        eventType: 'plugin.write_refused',
        actor: { type: 'plugin', id: pluginId },
        target: messageId ? { type: 'message', id: messageId } : { type: 'hook', id: hook.id },
        metadata: { hook_id: hook.id, hook_type: hook.type, refused },
      });
    } catch (err) {
      // The refusal itself already happened (the writes were dropped); a failed audit must not fail the chain.
      this.deps.logger.warn({ hookId: hook.id, pluginId, error: (err as Error).message }, 'audit of refused plugin writes failed');
    }
  }
}

/**
 * `[entry] command[0]`: an absolute path as is; a relative path (`./run.sh`, `bin/plugin`) inside the
 * plugin's directory; a bare name inside the plugin's directory when a file of that name is there,
 * else looked up on the clean PATH (/usr/bin:/bin) by the executor.
 */
export function resolveCommand(command: string, installDir: string): string {
  if (command === '' || isAbsolute(command)) return command;
  if (command.includes('/')) return resolvePath(installDir, command);
  const local = join(installDir, command);
  return existsSync(local) ? local : command;
}
