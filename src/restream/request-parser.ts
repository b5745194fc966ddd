/**
 * Incremental parser for what an RTSP client sends the re-stream server: requests, and interleaved
 * `$` frames (RTCP receiver reports over TCP) mixed in between them. Everything is bounded: a peer
 * can never make the server hold more than `maxHeaderBytes + maxBodyBytes` (or one interleaved
 * frame) of unparsed input, and any framing error is fatal for the connection, because once the
 * framing is lost nothing after it can be trusted.
 */

export interface RtspRequest {
  method: string;
  uri: string;
  /** Header names lower-cased; a repeated header keeps its first value (none we read may repeat). */
  headers: ReadonlyMap<string, string>;
  body: Buffer;
}

export type ClientMessage =
  | { type: 'request'; request: RtspRequest }
  | { type: 'interleaved'; channel: number; data: Buffer }
  | { type: 'error'; status: number; reason: string; cseq?: string };

export interface ParserLimits {
  maxHeaderBytes: number;
  maxBodyBytes: number;
  maxHeaderLines: number;
}

const DOLLAR = 0x24;
const CR = 0x0d;
const LF = 0x0a;
const METHOD = /^[A-Za-z_-]{1,32}$/;
const VERSION = /^RTSP\/(\d)\.(\d)$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export class RtspRequestParser {
  private buffer: Buffer = Buffer.alloc(0);
  private failed = false;

  constructor(private readonly limits: ParserLimits) {}

  /** Bytes received but not yet parsed: part of a request or of an interleaved frame. */
  get pendingBytes(): number {
    return this.buffer.length;
  }

  /** Feeds received bytes; returns every complete message. After an `error` nothing more is parsed. */
  push(chunk: Buffer): ClientMessage[] {
    if (this.failed) return [];
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const out: ClientMessage[] = [];
    for (;;) {
      const message = this.next();
      if (!message) break;
      out.push(message);
      if (message.type === 'error') {
        this.failed = true;
        this.buffer = Buffer.alloc(0);
        break;
      }
    }
    return out;
  }

  private next(): ClientMessage | undefined {
    // Clients may send stray CRLFs between messages (RFC 2326 allows it); skip them.
    let start = 0;
    while (start < this.buffer.length && (this.buffer[start] === CR || this.buffer[start] === LF)) start++;
    if (start > 0) this.buffer = this.buffer.subarray(start);
    if (this.buffer.length === 0) return undefined;

    if (this.buffer[0] === DOLLAR) {
      if (this.buffer.length < 4) return undefined;
      const channel = this.buffer[1]!;
      const length = this.buffer.readUInt16BE(2);
      if (this.buffer.length < 4 + length) return undefined;
      // Copy: the receive buffer is reused by later concatenations and the frame may be kept.
      const data = Buffer.from(this.buffer.subarray(4, 4 + length));
      this.buffer = this.buffer.subarray(4 + length);
      return { type: 'interleaved', channel, data };
    }

    const headerEnd = findHeaderEnd(this.buffer, this.limits.maxHeaderBytes);
    if (headerEnd === undefined) {
      if (this.buffer.length > this.limits.maxHeaderBytes) {
        return { type: 'error', status: 400, reason: 'Request header too large', ...cseqOf(this.buffer) };
      }
      return undefined;
    }
    const head = this.buffer.subarray(0, headerEnd.index).toString('latin1');
    const parsed = parseHead(head, this.limits.maxHeaderLines);
    if ('status' in parsed) return { type: 'error', ...parsed };

    const lengthText = parsed.headers.get('content-length');
    let bodyLength = 0;
    if (lengthText !== undefined) {
      if (!/^\d{1,10}$/.test(lengthText)) {
        return { type: 'error', status: 400, reason: 'Invalid Content-Length', ...cseqFrom(parsed.headers) };
      }
      bodyLength = Number(lengthText);
      if (bodyLength > this.limits.maxBodyBytes) {
        return { type: 'error', status: 413, reason: 'Request Entity Too Large', ...cseqFrom(parsed.headers) };
      }
    }
    const total = headerEnd.index + headerEnd.length + bodyLength;
    if (this.buffer.length < total) return undefined;
    const body = Buffer.from(this.buffer.subarray(headerEnd.index + headerEnd.length, total));
    this.buffer = this.buffer.subarray(total);
    return { type: 'request', request: { method: parsed.method, uri: parsed.uri, headers: parsed.headers, body } };
  }
}

/** Finds the blank line ending the header block (CRLFCRLF, or bare LFLF from sloppy clients). */
function findHeaderEnd(buffer: Buffer, limit: number): { index: number; length: number } | undefined {
  const end = Math.min(buffer.length, limit + 4);
  for (let i = 0; i < end - 1; i++) {
    if (buffer[i] !== LF) continue;
    if (buffer[i + 1] === LF) return { index: i, length: 2 };
    if (buffer[i + 1] === CR && buffer[i + 2] === LF) return { index: i, length: 3 };
  }
  return undefined;
}

type Head = { method: string; uri: string; headers: Map<string, string> };
type HeadError = { status: number; reason: string; cseq?: string };

function parseHead(text: string, maxLines: number): Head | HeadError {
  const lines = text.split(/\r?\n/);
  const requestLine = lines[0] ?? '';
  const parts = requestLine.split(' ');
  const headers = new Map<string, string>();
  let last: string | undefined;
  if (lines.length - 1 > maxLines) return { status: 400, reason: 'Too many header lines' };
  for (const line of lines.slice(1)) {
    if (line.length === 0) continue;
    if ((line[0] === ' ' || line[0] === '\t') && last !== undefined) {
      // An obsolete continuation line folds into the previous header's value.
      headers.set(last, `${headers.get(last) ?? ''} ${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).trim() : '';
    if (!HEADER_NAME.test(name)) return { status: 400, reason: 'Malformed header line', ...cseqFrom(headers) };
    last = name.toLowerCase();
    if (!headers.has(last)) headers.set(last, line.slice(colon + 1).trim());
  }
  if (parts.length !== 3 || !METHOD.test(parts[0]!) || parts[1]!.length === 0) {
    return { status: 400, reason: 'Malformed request line', ...cseqFrom(headers) };
  }
  const version = VERSION.exec(parts[2]!);
  if (!version) return { status: 400, reason: 'Malformed request line', ...cseqFrom(headers) };
  if (version[1] !== '1') return { status: 505, reason: 'RTSP Version Not Supported', ...cseqFrom(headers) };
  if (!headers.has('cseq') || !/^\d{1,10}$/.test(headers.get('cseq')!)) {
    return { status: 400, reason: 'Missing or invalid CSeq', ...cseqFrom(headers) };
  }
  return { method: parts[0]!.toUpperCase(), uri: parts[1]!, headers };
}

function cseqFrom(headers: ReadonlyMap<string, string>): { cseq?: string } {
  const value = headers.get('cseq');
  return value !== undefined && /^\d{1,10}$/.test(value) ? { cseq: value } : {};
}

/** Best effort: the CSeq of an oversized request, so the client can match our 400 to it. */
function cseqOf(buffer: Buffer): { cseq?: string } {
  const match = /\r?\ncseq[ \t]*:[ \t]*(\d{1,10})\r?\n/i.exec(buffer.subarray(0, 4096).toString('latin1'));
  return match ? { cseq: match[1]! } : {};
}
