/**
 * Hook configuration and plugin responses (SPEC §6 [HOOK]). The schemas are TypeBox (JSON Schema),
 * so the config file, the REST API and the plugin transports validate the same shape. Every string
 * and array has a bound: a hook config or a plugin reply is untrusted input that ends up in logs,
 * metrics labels, IMAP keywords and SMTP replies.
 */
import { Type, type Static } from '@sinclair/typebox';

/** A plain string enum (`enum` rather than `anyOf` of literals, so validation errors stay short). */
function StringEnum<T extends readonly string[]>(values: T, opts: Record<string, unknown> = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...opts });
}

export const HOOK_TYPES = ['pre_receive', 'post_receive', 'pre_send', 'pre_delivery'] as const;
export type HookType = (typeof HOOK_TYPES)[number];

/** What a plugin may answer; ordered here by aggregation precedence, strongest first (SPEC §6). */
export const HOOK_ACTIONS = ['reject', 'tempfail', 'quarantine', 'tag', 'allow'] as const;
export type HookAction = (typeof HOOK_ACTIONS)[number];

/** What the hook manager does when a plugin times out / errors. */
export const FAILURE_ACTIONS = ['allow', 'reject', 'tempfail'] as const;
export type FailureAction = (typeof FAILURE_ACTIONS)[number];

/** What an open circuit breaker does with a call (SPEC §6 `circuit_breaker.on_open`). */
export const ON_OPEN_ACTIONS = ['skip', 'reject', 'tempfail'] as const;
export type OnOpenAction = (typeof ON_OPEN_ACTIONS)[number];

/** Longest regex accepted in a hook filter (filter.ts refuses longer ones with a precise error). */
export const FILTER_REGEX_MAX_LENGTH = 256;

/** Hook ids appear in API paths, metrics labels and logs. */
export const HOOK_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
/** Plugin ids are reverse-DNS, lower case (SPEC §7; same rule as plugin.toml). */
export const PLUGIN_ID_PATTERN = '^[a-z0-9][a-z0-9-]*(\\.[a-z0-9][a-z0-9-]*)+$';

const FilterRegex = Type.String({ minLength: 1, maxLength: FILTER_REGEX_MAX_LENGTH });

export const HookFilterSchema = Type.Object(
  {
    recipient_matches: Type.Optional(FilterRegex),
    recipient_not_matches: Type.Optional(FilterRegex),
    sender_matches: Type.Optional(FilterRegex),
    sender_not_matches: Type.Optional(FilterRegex),
    subject_matches: Type.Optional(FilterRegex),
    has_attachments: Type.Optional(Type.Boolean()),
    size_gt: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
    size_lt: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
  },
  { additionalProperties: false },
);
export type HookFilter = Static<typeof HookFilterSchema>;

export const HookRetrySchema = Type.Object(
  {
    max_attempts: Type.Integer({ minimum: 1, maximum: 10, default: 3 }),
    backoff_seconds: Type.Array(Type.Integer({ minimum: 1, maximum: 86_400 }), { minItems: 1, maxItems: 10, default: [30, 120, 600] }),
  },
  { additionalProperties: false },
);
export type HookRetry = Static<typeof HookRetrySchema>;

export const CircuitBreakerConfigSchema = Type.Object(
  { on_open: StringEnum(ON_OPEN_ACTIONS, { default: 'skip' }) },
  { additionalProperties: false },
);

export const HookConfigSchema = Type.Object(
  {
    id: Type.String({ pattern: HOOK_ID_PATTERN, maxLength: 64 }),
    type: StringEnum(HOOK_TYPES),
    plugin_id: Type.String({ pattern: PLUGIN_ID_PATTERN, minLength: 3, maxLength: 100 }),
    enabled: Type.Boolean({ default: true }),
    priority: Type.Integer({ minimum: 0, maximum: 10_000, default: 100 }),
    /** Default and hard maximum depend on the type (HOOK_TIMEOUTS); config.ts fills and checks it. */
    timeout_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: 3_600_000 })),
    on_timeout: StringEnum(FAILURE_ACTIONS, { default: 'tempfail' }),
    on_error: StringEnum(FAILURE_ACTIONS, { default: 'allow' }),
    required: Type.Boolean({ default: false }),
    /** pre_send only: run before the outbound policy engine instead of after it. */
    requires_before_policy: Type.Optional(Type.Boolean()),
    filter: Type.Optional(HookFilterSchema),
    /** post_receive only (it is the only asynchronous hook). */
    retry: Type.Optional(HookRetrySchema),
    circuit_breaker: Type.Optional(CircuitBreakerConfigSchema),
    /** null = a global hook that runs for every tenant. */
    tenant_id: Type.Unsafe<string | null>({ type: ['string', 'null'], minLength: 1, maxLength: 64, default: null }),
  },
  { additionalProperties: false },
);
/** A hook config as written (defaults not yet applied). */
export type HookConfigInput = Static<typeof HookConfigSchema>;

/** A validated hook config: every default applied, per-type fields resolved. */
export interface HookConfig {
  id: string;
  type: HookType;
  plugin_id: string;
  enabled: boolean;
  priority: number;
  timeout_ms: number;
  on_timeout: FailureAction;
  on_error: FailureAction;
  required: boolean;
  /** Always false for types other than pre_send. */
  requires_before_policy: boolean;
  filter?: HookFilter;
  /** Present exactly for post_receive. */
  retry?: HookRetry;
  circuit_breaker: { on_open: OnOpenAction };
  tenant_id: string | null;
}

export const HookResponseSchema = Type.Object(
  {
    plugin_id: Type.String({ minLength: 1, maxLength: 100 }),
    action: StringEnum(HOOK_ACTIONS),
    tags: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 32, default: [] }),
    score: Type.Optional(Type.Number({ minimum: -1_000_000, maximum: 1_000_000 })),
    metadata: Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 32, default: {} }),
    folder: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    flags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 16 })),
    // The SMTP fields are bounded here but checked for class and syntax by smtp-reply.ts, which falls
    // back to the default reply (instead of failing the whole response) when they are wrong.
    smtp_code: Type.Optional(Type.Integer({ minimum: 0, maximum: 999 })),
    smtp_enhanced: Type.Optional(Type.String({ maxLength: 16 })),
    smtp_message: Type.Optional(Type.String({ maxLength: 1000 })),
  },
  { additionalProperties: false },
);
export type HookResponse = Static<typeof HookResponseSchema>;

/** One plugin's answer in a hook chain, in the order the chain ran. */
export interface HookResult {
  pluginId: string;
  response: HookResponse;
}

/** The SMTP reply a reject/tempfail hook decision produces. */
export interface SmtpReply {
  code: number;
  enhanced: string;
  text: string;
}

/** What `compileFilter` returns a predicate over. */
export interface FilterSubject {
  recipients: readonly string[];
  sender: string;
  subject: string;
  hasAttachments: boolean;
  size: number;
}
