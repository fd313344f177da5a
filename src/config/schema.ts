/**
 * The one configuration schema. It produces:
 *  - the TypeScript type `Config` (Static<typeof ConfigSchema>),
 *  - the JSON Schema printed by `mairust config schema`,
 *  - the validation used at start, on reload and by `mairust config validate`,
 *  - the reference in docs/config.md (generated).
 *
 * Keys marked `x-reloadable: true` are re-applied on SIGHUP / `mairust reload`; every other key
 * needs a restart, and the reload reports which changed keys it ignored (SPEC §12).
 *
 * Secrets (`x-secret: true`) may be written as `env:NAME` or `file:/path`; the loader resolves them
 * before validation, and they are never logged or printed.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { DnsConfigSchema } from './sections/dns.js';
import { EmailAuthConfigSchema } from './sections/emailauth.js';
import { SpamConfigSchema } from './sections/spam.js';
import { SmtpConfigSchema } from './sections/smtp.js';
import { TlsConfigSchema } from './sections/tls.js';
import { InboundConfigSchema } from './sections/inbound.js';
import { ImapConfigSchema } from './sections/imap.js';
import { Pop3ConfigSchema } from './sections/pop3.js';
import { ApiConfigSchema, AuditConfigSchema, WebhooksConfigSchema } from './sections/api.js';
import { HooksConfigSchema, PluginsConfigSchema } from './sections/plugins.js';
import { OutboundConfigSchema } from './sections/outbound.js';

const reloadable = { 'x-reloadable': true } as const;
const secret = { 'x-secret': true } as const;

const Port = Type.Integer({ minimum: 0, maximum: 65535 });

function listener(port: number, description: string) {
  return Type.Object(
    {
      enabled: Type.Boolean({ default: true, description: 'Start this listener.' }),
      host: Type.String({ default: '127.0.0.1', minLength: 1, description: 'Address to bind.' }),
      port: Type.Integer({ ...Port, default: port, description: 'TCP port (0 = pick a free one).' }),
    },
    { additionalProperties: false, default: {}, description },
  );
}

export const PlanSchema = Type.Object(
  {
    max_users: Type.Integer({ minimum: 0, default: 1000, description: 'Users per tenant.' }),
    max_domains: Type.Integer({ minimum: 0, default: 100, description: 'Domains per tenant.' }),
    storage_bytes: Type.Integer({ minimum: 0, default: 107374182400, description: 'Tenant storage quota in bytes (0 = unlimited).' }),
    mailbox_storage_bytes: Type.Integer({ minimum: 0, default: 10737418240, description: 'Default quota of a new mailbox in bytes (0 = unlimited).' }),
    daily_outbound: Type.Integer({ minimum: 0, default: 10000, description: 'Messages a tenant may send per day.' }),
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    server: Type.Object(
      {
        hostname: Type.String({ default: 'localhost', minLength: 1, description: 'Name this node uses in greetings and generated headers.' }),
        data_dir: Type.String({ default: './data', minLength: 1, description: 'Directory for the embedded shape: SQLite file, blobs, generated certificates.' }),
        node_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Identifies this node in a cluster (default: hostname + pid).' })),
      },
      { additionalProperties: false, default: {} },
    ),
    listeners: Type.Object(
      {
        smtp: listener(2525, 'Inbound MX (production: 25).'),
        submission: listener(2587, 'Submission with STARTTLS (production: 587).'),
        smtps: listener(2465, 'Submission with implicit TLS (production: 465).'),
        imap: listener(2143, 'IMAP with STARTTLS (production: 143).'),
        imaps: listener(2993, 'IMAP with implicit TLS (production: 993).'),
        pop3: listener(2110, 'POP3 with STLS (production: 110).'),
        pop3s: listener(2995, 'POP3 with implicit TLS (production: 995).'),
        http: listener(8080, 'REST API, web UI, health and metrics.'),
      },
      { additionalProperties: false, default: {} },
    ),
    database: Type.Object(
      {
        url: Type.String({
          default: 'sqlite:',
          description: '`sqlite:PATH` (empty path = `<data_dir>/mairust.db`) or `postgres://user:pass@host:port/db`. May be `env:`/`file:`.',
          ...secret,
        }),
        auto_migrate: Type.Boolean({ default: true, description: 'Apply pending migrations at start.' }),
        pool_max: Type.Integer({ minimum: 1, maximum: 200, default: 10, description: 'PostgreSQL connection pool size.' }),
        statement_timeout_ms: Type.Integer({ minimum: 100, default: 30000, description: 'PostgreSQL statement timeout.' }),
      },
      { additionalProperties: false, default: {} },
    ),
    storage: Type.Object(
      {
        backend: Type.Union([Type.Literal('fs'), Type.Literal('s3')], { default: 'fs', description: 'Blob store for message bodies.' }),
        fs: Type.Object(
          { path: Type.String({ default: '', description: 'Blob directory (empty = `<data_dir>/blobs`).' }) },
          { additionalProperties: false, default: {} },
        ),
        s3: Type.Object(
          {
            endpoint: Type.String({ default: '', description: 'S3-compatible endpoint URL (empty = AWS).' }),
            bucket: Type.String({ default: 'mairust', minLength: 3, maxLength: 63, description: 'Bucket holding the blobs (S3 bucket names are 3–63 characters).' }),
            region: Type.String({ default: 'us-east-1', minLength: 1, description: 'Region used for request signing (SigV4).' }),
            access_key_id: Type.String({ default: '', description: 'Access key id (empty = the AWS SDK default credential chain).', ...secret }),
            secret_access_key: Type.String({ default: '', description: 'Secret access key.', ...secret }),
            force_path_style: Type.Boolean({ default: true, description: 'Path-style URLs (most self-hosted servers need them).' }),
            multipart_threshold_bytes: Type.Integer({ minimum: 5242880, default: 8388608, description: 'Objects this size or larger use multipart upload.' }),
            part_size_bytes: Type.Integer({ minimum: 5242880, default: 8388608, description: 'Multipart part size.' }),
            checksum: Type.Union([Type.Literal('WHEN_REQUIRED'), Type.Literal('WHEN_SUPPORTED')], {
              default: 'WHEN_REQUIRED',
              description: 'AWS SDK checksum mode; WHEN_SUPPORTED sends aws-chunked bodies that Swift and Ceph refuse.',
            }),
            create_bucket: Type.Boolean({ default: false, description: 'Create the bucket at start when it is missing.' }),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    queue: Type.Object(
      {
        backend: Type.Union([Type.Literal('database'), Type.Literal('nats')], {
          default: 'database',
          description: '`database` = jobs in the metadata database; `nats` = NATS JetStream.',
        }),
        poll_interval_ms: Type.Integer({ minimum: 10, maximum: 60000, default: 1000, description: 'How often idle workers look for due jobs.', ...reloadable }),
        lease_seconds: Type.Integer({ minimum: 5, maximum: 3600, default: 300, description: 'A running job whose worker is silent this long is given to another worker.' }),
        default_backoff_seconds: Type.Array(Type.Integer({ minimum: 0 }), { default: [30, 120, 600], description: 'Retry delays; the last one repeats.', ...reloadable }),
        default_max_attempts: Type.Integer({ minimum: 1, maximum: 1000, default: 4, description: 'Attempts before a job is given up (dead).', ...reloadable }),
      },
      { additionalProperties: false, default: {} },
    ),
    events: Type.Object(
      {
        backend: Type.Union([Type.Literal('auto'), Type.Literal('memory'), Type.Literal('postgres'), Type.Literal('nats')], {
          default: 'auto',
          description: '`auto` = PostgreSQL LISTEN/NOTIFY with PostgreSQL, in-process with SQLite.',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    nats: Type.Object(
      { servers: Type.Array(Type.String({ minLength: 1 }), { default: ['nats://127.0.0.1:4222'], description: 'NATS server URLs (used when a backend is `nats`).' }) },
      { additionalProperties: false, default: {} },
    ),
    smtp: SmtpConfigSchema,
    imap: ImapConfigSchema,
    pop3: Pop3ConfigSchema,
    inbound: InboundConfigSchema,
    tls: TlsConfigSchema,
    dns: DnsConfigSchema,
    emailauth: EmailAuthConfigSchema,
    spam: SpamConfigSchema,
    log: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info', description: 'Lowest level written to the log.', ...reloadable },
        ),
        format: Type.Union([Type.Literal('json'), Type.Literal('text')], { default: 'json', description: 'One JSON object per line, or readable text for development.' }),
      },
      { additionalProperties: false, default: {} },
    ),
    mail: Type.Object(
      {
        preview_bytes: Type.Integer({ minimum: 1024, maximum: 16384, default: 4096, description: 'Body preview size, cut on a UTF-8 character boundary.' }),
        max_message_bytes: Type.Integer({ minimum: 1024, default: 26214400, description: 'Largest message accepted (SMTP SIZE, IMAP APPENDLIMIT).' }),
      },
      { additionalProperties: false, default: {} },
    ),
    retention: Type.Object(
      {
        deleted_messages_days: Type.Integer({ minimum: 0, maximum: 3650, default: 30, description: 'Deleted messages are purged after this many days (per tenant override possible).', ...reloadable }),
        purge_interval_minutes: Type.Integer({ minimum: 1, maximum: 10080, default: 60, description: 'How often the purge job runs.', ...reloadable }),
      },
      { additionalProperties: false, default: {} },
    ),
    // additionalProperties: false so a plan name that does not match the pattern is an error
    // instead of being silently accepted and never validated.
    plans: Type.Record(Type.String({ pattern: '^[a-z0-9_-]{1,32}$' }), PlanSchema, {
      additionalProperties: false,
      default: { default: {} },
      description: 'Named plans; a tenant uses one and may override single limits.',
      ...reloadable,
    }),
    default_plan: Type.String({ default: 'default', description: 'Plan given to a new tenant; must name an entry of `plans`.', ...reloadable }),
    security: Type.Object(
      {
        master_key: Type.String({ default: '', description: 'Base64 32-byte key wrapping per-record data keys (envelope encryption). Empty in the embedded shape = generated into `<data_dir>/master.key`.', ...secret }),
        admin_email: Type.String({ default: '', description: 'Bootstrap super-admin created at first start when no super-admin exists.' }),
        admin_password: Type.String({ default: '', description: 'Its password; empty = a one-time password is generated and printed once.', ...secret }),
      },
      { additionalProperties: false, default: {} },
    ),
    api: ApiConfigSchema,
    audit: AuditConfigSchema,
    webhooks: WebhooksConfigSchema,
    hooks: HooksConfigSchema,
    plugins: PluginsConfigSchema,
    outbound: OutboundConfigSchema,
    shutdown: Type.Object(
      {
        smtp_drain_seconds: Type.Integer({ minimum: 0, maximum: 600, default: 60, description: 'On SIGTERM, how long open SMTP sessions may finish.' }),
        queue_drain_seconds: Type.Integer({ minimum: 0, maximum: 600, default: 30, description: 'On SIGTERM, how long running queue jobs may finish.' }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, $id: 'https://mairust.dev/schema/config.json', title: 'MaiRust configuration' },
);

export type Config = Static<typeof ConfigSchema>;
export type Plan = Static<typeof PlanSchema>;

/** Walks the schema and yields every leaf key path with its schema (used for env overrides, docs, reload). */
export function* schemaLeaves(schema: TSchema = ConfigSchema, path: string[] = []): Generator<{ path: string[]; schema: TSchema }> {
  if (schema.type === 'object' && schema.properties) {
    for (const [k, s] of Object.entries(schema.properties as Record<string, TSchema>)) yield* schemaLeaves(s, [...path, k]);
  } else {
    yield { path, schema };
  }
}

/**
 * The schemas met when walking `path` from the root: [root, child, grandchild, …]. Record
 * (patternProperties) levels consume one segment as the record key. Returns null when the path
 * leaves the schema (unknown key). Used by env overrides (type coercion), reload (an ancestor's
 * `x-reloadable` covers its children) and redaction.
 */
export function schemaChain(path: readonly string[], schema: TSchema = ConfigSchema): TSchema[] | null {
  const chain: TSchema[] = [schema];
  let current = schema;
  for (const segment of path) {
    const next = childSchema(current, segment);
    if (!next) return null;
    chain.push(next);
    current = next;
  }
  return chain;
}

function childSchema(schema: TSchema, key: string): TSchema | undefined {
  const props = schema.properties as Record<string, TSchema> | undefined;
  if (props && Object.prototype.hasOwnProperty.call(props, key)) return props[key];
  const patterns = schema.patternProperties as Record<string, TSchema> | undefined;
  if (patterns) {
    for (const [pattern, s] of Object.entries(patterns)) if (new RegExp(pattern, 'u').test(key)) return s;
  }
  if (schema.type === 'array' && /^\d+$/.test(key) && schema.items) return schema.items as TSchema;
  return undefined;
}
