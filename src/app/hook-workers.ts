/**
 * The background side of the hook system, started by `mairust serve` (server.ts):
 *
 *  - the `post_receive` queue worker (SPEC §6: asynchronous hooks with retries), on every node;
 *  - plugin health checks every `plugins.health_interval_seconds` (SPEC §7, 30 s). A failed check
 *    counts as a failure on the circuit breaker of every hook that uses the plugin, so a plugin
 *    that is down opens its breakers even while no mail arrives, and mail is not delayed by it when
 *    mail does arrive. Successful checks are not counted: only a real call (the half-open probe)
 *    closes a breaker.
 */
import type { AppContext } from './context.js';
import type { HookSystem } from './hooks.js';
import { startPostReceiveWorker } from '../hooks/post-receive.js';
import { startHealthChecks } from '../plugins/health.js';

export interface HookWorkers {
  stop(): Promise<void>;
}

export function startHookWorkers(app: AppContext, system: HookSystem, opts: { now?: () => number } = {}): HookWorkers {
  const logger = app.logger.child({ component: 'hooks' });
  const now = opts.now ?? Date.now;
  const stopPostReceive = startPostReceiveWorker({
    queue: app.queue,
    runner: system.runner,
    hooks: system.hooks,
    mailboxState: app.mailboxState,
    db: app.db,
    events: system.events,
    plugins: system.plugins,
    quarantineFolder: () => app.config.hooks.quarantine_folder,
    logger: logger.child({ component: 'post_receive' }),
    concurrency: 2,
  });
  const health = startHealthChecks({
    registry: system.plugins,
    resolver: app.resolver,
    intervalMs: () => app.config.plugins.health_interval_seconds * 1000,
    egressAllowlist: () => app.config.plugins.egress_allowlist,
    logger: app.logger.child({ component: 'plugins' }),
    onResult: async (pluginId, ok) => {
      if (ok) return;
      for (const hook of await system.hooks.list({ pluginId })) {
        if (!hook.enabled) continue;
        await system.breaker.record({ hookId: hook.id, pluginId, hookType: hook.type }, 'failure', now());
      }
    },
  });
  return {
    async stop() {
      stopPostReceive();
      await health.stop();
    },
  };
}
