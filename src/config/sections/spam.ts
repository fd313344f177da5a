/**
 * Config section `spam`: the spam check of inbound mail (SPEC §3.1 step 3) — rspamd over its HTTP
 * API when `spam.rspamd.url` is set, the built-in rules when it is not or when rspamd fails.
 *
 * Every key is reload-safe: the composition root rebuilds the checker with `createSpamChecker`
 * on reload (it holds no connections; its metrics are reused from the registry).
 */
import { Type, type Static } from '@sinclair/typebox';

const reloadable = { 'x-reloadable': true } as const;

export const RspamdConfigSchema = Type.Object(
  {
    url: Type.String({
      default: '',
      maxLength: 2048,
      pattern: '^$|^https?://[^\\s]+$',
      description: "Base URL of rspamd's normal worker (e.g. `http://127.0.0.1:11333`); messages are sent to `<url>/checkv2`. Empty: built-in rules only.",
      ...reloadable,
    }),
    timeout_ms: Type.Integer({
      minimum: 100,
      maximum: 60000,
      default: 5000,
      description: 'Upper bound for one check (connect, upload, answer). When it passes, the built-in rules decide.',
      ...reloadable,
    }),
    max_response_bytes: Type.Integer({
      minimum: 4096,
      maximum: 16777216,
      default: 1048576,
      description: "Largest rspamd answer read; a larger one counts as a failure (the built-in rules decide).",
      ...reloadable,
    }),
    retry_after_ms: Type.Integer({
      minimum: 0,
      maximum: 600000,
      default: 10000,
      description: 'After rspamd fails, use the built-in rules without asking rspamd for this long, so a hung rspamd does not cost every message the whole timeout (0: ask on every message).',
      ...reloadable,
    }),
  },
  { additionalProperties: false, default: {}, description: 'rspamd (https://rspamd.com) over its HTTP API.' },
);

export const BuiltinSpamRulesConfigSchema = Type.Object(
  {
    add_header_score: Type.Number({
      minimum: 0,
      default: 5,
      description: 'Built-in score from which a message is marked as spam (action `add header`: X-Spam-Flag, filed into Junk).',
      ...reloadable,
    }),
    reject_score: Type.Number({
      minimum: 0,
      default: 15,
      description: 'Built-in score from which a message is rejected (action `reject`).',
      ...reloadable,
    }),
    sample_bytes: Type.Integer({
      minimum: 16384,
      maximum: 8388608,
      default: 262144,
      description: 'How much of a message (header and body) the built-in rules read; parts beyond it are not examined.',
      ...reloadable,
    }),
  },
  { additionalProperties: false, default: {}, description: 'Built-in rules, used when rspamd is not configured or not reachable.' },
);

export const SpamConfigSchema = Type.Object(
  {
    rspamd: RspamdConfigSchema,
    builtin: BuiltinSpamRulesConfigSchema,
  },
  { additionalProperties: false, default: {}, description: 'Spam checking of inbound mail (SPEC §3.1 step 3).' },
);

export type RspamdConfig = Static<typeof RspamdConfigSchema>;
export type BuiltinSpamRulesConfig = Static<typeof BuiltinSpamRulesConfigSchema>;
export type SpamConfig = Static<typeof SpamConfigSchema>;
