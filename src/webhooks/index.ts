/** Event webhooks (SPEC §11): subscriptions, signing, publishing and delivery through the queue. */
export { WEBHOOK_EVENTS, type WebhookEvent, type EventPublisher } from './types.js';
export {
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  WEBHOOK_ID_HEADER,
  SIGNATURE_TOLERANCE_SECONDS,
  signWebhook,
  signatureHex,
  verifyWebhookSignature,
  type SignInput,
  type SignedHeaders,
  type VerifyInput,
  type VerifyResult,
  type VerifyFailure,
} from './signature.js';
export {
  WebhookStore,
  MAX_WEBHOOKS_PER_TENANT,
  MAX_URL_CHARS,
  MAX_DESCRIPTION_CHARS,
  SECRET_PREFIX,
  newWebhookSecret,
  webhookSubscribers,
  validateWebhookUrl,
  validateEvents,
  redactUrl,
  type Webhook,
  type WebhookWithSecret,
  type CreateWebhookInput,
  type UpdateWebhookInput,
  type ListWebhooksOptions,
  type WebhookStoreDeps,
} from './store.js';
export { WebhookPublisher, WEBHOOK_QUEUE, MAX_EVENT_DATA_BYTES, type WebhookJobPayload, type WebhookPublisherDeps } from './publisher.js';
export {
  deliverWebhookJob,
  deliveryBody,
  postSigned,
  sendTestDelivery,
  startWebhookWorker,
  WebhookDeliveryError,
  TEST_EVENT,
  USER_AGENT,
  type WebhookDeliveryDeps,
  type WebhookWorkerDeps,
  type TestDeliveryResult,
} from './deliver.js';
export { nonPublicReason, resolveEgress, EgressRefusedError, EgressResolveError } from './egress.js';
