/**
 * Renders docs/er.md from the migrations themselves: apply every migration to an in-memory SQLite
 * database and read the resulting tables, columns and foreign keys back. The diagram therefore
 * cannot drift from the schema (test/unit/docs.test.ts checks the committed file is current).
 */
import { openDatabase } from '../store/db/database.js';
import { migrateUp } from '../store/db/migrator.js';

interface Column { name: string; type: string; notnull: number; pk: number }
interface ForeignKey { table: string; from: string; to: string }

export async function renderErDiagram(): Promise<string> {
  const db = await openDatabase('sqlite::memory:');
  try {
    await migrateUp(db);
    const { sql } = await import('kysely');
    const tables = (await sql<{ name: string; sql: string }>`SELECT name, sql FROM sqlite_master WHERE type = 'table'
      AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'message_text_%' ORDER BY name`.execute(db.kysely)).rows;
    const lines = ['erDiagram'];
    const rels: string[] = [];
    for (const t of tables) {
      const cols = (await sql<Column>`SELECT * FROM pragma_table_info(${t.name})`.execute(db.kysely)).rows;
      const fks = (await sql<ForeignKey>`SELECT * FROM pragma_foreign_key_list(${t.name})`.execute(db.kysely)).rows;
      const isVirtual = /CREATE VIRTUAL TABLE/i.test(t.sql);
      lines.push(`  ${t.name} {`);
      for (const c of cols) {
        const fk = fks.some((f) => f.from === c.name);
        const keys = [c.pk ? 'PK' : '', fk ? 'FK' : ''].filter(Boolean).join(',');
        const type = (c.type || (isVirtual ? 'fts5' : 'any')).toLowerCase().replace(/\s+/g, '_');
        lines.push(`    ${type} ${c.name}${keys ? ` ${keys}` : ''}${c.notnull || c.pk ? '' : ' "nullable"'}`);
      }
      lines.push('  }');
      for (const f of fks) rels.push(`  ${f.table} ||--o{ ${t.name} : "${f.from}"`);
    }
    // In PostgreSQL message_text is a table with a foreign key to messages; in SQLite it is an FTS5
    // virtual table (no constraints), so the relation is added here by hand.
    rels.push('  messages ||--o| message_text : "message_id"');
    return [
      '# Entity-relationship diagram',
      '',
      '<!-- Generated from the migrations by `npm run docs`; do not edit by hand. -->',
      '',
      'Every tenant-owned table carries `tenant_id` (SPEC §9). Timestamps are milliseconds since the epoch,',
      'booleans are 0/1 integers, lists are JSON text (docs/adr/0003-portable-schema.md).',
      '`message_text` is an FTS5 trigram table in SQLite and a pg_trgm-indexed table in PostgreSQL.',
      '',
      '```mermaid',
      ...lines,
      ...[...new Set(rels)],
      '```',
      '',
    ].join('\n');
  } finally {
    await db.close();
  }
}
