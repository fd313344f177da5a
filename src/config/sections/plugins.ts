/**
 * Config sections `hooks` and `plugins` (SPEC §6, §7).
 *
 * Hooks written here are global or per tenant like the ones created through the API, but read-only
 * there (change them in the file and reload). Egress: an HTTP plugin's endpoint must match
 * `plugins.egress_allowlist`; its resolved addresses are checked at every call, and loopback/private/
 * link-local/metadata addresses are refused unless the plugin was approved with `allow_private`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { HookConfigSchema } from '../../hooks/types.js';

const reloadable = { 'x-reloadable': true } as const;

export const HooksConfigSchema = Type.Object(
  {
    score_mode: Type.Unsafe<'max' | 'mean'>({
      type: 'string',
      enum: ['max', 'mean'],
      default: 'max',
      description: 'How the scores of one hook chain combine (SPEC §6).',
      ...reloadable,
    }),
    definitions: Type.Array(HookConfigSchema, {
      default: [],
      maxItems: 1000,
      description: 'Hooks defined in the file (same fields as `POST /api/v1/admin/hooks`); read-only in the API.',
      ...reloadable,
    }),
    quarantine_folder: Type.String({
      default: 'Junk',
      minLength: 1,
      maxLength: 255,
      description: 'Folder for `quarantine` when the plugin names none; when a mailbox has no folder of that name, its special-use \\Junk folder.',
      ...reloadable,
    }),
  },
  { additionalProperties: false, default: {}, description: 'Hooks (SPEC §6).' },
);

export const PluginsConfigSchema = Type.Object(
  {
    dir: Type.String({ default: '', description: 'Where installed plugins are unpacked (empty = `<data_dir>/plugins`).' }),
    trusted_keys: Type.Array(Type.String({ minLength: 1, maxLength: 4096 }), {
      default: [],
      maxItems: 100,
      description: 'Ed25519 public keys (PEM, or base64 of the raw 32 bytes) whose package signatures are trusted.',
      ...reloadable,
    }),
    require_signature: Type.Boolean({
      default: false,
      description: 'Refuse packages that are not signed by a trusted key (directory installs are refused too).',
      ...reloadable,
    }),
    egress_allowlist: Type.Array(Type.String({ minLength: 1, maxLength: 255 }), {
      default: [],
      maxItems: 1000,
      description: 'Hosts an HTTP plugin endpoint may name: `host`, `host:port` or `*.domain`. Empty = no HTTP plugin may be installed.',
      ...reloadable,
    }),
    health_interval_seconds: Type.Integer({ minimum: 5, maximum: 3600, default: 30, description: 'Health check period of enabled plugins.', ...reloadable }),
    log_retention_days: Type.Integer({ minimum: 1, maximum: 365, default: 14, description: 'How long per-plugin log lines are kept.', ...reloadable }),
    secret_overlap_hours: Type.Integer({
      minimum: 0,
      maximum: 720,
      default: 24,
      description: 'After a secret rotation, how long the previous signing secret is still sent (second signature).',
      ...reloadable,
    }),
    token_ttl_days: Type.Integer({ minimum: 0, maximum: 3650, default: 365, description: 'Lifetime of `plt_` tokens (0 = no expiry).', ...reloadable }),
  },
  { additionalProperties: false, default: {}, description: 'Plugins (SPEC §7).' },
);

export type HooksConfig = Static<typeof HooksConfigSchema>;
export type PluginsConfig = Static<typeof PluginsConfigSchema>;
