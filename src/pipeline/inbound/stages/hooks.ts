/** Stages `pre_receive` and `pre_delivery`: the hook slots of hook-slots.ts in the stage list. */
import type { InboundPipelineDeps } from '../deps.js';
import { runPreDelivery, runPreReceive } from '../hook-slots.js';
import type { InboundStage } from '../stages.js';

export function preReceiveStage(deps: InboundPipelineDeps): InboundStage {
  return { name: 'pre_receive', run: (msg) => runPreReceive(deps.hooks?.preReceive ?? [], msg) };
}

export function preDeliveryStage(deps: InboundPipelineDeps): InboundStage {
  return { name: 'pre_delivery', run: (msg) => runPreDelivery(deps.hooks?.preDelivery ?? [], msg) };
}

/**
 * Stage `post_receive` (SPEC §3.1 step 7): nothing left to do here. The jobs are enqueued inside
 * the commit transaction (deps.hooks.postReceive, called by commit.ts) and the commit stage wakes
 * the workers right after its commit; the stage stays in the list so the order of SPEC §3.1 reads
 * the same in code, logs and docs.
 */
export function postReceiveStage(): InboundStage {
  return { name: 'post_receive', run: async () => {} };
}
