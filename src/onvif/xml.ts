/**
 * A small, tolerant XML reader for SOAP and WS-Discovery messages.
 *
 * Why not a strict parser: cameras (and the upstream test fixtures) send XML that a namespace-aware
 * parser rejects: prefixes that are never declared, `encoding="utf-16"` on ASCII bytes, typographic
 * quotes in the XML declaration, NUL padding after a UDP payload. ONVIF code only ever needs local
 * names, attributes and text, so this reader ignores prefixes for matching, still resolves namespace
 * URIs where they are declared (the responder needs them to tell Media1 from Media2), and never expands
 * DTD entities (no entity-expansion attacks from the network). Structural errors (mismatched or unclosed
 * tags, no root element) raise an `XmlParseError` with a line and column, never anything else.
 */

export interface XmlElement {
  /** Local name, prefix removed: `tds:GetProfiles` -> `GetProfiles`. */
  readonly name: string;
  /** The prefix as written ('' for none); kept for diagnostics and topic expressions. */
  readonly prefix: string;
  /** Namespace URI when the prefix is declared in scope; `undefined` for undeclared prefixes. */
  readonly namespace: string | undefined;
  /** Attributes keyed by local name (namespace declarations excluded). */
  readonly attributes: ReadonlyMap<string, string>;
  /** Namespace declarations in scope at this element (prefix -> URI, '' for the default namespace). */
  readonly namespaces: ReadonlyMap<string, string>;
  readonly children: XmlElement[];
  /** Direct character data (entities decoded, CDATA included), untrimmed. */
  text: string;
}

export class XmlParseError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(`${message} (line ${line}, column ${column})`);
    this.name = 'XmlParseError';
  }
}

export interface XmlParseOptions {
  /** Documents longer than this (in characters) are refused; SOAP replies are a few kB. */
  maxLength?: number;
  /** Nesting deeper than this is refused, so hostile input cannot exhaust the stack. */
  maxDepth?: number;
}

const DEFAULT_MAX_LENGTH = 16 * 1024 * 1024;
const DEFAULT_MAX_DEPTH = 256;
const EMPTY_SCOPE: ReadonlyMap<string, string> = new Map();

interface MutableElement extends XmlElement {
  readonly qname: string;
  readonly openedAt: number;
}

/** Decodes bytes to text, honouring BOMs but not a declared encoding that contradicts the bytes. */
export function decodeXmlBytes(bytes: Buffer): string {
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    return bytes.subarray(3).toString('utf8');
  }
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString('utf16le');
  if (bytes.length >= 2 && bytes[0] === 0xfe && bytes[1] === 0xff) {
    const swapped = Buffer.from(bytes.subarray(2));
    swapped.swap16();
    return swapped.toString('utf16le');
  }
  // UTF-16 without a BOM shows up as '<' followed by NUL. A file that merely *declares* utf-16 but is
  // ASCII (two of the fixtures, and some encoders' firmware) has no NULs and is read as UTF-8.
  if (bytes.length >= 2 && bytes[0] === 0x3c && bytes[1] === 0x00) return bytes.toString('utf16le');
  return bytes.toString('utf8');
}

const NAMED_ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Decodes the five XML entities and character references; anything else is kept literally. */
export function decodeEntities(raw: string): string {
  if (!raw.includes('&')) return raw;
  return raw.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z][a-zA-Z0-9]{0,31});/g, (all, body: string) => {
    if (body.startsWith('#')) {
      const code = body[1] === 'x' ? Number.parseInt(body.slice(2), 16) : Number.parseInt(body.slice(1), 10);
      if (!Number.isFinite(code) || code < 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return all;
      return String.fromCodePoint(code);
    }
    return NAMED_ENTITIES[body] ?? all;
  });
}

/** Escapes text for element content and attribute values. */
export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function splitQName(qname: string): { prefix: string; local: string } {
  const colon = qname.indexOf(':');
  return colon < 0 ? { prefix: '', local: qname } : { prefix: qname.slice(0, colon), local: qname.slice(colon + 1) };
}

const NAME_START = /[A-Za-z_:\u00C0-\uFFFF]/;

function isSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\n' || ch === '\r' || ch === '\t';
}

/** Parses `input` into its root element. Throws only `XmlParseError`. */
export function parseXml(input: string | Buffer, options: XmlParseOptions = {}): XmlElement {
  const text = typeof input === 'string' ? input : decodeXmlBytes(input);
  const maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH;
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;

  const fail = (message: string, at: number): never => {
    let line = 1;
    let lastBreak = -1;
    for (let i = 0; i < at && i < text.length; i++) {
      if (text.charCodeAt(i) === 10) {
        line++;
        lastBreak = i;
      }
    }
    throw new XmlParseError(message, line, at - lastBreak);
  };

  if (text.length > maxLength) fail(`document too large (${text.length} characters, limit ${maxLength})`, 0);

  const stack: MutableElement[] = [];
  let root: MutableElement | undefined;
  let pos = 0;
  const n = text.length;

  const appendText = (chunk: string, at: number): void => {
    const current = stack[stack.length - 1];
    if (current) {
      current.text += chunk;
      return;
    }
    // Outside the root only whitespace (and the NUL padding some cameras add to UDP packets) is allowed.
    if (chunk.replace(/[\s\uFEFF]/g, '').replaceAll(String.fromCharCode(0), '') !== '') {
      fail(root ? 'text after the root element' : 'text before the root element (not an XML document?)', at);
    }
  };

  while (pos < n) {
    if (root && stack.length === 0) {
      // Once the root element is closed the document is complete; trailing bytes (padding, a second
      // concatenated document) are ignored rather than rejected, which is what tolerant readers do.
      break;
    }
    const lt = text.indexOf('<', pos);
    if (lt < 0) {
      appendText(decodeEntities(text.slice(pos)), pos);
      pos = n;
      break;
    }
    if (lt > pos) appendText(decodeEntities(text.slice(pos, lt)), pos);
    pos = lt;

    if (text.startsWith('<?', pos)) {
      const end = text.indexOf('?>', pos + 2);
      if (end < 0) fail('unterminated processing instruction or XML declaration', pos);
      pos = end + 2;
      continue;
    }
    if (text.startsWith('<!--', pos)) {
      const end = text.indexOf('-->', pos + 4);
      if (end < 0) fail('unterminated comment', pos);
      pos = end + 3;
      continue;
    }
    if (text.startsWith('<![CDATA[', pos)) {
      const end = text.indexOf(']]>', pos + 9);
      if (end < 0) fail('unterminated CDATA section', pos);
      const current = stack[stack.length - 1];
      if (!current) fail('CDATA outside the root element', pos);
      else current.text += text.slice(pos + 9, end);
      pos = end + 3;
      continue;
    }
    if (text.startsWith('<!', pos)) {
      // DOCTYPE (with an optional internal subset): skipped, never expanded.
      let depth = 0;
      let i = pos + 2;
      for (; i < n; i++) {
        const ch = text[i];
        if (ch === '[') depth++;
        else if (ch === ']') depth--;
        else if (ch === '>' && depth <= 0) break;
      }
      if (i >= n) fail('unterminated declaration', pos);
      pos = i + 1;
      continue;
    }
    if (text.startsWith('</', pos)) {
      const end = text.indexOf('>', pos + 2);
      if (end < 0) fail('unterminated closing tag', pos);
      const qname = text.slice(pos + 2, end).trim();
      const current = stack.pop();
      if (!current) fail(`closing tag </${qname}> without an open element`, pos);
      else if (current.qname !== qname) {
        fail(`closing tag </${qname}> does not match <${current.qname}>`, pos);
      }
      pos = end + 1;
      continue;
    }

    // Start tag.
    const tagStart = pos;
    pos++;
    const nameStart = pos;
    while (pos < n && !isSpace(text[pos]) && text[pos] !== '/' && text[pos] !== '>') pos++;
    const qname = text.slice(nameStart, pos);
    if (!qname || !NAME_START.test(qname[0] ?? '')) fail(`invalid tag name '${qname.slice(0, 20)}'`, tagStart);

    const rawAttributes: Array<[string, string]> = [];
    let selfClosing = false;
    for (;;) {
      while (pos < n && isSpace(text[pos])) pos++;
      if (pos >= n) fail(`unterminated start tag <${qname}>`, tagStart);
      const ch = text[pos];
      if (ch === '>') {
        pos++;
        break;
      }
      if (ch === '/') {
        if (text[pos + 1] !== '>') fail(`stray '/' in start tag <${qname}>`, pos);
        selfClosing = true;
        pos += 2;
        break;
      }
      const attrStart = pos;
      while (pos < n && !isSpace(text[pos]) && text[pos] !== '=' && text[pos] !== '>' && text[pos] !== '/') pos++;
      const attrName = text.slice(attrStart, pos);
      if (!attrName) fail(`invalid attribute in <${qname}>`, pos);
      while (pos < n && isSpace(text[pos])) pos++;
      if (text[pos] !== '=') {
        // Attribute without a value (HTML habit): tolerated as an empty string.
        rawAttributes.push([attrName, '']);
        continue;
      }
      pos++;
      while (pos < n && isSpace(text[pos])) pos++;
      const quote = text[pos];
      let value: string;
      if (quote === '"' || quote === "'") {
        const close = text.indexOf(quote, pos + 1);
        if (close < 0) fail(`unterminated value of attribute ${attrName} in <${qname}>`, pos);
        value = text.slice(pos + 1, close);
        pos = close + 1;
      } else {
        const valueStart = pos;
        while (pos < n && !isSpace(text[pos]) && text[pos] !== '>' && !(text[pos] === '/' && text[pos + 1] === '>')) pos++;
        value = text.slice(valueStart, pos);
      }
      rawAttributes.push([attrName, decodeEntities(value)]);
    }

    const parent = stack[stack.length - 1];
    if (root && !parent) fail('a second root element', tagStart);
    if (stack.length >= maxDepth) fail(`elements nested deeper than ${maxDepth}`, tagStart);

    // Scopes are shared with the parent until an element declares something (copy on write).
    let namespaces: ReadonlyMap<string, string> = parent?.namespaces ?? EMPTY_SCOPE;
    let ownScope: Map<string, string> | undefined;
    const attributes = new Map<string, string>();
    for (const [attrName, value] of rawAttributes) {
      if (attrName === 'xmlns' || attrName.startsWith('xmlns:')) {
        ownScope ??= new Map(namespaces);
        ownScope.set(attrName === 'xmlns' ? '' : attrName.slice(6), value);
        namespaces = ownScope;
        continue;
      }
      attributes.set(splitQName(attrName).local, value);
    }
    const { prefix, local } = splitQName(qname);
    const element: MutableElement = {
      name: local,
      prefix,
      namespace: namespaces.get(prefix),
      attributes,
      namespaces,
      children: [],
      text: '',
      qname,
      openedAt: tagStart,
    };
    if (parent) parent.children.push(element);
    else root = element;
    if (!selfClosing) stack.push(element);
  }

  const unclosed = stack[stack.length - 1];
  if (unclosed) fail(`unexpected end of document: <${unclosed.qname}> is not closed`, n);
  if (!root) fail('no root element (empty or not an XML document)', n);
  return root as XmlElement;
}

export type XmlParseResult = { ok: true; root: XmlElement } | { ok: false; error: XmlParseError };

/** Like `parseXml`, but returns the error instead of throwing. */
export function tryParseXml(input: string | Buffer, options?: XmlParseOptions): XmlParseResult {
  try {
    return { ok: true, root: parseXml(input, options) };
  } catch (error) {
    if (error instanceof XmlParseError) return { ok: false, error };
    // parseXml only throws XmlParseError; anything else is a bug worth surfacing as a parse failure too.
    return { ok: false, error: new XmlParseError(error instanceof Error ? error.message : String(error), 0, 0) };
  }
}

// ---------------------------------------------------------------------------------------------------
// Navigation helpers. Names are local names; matching ignores prefixes by design.

/** First direct child with the given local name. */
export function child(element: XmlElement | undefined, name: string): XmlElement | undefined {
  return element?.children.find((c) => c.name === name);
}

/** All direct children with the given local name. */
export function childrenNamed(element: XmlElement | undefined, name: string): XmlElement[] {
  return element ? element.children.filter((c) => c.name === name) : [];
}

/** Follows a chain of direct children: `path(body, 'MediaUri', 'Uri')`. */
export function path(element: XmlElement | undefined, ...names: string[]): XmlElement | undefined {
  let current = element;
  for (const name of names) current = child(current, name);
  return current;
}

/** First descendant (depth first, the element itself excluded) with the given local name. */
export function descendant(element: XmlElement | undefined, name: string): XmlElement | undefined {
  if (!element) return undefined;
  for (const c of element.children) {
    if (c.name === name) return c;
    const deeper = descendant(c, name);
    if (deeper) return deeper;
  }
  return undefined;
}

/** Every descendant with the given local name, in document order. */
export function descendants(element: XmlElement | undefined, name: string, out: XmlElement[] = []): XmlElement[] {
  if (!element) return out;
  for (const c of element.children) {
    if (c.name === name) out.push(c);
    descendants(c, name, out);
  }
  return out;
}

/** Trimmed direct text of an element, `undefined` when the element is missing. */
export function textOf(element: XmlElement | undefined): string | undefined {
  return element ? element.text.trim() : undefined;
}

/** Trimmed text of the child chain, e.g. `textAt(info, 'Manufacturer')`. */
export function textAt(element: XmlElement | undefined, ...names: string[]): string | undefined {
  return textOf(path(element, ...names));
}

/** An attribute by local name. */
export function attr(element: XmlElement | undefined, name: string): string | undefined {
  return element?.attributes.get(name);
}

/**
 * Writes an element back as XML, declaring the namespace of every prefixed element it writes. Used to
 * echo WS-Addressing ReferenceParameters (some cameras put the subscription id there) as headers.
 */
export function serializeXml(element: XmlElement, declared: ReadonlyMap<string, string> = new Map()): string {
  const qname = element.prefix ? `${element.prefix}:${element.name}` : element.name;
  const scope = new Map(declared);
  let declarations = '';
  if (element.namespace !== undefined && scope.get(element.prefix) !== element.namespace) {
    declarations += element.prefix ? ` xmlns:${element.prefix}="${escapeXml(element.namespace)}"` : ` xmlns="${escapeXml(element.namespace)}"`;
    scope.set(element.prefix, element.namespace);
  }
  const attributes = [...element.attributes].map(([k, v]) => ` ${k}="${escapeXml(v)}"`).join('');
  const text = element.children.length > 0 ? element.text.trim() : element.text;
  const inner = escapeXml(text) + element.children.map((c) => serializeXml(c, scope)).join('');
  return inner ? `<${qname}${declarations}${attributes}>${inner}</${qname}>` : `<${qname}${declarations}${attributes}/>`;
}
