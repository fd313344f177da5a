/**
 * Reads MaiRust's own account of its hook calls from `/metrics` (src/hooks/metrics.ts):
 * `mairust_hook_calls_total`, `mairust_hook_errors_total`, `mairust_hook_timeouts_total` and the
 * `mairust_hook_duration_seconds` histogram (its `_sum` and `_count`), for one plugin.
 */
export interface HookMetrics {
  calls: number;
  errors: number;
  timeouts: number;
  /** Summed wall time of the calls, in seconds, and how many calls it covers. */
  durationSum: number;
  durationCount: number;
}

/** Sum of every sample of `name` whose labels include plugin_id="…". */
function sum(exposition: string, name: string, pluginId: string): number {
  let total = 0;
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!line.includes(`plugin_id="${pluginId}"`)) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

export async function hookMetrics(httpPort: number, pluginId: string): Promise<HookMetrics> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  const text = await res.text();
  return {
    calls: sum(text, 'mairust_hook_calls_total', pluginId),
    errors: sum(text, 'mairust_hook_errors_total', pluginId),
    timeouts: sum(text, 'mairust_hook_timeouts_total', pluginId),
    durationSum: sum(text, 'mairust_hook_duration_seconds_sum', pluginId),
    durationCount: sum(text, 'mairust_hook_duration_seconds_count', pluginId),
  };
}

export function metricsDelta(after: HookMetrics, before: HookMetrics): HookMetrics {
  return {
    calls: after.calls - before.calls,
    errors: after.errors - before.errors,
    timeouts: after.timeouts - before.timeouts,
    durationSum: after.durationSum - before.durationSum,
    durationCount: after.durationCount - before.durationCount,
  };
}
