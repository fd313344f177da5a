import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import type { AppContext } from '../../src/app/context.js';
import type { CliContext, GlobalOptions } from '../../src/cli/cli-context.js';
import { register as registerTenant, parseBytes } from '../../src/cli/tenant.js';
import { register as registerDomain } from '../../src/cli/domain.js';
import { register as registerUser, readPasswordFromStdin } from '../../src/cli/user.js';
import { register as registerMailbox } from '../../src/cli/mailbox.js';
import { register as registerAlias } from '../../src/cli/alias.js';
import { register as registerAdmin } from '../../src/cli/admin.js';
import { systemScope } from '../../src/core/scope.js';
import { Readable } from 'node:stream';
import { auditRows, tenancyFixture, type TenancyFixture } from '../support/tenancy-fixtures.js';

describe('tenancy: CLI commands', () => {
  let f: TenancyFixture;
  let printed: unknown[];
  let failures: string[];
  let opened: number;
  let closed: number;
  const globals: GlobalOptions = { json: true };

  async function run(...args: string[]): Promise<unknown> {
    printed = [];
    failures = [];
    const program = new Command('mairust').exitOverride();
    const cli: CliContext = {
      globals: () => globals,
      open: async () => {
        opened++;
        // The real AppContext also holds config, blobs, queue…; these commands use only `tenancy` and `close`.
        return { tenancy: f.tenancy, db: f.test.db, close: async () => void closed++ } as unknown as AppContext;
      },
      print: (v) => void printed.push(v),
      fail: (m) => void failures.push(m),
    };
    for (const r of [registerTenant, registerDomain, registerUser, registerMailbox, registerAlias, registerAdmin]) r(program, cli);
    await program.parseAsync(['node', 'mairust', ...args]);
    return printed.at(-1);
  }

  before(async () => {
    f = await tenancyFixture();
  });
  after(async () => {
    await f.test.drop();
  });
  beforeEach(() => {
    opened = 0;
    closed = 0;
    globals.json = true;
  });

  test('tenant add/list/show/suspend/activate, audited as cli', async () => {
    const t = (await run('tenant', 'add', 'acme', '--plan', 'tiny', '--limit', 'max_users=5')) as { id: string; plan: string; limits: object };
    assert.equal(t.plan, 'tiny');
    assert.deepEqual(t.limits, { max_users: 5 });
    assert.equal(opened, 1);
    assert.equal(closed, 1, 'app closed after the command');
    const list = (await run('tenant', 'list')) as { name: string }[];
    assert.deepEqual(list.map((x) => x.name), ['acme']);
    const shown = (await run('tenant', 'show', 'acme')) as { effectiveLimits: { max_users: number; max_domains: number }; usage: { users: number } };
    assert.equal(shown.effectiveLimits.max_users, 5);
    assert.equal(shown.effectiveLimits.max_domains, 1);
    assert.equal(shown.usage.users, 0);
    assert.equal(((await run('tenant', 'suspend', t.id)) as { status: string }).status, 'suspended');
    assert.equal(((await run('tenant', 'activate', 'acme')) as { status: string }).status, 'active');
    const row = (await auditRows(f.test.db.kysely, 'tenant.created'))[0];
    assert.deepEqual(JSON.parse(row.actor_json), { type: 'cli' });
  });

  test('errors go through cli.fail with a clear message, and the app is still closed', async () => {
    await run('tenant', 'add', 'acme');
    assert.deepEqual(failures, ['a tenant named "acme" already exists']);
    assert.equal(closed, 1);
    await run('domain', 'add', 'x.example', '--tenant', 'nope');
    assert.deepEqual(failures, ['tenant "nope" not found']);
  });

  test('domain add --tenant NAME, list, catch-all', async () => {
    const d = (await run('domain', 'add', 'Acme.Example', '--tenant', 'acme')) as { name: string };
    assert.equal(d.name, 'acme.example');
    await run('domain', 'add', 'other.example', '--tenant', 'acme');
    assert.match(failures[0], /tenant limit reached: max_domains is 1/);
    globals.json = false;
    assert.deepEqual(await run('domain', 'list', '--tenant', 'acme'), [
      { id: (await f.tenancy.domains.get(systemScope, 'acme.example')).id, name: 'acme.example', tenant_id: (await f.tenancy.tenants.get(systemScope, 'acme')).id, status: 'active', catch_all: null },
    ]);
  });

  test('user add generates and prints a password once when none is given; never prints a hash', async () => {
    const u = (await run('user', 'add', 'Boss@acme.example', '--tenant', 'acme', '--role', 'tenant_admin', '--name', 'The Boss')) as Record<string, unknown>;
    assert.equal(u.email, 'boss@acme.example');
    assert.equal(u.role, 'tenant_admin');
    assert.equal(typeof u.password, 'string');
    assert.ok((u.password as string).length >= 20);
    assert.ok(await f.tenancy.authenticate(systemScope, 'boss@acme.example', u.password as string));
    const shown = (await run('user', 'show', 'boss@acme.example')) as Record<string, unknown>;
    assert.equal(shown.password, undefined);
    assert.ok(!JSON.stringify(printed).includes('argon2'));
    const given = (await run('user', 'add', 'dev@acme.example', '--tenant', 'acme', '--password', 'a fine password')) as Record<string, unknown>;
    assert.equal(given.password, undefined, 'a given password is not echoed');
    await run('user', 'add', 'weak@acme.example', '--tenant', 'acme', '--password', 'weak');
    assert.match(failures[0], /at least 12 characters/);
    globals.json = false;
    const list = (await run('user', 'list', '--tenant', 'acme')) as { email: string }[];
    assert.deepEqual(list.map((x) => x.email), ['boss@acme.example', 'dev@acme.example']);
  });

  test('readPasswordFromStdin strips one trailing newline and bounds the size', async () => {
    assert.equal(await readPasswordFromStdin(Readable.from([Buffer.from('secret value 123\n')])), 'secret value 123');
    assert.equal(await readPasswordFromStdin(Readable.from([Buffer.from('two\r\n')])), 'two');
    await assert.rejects(readPasswordFromStdin(Readable.from([Buffer.alloc(9000, 97)])), /longer than 8192 bytes/);
    await assert.rejects(readPasswordFromStdin(Readable.from([])), /no password/);
  });

  test('mailbox add/list/quota/remove and alias add/show/remove', async () => {
    const m = (await run('mailbox', 'add', 'boss@acme.example', '--user', 'boss@acme.example', '--quota', '2M')) as { quotaBytes: number; userId: string };
    assert.equal(m.quotaBytes, 2 * 1024 * 1024);
    await run('mailbox', 'add', 'ops@acme.example');
    assert.equal(((await run('mailbox', 'quota', 'ops@acme.example', '0')) as { quotaBytes: number }).quotaBytes, 0);
    globals.json = false;
    const list = (await run('mailbox', 'list', '--domain', 'acme.example')) as { address: string }[];
    assert.deepEqual(list.map((x) => x.address), ['boss@acme.example', 'ops@acme.example']);
    globals.json = true;
    const a = (await run('alias', 'add', 'team@acme.example', '--to', 'boss@acme.example, ops@acme.example')) as { id: string; targets: { address: string }[] };
    assert.deepEqual(a.targets.map((t) => t.address), ['boss@acme.example', 'ops@acme.example']);
    assert.deepEqual((await f.tenancy.resolveRecipient(systemScope, 'team@acme.example'))?.mailboxIds.length, 2);
    await run('domain', 'catch-all', 'acme.example', 'ops@acme.example');
    assert.equal((await f.tenancy.resolveRecipient(systemScope, 'whoever@acme.example'))?.via, 'catch_all');
    await run('domain', 'catch-all', 'acme.example');
    assert.match(failures[0], /name a mailbox, or pass --clear/);
    await run('alias', 'remove', 'team@acme.example');
    assert.deepEqual(printed.at(-1), { removed: 'team@acme.example', id: a.id });
    assert.equal((await auditRows(f.test.db.kysely, 'alias.removed')).length, 1);
    await run('mailbox', 'remove', 'ops@acme.example');
    assert.equal(await f.tenancy.resolveRecipient(systemScope, 'ops@acme.example'), null);
    await run('domain', 'remove', 'acme.example');
    assert.match(failures[0], /still has 1 mailbox\(es\) and 0 alias\(es\)/);
  });

  test('admin reset-password prints a new password once and audits admin.password_reset as cli', async () => {
    const r = (await run('admin', 'reset-password', 'boss@acme.example')) as { email: string; password: string };
    assert.equal(r.email, 'boss@acme.example');
    assert.ok(await f.tenancy.authenticate(systemScope, 'boss@acme.example', r.password));
    const rows = await auditRows(f.test.db.kysely, 'admin.password_reset');
    assert.equal(rows.length, 1);
    assert.deepEqual(JSON.parse(rows[0].actor_json), { type: 'cli' });
    assert.ok(!rows[0].metadata_json.includes(r.password));
    await run('admin', 'reset-password', 'ghost@acme.example');
    assert.deepEqual(failures, ['user "ghost@acme.example" not found']);
  });

  test('tenant remove is a soft delete', async () => {
    const r = (await run('tenant', 'remove', 'acme')) as { status: string; deleted_at: number };
    assert.equal(r.status, 'deleted');
    assert.ok(r.deleted_at > 0);
    assert.deepEqual(await run('tenant', 'list'), []);
    assert.equal(((await run('tenant', 'list', '--all')) as unknown[]).length, 1);
  });

  test('parseBytes accepts plain and suffixed sizes', () => {
    assert.equal(parseBytes('500'), 500);
    assert.equal(parseBytes('10K'), 10240);
    assert.equal(parseBytes('5G'), 5 * 1024 ** 3);
    assert.equal(parseBytes('1MiB'), 1024 ** 2);
    assert.throws(() => parseBytes('lots'), /not a size/);
    assert.throws(() => parseBytes('-1'), /not a size/);
  });
});
