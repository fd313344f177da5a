/**
 * The API's route modules: every other file in this directory default-exports one
 * `(app, deps) => Promise<void>` registering the routes of one resource. They are discovered here
 * so that adding a resource is adding a file; the OpenAPI coverage test proves each route is
 * documented and declares its authorization action.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps.js';

export type RouteModule = (app: FastifyInstance, deps: ApiDeps) => Promise<void>;

export async function loadRouteModules(): Promise<{ name: string; register: RouteModule }[]> {
  const dir = fileURLToPath(new URL('.', import.meta.url));
  const files = readdirSync(dir)
    .filter((f) => /\.(ts|js)$/.test(f) && !/^index\.(ts|js)$/.test(f) && !f.endsWith('.d.ts'))
    .sort();
  const out: { name: string; register: RouteModule }[] = [];
  for (const f of files) {
    const mod = (await import(new URL(f, import.meta.url).href)) as { default?: RouteModule };
    if (typeof mod.default !== 'function') throw new Error(`src/http/api/routes/${f} must default-export a route module`);
    out.push({ name: f.replace(/\.(ts|js)$/, ''), register: mod.default });
  }
  return out;
}
