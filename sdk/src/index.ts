/**
 * @mairust/plugin-sdk — for authors of MaiRust plugins (SPEC §6, §7): the payload and response
 * types, verification of MaiRust's request signatures, and a client for the callback API.
 */
export type {
  HookAction,
  HookAttachment,
  HookBody,
  HookEnvelope,
  HookPayload,
  HookResponse,
  HookType,
  PluginMessage,
} from './types.js';
export {
  PLUGIN_ID_HEADER,
  SIGNATURE_HEADER,
  SIGNATURE_TOLERANCE_SECONDS,
  TIMESTAMP_HEADER,
  headerValue,
  verifyRequest,
  verifySignature,
} from './verify.js';
export type { VerifyFailure, VerifyResult, VerifySignatureInput } from './verify.js';
export { DEFAULT_TIMEOUT_MS, PluginApiError, baseUrlFromCallbackUrl, createCallbackClient } from './callback-client.js';
export type { CallbackClient, CallbackClientOptions, PluginApiErrorKind } from './callback-client.js';
