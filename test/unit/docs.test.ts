/**
 * Generated documentation must match the code it is generated from, so docs/ stays true.
 * Regenerate with `npm run docs`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderErDiagram } from '../../src/docs/er-diagram.js';
import { migrations } from '../../src/store/db/migrations/index.js';

const read = (p: string) => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

test('docs/er.md is generated from the current migrations', async () => {
  const expected = await renderErDiagram();
  assert.equal(read('docs/er.md'), expected, 'docs/er.md is stale: run `npm run docs`');
});

test('the ER diagram shows every table that the migrations create', async () => {
  const er = await renderErDiagram();
  for (const table of ['tenants', 'domains', 'users', 'mailboxes', 'aliases', 'folders', 'messages', 'folder_entries', 'queue_jobs', 'audit_log']) {
    assert.match(er, new RegExp(`^  ${table} \\{`, 'm'), table);
  }
  assert.match(er, /tenants \|\|--o\{ domains : "tenant_id"/);
});

test('migration versions are unique and ascending in the list', () => {
  const versions = migrations.map((m) => m.version);
  assert.deepEqual([...versions].sort((a, b) => a - b), versions);
  assert.equal(new Set(versions).size, versions.length);
});
