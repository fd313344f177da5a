/**
 * What the bench reads about the server processes from /proc (Linux, proc(5)): resident memory
 * (VmRSS), proportional memory (Pss: shared pages divided among the processes that map them,
 * the fair sum for Dovecot's many processes) and CPU time (utime + stime).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null; // the process ended between listing and reading
  }
}

function kibField(text: string | null, field: string): number {
  if (!text) return 0;
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** Resident set size in KiB (VmRSS of /proc/<pid>/status); 0 when the process is gone. */
export function rssKiB(pid: number): number {
  return kibField(read(`/proc/${pid}/status`), 'VmRSS');
}

/** Proportional set size in KiB (/proc/<pid>/smaps_rollup, Linux ≥ 4.14). */
export function pssKiB(pid: number): number {
  return kibField(read(`/proc/${pid}/smaps_rollup`), 'Pss');
}

interface Stat {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime in seconds. */
  cpu: number;
}

function stat(pid: number): Stat | null {
  const s = read(`/proc/${pid}/stat`);
  if (!s) return null;
  // comm is in parentheses and may itself hold spaces or parentheses: split after the last ')'.
  const close = s.lastIndexOf(')');
  const comm = s.slice(s.indexOf('(') + 1, close);
  const f = s.slice(close + 2).split(' ');
  // After comm: state(3) ppid(4) … utime(14) stime(15), so index = field − 3.
  return { pid, ppid: Number(f[1]), comm, cpu: (Number(f[11]) + Number(f[12])) / ticksPerSecond() };
}

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number {
  return stat(pid)?.cpu ?? 0;
}

/** The process and all its descendants, from one scan of /proc. */
export function processTree(rootPid: number): Stat[] {
  const all: Stat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (s) all.push(s);
  }
  const children = new Map<number, Stat[]>();
  for (const s of all) {
    const list = children.get(s.ppid);
    if (list) list.push(s);
    else children.set(s.ppid, [s]);
  }
  const root = all.find((s) => s.pid === rootPid);
  if (!root) return [];
  const out: Stat[] = [];
  const queue = [root];
  while (queue.length) {
    const s = queue.shift()!;
    out.push(s);
    queue.push(...(children.get(s.pid) ?? []));
  }
  return out;
}

export interface MemorySample {
  /** Sum of VmRSS over the counted processes, KiB. */
  rssKiB: number;
  /** Sum of Pss over the counted processes, KiB. */
  pssKiB: number;
  processes: number;
}

/** Memory of the processes of `rootPid`'s tree whose command name passes `filter` (all by default). */
export function treeMemory(rootPid: number, filter: (comm: string) => boolean = () => true): MemorySample {
  let rss = 0;
  let pss = 0;
  let n = 0;
  for (const s of processTree(rootPid)) {
    if (!filter(s.comm)) continue;
    rss += rssKiB(s.pid);
    pss += pssKiB(s.pid);
    n++;
  }
  return { rssKiB: rss, pssKiB: pss, processes: n };
}

/** CPU seconds of the whole tree (processes that already ended are not counted). */
export function treeCpuSeconds(rootPid: number): number {
  return processTree(rootPid).reduce((sum, s) => sum + s.cpu, 0);
}
