/** The inbound pipeline's public surface (the SMTP layer uses contract.ts; the composition root this). */
export type { InboundPipeline, SmtpSessionInfo, Envelope, AcceptedRecipient, AuthenticatedUser, Verdict, ListenerKind } from './contract.js';
export { InboundPipelineImpl } from './pipeline.js';
export type { InboundPipelineDeps, EmailAuthVerifier, EmailAuthInput } from './deps.js';
export { inboundStages, runStages, type InboundStage } from './stages.js';
export type { PreReceiveHook, PreDeliveryHook, Rejection } from './hook-slots.js';
export type { InboundMessage, DeliveryChoice, CommitOutcome } from './message-context.js';
export { OUTBOUND_QUEUE, type OutboundJob } from './outbound-handoff.js';
export { removeStaleSpoolFiles, MessageTooLargeError } from './spool.js';
export { createPipelineMetrics, type PipelineMetrics } from './pipeline-metrics.js';
export { InboundConfigSchema, DEFAULT_INBOUND_CONFIG, type InboundConfig } from '../../config/sections/inbound.js';
export type { PostReceiveEnqueuer, PostReceiveEnqueue, PostReceiveCommit, DropCopy } from './hook-slots.js';
export { preReceiveHookFrom, preDeliveryHookFrom, postReceiveEnqueuerFrom } from './hook-adapters.js';
