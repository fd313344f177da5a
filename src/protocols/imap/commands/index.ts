/**
 * The command modules: every other file in this directory default-exports one `CommandModule`.
 * They are discovered here so that adding a command is adding a file; two modules claiming one
 * name is an error at start.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CommandModule } from '../session/types.js';

export async function loadCommandModules(): Promise<Map<string, CommandModule>> {
  const dir = fileURLToPath(new URL('.', import.meta.url));
  const files = readdirSync(dir)
    .filter((f) => /\.(ts|js)$/.test(f) && !/^index\.(ts|js)$/.test(f) && !f.endsWith('.d.ts') && !f.startsWith('_'))
    .sort();
  const byName = new Map<string, CommandModule>();
  for (const f of files) {
    const mod = (await import(new URL(f, import.meta.url).href)) as { default?: CommandModule };
    const cmd = mod.default;
    if (!cmd || !Array.isArray(cmd.names) || typeof cmd.handle !== 'function') {
      throw new Error(`src/protocols/imap/commands/${f} must default-export a CommandModule`);
    }
    for (const name of cmd.names) {
      if (byName.has(name)) throw new Error(`IMAP command ${name} is claimed by two modules (${f})`);
      byName.set(name, cmd);
    }
  }
  return byName;
}
