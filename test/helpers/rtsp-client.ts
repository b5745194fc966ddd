// A deliberately small RTSP client for tests that need to see the wire: raw DESCRIBE
// answers (status, headers, SDP) and the RTP packets themselves over TCP interleaving.
// It is independent of the plugin's own RTSP code on purpose, so it can check it.
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export interface RtspResponse {
  status: number;
  reason: string;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: string;
}

export interface RtspClientOptions {
  /** Override credentials in the URL. */
  user?: string;
  password?: string;
  timeoutMs?: number;
}

export interface RtpPacket {
  channel: number;
  payloadType: number;
  marker: boolean;
  sequence: number;
  timestamp: number;
  ssrc: number;
  payload: Buffer;
  /** performance.now() when the packet arrived. */
  receivedAt: number;
}

export interface SdpMedia {
  kind: string;
  payloadTypes: number[];
  /** a=rtpmap values by payload type, e.g. 'H264/90000'. */
  rtpmap: Record<number, string>;
  /** a=fmtp parameter strings by payload type. */
  fmtp: Record<number, string>;
  control?: string;
}

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** Parses the media sections of an SDP (just what tests need). */
export function parseSdp(sdp: string): SdpMedia[] {
  const media: SdpMedia[] = [];
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith('m=')) {
      const [kind = '', , , ...pts] = line.slice(2).split(' ');
      media.push({ kind, payloadTypes: pts.map(Number), rtpmap: {}, fmtp: {} });
      continue;
    }
    const m = media.at(-1);
    if (!m) continue;
    let match = /^a=rtpmap:(\d+) (.+)$/.exec(line);
    if (match) m.rtpmap[Number(match[1])] = match[2]!;
    match = /^a=fmtp:(\d+) (.+)$/.exec(line);
    if (match) m.fmtp[Number(match[1])] = match[2]!;
    match = /^a=control:(.+)$/.exec(line);
    if (match) m.control = match[1]!;
  }
  return media;
}

/** NAL unit types carried by one H.264 RTP payload (single NAL, STAP-A, or FU-A start). */
export function h264NalTypes(payload: Buffer): number[] {
  if (payload.length === 0) return [];
  const type = payload[0]! & 0x1f;
  if (type >= 1 && type <= 23) return [type];
  if (type === 24) {
    const types: number[] = [];
    for (let i = 1; i + 2 < payload.length; ) {
      const size = payload.readUInt16BE(i);
      types.push(payload[i + 2]! & 0x1f);
      i += 2 + size;
    }
    return types;
  }
  if (type === 28 && payload.length > 1 && (payload[1]! & 0x80) !== 0) return [payload[1]! & 0x1f];
  return [];
}

/** NAL unit types carried by one H.265 RTP payload (single NAL, AP, or FU start). */
export function h265NalTypes(payload: Buffer): number[] {
  if (payload.length < 2) return [];
  const type = (payload[0]! >> 1) & 0x3f;
  if (type < 48) return [type];
  if (type === 48) {
    const types: number[] = [];
    for (let i = 2; i + 3 < payload.length; ) {
      const size = payload.readUInt16BE(i);
      types.push((payload[i + 2]! >> 1) & 0x3f);
      i += 2 + size;
    }
    return types;
  }
  if (type === 49 && payload.length > 2 && (payload[2]! & 0x80) !== 0) return [payload[2]! & 0x3f];
  return [];
}

/** One RTSP connection. Handles Basic and Digest (RFC 2617 without qop) on a 401. */
export class RtspTestClient {
  private readonly socket: Socket;
  private readonly reader = new RtspWireReader({
    onInterleaved: (channel, data) => this.onInterleaved(channel, data),
    onResponse: (response) => this.onResponse(response),
  });
  private cseq = 0;
  private session: string | undefined;
  private authHeader: ((method: string, uri: string) => string) | undefined;
  private waiter: { resolve: (r: RtspResponse) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly packets: RtpPacket[] = [];
  readonly url: string;
  private readonly user: string | undefined;
  private readonly password: string | undefined;
  private readonly timeoutMs: number;

  private constructor(socket: Socket, url: string, user: string | undefined, password: string | undefined, timeoutMs: number) {
    this.socket = socket;
    this.url = url;
    this.user = user;
    this.password = password;
    this.timeoutMs = timeoutMs;
    socket.on('data', (chunk: Buffer) => this.reader.push(chunk));
    socket.on('error', (err) => (this.failure = err));
    socket.on('close', () => {
      this.failure ??= new Error('RTSP connection closed');
      this.waiter?.reject(this.failure);
      this.waiter = undefined;
    });
  }

  /** Connects to the URL's host. Credentials in the URL are used for auth and stripped. */
  static async connect(rawUrl: string, options: RtspClientOptions = {}): Promise<RtspTestClient> {
    const u = new URL(rawUrl);
    const user = options.user ?? (u.username ? decodeURIComponent(u.username) : undefined);
    const password = options.password ?? (u.password ? decodeURIComponent(u.password) : undefined);
    u.username = '';
    u.password = '';
    const socket = connect({ host: u.hostname, port: Number(u.port || 554) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RtspTestClient(socket, u.toString(), user, password, options.timeoutMs ?? 5000);
  }

  /** Sends one request; on 401 with credentials available, retries once authenticated. */
  async request(method: string, uri = this.url, headers: Record<string, string> = {}): Promise<RtspResponse> {
    let res = await this.send(method, uri, headers);
    if (res.status === 401 && this.user !== undefined && this.authHeader === undefined) {
      this.authHeader = this.makeAuth(res.headers['www-authenticate'] ?? '');
      res = await this.send(method, uri, headers);
    }
    return res;
  }

  describe(): Promise<RtspResponse> {
    return this.request('DESCRIBE', this.url, { Accept: 'application/sdp' });
  }

  /**
   * DESCRIBE, SETUP every media over TCP interleaving, PLAY, collect packets for
   * `durationMs`, TEARDOWN. Returns the SDP and every RTP packet (channel 2n = media n).
   */
  async capture(durationMs: number): Promise<RtpCapture> {
    const desc = await this.describe();
    if (desc.status !== 200) throw new Error(`DESCRIBE answered ${desc.status} ${desc.reason}`);
    const base = desc.headers['content-base'] ?? this.url;
    const media = parseSdp(desc.body);
    for (const [i, m] of media.entries()) {
      const control = m.control ?? '';
      const uri = /^rtsps?:/.test(control) ? control : `${base.replace(/\/$/, '')}/${control}`;
      const res = await this.request('SETUP', uri, { Transport: `RTP/AVP/TCP;unicast;interleaved=${2 * i}-${2 * i + 1}` });
      if (res.status !== 200) throw new Error(`SETUP ${uri} answered ${res.status} ${res.reason}`);
      this.session ??= (res.headers['session'] ?? '').split(';')[0];
    }
    const play = await this.request('PLAY', base, { Range: 'npt=0.000-' });
    if (play.status !== 200) throw new Error(`PLAY answered ${play.status} ${play.reason}`);
    const playedAt = performance.now();
    await new Promise((r) => setTimeout(r, durationMs));
    const packets = this.packets.splice(0);
    await this.request('TEARDOWN', base).catch(() => undefined);
    return { sdp: desc.body, media, packets, playedAt };
  }

  close(): void {
    this.socket.destroy();
  }

  private makeAuth(challenge: string): (method: string, uri: string) => string {
    const user = this.user ?? '';
    const password = this.password ?? '';
    if (/^digest/i.test(challenge)) {
      const param = (name: string): string => new RegExp(`${name}="([^"]*)"`, 'i').exec(challenge)?.[1] ?? '';
      const realm = param('realm');
      const nonce = param('nonce');
      return (method, uri) => {
        const response = md5(`${md5(`${user}:${realm}:${password}`)}:${nonce}:${md5(`${method}:${uri}`)}`);
        return `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}"`;
      };
    }
    const basic = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    return () => basic;
  }

  private async send(method: string, uri: string, headers: Record<string, string>): Promise<RtspResponse> {
    if (this.failure) throw this.failure;
    const lines = [`${method} ${uri} RTSP/1.0`, `CSeq: ${++this.cseq}`, 'User-Agent: rtsp-test-client'];
    if (this.session) lines.push(`Session: ${this.session}`);
    if (this.authHeader) lines.push(`Authorization: ${this.authHeader(method, uri)}`);
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    const response = new Promise<RtspResponse>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${method} within ${this.timeoutMs} ms`)), this.timeoutMs);
      this.waiter = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
    this.socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    return response;
  }

  private onInterleaved(channel: number, data: Buffer): void {
    if (channel % 2 === 0 && data.length >= 12) this.packets.push(parseRtp(channel, data));
  }

  private onResponse(response: RtspResponse): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve(response);
  }
}

/**
 * Splits what an RTSP server sends into interleaved packets ('$', channel, 16-bit length, data) and
 * responses (status line, headers, Content-Length body), however the bytes arrive. A request from
 * the server (not expected) is skipped.
 */
export class RtspWireReader {
  private buffer = Buffer.alloc(0);

  constructor(
    private readonly handlers: { onInterleaved(channel: number, data: Buffer): void; onResponse(response: RtspResponse): void },
    /** A header sent more than once: 'last' keeps the last value, 'join' all of them, one per line. */
    private readonly repeatedHeaders: 'last' | 'join' = 'last',
  ) {}

  push(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.buffer.length === 0) return;
      if (this.buffer[0] === 0x24) {
        // '$' channel len16 data: an interleaved RTP/RTCP packet.
        if (this.buffer.length < 4) return;
        const len = this.buffer.readUInt16BE(2);
        if (this.buffer.length < 4 + len) return;
        const channel = this.buffer[1]!;
        const data = this.buffer.subarray(4, 4 + len);
        this.buffer = this.buffer.subarray(4 + len);
        this.handlers.onInterleaved(channel, data);
        continue;
      }
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buffer.subarray(0, end).toString('latin1');
      const headers: Record<string, string> = {};
      const [statusLine = '', ...rest] = head.split('\r\n');
      for (const line of rest) {
        const i = line.indexOf(':');
        if (i <= 0) continue;
        const name = line.slice(0, i).trim().toLowerCase();
        const value = line.slice(i + 1).trim();
        const earlier = headers[name];
        headers[name] = earlier !== undefined && this.repeatedHeaders === 'join' ? `${earlier}\n${value}` : value;
      }
      const length = Number(headers['content-length'] ?? 0);
      if (this.buffer.length < end + 4 + length) return;
      const body = this.buffer.subarray(end + 4, end + 4 + length).toString('utf8');
      this.buffer = this.buffer.subarray(end + 4 + length);
      const m = /^RTSP\/1\.0 (\d+) ?(.*)$/.exec(statusLine);
      if (!m) continue; // a request from the server (not expected); ignore it
      this.handlers.onResponse({ status: Number(m[1]), reason: m[2] ?? '', headers, body });
    }
  }
}

function parseRtp(channel: number, data: Buffer): RtpPacket {
  const cc = data[0]! & 0x0f;
  const hasExt = (data[0]! & 0x10) !== 0;
  const hasPadding = (data[0]! & 0x20) !== 0;
  let offset = 12 + 4 * cc;
  if (hasExt && data.length >= offset + 4) offset += 4 + 4 * data.readUInt16BE(offset + 2);
  let end = data.length;
  if (hasPadding) end -= data[data.length - 1]!;
  return {
    channel,
    payloadType: data[1]! & 0x7f,
    marker: (data[1]! & 0x80) !== 0,
    sequence: data.readUInt16BE(2),
    timestamp: data.readUInt32BE(4),
    ssrc: data.readUInt32BE(8),
    payload: data.subarray(offset, Math.max(offset, end)),
    receivedAt: performance.now(),
  };
}

/** One-shot DESCRIBE (credentials from the URL or options). */
export async function rtspDescribe(url: string, options: RtspClientOptions = {}): Promise<RtspResponse> {
  const client = await RtspTestClient.connect(url, options);
  try {
    return await client.describe();
  } finally {
    client.close();
  }
}

/** One-shot capture: DESCRIBE/SETUP/PLAY over TCP, collect RTP for `durationMs`. */
export interface RtpCapture {
  sdp: string;
  media: SdpMedia[];
  packets: RtpPacket[];
  /** performance.now() when the PLAY answer arrived. */
  playedAt: number;
}

export async function captureRtp(url: string, durationMs: number, options: RtspClientOptions = {}): Promise<RtpCapture> {
  const client = await RtspTestClient.connect(url, options);
  try {
    return await client.capture(durationMs);
  } finally {
    client.close();
  }
}
