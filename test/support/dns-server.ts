/**
 * A real authoritative DNS server on 127.0.0.1 for tests (TEST-PEERS.md "DNS"): the server's
 * resolver is pointed at it, so SPF, DKIM, DMARC, ARC and MX lookups exercise the real client
 * (c-ares behind node:dns) over real UDP and TCP instead of a mocked resolver.
 *
 * Written on node:dgram/node:net instead of a DNS library because the tests need exact control
 * that libraries hide: how TXT strings are split into character-strings (RFC 1035 §3.3.14), when
 * a UDP answer is truncated (TC bit, RFC 1035 §4.2.1) so the client retries over TCP
 * (RFC 7766), answering nothing at all ("down": the client must time out), SERVFAIL for one
 * name, and a log of every query to prove what a cache saved. The wire format needed for that
 * (one question, answers of six types) is small.
 *
 * Zones are plain data keyed by owner name and can be changed while the server runs:
 *   server.set('example.test', { TXT: ['v=spf1 ip4:192.0.2.1 -all'], MX: [{ priority: 10, exchange: 'mx.example.test' }] });
 */
import dgram from 'node:dgram';
import net from 'node:net';

export interface MxData {
  priority: number;
  exchange: string;
}

/** The records of one owner name. A TXT entry is one record: a string (split into 255-byte character-strings) or explicit character-strings. */
export interface RecordSet {
  A?: string[];
  AAAA?: string[];
  MX?: MxData[];
  TXT?: (string | string[])[];
  PTR?: string[];
  CNAME?: string;
  /** TTL of every record of this name in seconds (default 300). */
  ttl?: number;
}

export type Zones = Record<string, RecordSet>;

/** What the server does for a name instead of answering it. */
export type Failure = 'servfail' | 'drop';

export interface QueryLogEntry {
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
}

const TYPE_CODES: Record<string, number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, OPT: 41, ANY: 255 };
const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(TYPE_CODES).map(([k, v]) => [v, k]));

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4 } as const;

/** RFC 1035 §4.2.1: a UDP message without EDNS is at most 512 bytes. */
const CLASSIC_UDP_MAX = 512;
/** Largest UDP answer when the client offers EDNS (RFC 6891); 1232 is the DNS Flag Day 2020 value. */
const EDNS_UDP_MAX = 1232;
/** Bytes one TCP connection may buffer before it is closed (one message is at most 65535 + 2). */
const TCP_BUFFER_MAX = 65537;
const TCP_IDLE_MS = 10_000;
const DEFAULT_TTL = 300;

export function normaliseName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** The PTR owner name of an address: `1.2.0.192.in-addr.arpa` or the nibble form under ip6.arpa (RFC 3596 §2.5). */
export function ptrName(ip: string): string {
  if (net.isIPv4(ip)) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  const hex = ipv6Bytes(ip).toString('hex');
  return `${hex.split('').reverse().join('.')}.ip6.arpa`;
}

// ---------------------------------------------------------------------------------------------
// Wire encoding (RFC 1035 §4.1)

function encodeName(name: string): Buffer {
  const n = normaliseName(name);
  const parts: Buffer[] = [];
  if (n !== '') {
    for (const label of n.split('.')) {
      const bytes = Buffer.from(label, 'utf8');
      if (bytes.length === 0 || bytes.length > 63) throw new Error(`dns-server: bad label in ${JSON.stringify(name)}`);
      parts.push(Buffer.from([bytes.length]), bytes);
    }
  }
  parts.push(Buffer.from([0]));
  const out = Buffer.concat(parts);
  if (out.length > 255) throw new Error(`dns-server: name longer than 255 bytes: ${name}`);
  return out;
}

function ipv4Bytes(ip: string): Buffer {
  if (!net.isIPv4(ip)) throw new Error(`dns-server: not an IPv4 address: ${ip}`);
  return Buffer.from(ip.split('.').map(Number));
}

function ipv6Bytes(ip: string): Buffer {
  if (!net.isIPv6(ip)) throw new Error(`dns-server: not an IPv6 address: ${ip}`);
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = ipv4Bytes(v4[1]);
    text = text.slice(0, -v4[1].length) + `${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : new Array(8 - headGroups.length - tailGroups.length).fill('0');
  const groups = [...headGroups, ...zeros, ...tailGroups];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** RFC 1035 §3.3.14: TXT-DATA is one or more <character-string>s, each a length byte and ≤ 255 bytes. */
export function txtCharacterStrings(entry: string | string[]): Buffer[] {
  if (Array.isArray(entry)) {
    return entry.map((s) => {
      const b = Buffer.from(s, 'utf8');
      if (b.length > 255) throw new Error('dns-server: an explicit character-string is longer than 255 bytes');
      return b;
    });
  }
  const bytes = Buffer.from(entry, 'utf8');
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) chunks.push(bytes.subarray(i, i + 255));
  return chunks.length ? chunks : [Buffer.alloc(0)];
}

function rdata(type: string, value: unknown): Buffer {
  switch (type) {
    case 'A':
      return ipv4Bytes(value as string);
    case 'AAAA':
      return ipv6Bytes(value as string);
    case 'MX': {
      const mx = value as MxData;
      const pref = Buffer.alloc(2);
      pref.writeUInt16BE(mx.priority);
      return Buffer.concat([pref, encodeName(mx.exchange)]);
    }
    case 'TXT':
      return Buffer.concat(txtCharacterStrings(value as string | string[]).flatMap((s) => [Buffer.from([s.length]), s]));
    case 'PTR':
    case 'CNAME':
      return encodeName(value as string);
    default:
      throw new Error(`dns-server: cannot encode ${type}`);
  }
}

function resourceRecord(ownerPointer: Buffer, type: string, ttl: number, data: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(TYPE_CODES[type], 0);
  fixed.writeUInt16BE(1, 2); // class IN
  fixed.writeUInt32BE(ttl, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([ownerPointer, fixed, data]);
}

interface Question {
  id: number;
  rd: boolean;
  /** The question section exactly as received (echoed back, RFC 1035 §4.1.2). */
  raw: Buffer;
  name: string;
  type: number;
  /** UDP payload size the client offered in an EDNS OPT record (RFC 6891 §6.2.3), or 0. */
  ednsSize: number;
}

class FormatError extends Error {}

/** Parses a query: header, exactly one question, and an optional OPT record. */
function parseQuery(msg: Buffer): Question {
  if (msg.length < 12) throw new FormatError('short header');
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000) throw new FormatError('not a query');
  if (((flags >> 11) & 0xf) !== 0) throw new FormatError('opcode');
  if (msg.readUInt16BE(4) !== 1) throw new FormatError('question count');
  let off = 12;
  const labels: string[] = [];
  for (;;) {
    if (off >= msg.length) throw new FormatError('name runs past the end');
    const len = msg[off];
    if (len === 0) break;
    if (len > 63) throw new FormatError('compressed or extended label in a question');
    labels.push(msg.subarray(off + 1, off + 1 + len).toString('latin1'));
    off += 1 + len;
  }
  off += 1;
  if (off + 4 > msg.length) throw new FormatError('question runs past the end');
  const type = msg.readUInt16BE(off);
  const raw = msg.subarray(12, off + 4);
  off += 4;
  let ednsSize = 0;
  const arcount = msg.readUInt16BE(10);
  if (arcount > 0 && msg.readUInt16BE(6) === 0 && msg.readUInt16BE(8) === 0) {
    // An OPT record: root owner (one zero byte), TYPE 41, CLASS = the offered UDP size.
    if (msg[off] === 0 && off + 11 <= msg.length && msg.readUInt16BE(off + 1) === TYPE_CODES.OPT) {
      ednsSize = msg.readUInt16BE(off + 3);
    }
  }
  return { id, rd: (flags & 0x0100) !== 0, raw, name: normaliseName(labels.join('.')), type, ednsSize };
}

function header(id: number, rd: boolean, rcode: number, counts: [number, number, number, number], tc = false): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  // QR=1, AA=1 (authoritative), TC, RD copied, RA=0 (no recursion offered).
  h.writeUInt16BE(0x8000 | 0x0400 | (tc ? 0x0200 : 0) | (rd ? 0x0100 : 0) | rcode, 2);
  counts.forEach((c, i) => h.writeUInt16BE(c, 4 + i * 2));
  return h;
}

function optRecord(): Buffer {
  const b = Buffer.alloc(11);
  b[0] = 0; // root
  b.writeUInt16BE(TYPE_CODES.OPT, 1);
  b.writeUInt16BE(EDNS_UDP_MAX, 3);
  // TTL (extended RCODE, version 0, flags) and RDLENGTH stay 0.
  return b;
}

// ---------------------------------------------------------------------------------------------
// The server

export class TestDnsServer {
  readonly host = '127.0.0.1';
  /** Owner name (lower case, no trailing dot) → records. Change with set()/remove() or directly. */
  readonly zones = new Map<string, RecordSet>();
  /** Names answered with SERVFAIL or not at all. */
  readonly failures = new Map<string, Failure>();
  /** Every query received, in order. */
  readonly queries: QueryLogEntry[] = [];
  /** When true nothing is answered: clients time out (a dead or unreachable resolver). */
  down = false;

  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly udp: dgram.Socket,
    private readonly tcp: net.Server,
    readonly port: number,
  ) {}

  /** Starts UDP and TCP listeners on the same free port of 127.0.0.1. */
  static async start(zones: Zones = {}): Promise<TestDnsServer> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const udp = dgram.createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(0, '127.0.0.1', () => resolve());
      });
      const port = udp.address().port;
      const tcp = net.createServer();
      const bound = await new Promise<boolean>((resolve) => {
        tcp.once('error', () => resolve(false));
        tcp.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (!bound) {
        udp.close();
        continue; // the TCP side of this port is taken; try another
      }
      const server = new TestDnsServer(udp, tcp, port);
      for (const [name, set] of Object.entries(zones)) server.set(name, set);
      server.listen();
      return server;
    }
    throw new Error('dns-server: no port free for both UDP and TCP');
  }

  /** `127.0.0.1:PORT`, the form the resolver config takes. */
  get address(): string {
    return `${this.host}:${this.port}`;
  }

  set(name: string, records: RecordSet): void {
    this.zones.set(normaliseName(name), records);
  }

  remove(name: string): void {
    this.zones.delete(normaliseName(name));
  }

  fail(name: string, how: Failure | null): void {
    if (how === null) this.failures.delete(normaliseName(name));
    else this.failures.set(normaliseName(name), how);
  }

  /** Queries received for `name` (and `type`, if given). */
  queryCount(name: string, type?: string): number {
    const n = normaliseName(name);
    return this.queries.filter((q) => q.name === n && (type === undefined || q.type === type)).length;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all([
      new Promise<void>((resolve) => this.udp.close(() => resolve())),
      new Promise<void>((resolve) => this.tcp.close(() => resolve())),
    ]);
  }

  private listen(): void {
    this.udp.on('message', (msg, rinfo) => {
      const reply = this.handle(msg, 'udp');
      if (reply) this.udp.send(reply, rinfo.port, rinfo.address);
    });
    this.tcp.on('connection', (socket) => this.serveTcp(socket));
  }

  /** RFC 1035 §4.2.2 / RFC 7766 §8: each message is preceded by a two-byte length; several may share a connection. */
  private serveTcp(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length > TCP_BUFFER_MAX) {
        socket.destroy();
        return;
      }
      while (buffered.length >= 2) {
        const len = buffered.readUInt16BE(0);
        if (buffered.length < 2 + len) break;
        const msg = buffered.subarray(2, 2 + len);
        buffered = buffered.subarray(2 + len);
        const reply = this.handle(msg, 'tcp');
        if (reply) {
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(reply.length);
          socket.write(Buffer.concat([prefix, reply]));
        }
      }
    });
  }

  /** Builds the reply to one message, or null to stay silent. */
  private handle(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | null {
    let q: Question;
    try {
      q = parseQuery(msg);
    } catch (err) {
      if (!(err instanceof FormatError) || msg.length < 12) return null;
      return header(msg.readUInt16BE(0), false, RCODE.FORMERR, [0, 0, 0, 0]);
    }
    const typeName = TYPE_NAMES[q.type] ?? `TYPE${q.type}`;
    this.queries.push({ name: q.name, type: typeName, transport });
    if (this.down) return null;
    const failure = this.failures.get(q.name);
    if (failure === 'drop') return null;
    const opt = q.ednsSize > 0 ? [optRecord()] : [];
    const reply = (rcode: number, answers: Buffer[], tc = false) =>
      Buffer.concat([header(q.id, q.rd, rcode, [1, answers.length, 0, opt.length], tc), q.raw, ...answers, ...opt]);
    if (failure === 'servfail') return reply(RCODE.SERVFAIL, []);

    const answers: Buffer[] = [];
    let rcode: number = RCODE.NOERROR;
    // Follow CNAMEs inside the zones, as an authoritative server holding both names does
    // (RFC 1034 §4.3.2 step 3a), at most 8 deep so a loop cannot spin.
    let owner = q.name;
    for (let hop = 0; hop < 8; hop++) {
      const set = this.zones.get(owner);
      if (!set) {
        // RFC 8020: NXDOMAIN only when nothing exists at or below the name; an empty
        // non-terminal (e.g. `_domainkey.example.test`) is NOERROR with no data.
        const below = [...this.zones.keys()].some((k) => k.endsWith(`.${owner}`));
        if (!below && hop === 0) rcode = RCODE.NXDOMAIN;
        break;
      }
      const ttl = set.ttl ?? DEFAULT_TTL;
      // The first owner is the question name at offset 12: a compression pointer to it.
      const ownerBytes = hop === 0 ? Buffer.from([0xc0, 12]) : encodeName(owner);
      if (set.CNAME && typeName !== 'CNAME') {
        answers.push(resourceRecord(ownerBytes, 'CNAME', ttl, rdata('CNAME', set.CNAME)));
        owner = normaliseName(set.CNAME);
        continue;
      }
      const values = typeName === 'CNAME' ? (set.CNAME ? [set.CNAME] : []) : (set as Record<string, unknown>)[typeName];
      for (const v of Array.isArray(values) ? values : []) answers.push(resourceRecord(ownerBytes, typeName, ttl, rdata(typeName, v)));
      break;
    }
    const full = reply(rcode, answers);
    const udpMax = q.ednsSize > 0 ? Math.min(Math.max(q.ednsSize, CLASSIC_UDP_MAX), EDNS_UDP_MAX) : CLASSIC_UDP_MAX;
    // RFC 1035 §4.2.1 / RFC 2181 §9: an answer too large for UDP is sent empty with TC set, and
    // the client repeats the query over TCP.
    if (transport === 'udp' && full.length > udpMax) return reply(rcode, [], true);
    return full;
  }
}

export function startDnsServer(zones: Zones = {}): Promise<TestDnsServer> {
  return TestDnsServer.start(zones);
}
