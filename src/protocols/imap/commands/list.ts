/**
 * LIST (RFC 9051 §6.3.9) with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), SPECIAL-USE
 * (RFC 6154) and CHILDREN (RFC 3348); and LSUB (RFC 3501 §6.3.9, IMAP4rev1 only).
 *
 *   LIST [(selection-options)] reference (pattern | (pattern …)) [RETURN (return-options)]
 *
 * - Selection options: SUBSCRIBED, REMOTE (no remote mailboxes here: ignored), RECURSIVEMATCH
 *   (only with another selection option, RFC 5258 §3), SPECIAL-USE (RFC 6154 §3).
 * - Return options: SUBSCRIBED, CHILDREN, SPECIAL-USE, STATUS (items) (RFC 5819 §2).
 * - Every response carries \HasChildren or \HasNoChildren and the special-use attribute: both are
 *   cheap here and RFC 9051 §7.3.1 / RFC 6154 §2 let a server always send them.
 * - `LIST "" ""` answers the delimiter and the root (RFC 9051 §6.3.9).
 * - With SUBSCRIBED and RECURSIVEMATCH, a folder that is not subscribed but has a subscribed
 *   descendant is listed with CHILDINFO ("SUBSCRIBED") (RFC 5258 §3.5).
 */
import type { Folder } from '../../../core/mailbox-state/index.js';
import type { ImapValue } from '../encoder/types.js';
import { asAtom, asList } from '../parser/args.js';
import type { ImapToken } from '../parser/types.js';
import { ImapSyntaxError, type CommandContext, type CommandModule } from '../session/types.js';
import { DELIMITER, listFolders, mailboxOut, rawMailboxArg } from './_mailbox.js';
import { compilePattern, type ListPattern } from './_list-pattern.js';
import { parseStatusItems, sendStatus, type StatusItem } from './_status.js';

interface ListRequest {
  subscribedOnly: boolean;
  recursiveMatch: boolean;
  specialUseOnly: boolean;
  returnSubscribed: boolean;
  statusItems: StatusItem[] | null;
  patterns: ListPattern[];
  /** The single pattern was "" (delimiter query). */
  emptyPattern: boolean;
}

const MAX_PATTERNS = 100;

function parseListRequest(ctx: CommandContext, args: ImapToken[]): ListRequest {
  const req: ListRequest = {
    subscribedOnly: false,
    recursiveMatch: false,
    specialUseOnly: false,
    returnSubscribed: false,
    statusItems: null,
    patterns: [],
    emptyPattern: false,
  };
  let i = 0;
  let extended = false;
  if (args[0]?.type === 'list') {
    extended = true;
    for (const t of args[0].items) {
      const opt = asAtom(t, 'selection option').toUpperCase();
      if (opt === 'SUBSCRIBED') req.subscribedOnly = true;
      else if (opt === 'RECURSIVEMATCH') req.recursiveMatch = true;
      else if (opt === 'SPECIAL-USE') req.specialUseOnly = true;
      else if (opt !== 'REMOTE') throw new ImapSyntaxError(`Unknown LIST selection option ${opt.slice(0, 40)}`);
    }
    if (req.recursiveMatch && !req.subscribedOnly && !req.specialUseOnly) {
      throw new ImapSyntaxError('RECURSIVEMATCH needs another selection option');
    }
    i = 1;
  }
  if (args.length < i + 2) throw new ImapSyntaxError('Missing arguments to LIST');
  const reference = rawMailboxArg(ctx, args[i]);
  const patternArg = args[i + 1];
  const rawPatterns = patternArg.type === 'list' ? patternArg.items : [patternArg];
  if (patternArg.type === 'list') extended = true;
  if (rawPatterns.length === 0 || rawPatterns.length > MAX_PATTERNS) throw new ImapSyntaxError('LIST takes 1 to 100 patterns');
  const patterns = rawPatterns.map((p) => patternText(ctx, p));
  req.emptyPattern = patterns.length === 1 && patterns[0] === '' && !extended;
  req.patterns = patterns.map((p) => compilePattern(reference, p));
  const rest = args.slice(i + 2);
  if (rest.length > 0) {
    if (rest.length !== 2 || asAtom(rest[0], 'RETURN').toUpperCase() !== 'RETURN') throw new ImapSyntaxError('Expected RETURN (options)');
    const opts = asList(rest[1], 'return options');
    for (let k = 0; k < opts.length; k++) {
      const opt = asAtom(opts[k], 'return option').toUpperCase();
      if (opt === 'SUBSCRIBED') req.returnSubscribed = true;
      else if (opt === 'STATUS') req.statusItems = parseStatusItems(opts[++k]);
      else if (opt !== 'CHILDREN' && opt !== 'SPECIAL-USE') throw new ImapSyntaxError(`Unknown LIST return option ${opt.slice(0, 40)}`);
    }
  }
  return req;
}

/** A pattern argument: list-mailbox (atom with wildcards) or a string, mUTF-7 decoded like a name. */
function patternText(ctx: CommandContext, token: ImapToken): string {
  if (token.type !== 'atom' && token.type !== 'string') throw new ImapSyntaxError('Expected a mailbox pattern');
  if (token.type === 'string' && token.value.length === 0) return '';
  return rawMailboxArg(ctx, token);
}

function hasChild(name: string, names: readonly string[]): boolean {
  const prefix = name + DELIMITER;
  return names.some((n) => n.startsWith(prefix));
}

function folderAttributes(folder: Folder, children: boolean, subscribedAttr: boolean): ImapValue[] {
  const attrs: ImapValue[] = [{ atom: children ? '\\HasChildren' : '\\HasNoChildren' }];
  if (folder.specialUse) attrs.push({ atom: folder.specialUse });
  if (subscribedAttr && folder.subscribed) attrs.push({ atom: '\\Subscribed' });
  return attrs;
}

async function list(ctx: CommandContext, args: ImapToken[]): Promise<void> {
  const req = parseListRequest(ctx, args);
  if (req.emptyPattern) {
    ctx.untagged({ atom: 'LIST' }, [{ atom: '\\Noselect' }], DELIMITER, '');
    return;
  }
  const folders = await listFolders(ctx);
  const names = folders.map((f) => f.name);
  const subscribedNames = folders.filter((f) => f.subscribed).map((f) => f.name);
  for (const folder of folders) {
    if (!req.patterns.some((p) => p.matches(folder.name))) continue;
    if (req.specialUseOnly && !folder.specialUse) continue;
    let childInfo = false;
    if (req.subscribedOnly && !folder.subscribed) {
      if (!req.recursiveMatch || !hasChild(folder.name, subscribedNames)) continue;
      childInfo = true;
    }
    const values: ImapValue[] = [
      { atom: 'LIST' },
      folderAttributes(folder, hasChild(folder.name, names), req.subscribedOnly || req.returnSubscribed),
      DELIMITER,
      mailboxOut(ctx, folder.name),
    ];
    if (childInfo) values.push(['CHILDINFO', ['SUBSCRIBED']]);
    ctx.untagged(...values);
    if (req.statusItems) await sendStatus(ctx, folder, req.statusItems);
  }
}

async function lsub(ctx: CommandContext, args: ImapToken[]): Promise<void> {
  if (args.length !== 2) throw new ImapSyntaxError('LSUB takes a reference and a pattern');
  const reference = rawMailboxArg(ctx, args[0]);
  const pattern = compilePattern(reference, patternText(ctx, args[1]));
  const folders = await listFolders(ctx);
  const subscribedNames = folders.filter((f) => f.subscribed).map((f) => f.name);
  for (const folder of folders) {
    if (!pattern.matches(folder.name)) continue;
    if (folder.subscribed) {
      ctx.untagged({ atom: 'LSUB' }, [], DELIMITER, mailboxOut(ctx, folder.name));
    } else if (pattern.text.includes('%') && hasChild(folder.name, subscribedNames)) {
      // RFC 3501 §6.3.9: a `%` match whose inferiors are subscribed is returned as \Noselect.
      ctx.untagged({ atom: 'LSUB' }, [{ atom: '\\Noselect' }], DELIMITER, mailboxOut(ctx, folder.name));
    }
  }
}

const listCommand: CommandModule = {
  names: ['LIST', 'LSUB'],
  states: ['authenticated', 'selected'],
  async handle(ctx, cmd) {
    if (cmd.name === 'LSUB') await lsub(ctx, cmd.args);
    else await list(ctx, cmd.args);
    return { status: 'OK', text: `${cmd.name} completed` };
  },
};

export default listCommand;
