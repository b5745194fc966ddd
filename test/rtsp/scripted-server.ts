// A scriptable RTSP server on 127.0.0.1 for the client's tests: each test decides, request by
// request, what the "camera" answers, including garbage. Its request parser is deliberately
// independent of src/rtsp (a naive split on the blank line), so it checks the client's wire output.
import { createHash } from 'node:crypto';
import net from 'node:net';

export interface ReceivedRequest {
  method: string;
  uri: string;
  cseq: string;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  raw: string;
}

export interface InterleavedFromClient {
  channel: number;
  data: Buffer;
}

export class ServerConnection {
  readonly interleaved: InterleavedFromClient[] = [];
  private buffer = Buffer.alloc(0);

  constructor(
    readonly socket: net.Socket,
    private readonly server: ScriptedRtspServer,
  ) {
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', () => undefined);
  }

  /** Writes an RTSP answer. Headers are written as given (so tests can break them). */
  reply(req: ReceivedRequest | undefined, status: number, reason: string, headers: Record<string, string> = {}, body = ''): void {
    let text = `RTSP/1.0 ${status} ${reason}\r\n`;
    if (req) text += `CSeq: ${req.cseq}\r\n`;
    for (const [k, v] of Object.entries(headers)) text += `${k}: ${v}\r\n`;
    if (body) text += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
    text += `\r\n${body}`;
    this.write(text);
  }

  write(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  frame(channel: number, data: Buffer): void {
    const h = Buffer.from([0x24, channel, 0, 0]);
    h.writeUInt16BE(data.length, 2);
    this.write(Buffer.concat([h, data]));
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.buffer.length === 0) return;
      if (this.buffer[0] === 0x24) {
        if (this.buffer.length < 4) return;
        const len = this.buffer.readUInt16BE(2);
        if (this.buffer.length < 4 + len) return;
        this.interleaved.push({ channel: this.buffer[1]!, data: Buffer.from(this.buffer.subarray(4, 4 + len)) });
        this.buffer = this.buffer.subarray(4 + len);
        continue;
      }
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const raw = this.buffer.subarray(0, end).toString();
      this.buffer = this.buffer.subarray(end + 4);
      const [line, ...rest] = raw.split('\r\n');
      const [method = '', uri = ''] = line!.split(' ');
      const headers: Record<string, string> = {};
      for (const h of rest) {
        const i = h.indexOf(':');
        headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
      }
      const req: ReceivedRequest = { method, uri, cseq: headers['cseq'] ?? '', headers, raw };
      if (method.startsWith('RTSP/')) {
        // The client answering a request we sent it.
        this.server.answers.push(req);
        continue;
      }
      this.server.requests.push(req);
      void this.server.handle(req, this);
    }
  }
}

export type Handler = (req: ReceivedRequest, conn: ServerConnection) => void | Promise<void>;

export class ScriptedRtspServer {
  readonly requests: ReceivedRequest[] = [];
  /** Answers the client sent to our requests; `uri` holds the status code. */
  readonly answers: ReceivedRequest[] = [];
  readonly connections: ServerConnection[] = [];
  private readonly server: net.Server;
  port = 0;

  private constructor(
    private readonly handler: Handler,
    private readonly onConnect?: (conn: ServerConnection) => void,
  ) {
    this.server = net.createServer((socket) => {
      const conn = new ServerConnection(socket, this);
      this.connections.push(conn);
      this.onConnect?.(conn);
    });
  }

  static async start(handler: Handler, onConnect?: (conn: ServerConnection) => void): Promise<ScriptedRtspServer> {
    const s = new ScriptedRtspServer(handler, onConnect);
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    const addr = s.server.address();
    if (addr === null || typeof addr === 'string') throw new Error('no address');
    s.port = addr.port;
    return s;
  }

  url(path = '/stream', userinfo = ''): string {
    return `rtsp://${userinfo ? `${userinfo}@` : ''}127.0.0.1:${this.port}${path}`;
  }

  async handle(req: ReceivedRequest, conn: ServerConnection): Promise<void> {
    await this.handler(req, conn);
  }

  methods(): string[] {
    return this.requests.map((r) => r.method);
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export const H264_PCMU_SDP = [
  'v=0',
  'o=- 0 0 IN IP4 127.0.0.1',
  's=Scripted',
  't=0 0',
  'a=control:*',
  'm=video 0 RTP/AVP 96',
  'a=rtpmap:96 H264/90000',
  'a=fmtp:96 packetization-mode=1;profile-level-id=42e01f;sprop-parameter-sets=Z0LgH9oBQBbpUgAAAwACAAADAGQeMGVA,aM4yyA==',
  'a=control:trackID=1',
  'm=audio 0 RTP/AVP 0',
  'a=control:trackID=2',
  '',
].join('\r\n');

export function rtpPacket(seq: number, ts: number, pt = 96, ssrc = 0x11223344, payloadSize = 100): Buffer {
  const b = Buffer.alloc(12 + payloadSize, 0x5a);
  b[0] = 0x80;
  b[1] = pt;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE(ts >>> 0, 4);
  b.writeUInt32BE(ssrc, 8);
  return b;
}

export function senderReportPacket(ssrc: number, wallClockMs: number, rtpTimestamp: number): Buffer {
  const b = Buffer.alloc(28);
  b[0] = 0x80;
  b[1] = 200;
  b.writeUInt16BE(6, 2);
  b.writeUInt32BE(ssrc, 4);
  b.writeUInt32BE(Math.floor(wallClockMs / 1000) + 2208988800, 8);
  b.writeUInt32BE(Math.floor(((wallClockMs % 1000) / 1000) * 0x100000000), 12);
  b.writeUInt32BE(rtpTimestamp >>> 0, 16);
  return b;
}

export interface CameraScript {
  sdp?: string;
  /** Extra DESCRIBE headers (Content-Base...). */
  describeHeaders?: Record<string, string>;
  /** Public header of OPTIONS. */
  publicMethods?: string;
  sessionHeader?: string;
  auth?: { method: 'basic' | 'digest'; user: string; password: string; realm?: string; nonce?: string; algorithm?: 'MD5' | 'SHA-256'; qop?: boolean };
  /** Called on PLAY after the answer, to start sending media. */
  onPlay?: (conn: ServerConnection, req: ReceivedRequest) => void;
  /** Overrides per method; return true when the override answered. */
  override?: (req: ReceivedRequest, conn: ServerConnection) => boolean | Promise<boolean>;
}

/** Checks an Authorization header the way a camera would; independent of src/rtsp/auth.ts. */
export function checkAuthorization(req: ReceivedRequest, auth: NonNullable<CameraScript['auth']>): boolean {
  const value = req.headers['authorization'];
  if (!value) return false;
  if (auth.method === 'basic') return value === `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`;
  if (!value.startsWith('Digest ')) return false;
  const f: Record<string, string> = {};
  for (const m of value.slice(7).matchAll(/(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))/g)) f[m[1]!] = m[2] ?? m[3] ?? '';
  const hashName = auth.algorithm === 'SHA-256' ? 'sha256' : 'md5';
  const H = (s: string) => createHash(hashName).update(s).digest('hex');
  const realm = auth.realm ?? 'scripted';
  const ha1 = H(`${auth.user}:${realm}:${auth.password}`);
  const ha2 = H(`${req.method}:${f['uri']}`);
  const expected = auth.qop ? H(`${ha1}:${f['nonce']}:${f['nc']}:${f['cnonce']}:auth:${ha2}`) : H(`${ha1}:${f['nonce']}:${ha2}`);
  return f['username'] === auth.user && f['uri'] === req.uri && f['response'] === expected && f['nonce'] === (auth.nonce ?? 'n0nce');
}

export function challengeFor(auth: NonNullable<CameraScript['auth']>, stale = false): string {
  const realm = auth.realm ?? 'scripted';
  if (auth.method === 'basic') return `Basic realm="${realm}"`;
  return (
    `Digest realm="${realm}", nonce="${auth.nonce ?? 'n0nce'}"` +
    (auth.algorithm ? `, algorithm=${auth.algorithm}` : '') +
    (auth.qop ? ', qop="auth"' : '') +
    (stale ? ', stale=TRUE' : '')
  );
}

/** A well-behaved camera, with hooks to misbehave. */
export function cameraHandler(script: CameraScript = {}): Handler {
  let channel = 0;
  return async (req, conn) => {
    if (script.override && (await script.override(req, conn))) return;
    if (script.auth && req.method !== 'TEARDOWN' && !checkAuthorization(req, script.auth)) {
      conn.reply(req, 401, 'Unauthorized', { 'WWW-Authenticate': challengeFor(script.auth) });
      return;
    }
    const session = script.sessionHeader ?? '12345678;timeout=60';
    switch (req.method) {
      case 'OPTIONS':
        conn.reply(req, 200, 'OK', { Public: script.publicMethods ?? 'OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER' });
        return;
      case 'DESCRIBE':
        conn.reply(req, 200, 'OK', { 'Content-Type': 'application/sdp', ...script.describeHeaders }, script.sdp ?? H264_PCMU_SDP);
        return;
      case 'SETUP': {
        const transport = req.headers['transport'] ?? '';
        const interleaved = /interleaved=(\d+)-(\d+)/.exec(transport);
        const answer = interleaved
          ? `RTP/AVP/TCP;unicast;interleaved=${interleaved[1]}-${interleaved[2]}`
          : `${transport};server_port=${40000 + channel}-${40001 + channel}`;
        channel += 2;
        conn.reply(req, 200, 'OK', { Transport: answer, Session: session });
        return;
      }
      case 'PLAY':
        conn.reply(req, 200, 'OK', { Session: session, Range: 'npt=0.000-' });
        script.onPlay?.(conn, req);
        return;
      case 'GET_PARAMETER':
      case 'TEARDOWN':
        conn.reply(req, 200, 'OK', { Session: session });
        return;
      default:
        conn.reply(req, 501, 'Not Implemented');
    }
  };
}

/** Sends RTP on channel 0 (video) and 2 (audio) every `intervalMs` until the socket closes. */
export function streamMedia(conn: ServerConnection, intervalMs = 20): () => void {
  let seq = 0;
  const timer = setInterval(() => {
    if (conn.socket.destroyed) {
      clearInterval(timer);
      return;
    }
    seq++;
    conn.frame(0, rtpPacket(seq, seq * 3600));
    conn.frame(2, rtpPacket(seq, seq * 160, 0, 0x55667788, 160));
  }, intervalMs);
  return () => clearInterval(timer);
}
