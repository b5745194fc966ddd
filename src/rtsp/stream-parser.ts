import { RtspHeaders } from './headers.js';

/**
 * Incremental parser for what an RTSP server writes on the control connection: responses, requests
 * the server sends to us (some cameras send OPTIONS or GET_PARAMETER), and `$`-framed interleaved
 * RTP/RTCP, in any mix and split at any byte across TCP reads.
 *
 * The parser never trusts a length it reads: header sections, bodies and frames are bounded, so a
 * hostile or broken peer gets a `StreamParseError`, never unbounded buffering.
 */

export interface ParsedResponse {
  kind: 'response';
  version: string;
  status: number;
  reason: string;
  headers: RtspHeaders;
  body: Buffer;
}

export interface ParsedRequest {
  kind: 'request';
  method: string;
  uri: string;
  version: string;
  headers: RtspHeaders;
  body: Buffer;
}

export interface InterleavedFrame {
  kind: 'interleaved';
  channel: number;
  /** A view into the received data; not copied. */
  data: Buffer;
}

export type StreamItem = ParsedResponse | ParsedRequest | InterleavedFrame;

export interface StreamParserLimits {
  /** Largest start line + header section, terminating blank line included. */
  maxHeaderBytes: number;
  maxHeaderLines: number;
  /** Largest Content-Length accepted (an SDP is a few KiB). */
  maxBodyBytes: number;
  /** Largest interleaved frame (the format allows 65535). */
  maxFrameBytes: number;
  /**
   * Consecutive CR/LF bytes skipped between messages. Some cameras end a body with a stray CRLF;
   * an endless stream of them is an attack, not a quirk.
   */
  maxBlankBytes: number;
}

export const DEFAULT_STREAM_LIMITS: StreamParserLimits = {
  maxHeaderBytes: 64 * 1024,
  maxHeaderLines: 256,
  maxBodyBytes: 1024 * 1024,
  maxFrameBytes: 65535,
  maxBlankBytes: 1024,
};

export class StreamParseError extends Error {
  override readonly name = 'StreamParseError';
}

const DOLLAR = 0x24;
const CR = 0x0d;
const LF = 0x0a;

const STATUS_LINE = /^(RTSP\/\d+\.\d+)[ \t]+(\d{3})(?:[ \t]+(.*))?$/;
const REQUEST_LINE = /^([A-Z][A-Z_-]*)[ \t]+(\S+)[ \t]+(RTSP\/\d+\.\d+)$/;

type State =
  | { name: 'idle' }
  /** `scanned`: bytes of this message already searched for the blank line, so no byte is searched twice. */
  | { name: 'head'; scanned: number; startChecked: boolean }
  | { name: 'body'; head: Omit<ParsedResponse, 'body'> | Omit<ParsedRequest, 'body'>; length: number }
  | { name: 'failed'; error: StreamParseError };

export class RtspStreamParser {
  private readonly limits: StreamParserLimits;
  private buffer: Buffer = Buffer.alloc(0);
  private offset = 0;
  private state: State = { name: 'idle' };
  private blankRun = 0;

  constructor(limits: Partial<StreamParserLimits> = {}) {
    this.limits = { ...DEFAULT_STREAM_LIMITS, ...limits };
  }

  /** Bytes held while waiting for the rest of a message; bounded by the limits. */
  get bufferedBytes(): number {
    return this.buffer.length - this.offset;
  }

  /**
   * Feeds received bytes; calls `emit` for every complete item, in order. Throws `StreamParseError`
   * when the stream is not RTSP; the parser then stays failed (the connection must be dropped,
   * since there is no reliable way to find the next message boundary).
   */
  push(chunk: Buffer, emit: (item: StreamItem) => void): void {
    if (this.state.name === 'failed') throw this.state.error;
    if (this.offset >= this.buffer.length) {
      this.buffer = chunk;
    } else {
      this.buffer = Buffer.concat([this.buffer.subarray(this.offset), chunk]);
    }
    this.offset = 0;
    try {
      for (;;) {
        const item = this.next();
        if (!item) break;
        emit(item);
      }
    } catch (err) {
      if (err instanceof StreamParseError) {
        this.state = { name: 'failed', error: err };
        this.buffer = Buffer.alloc(0);
        this.offset = 0;
      }
      throw err;
    }
    if (this.offset >= this.buffer.length) {
      this.buffer = Buffer.alloc(0);
      this.offset = 0;
    }
  }

  private fail(message: string): never {
    throw new StreamParseError(message);
  }

  private next(): StreamItem | undefined {
    for (;;) {
      const available = this.buffer.length - this.offset;
      switch (this.state.name) {
        case 'failed':
          throw this.state.error;
        case 'idle': {
          if (available === 0) return undefined;
          const first = this.buffer[this.offset]!;
          if (first === CR || first === LF) {
            // Tolerated between messages (cameras add them after bodies), but bounded.
            this.offset++;
            if (++this.blankRun > this.limits.maxBlankBytes) this.fail('endless blank lines instead of an RTSP message');
            continue;
          }
          this.blankRun = 0;
          if (first === DOLLAR) {
            const frame = this.interleaved();
            if (frame === 'more') return undefined;
            if (frame === 'skip') continue;
            return frame;
          }
          this.state = { name: 'head', scanned: 0, startChecked: false };
          continue;
        }
        case 'head': {
          if (!this.state.startChecked) {
            // Reject garbage at its first bytes, so a non-RTSP peer fails fast instead of at a timeout.
            const verdict = startVerdict(this.buffer, this.offset);
            if (verdict === 'bad') {
              const sample = this.buffer.subarray(this.offset, this.offset + 8);
              this.fail(`the camera sent data that is not RTSP (starts with 0x${sample.toString('hex')})`);
            }
            if (verdict === 'ok') this.state.startChecked = true;
          }
          const head = this.head(this.state.scanned);
          if (!head) return undefined;
          continue;
        }
        case 'body': {
          const { head, length } = this.state;
          if (available < length) return undefined;
          const body = Buffer.from(this.buffer.subarray(this.offset, this.offset + length));
          this.offset += length;
          this.state = { name: 'idle' };
          return { ...head, body } as StreamItem;
        }
      }
    }
  }

  /** A complete frame, 'more' when bytes are missing, or 'skip' for an empty frame. */
  private interleaved(): InterleavedFrame | 'more' | 'skip' {
    const available = this.buffer.length - this.offset;
    if (available < 4) return 'more';
    const channel = this.buffer[this.offset + 1]!;
    const length = this.buffer.readUInt16BE(this.offset + 2);
    if (length > this.limits.maxFrameBytes) {
      this.fail(`interleaved frame on channel ${channel} claims ${length} bytes (limit ${this.limits.maxFrameBytes})`);
    }
    if (available < 4 + length) return 'more';
    const data = this.buffer.subarray(this.offset + 4, this.offset + 4 + length);
    this.offset += 4 + length;
    if (length === 0) return 'skip';
    // RTP and RTCP both start with version 2. Anything else means the length we trusted was wrong
    // and we are now reading from the middle of something: the stream is out of sync.
    if (length < 4 || data[0]! >> 6 !== 2) {
      this.fail(`interleaved frame on channel ${channel} (${length} bytes) is not RTP/RTCP: the stream is out of sync`);
    }
    return { kind: 'interleaved', channel, data };
  }

  /** Parses the start line and headers once the blank line has arrived. Returns false when incomplete. */
  private head(scanned: number): boolean {
    const start = this.offset;
    let pos = start + scanned;
    let end = -1;
    let endLength = 0;
    for (;;) {
      const nl = this.buffer.indexOf(LF, pos);
      if (nl < 0) {
        pos = this.buffer.length;
        break;
      }
      const after = this.buffer[nl + 1];
      if (after === undefined) {
        pos = nl;
        break;
      }
      if (after === LF) {
        end = nl;
        endLength = 2;
        break;
      }
      if (after === CR) {
        const after2 = this.buffer[nl + 2];
        if (after2 === undefined) {
          pos = nl;
          break;
        }
        if (after2 === LF) {
          end = nl;
          endLength = 3;
          break;
        }
      }
      pos = nl + 1;
    }
    if (end < 0) {
      if (this.buffer.length - start > this.limits.maxHeaderBytes) {
        this.fail(`RTSP header section larger than ${this.limits.maxHeaderBytes} bytes`);
      }
      this.state = { name: 'head', scanned: pos - start, startChecked: this.state.name === 'head' && this.state.startChecked };
      return false;
    }
    if (end + endLength - start > this.limits.maxHeaderBytes) {
      this.fail(`RTSP header section larger than ${this.limits.maxHeaderBytes} bytes`);
    }
    const text = this.buffer.toString('utf8', start, end);
    this.offset = end + endLength;
    const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
    if (lines.length > this.limits.maxHeaderLines + 1) this.fail(`more than ${this.limits.maxHeaderLines} header lines`);
    const startLine = lines[0]!.trim();
    const headers = parseHeaderLines(lines.slice(1));
    const length = contentLength(headers, this.limits.maxBodyBytes);

    let head: Omit<ParsedResponse, 'body'> | Omit<ParsedRequest, 'body'>;
    const status = STATUS_LINE.exec(startLine);
    if (status) {
      head = { kind: 'response', version: status[1]!, status: Number(status[2]), reason: status[3]?.trim() ?? '', headers };
    } else {
      const request = REQUEST_LINE.exec(startLine);
      if (request) {
        head = { kind: 'request', method: request[1]!, uri: request[2]!, version: request[3]!, headers };
      } else if (/^HTTP\/\d/.test(startLine)) {
        this.fail(`the camera answered with HTTP, not RTSP ("${truncate(startLine)}"): is this the RTSP port?`);
      } else {
        this.fail(`malformed RTSP start line "${truncate(startLine)}"`);
      }
    }
    this.state = { name: 'body', head, length };
    return true;
  }
}

/** Header lines to fields: continuation lines (leading space or tab) extend the previous field. */
export function parseHeaderLines(lines: ReadonlyArray<string>): RtspHeaders {
  const fields: Array<[string, string]> = [];
  for (const line of lines) {
    if (line.length === 0) continue;
    if (line[0] === ' ' || line[0] === '\t') {
      const last = fields[fields.length - 1];
      // A continuation with nothing to continue is dropped: there is no field it could belong to.
      if (last) last[1] = `${last[1]} ${line.trim()}`.trim();
      continue;
    }
    const colon = line.indexOf(':');
    // A line without a colon is not a field; cameras with such quirks still work if we skip it.
    if (colon <= 0) continue;
    fields.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return new RtspHeaders(fields);
}

function contentLength(headers: RtspHeaders, max: number): number {
  const values = headers.getAll('content-length').map((v) => v.trim());
  if (values.length === 0) return 0;
  const first = values[0]!;
  if (values.some((v) => v !== first)) failParse(`conflicting Content-Length headers (${values.join(', ')})`);
  if (!/^\d{1,15}$/.test(first)) failParse(`invalid Content-Length "${truncate(first)}"`);
  const n = Number(first);
  if (n > max) failParse(`Content-Length ${n} exceeds the limit of ${max} bytes`);
  return n;
}

function failParse(message: string): never {
  throw new StreamParseError(message);
}

function truncate(s: string, n = 60): string {
  const printable = s.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > n ? `${printable.slice(0, n)}...` : printable;
}

/**
 * A message starts with "RTSP/x.y" or an upper-case method name, then a space, within 16 bytes
 * (the longest method, GET_PARAMETER, has 13 characters).
 */
function startVerdict(buf: Buffer, from: number): 'ok' | 'wait' | 'bad' {
  const end = Math.min(buf.length, from + 16);
  for (let i = from; i < end; i++) {
    const c = buf[i]!;
    const upper = c >= 0x41 && c <= 0x5a;
    if (i === from) {
      if (!upper) return 'bad';
      continue;
    }
    if (c === 0x20 || c === 0x09) return 'ok';
    const digitOrPunct = (c >= 0x30 && c <= 0x39) || c === 0x2f || c === 0x2e || c === 0x5f || c === 0x2d;
    if (!upper && !digitOrPunct) return 'bad';
  }
  return end - from < 16 ? 'wait' : 'bad';
}
