/**
 * `admin/settings` (SPEC §11, §12): the run-time-changeable (`x-reloadable`) configuration keys,
 * for super-admins. `PATCH` takes an object of dotted keys → values (`null` removes an override);
 * the change is validated against the config schema, stored, applied at once on this node and
 * within a few seconds on the others (src/settings/settings-service.ts). Secrets are never listed
 * with their value and cannot be set here.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps.js';
import { principalOf } from '../auth-hook.js';
import { auditActor } from '../principal.js';
import { NullableTimestamp, Page, errors, iso } from '../schemas.js';
import { MAX_KEYS_PER_UPDATE, settingsFor, type SettingInfo } from '../../../settings/settings-service.js';

const TAGS = ['settings'];

const SettingSchema = Type.Object(
  {
    key: Type.String({ description: 'Dotted configuration key, e.g. `log.level`.' }),
    value: Type.Unknown({ description: 'The value in force (null for secrets).' }),
    default: Type.Unknown({ description: 'The schema default (null for secrets).' }),
    description: Type.String(),
    overridden: Type.Boolean({ description: 'An API override is stored (it takes precedence over the configuration file).' }),
    secret: Type.Boolean({ description: 'Secret keys are never shown and cannot be set through the API.' }),
    updated_at: NullableTimestamp,
    updated_by: Type.Union([Type.String(), Type.Null()], { description: 'Id of the user who stored the override.' }),
  },
  { title: 'Setting' },
);

export const MAX_KEY_LENGTH = 200;

const PatchBody = Type.Record(Type.String(), Type.Unknown(), {
  minProperties: 1,
  // Refused keys are named in the error: bound them so a reply never echoes a huge key.
  propertyNames: { minLength: 1, maxLength: MAX_KEY_LENGTH },
  maxProperties: MAX_KEYS_PER_UPDATE,
  description: 'Dotted keys → new values; `null` removes the override so the configuration file applies again.',
  examples: [{ 'log.level': 'debug', 'api.rate_limit.per_user_per_minute': 120 }],
});

function toJson(s: SettingInfo) {
  return {
    key: s.key,
    value: s.value,
    default: s.default,
    description: s.description,
    overridden: s.overridden,
    secret: s.secret,
    updated_at: iso(s.updatedAt),
    updated_by: s.updatedBy,
  };
}

async function listing(deps: ApiDeps) {
  const items = await settingsFor(deps.app).list();
  // The whole set fits one page (a few dozen keys); the list envelope is kept for uniformity.
  return { data: items.map(toJson), pagination: { cursor: null, has_more: false } };
}

export async function settingsRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  app.get(
    '/admin/settings',
    {
      config: { action: 'settings.read' },
      schema: {
        tags: TAGS,
        summary: 'List the settings that can be changed at run time',
        response: { 200: Page(SettingSchema), ...errors() },
      },
    },
    async () => listing(deps),
  );

  app.patch<{ Body: Record<string, unknown> }>(
    '/admin/settings',
    {
      config: { action: 'settings.write' },
      schema: {
        tags: TAGS,
        summary: 'Change reloadable settings',
        description:
          'Validated against the configuration schema; keys that are not reloadable, secrets and invalid values are refused with 422 and nothing is changed. ' +
          'Applied at once on this node and within a few seconds on every other node; stored overrides survive restarts.',
        body: PatchBody,
        response: { 200: Page(SettingSchema), ...errors(422) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      await settingsFor(deps.app).update(request.body, auditActor(principal));
      return listing(deps);
    },
  );
}

export default settingsRoutes;
