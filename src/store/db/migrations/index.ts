/**
 * The ordered list of migrations. Add new ones at the end with the next version number;
 * never edit one that has shipped (docs/adr/0002-additive-migrations.md).
 */
import type { Migration } from '../migrator.js';
import { migration0001 } from './0001_initial.js';

export const migrations: Migration[] = [migration0001];
