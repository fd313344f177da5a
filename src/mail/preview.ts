/**
 * Plain-text shaping of decoded message bodies: the body preview (SPEC §2 "Body preview": cut on a
 * UTF-8 character boundary, after charset decoding), the byte cap on indexed text, and HTML → text
 * for messages that carry no text/plain part.
 */

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * The longest prefix of `text` whose UTF-8 encoding is at most `maxBytes`, cut between code points
 * (never inside a multi-byte sequence or a surrogate pair). A lone surrogate counts as the 3 bytes
 * of U+FFFD, which is what it becomes when encoded.
 */
export function cutUtf8(text: string, maxBytes: number): string {
  const limit = Math.max(0, Math.floor(maxBytes));
  // Cheap exits: every UTF-16 unit is at most 3 UTF-8 bytes.
  if (text.length * 3 <= limit) return text;
  let bytes = 0;
  let i = 0;
  while (i < text.length) {
    const cp = text.codePointAt(i)!;
    const size = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (bytes + size > limit) break;
    bytes += size;
    i += cp > 0xffff ? 2 : 1;
  }
  return text.slice(0, i);
}

/**
 * A one-line preview: whitespace and control characters collapsed to single spaces, trimmed, then
 * cut so the UTF-8 encoding is at most `maxBytes`. The cut never splits a code point and, where the
 * budget allows, not a grapheme cluster either (an emoji ZWJ sequence or a base letter with its
 * combining marks stays whole or goes whole).
 */
export function makePreview(text: string, maxBytes: number): string {
  const collapsed = text.replace(/[\s\u0000-\u001f\u007f-\u009f\u200b\ufeff]+/gu, ' ').trim();
  const cut = cutUtf8(collapsed, maxBytes);
  if (cut.length === collapsed.length || cut.length === 0) return cut;
  // Back off to the start of the grapheme cluster the cut falls into. Only a window after the cut
  // is segmented: whether a boundary sits at the cut depends on the characters just around it.
  const window = collapsed.slice(0, cut.length + 64);
  const cluster = segmenter.segment(window).containing(cut.length);
  const start = cluster ? cluster.index : cut.length;
  // A single cluster bigger than the whole budget (pathological combining marks) falls back to
  // the code-point cut rather than an empty preview.
  return (start > 0 ? cut.slice(0, start) : cut).trimEnd();
}

const DROPPED_ELEMENTS = new Set(['script', 'style', 'head', 'template', 'title', 'svg', 'object']);
const BLOCK_ELEMENTS = new Set([
  'address', 'article', 'aside', 'blockquote', 'br', 'dd', 'div', 'dl', 'dt', 'fieldset', 'figcaption',
  'figure', 'footer', 'form', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'li', 'main', 'nav',
  'ol', 'p', 'pre', 'section', 'table', 'tr', 'ul',
]);
const CELL_ELEMENTS = new Set(['td', 'th']);

const NAMED_ENTITIES: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', ensp: ' ', emsp: ' ', thinsp: ' ',
  copy: '©', reg: '®', trade: '™', hellip: '…', mdash: '—', ndash: '–', lsquo: '‘', rsquo: '’',
  ldquo: '“', rdquo: '”', laquo: '«', raquo: '»', bull: '•', middot: '·', euro: '€', yen: '¥',
  pound: '£', cent: '¢', times: '×', divide: '÷', deg: '°', plusmn: '±', sect: '§', para: '¶',
  shy: '', zwnj: '\u200c', zwj: '\u200d', iexcl: '¡', iquest: '¿',
};

/**
 * Decodes HTML character references. Numeric references that name no valid scalar value (0,
 * surrogates, beyond U+10FFFF) become U+FFFD as the HTML standard's tokenizer does
 * (WHATWG HTML §13.2.5.80); unknown names stay as written.
 */
export function decodeHtmlEntities(text: string): string {
  return text.replace(/&(?:#(\d{1,8})|#[xX]([0-9a-fA-F]{1,7})|([a-zA-Z][a-zA-Z0-9]{1,31}));?/g, (whole, dec, hex, name) => {
    if (name !== undefined) return NAMED_ENTITIES[name] ?? NAMED_ENTITIES[name.toLowerCase()] ?? whole;
    const cp = dec !== undefined ? Number.parseInt(dec, 10) : Number.parseInt(hex, 16);
    if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return '\ufffd';
    return String.fromCodePoint(cp);
  });
}

/**
 * HTML → plain text for indexing and previews: tags removed, script/style/head content dropped,
 * block elements turned into line breaks, source whitespace collapsed as a browser would, entities
 * decoded. A linear scan rather than regular expressions over whole tags, so hostile markup cannot
 * cause backtracking; it stops once about `maxChars` of output exist.
 */
export function htmlToText(html: string, maxChars = Number.POSITIVE_INFINITY): string {
  const parts: string[] = [];
  let produced = 0;
  const emit = (s: string) => {
    parts.push(s);
    produced += s.length;
  };
  const emitText = (s: string) => emit(s.replace(/[ \t\r\n\f]+/g, ' '));
  let i = 0;
  while (i < html.length && produced < maxChars) {
    const lt = html.indexOf('<', i);
    if (lt < 0) {
      emitText(html.slice(i));
      break;
    }
    if (lt > i) emitText(html.slice(i, lt));
    if (html.startsWith('<!--', lt)) {
      const end = html.indexOf('-->', lt + 4);
      i = end < 0 ? html.length : end + 3;
      continue;
    }
    const tag = /^<(\/?)([a-zA-Z][a-zA-Z0-9-]*)/.exec(html.slice(lt, lt + 64));
    if (!tag && !/^<[!?]/.test(html.slice(lt, lt + 2))) {
      // A "<" that starts no tag ("a < b") is text.
      emit('<');
      i = lt + 1;
      continue;
    }
    i = afterTag(html, lt + 1);
    if (!tag) continue; // <!DOCTYPE …>, <?xml …?>
    const name = tag[2].toLowerCase();
    const closing = tag[1] === '/';
    if (!closing && DROPPED_ELEMENTS.has(name)) {
      // Skip everything up to and including the matching end tag (raw text: no nesting to track).
      const endTag = new RegExp(`</${name}[\\s/>]`, 'ig');
      endTag.lastIndex = i;
      const end = endTag.exec(html);
      i = end ? afterTag(html, end.index + 1) : html.length;
      continue;
    }
    if (BLOCK_ELEMENTS.has(name)) emit('\n');
    else if (CELL_ELEMENTS.has(name) && !closing) emit(' ');
  }
  return decodeHtmlEntities(parts.join(''))
    .split('\n')
    .map((line) => line.replace(/[ \t\u00a0]+/g, ' ').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/**
 * The index just past the ">" that closes the tag starting before `from`. A quote opens an
 * attribute value only right after "=", as in the HTML tokenizer, so a stray apostrophe in an
 * unquoted value cannot swallow the rest of the document.
 */
function afterTag(html: string, from: number): number {
  let quote = '';
  let prev = '';
  for (let j = from; j < html.length; j++) {
    const ch = html[j];
    if (quote) {
      if (ch === quote) quote = '';
      continue;
    }
    if ((ch === '"' || ch === "'") && prev === '=') quote = ch;
    else if (ch === '>') return j + 1;
    if (ch !== ' ' && ch !== '\t' && ch !== '\n' && ch !== '\r') prev = ch;
  }
  return html.length;
}
