/** `npm run docs`: regenerates docs/er.md and docs/config.md from the code. */
import { writeFileSync } from 'node:fs';
import { renderErDiagram } from '../src/docs/er-diagram.js';
import { renderConfigReference } from '../src/config/docs.js';

writeFileSync(new URL('../docs/er.md', import.meta.url), await renderErDiagram());
writeFileSync(new URL('../docs/config.md', import.meta.url), renderConfigReference());
console.log('wrote docs/er.md and docs/config.md');
