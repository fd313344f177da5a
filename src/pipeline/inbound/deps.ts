/**
 * What the inbound pipeline is built from. Everything is injected by the composition root
 * (src/app/), which is the only code that reads config; the pipeline never opens anything itself.
 */
import type { RetryConfig } from '../../outbound/records.js';
import type { Logger } from 'pino';
import type { InboundConfig } from '../../config/sections/inbound.js';
import type { MailboxStateService } from '../../core/mailbox-state/service.js';
import type { TenancyService } from '../../core/tenancy/service.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Queue } from '../../queue/queue.js';
import type { BlobStore } from '../../store/blob/blob-store.js';
import type { Database } from '../../store/db/database.js';
import type { SpamChecker } from '../../spam/index.js';
import type { EmailAuthResult, VerifyInput } from '../../emailauth/index.js';
import type { PostReceiveEnqueuer, PreDeliveryHook, PreReceiveHook } from './hook-slots.js';
import type { EventPublisher } from '../../webhooks/types.js';
import type { DkimSigner, OutboundPolicy } from '../../outbound/types.js';
import type { PreSendHook } from './pre-send.js';

export type EmailAuthInput = VerifyInput;

/** SPF/DKIM/DMARC/ARC verification (src/emailauth `verifyMessage` bound to its resolver and config). */
export interface EmailAuthVerifier {
  verify(input: EmailAuthInput): Promise<EmailAuthResult>;
}

export interface InboundPipelineDeps {
  tenancy: TenancyService;
  mailboxState: MailboxStateService;
  queue: Queue;
  blobs: BlobStore;
  db: Database;
  /** null: no email authentication (no Authentication-Results field is added on MX). */
  emailAuth: EmailAuthVerifier | null;
  /** null: no spam check. */
  spam: SpamChecker | null;
  /** Config section `inbound`; a getter so a reload takes effect for the next message. */
  config: InboundConfig | (() => InboundConfig);
  /** `mail.max_message_bytes` (also enforced by the SMTP layer; checked again here). Default 25 MiB. */
  maxMessageBytes?: number | (() => number);
  /** `mail.preview_bytes` for the stored preview (default 4 KiB). */
  previewBytes?: number;
  /** Our host name: the "by" of Received and the authserv-id of Authentication-Results. */
  hostname: string;
  /** Directory for spool files of large messages (e.g. `<data_dir>/spool`). */
  spoolDir: string;
  logger: Logger;
  /** The app's metrics: the pipeline registers its own counters in `metrics.registry` (pipeline-metrics.ts). */
  metrics?: Pick<Metrics, 'registry'>;
  /**
   * Hook slots (SPEC §6), filled by the composition root from the hook manager (hook-adapters.ts).
   * `postReceive` runs inside each tenant's commit transaction.
   */
  hooks?: { preReceive?: PreReceiveHook[]; preDelivery?: PreDeliveryHook[]; postReceive?: PostReceiveEnqueuer };
  /** Event webhooks (SPEC §11): `message.received` is queued in the commit transaction. */
  events?: EventPublisher;
  /**
   * Submissions (SPEC §3.2 steps 2–3, §8): the outbound policy engine, the pre_send hook slot
   * (pre-send.ts; run twice, before and after the policy, by `requires_before_policy`) and the
   * DKIM signer. Absent: submissions are neither policed nor signed (MX mail never is).
   */
  outbound?: {
    policy?: OutboundPolicy | null;
    signer?: DkimSigner | null;
    preSend?: PreSendHook | null;
    /** The retry schedule of new queue records (config `outbound`, reloadable). */
    retry?: () => RetryConfig;
  };
}

export const DEFAULT_MAX_MESSAGE_BYTES = 25 * 1024 * 1024;

export function current<T>(value: T | (() => T)): T {
  return typeof value === 'function' ? (value as () => T)() : value;
}
