/**
 * The MIME structure (with byte offsets) of a message computed while its bytes stream to the blob
 * store, so that every stored message has `structure_json` without reading the blob again — IMAP
 * FETCH BODYSTRUCTURE/BODY[section] and the API's parts and attachments serve from those offsets.
 */
import { MimeStructureParser } from './parser.js';

export interface StructureTee {
  /** The same bytes, to hand to the blob store. */
  chunks: AsyncIterable<Buffer>;
  /** After `chunks` is consumed: the structure as JSON, or undefined when the parser failed. */
  structureJson(): string | undefined;
}

/**
 * Tees `source` into a MIME structure parser. The parser is meant never to throw; if it does, the
 * message is still stored (its structure can be parsed later) and `onParserError` is told — a
 * defect of ours must not refuse a message.
 */
export function structureTee(source: Buffer | AsyncIterable<Buffer | string | Uint8Array>, onParserError?: (err: unknown) => void): StructureTee {
  const parser = new MimeStructureParser();
  let failed = false;
  let done = false;
  async function* chunks(): AsyncIterable<Buffer> {
    const iterable: AsyncIterable<Buffer | string | Uint8Array> | Buffer[] = Buffer.isBuffer(source) ? [source] : source;
    for await (const c of iterable) {
      const chunk = Buffer.isBuffer(c) ? c : Buffer.from(c);
      if (!failed) {
        try {
          parser.write(chunk);
        } catch (err) {
          failed = true;
          onParserError?.(err);
        }
      }
      yield chunk;
    }
    done = true;
  }
  return {
    chunks: chunks(),
    structureJson: () => {
      if (failed || !done) return undefined;
      try {
        return JSON.stringify(parser.end());
      } catch (err) {
        failed = true;
        onParserError?.(err);
        return undefined;
      }
    },
  };
}
