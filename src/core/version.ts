/** The running MaiRust version (package.json), for plugin compat ranges (SPEC §7) and `mairust --version`. */
import { readFileSync } from 'node:fs';

export const MAIRUST_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
