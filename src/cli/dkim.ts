/**
 * `mairust dkim generate|list|rotate|retire` (SPEC §12 "dkim generate", §3.2 step 3): a domain's
 * DKIM signing keys. Every command that creates a key prints the DNS record to publish:
 *
 *   <selector>._domainkey.<domain> TXT "v=DKIM1; k=rsa; p=…" "…"
 *
 * (the value split into character-strings of at most 255 octets, RFC 1035 §3.3.14 — the zone-file
 * form every DNS server accepts). Changes are made in the system scope, audited with actor
 * `{ type: 'cli' }` by DkimKeyService. Private keys are sealed in the secret store and never printed.
 */
import type { Command } from 'commander';
import type { AppContext } from '../app/context.js';
import { DKIM_ALGORITHMS, DkimKeyService, publicRecord, txtStrings, type DkimAlgorithm, type DkimKey } from '../emailauth/dkim-keys.js';
import type { CliContext } from './cli-context.js';
import { TenancyUsageError, cliActor, scope, withApp } from './tenant.js';

/** The zone-file line for a key of `domain`. */
export function dnsRecordLine(key: Pick<DkimKey, 'selector' | 'algorithm' | 'publicKey'>, domain: string): string {
  return `${key.selector}._domainkey.${domain} TXT ${txtStrings(publicRecord(key)).map((s) => `"${s}"`).join(' ')}`;
}

function parseAlgorithm(text: string | undefined): DkimAlgorithm | undefined {
  if (text === undefined) return undefined;
  const t = text.toLowerCase();
  const algo = (t === 'rsa' ? 'rsa-sha256' : t === 'ed25519' ? 'ed25519-sha256' : t) as DkimAlgorithm;
  if (!DKIM_ALGORITHMS.includes(algo)) throw new TenancyUsageError(`--algorithm must be rsa or ed25519 (${DKIM_ALGORITHMS.join(', ')})`);
  return algo;
}

async function withDkim(cli: CliContext, fn: (dkim: DkimKeyService, app: AppContext) => Promise<void>): Promise<void> {
  await withApp(cli, async (app) => {
    const { openSecretStore } = await import('../security/secrets/index.js');
    const secrets = await openSecretStore({ config: app.config, db: app.db, logger: app.logger });
    await fn(new DkimKeyService({ db: app.db, secrets }), app);
  });
}

function keyRow(k: DkimKey, domain: string) {
  return { id: k.id, selector: k.selector, algorithm: k.algorithm, status: k.status, created_at: new Date(k.createdAt).toISOString(), dns: dnsRecordLine(k, domain) };
}

export function register(program: Command, cli: CliContext): void {
  const dkim = program.command('dkim').description('manage the DKIM signing keys of a domain');

  dkim
    .command('generate <domain>')
    .description('create a new active DKIM key for the domain and print its DNS record')
    .option('--algorithm <algorithm>', 'rsa (RSA-2048, default) or ed25519 (RFC 8463)')
    .action((ref: string, opts: { algorithm?: string }) =>
      withDkim(cli, async (service, app) => {
        const algorithm = parseAlgorithm(opts.algorithm) ?? 'rsa-sha256';
        const d = await app.tenancy.domains.get(scope, ref);
        const key = await service.generate(scope, d, algorithm, cliActor);
        if (cli.globals().json) cli.print(keyRow(key, d.name));
        else cli.print(`${dnsRecordLine(key, d.name)}\n; key ${key.id} (${key.algorithm}) is active: publish the record above before sending`);
      }),
    );

  dkim
    .command('list <domain>')
    .description('list the DKIM keys of the domain with their DNS records')
    .action((ref: string) =>
      withDkim(cli, async (service, app) => {
        const d = await app.tenancy.domains.get(scope, ref);
        cli.print((await service.keysOf(scope, d.id)).map((k) => keyRow(k, d.name)));
      }),
    );

  dkim
    .command('rotate <domain>')
    .description('create a new active key; the previous active keys become "retiring" (still published)')
    .option('--algorithm <algorithm>', 'rsa or ed25519 (default: the current key\'s)')
    .action((ref: string, opts: { algorithm?: string }) =>
      withDkim(cli, async (service, app) => {
        const algorithm = parseAlgorithm(opts.algorithm);
        const d = await app.tenancy.domains.get(scope, ref);
        const r = await service.rotate(scope, d, cliActor, algorithm);
        if (cli.globals().json) cli.print({ key: keyRow(r.key, d.name), retiring: r.retiring.map((k) => keyRow(k, d.name)) });
        else {
          const lines = [dnsRecordLine(r.key, d.name), `; key ${r.key.id} (${r.key.algorithm}) signs from now on`];
          for (const k of r.retiring) lines.push(`; keep published until retired: ${dnsRecordLine(k, d.name)}`, `;   mairust dkim retire ${k.id}`);
          cli.print(lines.join('\n'));
        }
      }),
    );

  dkim
    .command('retire <keyId>')
    .description('withdraw a key (no longer signs; its DNS record may be removed)')
    .action((keyId: string) =>
      withDkim(cli, async (service) => {
        const k = await service.retire(scope, keyId, cliActor);
        cli.print({ id: k.id, selector: k.selector, status: k.status });
      }),
    );
}
