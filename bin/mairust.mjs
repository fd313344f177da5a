#!/usr/bin/env node
// Entry point for `npx mairust` and `npm start`: runs the TypeScript CLI through tsx's loader,
// so a checkout works right after `npm ci` with no build step.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
