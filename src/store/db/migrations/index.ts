/**
 * The ordered list of migrations. Add new ones at the end with the next version number;
 * never edit one that has shipped (docs/adr/0002-additive-migrations.md).
 */
import type { Migration } from '../migrator.js';
import { migration0001 } from './0001_initial.js';
import { migration0003 } from './0003_queue.js';
import { migration0004 } from './0004_mailbox_state.js';
import { migration0006 } from './0006_text_index_map.js';
import { migration0007 } from './0007_auth_failures.js';
import { migration0008 } from './0008_api_auth.js';
import { migration0009 } from './0009_message_list.js';
import { migration0010 } from './0010_hook_breakers.js';
import { migration0011 } from './0011_plugins.js';
import { migration0012 } from './0012_outbound.js';
import { migration0013 } from './0013_queue_outbox.js';

export const migrations: Migration[] = [migration0001, migration0003, migration0004, migration0006, migration0007, migration0008, migration0009, migration0010, migration0011, migration0012, migration0013];
