/** DATA transparency of the outbound client (RFC 5321 §4.5.2, §2.3.8; SPEC §5.2). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DotStuffTransform, DotStuffer, dotStuff } from '../../src/protocols/smtp/client/dot-stuff.js';

const s = (text: string) => dotStuff(Buffer.from(text, 'latin1')).toString('latin1');

test('a CRLF message gets only the terminating dot', () => {
  assert.equal(s('Subject: x\r\n\r\nbody\r\n'), 'Subject: x\r\n\r\nbody\r\n.\r\n');
});

test('lines starting with a dot get one more (§4.5.2), including the first line and a lone dot', () => {
  assert.equal(s('.hidden\r\n'), '..hidden\r\n.\r\n');
  assert.equal(s('a\r\n.\r\nb\r\n'), 'a\r\n..\r\nb\r\n.\r\n');
  assert.equal(s('a\r\n..x\r\n'), 'a\r\n...x\r\n.\r\n');
  assert.equal(s('a.b\r\n x.\r\n'), 'a.b\r\n x.\r\n.\r\n', 'dots inside a line are untouched');
});

test('bare LF and bare CR become CRLF (§2.3.8), and the dot rule applies after them', () => {
  assert.equal(s('a\nb\n'), 'a\r\nb\r\n.\r\n');
  assert.equal(s('a\rb'), 'a\r\nb\r\n.\r\n');
  assert.equal(s('a\n.b\r.c\r\n.d'), 'a\r\n..b\r\n..c\r\n..d\r\n.\r\n');
  assert.equal(s('a\r\r\n'), 'a\r\n\r\n.\r\n');
  assert.equal(s('\n\n'), '\r\n\r\n.\r\n');
});

test('an unterminated last line gets CRLF before the dot; an empty message is only the dot', () => {
  assert.equal(s('no newline'), 'no newline\r\n.\r\n');
  assert.equal(s('ends with CR\r'), 'ends with CR\r\n.\r\n');
  assert.equal(s(''), '.\r\n');
});

test('8-bit bytes pass through untouched', () => {
  const body = Buffer.from([0x48, 0xe9, 0xff, 0x00, 0x0d, 0x0a, 0x2e, 0x80, 0x0d, 0x0a]);
  assert.deepEqual(dotStuff(body), Buffer.from([0x48, 0xe9, 0xff, 0x00, 0x0d, 0x0a, 0x2e, 0x2e, 0x80, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a]));
});

/** Deterministic PRNG (mulberry32) so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A reference implementation written the slow, obvious way: split into lines, then join. */
function reference(input: Buffer): Buffer {
  const text = input.toString('latin1').replace(/\r\n|\r|\n/g, '\n');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const out = lines.map((l) => (l.startsWith('.') ? `.${l}` : l)).map((l) => `${l}\r\n`).join('');
  return Buffer.from(`${out}.\r\n`, 'latin1');
}

test('seeded fuzz: random chunking gives the same output, equal to the reference', () => {
  const alphabet = [0x2e, 0x2e, 0x0d, 0x0a, 0x0a, 0x0d, 0x41, 0x20, 0xe9, 0x00];
  for (let seed = 1; seed <= 300; seed++) {
    const rand = rng(seed);
    const len = Math.floor(rand() * 300);
    const input = Buffer.alloc(len);
    for (let i = 0; i < len; i++) input[i] = alphabet[Math.floor(rand() * alphabet.length)];
    const expected = reference(input);
    assert.deepEqual(dotStuff(input), expected, `seed ${seed}: whole buffer`);
    for (let round = 0; round < 5; round++) {
      const st = new DotStuffer();
      const out: Buffer[] = [];
      let i = 0;
      while (i < len) {
        const n = 1 + Math.floor(rand() * 8);
        out.push(...st.update(input.subarray(i, i + n)));
        i += n;
      }
      out.push(...st.finish());
      assert.deepEqual(Buffer.concat(out), expected, `seed ${seed} round ${round}: random chunks`);
    }
  }
});

test('the stream form gives the same bytes as the buffer form', async () => {
  const input = Buffer.from('line one\n.two\r\n\r\n.\r\nlast', 'latin1');
  const chunks = [...input].map((b) => Buffer.from([b]));
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), new DotStuffTransform(), async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) out.push(c);
  });
  assert.deepEqual(Buffer.concat(out), dotStuff(input));
  assert.equal(Buffer.concat(out).toString('latin1'), 'line one\r\n..two\r\n\r\n..\r\nlast\r\n.\r\n');
});
