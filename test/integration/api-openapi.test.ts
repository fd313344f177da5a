/**
 * The OpenAPI document of the REST API (SPEC §11: "OpenAPI 3.1 at /api/v1/openapi.json, interactive
 * docs at /api/v1/docs"):
 *
 *  - it is public, declares 3.1 and passes the OpenAPI 3.1 schema (@seriousme/openapi-schema-validator),
 *    with every `$ref` resolvable;
 *  - coverage both ways: every route Fastify registers under /api/v1 is in it with the same method and
 *    path, and nothing else is — except the routes that document the API itself (the document, the
 *    docs UI) and the CORS preflight handler, which are the only hidden routes;
 *  - every operation has a summary, tags, a 2xx response with a schema (the `{"data": …}` envelope
 *    for JSON), declares its path parameters, and — unless public — documents 401 and 403 with the
 *    error envelope; public operations say they need no credential (`security: []`);
 *  - the docs page is HTML and every asset it references, and the document it loads, are served.
 *
 * The routes are collected with an `onRoute` hook on a second server built exactly like the harness's
 * (createHttpServer + mountApi over the same dependencies): hooks cannot be added to a server that
 * has started. That second list is then checked against the harness's own server with `hasRoute`,
 * so both agree on what the API is.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { Validator } from '@seriousme/openapi-schema-validator';
import { mountApi } from '../../src/app/api.js';
import { createHttpServer } from '../../src/http/server.js';
import { createHealth } from '../../src/observability/health.js';
import { startApi, type ApiHarness } from '../support/api.js';

const PREFIX = '/api/v1';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

interface RegisteredRoute {
  method: string;
  url: string;
  public: boolean;
  hidden: boolean;
}

/** Fastify's `/a/:id/b` as an OpenAPI path template `/a/{id}/b`. */
function openapiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** The routes that document the API itself, and CORS's preflight handler: the only ones left out. */
function isSelfDocumenting(r: { method: string; url: string }): boolean {
  return (
    r.url === `${PREFIX}/openapi.json` ||
    r.url === `${PREFIX}/docs` ||
    r.url.startsWith(`${PREFIX}/docs/`) ||
    // @fastify/cors answers preflights from one catch-all route of the prefixed plugin.
    (r.method === 'OPTIONS' && (r.url === `${PREFIX}*` || r.url === `${PREFIX}/*`))
  );
}

/** Follows a local `$ref` (`#/components/schemas/Error`) to its target. */
function deref(doc: any, node: any): any {
  let cur = node;
  for (let i = 0; cur && typeof cur === 'object' && typeof cur.$ref === 'string' && i < 10; i++) {
    const ref: string = cur.$ref;
    assert.ok(ref.startsWith('#/'), `only local references are expected, got ${ref}`);
    cur = ref
      .slice(2)
      .split('/')
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce((o: any, k) => (o === undefined ? undefined : o[k]), doc);
    assert.ok(cur !== undefined, `$ref ${ref} does not resolve`);
  }
  return cur;
}

/** Every `$ref` string anywhere in a JSON value. */
function refsIn(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) refsIn(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else refsIn(v, out);
    }
  }
  return out;
}

function isErrorEnvelope(doc: any, schema: any): boolean {
  const s = deref(doc, schema);
  const error = s?.properties?.error ? deref(doc, s.properties.error) : undefined;
  return !!error && ['code', 'message', 'details'].every((k) => error.properties?.[k] !== undefined) && (s.required ?? []).includes('error');
}

describe('api: OpenAPI document', () => {
  let api: ApiHarness;
  let probe: FastifyInstance;
  let doc: any;
  let docHeaders: Record<string, unknown>;
  const registered: RegisteredRoute[] = [];

  before(async () => {
    api = await startApi();
    const res = await api.call('GET', `${PREFIX}/openapi.json`);
    assert.equal(res.status, 200, res.body);
    doc = res.json;
    docHeaders = res.headers;

    probe = createHttpServer({
      logger: api.app.logger,
      metrics: api.app.metrics,
      health: createHealth({}),
      bodyLimitBytes: api.app.config.api.body_limit_bytes,
    });
    probe.addHook('onRoute', (route: RouteOptions) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const cfg = (route.config ?? {}) as { public?: boolean };
      const hidden = (route.schema as { hide?: boolean } | undefined)?.hide === true;
      for (const m of methods) registered.push({ method: String(m).toUpperCase(), url: route.url, public: cfg.public === true, hidden });
    });
    await mountApi(probe, api.deps);
    await probe.ready();
  });
  after(async () => {
    await probe?.close();
    await api?.close();
  });

  /** The documented operations as `METHOD /path` → operation object. */
  function documentedOperations(): Map<string, any> {
    const ops = new Map<string, any>();
    for (const [path, item] of Object.entries<any>(doc.paths ?? {})) {
      for (const m of METHODS) if (item[m]) ops.set(`${m.toUpperCase()} ${path}`, item[m]);
    }
    return ops;
  }

  /** Routes that must be documented: everything under /api/v1 but HEAD twins and the self-documenting ones. */
  function apiRoutes(): RegisteredRoute[] {
    return registered.filter((r) => r.url.startsWith(PREFIX) && r.method !== 'HEAD' && !isSelfDocumenting(r));
  }

  test('the document is public, JSON, OpenAPI 3.1, and valid against the OpenAPI 3.1 schema', async () => {
    // Fetched in before() with no credential at all.
    assert.match(String(docHeaders['content-type']), /^application\/json/);
    assert.match(doc.openapi, /^3\.1\.\d+$/);
    assert.equal(typeof doc.info?.title, 'string');
    assert.equal(typeof doc.info?.version, 'string');

    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    assert.equal(result.valid, true, `OpenAPI validation errors: ${JSON.stringify(result.errors, null, 1)?.slice(0, 4000)}`);
    assert.equal(validator.version, '3.1');
    // Dereferencing the whole document fails on any reference that points nowhere.
    assert.doesNotThrow(() => validator.resolveRefs());
    const refs = refsIn(doc);
    assert.ok(refs.length > 0, 'the shared error schema is referenced');
    for (const ref of new Set(refs)) deref(doc, { $ref: ref });
  });

  test('every route registered under /api/v1 is documented with its method, and nothing else is', () => {
    const routes = apiRoutes();
    assert.ok(routes.length >= 30, `expected the API's routes, found ${routes.length}`);
    // Sanity: the collection sees what the harness server serves (same wiring, same route set).
    for (const r of registered.filter((x) => x.url.startsWith(PREFIX))) {
      assert.ok(api.server.hasRoute({ method: r.method as any, url: r.url }), `harness server lacks ${r.method} ${r.url}`);
    }

    const ops = documentedOperations();
    const expected = new Set(routes.map((r) => `${r.method} ${openapiPath(r.url)}`));
    const missing = [...expected].filter((k) => !ops.has(k));
    assert.deepEqual(missing, [], 'routes missing from the OpenAPI document');
    const extra = [...ops.keys()].filter((k) => !expected.has(k));
    assert.deepEqual(extra, [], 'documented operations that no route serves');

    // The only hidden routes are those documenting the API itself; no API route hides from the document.
    const hidden = registered.filter((r) => r.url.startsWith(PREFIX) && r.hidden && r.method !== 'HEAD');
    assert.deepEqual(hidden.filter((r) => !isSelfDocumenting(r)).map((r) => `${r.method} ${r.url}`), []);
    assert.ok(hidden.some((r) => r.url === `${PREFIX}/openapi.json`), 'the document itself is hidden');
    assert.ok(!Object.keys(doc.paths).some((p) => p.startsWith(`${PREFIX}/docs`) || p === `${PREFIX}/openapi.json`));
  });

  test('every operation has a summary, tags, a 2xx response schema and its path parameters', () => {
    const problems: string[] = [];
    for (const [key, op] of documentedOperations()) {
      if (typeof op.summary !== 'string' || op.summary.trim() === '') problems.push(`${key}: no summary`);
      if (!Array.isArray(op.tags) || op.tags.length === 0 || !op.tags.every((t: unknown) => typeof t === 'string' && t !== '')) problems.push(`${key}: no tags`);

      const responses = op.responses ?? {};
      const ok = Object.keys(responses).filter((s) => /^2\d\d$/.test(s));
      if (ok.length === 0) problems.push(`${key}: no 2xx response`);
      for (const status of ok) {
        if (status === '204') continue; // no content, so no schema
        const content = deref(doc, responses[status]).content ?? {};
        const media = Object.keys(content);
        if (media.length === 0) {
          problems.push(`${key}: ${status} has no content schema`);
          continue;
        }
        for (const m of media) {
          const schema = content[m].schema ? deref(doc, content[m].schema) : undefined;
          if (!schema) problems.push(`${key}: ${status} ${m} has no schema`);
          // JSON successes are the SPEC §11 envelope.
          else if (/json/.test(m) && !(schema.properties?.data && (schema.required ?? []).includes('data'))) problems.push(`${key}: ${status} is not the {"data": …} envelope`);
        }
      }

      // OpenAPI 3.1 §4.8.12.1: every template expression is a required path parameter.
      const path = key.slice(key.indexOf(' ') + 1);
      const params = (op.parameters ?? []).map((p: any) => deref(doc, p));
      for (const [, name] of path.matchAll(/\{([^}]+)\}/g)) {
        const p = params.find((x: any) => x.in === 'path' && x.name === name);
        if (!p || p.required !== true) problems.push(`${key}: path parameter {${name}} not declared as required`);
      }
    }
    assert.deepEqual(problems, []);
  });

  test('non-public operations document 401 and 403 with the error envelope; public ones need no credential', () => {
    const ops = documentedOperations();
    const problems: string[] = [];
    let publicCount = 0;
    for (const r of apiRoutes()) {
      const key = `${r.method} ${openapiPath(r.url)}`;
      const op = ops.get(key);
      if (!op) continue; // reported by the coverage test
      if (r.public) {
        publicCount++;
        // A public operation (login, refresh, emergency access) must not appear to need the
        // document-wide bearer/session requirement.
        if (!Array.isArray(op.security) || op.security.length !== 0) problems.push(`${key}: public but does not declare security: []`);
        continue;
      }
      for (const status of ['401', '403']) {
        const res = op.responses?.[status];
        const schema = res ? deref(doc, res).content?.['application/json']?.schema : undefined;
        if (!schema || !isErrorEnvelope(doc, schema)) problems.push(`${key}: no ${status} error response`);
      }
      if (op.security !== undefined && Array.isArray(op.security) && op.security.length === 0) problems.push(`${key}: needs a credential but declares security: []`);
    }
    assert.ok(publicCount >= 2, 'login and refresh are public');
    assert.deepEqual(problems, []);
    // The document-wide requirement names the schemes it defines.
    for (const req of doc.security ?? []) for (const name of Object.keys(req)) assert.ok(doc.components?.securitySchemes?.[name], `security scheme ${name} is defined`);
  });

  test('GET /api/v1/docs serves HTML whose assets and document all load', async () => {
    for (const page of [`${PREFIX}/docs`, `${PREFIX}/docs/`]) {
      const res = await api.call('GET', page);
      assert.equal(res.status, 200, `${page}: ${res.body.slice(0, 200)}`);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      assert.match(res.body, /<div id="swagger-ui">/);
      const base = new URL(page, 'http://mail.test');
      const assets = [...res.body.matchAll(/\b(?:href|src)="([^"]+)"/g)].map((m) => new URL(m[1], base));
      assert.ok(assets.some((u) => u.pathname.endsWith('.js')), 'the page loads scripts');
      for (const u of assets) {
        const a = await api.call('GET', u.pathname);
        assert.equal(a.status, 200, `${page} references ${u.pathname}, which answers ${a.status}`);
      }
    }
    // The initializer loads `./json` relative to the page: the same document as /openapi.json.
    const json = await api.call('GET', `${PREFIX}/docs/json`);
    assert.equal(json.status, 200);
    assert.deepEqual(json.json, doc);
  });
});
