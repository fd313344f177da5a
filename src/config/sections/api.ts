/**
 * Config sections of the REST API (SPEC §10, §11): `api` (sessions, tokens, CORS, rate limits,
 * body limits, docs), `audit` (retention, file sink) and `webhooks` (event delivery).
 */
import { Type, type Static } from '@sinclair/typebox';

const reloadable = { 'x-reloadable': true } as const;
const secret = { 'x-secret': true } as const;

export const RateLimitConfigSchema = Type.Object(
  {
    backend: Type.Union([Type.Literal('auto'), Type.Literal('memory'), Type.Literal('database'), Type.Literal('redis')], {
      default: 'auto',
      description:
        '`auto` = in memory with SQLite (one process), in the database with PostgreSQL (shared by every node); `memory` = this process only; `database` = the metadata database; `redis` = Redis (`redis_url`).',
    }),
    redis_url: Type.String({ default: 'redis://127.0.0.1:6379', description: 'Redis used when `backend` is `redis`.', ...secret }),
    per_user_per_minute: Type.Integer({ minimum: 1, maximum: 1000000, default: 60, description: 'Requests per minute per signed-in user or API key owner (SPEC §11).', ...reloadable }),
    admin_per_ip_per_minute: Type.Integer({ minimum: 1, maximum: 1000000, default: 30, description: 'Requests per minute per client address on admin routes (SPEC §11).', ...reloadable }),
    plugin_per_token_per_minute: Type.Integer({ minimum: 1, maximum: 1000000, default: 600, description: 'Requests per minute per plugin token / `plugin`-scoped key.', ...reloadable }),
    anonymous_per_ip_per_minute: Type.Integer({ minimum: 1, maximum: 1000000, default: 30, description: 'Unauthenticated requests (login, refresh) per minute per client address.', ...reloadable }),
  },
  { additionalProperties: false, default: {} },
);

export const ApiConfigSchema = Type.Object(
  {
    session_ttl_hours: Type.Integer({ minimum: 1, maximum: 720, default: 24, description: 'Lifetime of a web session (SPEC §10: 24 h).' }),
    access_token_ttl_seconds: Type.Integer({ minimum: 60, maximum: 86400, default: 3600, description: 'Lifetime of a bearer access token (1 h).' }),
    refresh_token_ttl_days: Type.Integer({ minimum: 1, maximum: 365, default: 30, description: 'Lifetime of a refresh token (each use replaces it).' }),
    cors_origins: Type.Array(Type.String({ pattern: '^https?://[^/*\\s]+$' }), {
      default: [],
      description: 'Origins allowed to call the API from a browser with credentials; never `*`.',
      ...reloadable,
    }),
    body_limit_bytes: Type.Integer({ minimum: 1024, maximum: 67108864, default: 1048576, description: 'Largest JSON request body.' }),
    trusted_proxies: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
      default: [],
      description:
        'Addresses or CIDR ranges of reverse proxies whose X-Forwarded-For/-Proto are believed (client address for rate limits, lockout and audit; HSTS over https). Empty = the TCP peer is the client.',
    }),
    public_url: Type.String({
      default: '',
      maxLength: 255,
      pattern: '^(https?://[^/?#\\s]+)?$',
      description: 'Base URL plugins reach the API at (`https://mail.example.com`), used for `callback_url` in hook payloads. Empty = the HTTP listener\'s address.',
      ...reloadable,
    }),
    docs_enabled: Type.Boolean({ default: true, description: 'Serve interactive API docs at `/api/v1/docs`.' }),
    rate_limit: RateLimitConfigSchema,
  },
  { additionalProperties: false, default: {}, description: 'REST API (SPEC §11).' },
);

export const AuditConfigSchema = Type.Object(
  {
    retention_days: Type.Integer({ minimum: 180, maximum: 3650, default: 180, description: 'Audit rows older than this are deleted by the retention job (SPEC §10: 180 days; the database refuses earlier deletes).', ...reloadable }),
    file: Type.String({ default: '', description: 'Also append every audit event as one JSON line to this file (empty = off).', ...reloadable }),
  },
  { additionalProperties: false, default: {}, description: 'Audit log (SPEC §10).' },
);

export const WebhooksConfigSchema = Type.Object(
  {
    timeout_ms: Type.Integer({ minimum: 100, maximum: 60000, default: 10000, description: 'Time a webhook endpoint has to answer.', ...reloadable }),
    max_attempts: Type.Integer({ minimum: 1, maximum: 50, default: 8, description: 'Delivery attempts before an event is given up.', ...reloadable }),
    backoff_seconds: Type.Array(Type.Integer({ minimum: 0 }), { default: [30, 120, 600, 1800, 3600], description: 'Retry delays; the last repeats.', ...reloadable }),
    allow_private_addresses: Type.Boolean({
      default: false,
      description: 'Allow webhook URLs that resolve to loopback/private/link-local addresses (off: such deliveries are refused, against SSRF).',
      ...reloadable,
    }),
  },
  { additionalProperties: false, default: {}, description: 'Event webhooks (SPEC §11).' },
);

export type ApiConfig = Static<typeof ApiConfigSchema>;
export type AuditConfig = Static<typeof AuditConfigSchema>;
export type WebhooksConfig = Static<typeof WebhooksConfigSchema>;
