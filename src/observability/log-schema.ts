/**
 * The published shape of one log line (SPEC §2 "Log format"), from one TypeBox definition: the
 * unit test validates the logger's real output against it, and docs/log-format.schema.json is
 * rendered from it so log shippers and alert rules can rely on field names and types.
 */
import { writeFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';

const OptionalText = (description: string) => Type.Optional(Type.String({ description }));

export const LogLineSchema = Type.Object(
  {
    timestamp: Type.String({ format: 'date-time', description: 'When the line was written: ISO 8601 in UTC with milliseconds.' }),
    level: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace'].map((l) => Type.Literal(l)),
      { description: 'Severity label.' },
    ),
    component: Type.String({
      minLength: 1,
      description: 'Part of the server that wrote the line (http, smtp, imap, queue, …); "main" when none is set.',
    }),
    message: Type.String({ description: 'Human-readable text; may be empty when the line carries only fields.' }),
    request_id: OptionalText('HTTP request id (X-Request-Id), echoed to the client.'),
    session_id: OptionalText('SMTP, IMAP or POP3 session id.'),
    tenant_id: OptionalText('Tenant the line concerns.'),
    plugin_id: OptionalText('Plugin the line concerns.'),
    remote_addr: OptionalText('Peer IP address (after trusted-proxy resolution for HTTP).'),
    err: Type.Optional(
      Type.Object(
        {
          type: Type.String({ description: 'Error class name.' }),
          message: Type.String(),
          stack: Type.Optional(Type.String()),
        },
        { additionalProperties: true, description: 'An attached error; extra own properties (code, …) are kept.' },
      ),
    ),
  },
  {
    $id: 'https://mairust.dev/schema/log-line.json',
    title: 'MaiRust log line',
    description:
      'One line of MaiRust log output in JSON format (one object per line). Fields other than those listed are ' +
      'context specific to the message. Values of fields named like password, secret, token, authorization, ' +
      'cookie, master_key or secret_access_key (up to three levels deep) are always "[redacted]". There is no ' +
      'pid or hostname: the log collector adds the origin.',
    additionalProperties: true,
  },
);

export type LogLine = Static<typeof LogLineSchema>;

/** The JSON Schema document as published (draft-07, what Ajv validates by default). */
export function logLineJsonSchema(): Record<string, unknown> {
  // JSON round trip drops TypeBox's symbol-keyed metadata.
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...JSON.parse(JSON.stringify(LogLineSchema)) };
}

export function renderLogSchema(): string {
  return JSON.stringify(logLineJsonSchema(), null, 2) + '\n';
}

/** Writes docs/log-format.schema.json (or `path`); used by `mairust docs generate`. */
export function writeLogSchemaFile(path = 'docs/log-format.schema.json'): void {
  writeFileSync(path, renderLogSchema());
}
