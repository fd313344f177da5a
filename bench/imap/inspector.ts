/**
 * Forces a full garbage collection in a Node process started with `--inspect=127.0.0.1:PORT`, over
 * the V8 inspector protocol (`HeapProfiler.collectGarbage`), so that its RSS can be read without
 * the garbage a collector keeps for a while: the memory MaiRust really holds for 1 000 idle
 * sessions is tens of MiB, the same order as the garbage of the work before (see README).
 *
 * A minimal WebSocket client (RFC 6455) is enough here: one text frame out (masked, §5.3), text
 * frames in (unmasked from a server, lengths per §5.2), close after the reply.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';

async function debuggerUrl(port: number): Promise<URL> {
  const res = await fetch(`http://127.0.0.1:${port}/json/list`);
  const list = (await res.json()) as { webSocketDebuggerUrl?: string }[];
  const url = list[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no inspector target on 127.0.0.1:${port}`);
  return new URL(url);
}

function frame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x81, 0x80 | len]) : len < 65536 ? Buffer.from([0x81, 0x80 | 126, len >> 8, len & 255]) : null;
  if (!head) throw new Error('inspector message too long');
  const masked = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) masked[i] = payload[i] ^ mask[i & 3];
  return Buffer.concat([head, mask, masked]);
}

/** Text payloads of the complete frames in `buf`, and how many octets they used. */
function readFrames(buf: Buffer): { texts: string[]; used: number } {
  const texts: string[] = [];
  let p = 0;
  while (buf.length - p >= 2) {
    const opcode = buf[p] & 0x0f;
    let len = buf[p + 1] & 0x7f;
    let off = p + 2;
    if (len === 126) {
      if (buf.length < off + 2) break;
      len = buf.readUInt16BE(off);
      off += 2;
    } else if (len === 127) {
      if (buf.length < off + 8) break;
      len = Number(buf.readBigUInt64BE(off));
      off += 8;
    }
    if (buf.length < off + len) break;
    if (opcode === 1) texts.push(buf.toString('utf8', off, off + len));
    p = off + len;
  }
  return { texts, used: p };
}

/** Runs one full GC in the inspected process and resolves when V8 reports it done. */
export async function collectGarbage(inspectPort: number, timeoutMs = 30_000): Promise<void> {
  const url = await debuggerUrl(inspectPort);
  const socket = net.connect({ host: url.hostname, port: Number(url.port) });
  const key = randomBytes(16).toString('base64');
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('inspector: no answer')), timeoutMs);
      let buf = Buffer.alloc(0);
      let upgraded = false;
      socket.on('error', (err) => (clearTimeout(timer), reject(err)));
      socket.on('connect', () => {
        socket.write(
          `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
      socket.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (!upgraded) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          if (!/^HTTP\/1\.1 101/.test(buf.toString('latin1', 0, end))) {
            clearTimeout(timer);
            reject(new Error(`inspector refused the upgrade: ${buf.toString('latin1', 0, Math.min(end, 200))}`));
            return;
          }
          upgraded = true;
          buf = buf.subarray(end + 4);
          socket.write(frame(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' })));
        }
        const { texts, used } = readFrames(buf);
        buf = buf.subarray(used);
        for (const t of texts) {
          const msg = JSON.parse(t) as { id?: number; error?: { message: string } };
          if (msg.id !== 1) continue;
          clearTimeout(timer);
          if (msg.error) reject(new Error(`inspector: ${msg.error.message}`));
          else resolve();
        }
      });
    });
  } finally {
    socket.destroy();
  }
}
