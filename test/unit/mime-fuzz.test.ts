/**
 * Fuzzing the MIME structure parser with seeded random mutations of the fixture corpus: it never
 * throws, every offset lies within the message and every range is ordered, and the structure does
 * not depend on the chunking.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MIME_LIMITS, MimeStructureParser, findPart, headerFieldsOf, listParts, parseMimeStructure, type MimeStructure } from '../../src/mail/mime/index.js';
import { corpus, prng } from '../fixtures/mime/support.js';

const ITERATIONS = 2000;

/** Byte strings that steer a parser into its edge cases when spliced in. */
const TOKENS = ['\r\n', '\n', '\r', '--', '\r\n\r\n', ':', ' ', '\t', '"', ';', '=?UTF-8?B?', '*0*=', "utf-8''%E8", '\x00', '\xff', '(', ')', '\\'];

function mutate(input: Buffer, random: () => number, donors: Buffer[]): Buffer {
  let bytes = Buffer.from(input);
  const int = (n: number) => Math.floor(random() * n);
  const rounds = 1 + int(5);
  for (let r = 0; r < rounds; r++) {
    const at = int(bytes.length + 1);
    switch (int(7)) {
      case 0: // flip a byte
        if (bytes.length > 0) bytes[Math.min(at, bytes.length - 1)] = int(256);
        break;
      case 1: // insert a token
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(TOKENS[int(TOKENS.length)], 'latin1'), bytes.subarray(at)]);
        break;
      case 2: // delete a range
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + int(64))]);
        break;
      case 3: // duplicate a range (repeats delimiters, headers, whole parts)
        {
          const from = int(bytes.length + 1);
          const piece = bytes.subarray(from, from + 1 + int(256));
          bytes = Buffer.concat([bytes.subarray(0, at), piece, bytes.subarray(at)]);
        }
        break;
      case 4: // cut the message short
        bytes = bytes.subarray(0, at);
        break;
      case 5: // a delimiter line of one of the message's own boundaries, maybe closing
        {
          const boundaries = [...bytes.toString('latin1').matchAll(/boundary="?([^";\r\n]+)/gi)].map((m) => m[1]);
          if (boundaries.length > 0) {
            const line = `\r\n--${boundaries[int(boundaries.length)]}${random() < 0.3 ? '--' : ''}\r\n`;
            bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(line, 'latin1'), bytes.subarray(at)]);
          }
        }
        break;
      default: // splice in a piece of another message
        {
          const donor = donors[int(donors.length)];
          const from = int(donor.length + 1);
          bytes = Buffer.concat([bytes.subarray(0, at), donor.subarray(from, from + int(512)), bytes.subarray(at)]);
        }
    }
  }
  return bytes;
}

function checkInvariants(raw: Buffer, s: MimeStructure, label: string): void {
  assert.equal(s.size, raw.length, label);
  const parts = listParts(s.root);
  assert.ok(parts.length <= DEFAULT_MIME_LIMITS.maxParts, label);
  for (const p of parts) {
    const where = `${label} part ${JSON.stringify(p.part)}`;
    assert.ok(p.headerStart >= 0 && p.headerStart <= p.headerEnd, where);
    assert.ok(p.headerEnd <= p.bodyStart && p.bodyStart <= p.bodyEnd && p.bodyEnd <= raw.length, where);
    assert.ok(p.bodyLines >= 0 && p.bodyLines <= p.bodyEnd - p.bodyStart, where);
    assert.ok(/^(|[1-9]\d*(\.[1-9]\d*)*)$/.test(p.part), where);
    if (p.part !== '') {
      // An encapsulated message's root shares its number with the part that holds it.
      const found = findPart(s.root, p.part);
      assert.ok(found === p || found?.message === p, where);
    }
    for (const child of p.children) assert.ok(child.headerStart >= p.bodyStart && child.bodyEnd <= p.bodyEnd, where);
    if (p.message) assert.ok(p.message.headerStart === p.bodyStart && p.message.bodyEnd === p.bodyEnd, where);
    headerFieldsOf(raw, p);
  }
}

test(`${ITERATIONS} seeded mutations of the corpus never throw and give ordered offsets within the message`, () => {
  const messages = corpus().map(([, raw]) => raw);
  const random = prng(20240601);
  for (let i = 0; i < ITERATIONS; i++) {
    const raw = mutate(messages[i % messages.length], random, messages);
    const label = `mutation ${i}`;
    let structure: MimeStructure;
    try {
      structure = parseMimeStructure(raw);
    } catch (error) {
      assert.fail(`${label} threw ${String(error)}; input (base64): ${raw.toString('base64')}`);
    }
    checkInvariants(raw, structure, label);
    // Every tenth input is also fed in random chunks.
    if (i % 10 === 0) {
      const parser = new MimeStructureParser();
      for (let pos = 0; pos < raw.length; ) {
        const n = 1 + Math.floor(random() * 64);
        parser.write(raw.subarray(pos, pos + n));
        pos += n;
      }
      assert.deepEqual(parser.end(), structure, `${label} chunked`);
    }
  }
});
