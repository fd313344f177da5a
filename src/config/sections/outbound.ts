/**
 * Config section `outbound` (SPEC §3.2, §3.3, §5.2, §8): delivery to remote servers, the rate
 * limiter and the outbound spam policy engine. Read per message/attempt where marked reloadable.
 */
import { Type, type Static } from '@sinclair/typebox';

const reloadable = { 'x-reloadable': true } as const;
const secret = { 'x-secret': true } as const;

export const OutboundRouteSchema = Type.Object(
  {
    domain: Type.String({ minLength: 1, maxLength: 253, description: 'Destination domain (`*` = every domain: a smarthost).' }),
    host: Type.String({ minLength: 1, maxLength: 253, description: 'Relay host name or IP.' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 25 }),
    tls: Type.Unsafe<'opportunistic' | 'required' | 'implicit' | 'none'>({ type: 'string', enum: ['opportunistic', 'required', 'implicit', 'none'], default: 'opportunistic' }),
    auth_user: Type.String({ default: '', maxLength: 255 }),
    auth_password: Type.String({ default: '', maxLength: 1024, ...secret }),
  },
  { additionalProperties: false },
);

export const OutboundConfigSchema = Type.Object(
  {
    ehlo_name: Type.String({ default: '', maxLength: 253, description: 'EHLO name of outbound connections (empty = `server.hostname`).', ...reloadable }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 25, description: 'Port of MX hosts (25; tests use another).', ...reloadable }),
    retry_schedule_seconds: Type.Array(Type.Integer({ minimum: 1, maximum: 86_400 }), {
      default: [300, 900, 1800, 3600, 7200, 14400],
      minItems: 1,
      maxItems: 50,
      description: 'Delays before retry 1, 2, …; the last one repeats until `max_queue_hours`.',
      ...reloadable,
    }),
    max_queue_hours: Type.Integer({ minimum: 1, maximum: 720, default: 120, description: 'A message still undelivered after this long is bounced (5 days).', ...reloadable }),
    delay_warning_hours: Type.Integer({ minimum: 0, maximum: 720, default: 0, description: 'Send a delay DSN once after this long (0 = never; SPEC suggests 4).', ...reloadable }),
    connect_timeout_ms: Type.Integer({ minimum: 100, maximum: 300_000, default: 30_000, ...reloadable }),
    command_timeout_ms: Type.Integer({ minimum: 100, maximum: 600_000, default: 300_000, description: 'RFC 5321 §4.5.3.2 minimums are 5 min for most replies.', ...reloadable }),
    max_connections_per_destination: Type.Integer({ minimum: 1, maximum: 100, default: 4, description: 'Simultaneous connections to one destination host from this node.', ...reloadable }),
    connection_idle_seconds: Type.Integer({ minimum: 0, maximum: 300, default: 30, description: 'Idle connections kept for reuse (0 = close after each message).', ...reloadable }),
    require_tls_domains: Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { default: [], description: 'Destinations that must offer STARTTLS; others get opportunistic TLS.', ...reloadable }),
    require_tls_action: Type.Unsafe<'defer' | 'bounce'>({ type: 'string', enum: ['defer', 'bounce'], default: 'defer', description: 'What happens when a required TLS is not offered.', ...reloadable }),
    mta_sts: Type.Boolean({ default: true, description: 'Fetch and enforce MTA-STS policies (RFC 8461).', ...reloadable }),
    routes: Type.Array(OutboundRouteSchema, { default: [], maxItems: 1000, description: 'Static routes / smarthosts per destination domain.', ...reloadable }),
    workers: Type.Integer({ minimum: 1, maximum: 200, default: 8, description: 'Delivery jobs run at the same time on this node.' }),
    rate_limits: Type.Object(
      {
        user_per_hour: Type.Integer({ minimum: 0, default: 200, ...reloadable }),
        user_per_day: Type.Integer({ minimum: 0, default: 1000, ...reloadable }),
        domain_per_hour: Type.Integer({ minimum: 0, default: 5000, ...reloadable }),
        tenant_per_hour: Type.Integer({ minimum: 0, default: 10000, ...reloadable }),
        soft_ratio: Type.Number({ minimum: 0.1, maximum: 1, default: 0.8, description: 'Share of a limit from which sending is soft-limited (delayed).', ...reloadable }),
        whitelist_profiles: Type.Record(
          Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,31}$' }),
          Type.Object({ per_hour: Type.Integer({ minimum: 0 }), per_day: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }),
          { default: { newsletter: { per_hour: 5000, per_day: 50000 } }, description: 'Named raised limits for whitelisted accounts.', ...reloadable },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    policy: Type.Object(
      {
        enabled: Type.Boolean({ default: true, ...reloadable }),
        weights: Type.Object(
          { rate: Type.Number({ minimum: 0, default: 0.4 }), content: Type.Number({ minimum: 0, default: 0.4 }), history: Type.Number({ minimum: 0, default: 0.2 }) },
          { additionalProperties: false, default: {}, ...reloadable },
        ),
        soft_score: Type.Number({ minimum: 0, maximum: 1, default: 0.5, ...reloadable }),
        hard_score: Type.Number({ minimum: 0, maximum: 1, default: 0.8, ...reloadable }),
        soft_delay_seconds: Type.Integer({ minimum: 0, maximum: 86_400, default: 900, description: 'How long a soft-limited message waits in the queue.', ...reloadable }),
        auto_reenable_after_hours: Type.Integer({ minimum: 0, maximum: 8760, default: 0, description: 'Lift a suspension automatically after this long (0 = only by an admin).', ...reloadable }),
        monitor_url: Type.String({ default: '', maxLength: 2048, description: 'Optional https URL notified of soft/hard limits (no message bodies).', ...reloadable }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {}, description: 'Outbound delivery, rate limits and the outbound spam policy (SPEC §3.3, §8).' },
);

export type OutboundConfig = Static<typeof OutboundConfigSchema>;
export type OutboundRoute = Static<typeof OutboundRouteSchema>;
