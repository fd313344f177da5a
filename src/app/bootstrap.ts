/**
 * The bootstrap super-admin: on a fresh installation there must be one account that can log in
 * and create everything else. It is created at start when no super-admin exists, in a tenant named
 * "system", from `security.admin_email` / `security.admin_password` (MAIRUST_ADMIN_EMAIL /
 * MAIRUST_ADMIN_PASSWORD). Without a configured password a random one is generated and shown
 * once, in a banner on standard output — never in a log line, which may be shipped elsewhere.
 */
import { systemScope } from '../core/scope.js';
import { ConflictError } from '../core/tenancy/errors.js';
import { generatePassword } from '../security/passwords.js';
import type { AppContext } from './context.js';

export const SYSTEM_TENANT = 'system';

export interface BootstrapResult {
  created: boolean;
  email?: string;
  generatedPassword?: boolean;
}

export async function bootstrapSuperAdmin(app: AppContext, show: (line: string) => void): Promise<BootstrapResult> {
  const { tenancy } = app;
  const existing = await tenancy.users.list(systemScope, { role: 'super_admin', limit: 1 });
  if (existing.length > 0) return { created: false };

  const email = app.config.security.admin_email || `admin@${app.config.server.hostname}`;
  const configured = app.config.security.admin_password;
  const password = configured || generatePassword();
  const actor = { type: 'system' as const, id: 'bootstrap' };

  const tenant = await tenancy.tenants.create(systemScope, { name: SYSTEM_TENANT }, actor).catch(async (err) => {
    // Another node of the cluster may have created it a moment ago.
    if (err instanceof ConflictError) return tenancy.tenants.get(systemScope, SYSTEM_TENANT);
    throw err;
  });
  try {
    await tenancy.users.add(systemScope, { tenantId: tenant.id, email, password, role: 'super_admin', displayName: 'Administrator' }, actor);
  } catch (err) {
    if (err instanceof ConflictError) return { created: false }; // a concurrent start won the race
    throw err;
  }

  const log = app.logger.child({ component: 'bootstrap' });
  log.info({ email, password_source: configured ? 'configured' : 'generated' }, 'bootstrap super-admin created');
  if (!configured) {
    const bar = '='.repeat(72);
    show(bar);
    show(' MaiRust: bootstrap super-admin created');
    show(`   email:    ${email}`);
    show(`   password: ${password}`);
    show(' This password is shown once. Sign in and change it, or run');
    show(`   mairust admin reset-password ${email}`);
    show(bar);
  }
  return { created: true, email, generatedPassword: !configured };
}
