/**
 * Helpers of the suites that drive MaiRust's IMAP and POP3 listeners through real clients
 * (imapflow, Python imaplib/poplib, curl): a runner that keeps the client's output as bytes, an
 * imapflow logger that says when an IDLE has really started, ISO-2022-JP encoding for Japanese
 * test mail, and one nested MIME message whose exact structure the suites compare field by field.
 */
import { spawn } from 'node:child_process';
import iconv from 'iconv-lite';

export interface ClientRun {
  code: number | null;
  /** Standard output as bytes: curl prints message bodies, which are compared byte for byte. */
  stdout: Buffer;
  stderr: string;
}

/** Runs an external client to completion; killed (and failing) after `timeoutMs`. */
export function runClient(command: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<ClientRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs a Python 3 script (`python3 -c`) with string arguments; the script prints JSON on its last line. */
export async function runPython<T = unknown>(script: string, args: (string | number)[]): Promise<T> {
  const r = await runClient('python3', ['-c', script, ...args.map(String)]);
  const text = r.stdout.toString('utf8').trim();
  if (r.code !== 0) throw new Error(`python3 exited ${r.code}\nstdout: ${text}\nstderr: ${r.stderr}`);
  const last = text.split('\n').at(-1) ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`python3 printed no JSON result\nstdout: ${text}\nstderr: ${r.stderr}`);
  }
}

/** curl with a time limit; `-sS` so errors still reach stderr. */
export function curl(args: string[], timeoutMs = 30_000): Promise<ClientRun> {
  return runClient('curl', ['-sS', '--max-time', String(Math.ceil(timeoutMs / 1000)), ...args], { timeoutMs: timeoutMs + 5000 });
}

/**
 * An imapflow `logger` that tells when the server has answered IDLE with its `+` continuation
 * (imapflow sets `client.idling` as soon as it *sends* IDLE, which is too early to prove that a
 * change made afterwards is pushed to an IDLE-ing session, RFC 2177 §3).
 */
export function idleWatcher() {
  const waiters: (() => void)[] = [];
  const noop = () => {};
  const logger = {
    trace: noop,
    info: noop,
    warn: noop,
    error: noop,
    debug(entry: { msg?: string }) {
      if (entry?.msg === 'Initiated IDLE, waiting for server input') for (const w of waiters.splice(0)) w();
    },
  };
  return {
    logger,
    /** Resolves at the next `+` answer to IDLE; call it before starting the IDLE. */
    next(): Promise<void> {
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}

/** Rejects when `p` has not settled after `timeoutMs` (so a missing push fails instead of hanging). */
export function within<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing within ${timeoutMs} ms`)), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * ISO-2022-JP bytes of ASCII + JIS X 0208 text (RFC 1468): iconv-lite has no ISO-2022-JP encoder,
 * but EUC-JP carries the same JIS X 0208 pairs with the high bit set, so each pair is shifted down
 * and wrapped in ESC $ B … ESC ( B.
 */
export function iso2022jp(text: string): Buffer {
  const euc = iconv.encode(text, 'euc-jp');
  const out: number[] = [];
  let jis = false;
  for (let i = 0; i < euc.length; i++) {
    if (euc[i] < 0x80) {
      if (jis) out.push(0x1b, 0x28, 0x42);
      jis = false;
      out.push(euc[i]);
    } else {
      if (!jis) out.push(0x1b, 0x24, 0x42);
      jis = true;
      out.push(euc[i] & 0x7f, euc[i + 1] & 0x7f);
      i++;
    }
  }
  if (jis) out.push(0x1b, 0x28, 0x42);
  return Buffer.from(out);
}

/** An RFC 2047 encoded word in ISO-2022-JP, B encoding (the usual form of Japanese subjects). */
export function encodedWordJp(text: string): string {
  return `=?ISO-2022-JP?B?${iso2022jp(text).toString('base64')}?=`;
}

export const NESTED_SUBJECT = '来週の会議について';
export const NESTED_FROM_NAME = '田中太郎';
export const NESTED_BODY_TEXT = '請求書を添付します。\r\nよろしくお願いします。\r\n';

/**
 * A multipart/mixed message with a multipart/alternative (ISO-2022-JP text + HTML), a
 * message/rfc822 part and a base64 attachment, an ISO-2022-JP encoded subject and From name.
 * Every part body ends with CRLF before the delimiter's own CRLF (RFC 2046 §5.1.1), so body sizes
 * and line counts are unambiguous: they are returned with the bytes.
 */
export function nestedJapaneseMessage(to: string) {
  const text = iso2022jp(NESTED_BODY_TEXT);
  const html = Buffer.from('<p>Invoice attached.</p>\r\n');
  const inner = Buffer.from(
    [
      'From: Bob <bob@example.org>',
      'To: tanaka@example.jp',
      'Subject: inner subject',
      'Date: Mon, 2 Nov 2026 08:00:00 +0000',
      'Message-ID: <inner-1@example.org>',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      'Inner body line 1',
      'Inner body line 2',
      '',
    ].join('\r\n'),
  );
  const innerBody = 'Inner body line 1\r\nInner body line 2\r\n';
  const pdf = Buffer.from('JVBERi0xLjQK\r\n');
  const lines = (...l: string[]) => Buffer.from(l.map((x) => `${x}\r\n`).join(''));
  const raw = Buffer.concat([
    lines(
      `From: ${encodedWordJp(NESTED_FROM_NAME)} <tanaka@example.jp>`,
      `To: Flow User <${to}>`,
      'Cc: carol@example.jp',
      `Subject: ${encodedWordJp(NESTED_SUBJECT)}`,
      'Date: Tue, 3 Nov 2026 09:30:00 +0900',
      'Message-ID: <nested-1@example.jp>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="outer-b"',
      '',
      '--outer-b',
      'Content-Type: multipart/alternative; boundary="alt-b"',
      '',
      '--alt-b',
      'Content-Type: text/plain; charset=ISO-2022-JP',
      'Content-Transfer-Encoding: 7bit',
      '',
    ),
    text,
    lines('', '--alt-b', 'Content-Type: text/html; charset=utf-8', ''),
    html,
    lines('', '--alt-b--', '--outer-b', 'Content-Type: message/rfc822', 'Content-Description: forwarded message', 'Content-Disposition: inline', ''),
    inner,
    lines(
      '',
      '--outer-b',
      'Content-Type: application/pdf; name="report.pdf"',
      'Content-Disposition: attachment; filename="report.pdf"',
      'Content-Transfer-Encoding: base64',
      'Content-ID: <report@example.jp>',
      '',
    ),
    pdf,
    lines('', '--outer-b--'),
  ]);
  const crlfs = (b: Buffer | string) => Buffer.from(b).toString('latin1').split('\r\n').length - 1;
  return {
    raw,
    parts: {
      text: { size: text.length, lines: crlfs(text) },
      html: { size: html.length, lines: crlfs(html) },
      rfc822: { size: inner.length, lines: crlfs(inner) },
      innerText: { size: Buffer.byteLength(innerBody), lines: crlfs(innerBody) },
      pdf: { size: pdf.length },
    },
  };
}
