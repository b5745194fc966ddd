/**
 * One re-stream client connection: reads its requests (in order, a bounded number pipelined),
 * checks who may read which camera (a single-use token, Digest, or loopback trust), and runs the
 * RTSP methods over the sessions it owns. It knows the server only as a `ConnectionHost`.
 */
import type { Socket } from 'node:net';
import { formatHost, isLoopback, normalizeAddress, stripCredentials } from '../util/address.js';
import type { Logger } from '../util/logger.js';
import { redactUrl } from '../util/redact.js';
import { refusalLog } from '../util/summary-log.js';
import { ConnectionAccess } from './access.js';
import type { RtspDigestAuthenticator } from './auth.js';
import { prepareCamera, type Prepared } from './prepare.js';
import { chooseTransport, formatResponse, HttpishError, parseTarget, PUBLIC_METHODS, sessionIdOf } from './protocol.js';
import { RtspRequestParser, type RtspRequest } from './request-parser.js';
import { buildSdp } from './sdp.js';
import { RestreamSession, type SessionTransport } from './session.js';
import type { RestreamLimits, RestreamSource } from './types.js';
import type { UdpPair } from './udp.js';

const MAX_QUEUED_REQUESTS = 16;
/** A DESCRIBE whose PLAY never comes stops holding the camera's pull after this long. */
const HOLD_TIMEOUT_MS = 30_000;

/** What a connection needs from the server that accepted it. */
export interface ConnectionHost {
  readonly limits: RestreamLimits;
  readonly log: Logger;
  readonly auth: RtspDigestAuthenticator | undefined;
  readonly udpPorts: UdpPair | undefined;
  /** Loopback clients need a token or the credentials too. */
  readonly requireAuthOnLoopback: boolean;
  getSource(id: string): RestreamSource | undefined;
  /** Consumes a single-use token; true when it was live and names that camera. */
  redeem(token: string, cameraId: string): boolean;
  sessionCount(): number;
  forget(connection: ClientConnection): void;
}

export class ClientConnection {
  readonly sessions = new Map<string, RestreamSession>();
  private readonly prepared = new Map<string, Prepared>();
  private readonly parser: RtspRequestParser;
  private readonly remoteAddress: string;
  private readonly remote: string;
  private readonly loopback: boolean;
  private readonly log: Logger;
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private lastActivity = performance.now();
  private partialSince: number | undefined;
  private closed = false;
  private readonly access: ConnectionAccess;

  constructor(private readonly server: ConnectionHost, private readonly socket: Socket) {
    this.remoteAddress = normalizeAddress(socket.remoteAddress ?? '');
    this.remote = `${formatHost(this.remoteAddress)}:${socket.remotePort ?? 0}`;
    this.loopback = isLoopback(this.remoteAddress);
    this.access = new ConnectionAccess(server, this.remote, this.loopback);
    this.log = server.log;
    this.parser = new RtspRequestParser({
      maxHeaderBytes: server.limits.maxHeaderBytes,
      maxBodyBytes: server.limits.maxBodyBytes,
      maxHeaderLines: 64,
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.log.debug(`re-stream client ${this.remote}: ${error.message}`));
    socket.on('close', () => this.destroy());
    this.log.debug(`re-stream client ${this.remote} connected`);
  }

  /**
   * Ends everything this connection holds at once. `graceful` lets a last response (400, 408)
   * reach the client: the socket is half-closed and destroyed a moment later.
   */
  destroy(reason?: string, graceful = false): void {
    if (this.closed) return;
    this.closed = true;
    for (const session of this.sessions.values()) this.endSession(session, reason ?? 'client disconnected');
    for (const prepared of this.prepared.values()) prepared.hold?.release();
    this.prepared.clear();
    if (graceful) {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1000).unref();
    } else {
      this.socket.destroy();
    }
    this.server.forget(this);
    this.log.debug(`re-stream client ${this.remote} disconnected${reason ? `: ${reason}` : ''}`);
  }

  reap(now: number): void {
    if (this.closed) return;
    const limits = this.server.limits;
    if (this.partialSince !== undefined && now - this.partialSince > limits.requestTimeoutMs) {
      this.sendRaw(408, undefined, []);
      this.destroy('request timed out', true);
      return;
    }
    for (const session of [...this.sessions.values()]) {
      const idle = Math.min(now - session.lastActivity, now - this.lastActivity);
      if (idle > limits.sessionTimeoutMs) {
        this.log.info(`re-stream session ${session.id} for ${session.cameraId} timed out (no keep-alive from ${this.remote})`);
        // A client silent for a whole session timeout is gone; its connection goes with it.
        this.destroy('session timed out');
        return;
      }
    }
    for (const [cameraId, prepared] of this.prepared) {
      if (prepared.hold && now - prepared.heldSince > HOLD_TIMEOUT_MS) {
        prepared.hold.release();
        prepared.hold = undefined;
        this.log.debug(`re-stream client ${this.remote} described ${cameraId} but never played it`);
      }
    }
    if (this.sessions.size === 0 && this.queued === 0 && now - this.lastActivity > limits.idleConnectionTimeoutMs) {
      this.destroy('idle');
    }
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastActivity = performance.now();
    for (const session of this.sessions.values()) session.touch();
    for (const message of this.parser.push(chunk)) {
      if (message.type === 'interleaved') continue; // RTCP receiver reports: liveness only
      if (message.type === 'error') {
        this.log.debug(`re-stream client ${this.remote} sent a malformed request: ${message.reason}`);
        this.sendRaw(message.status, message.cseq, []);
        // The byte stream cannot be resynchronised after a framing error; finish politely.
        this.destroy('malformed request', true);
        return;
      }
      if (this.queued >= MAX_QUEUED_REQUESTS) {
        this.destroy('too many pipelined requests');
        return;
      }
      this.queued++;
      const request = message.request;
      this.queue = this.queue
        .then(() => (this.closed ? undefined : this.handle(request)))
        .catch((error: unknown) => this.fail(request, error))
        .finally(() => {
          this.queued--;
        });
    }
    this.partialSince = this.parser.pendingBytes > 0 ? (this.partialSince ?? performance.now()) : undefined;
  }

  private fail(request: RtspRequest, error: unknown): void {
    if (this.closed) return;
    const cseq = request.headers.get('cseq');
    if (error instanceof HttpishError) {
      this.sendRaw(error.status, cseq, error.headers);
      return;
    }
    this.log.error(`re-stream: ${request.method} from ${this.remote} failed: ${(error as Error).message ?? String(error)}`);
    this.sendRaw(500, cseq, []);
  }

  private async handle(request: RtspRequest): Promise<void> {
    const { method } = request;
    this.log.debug(`re-stream ${this.remote} → ${method} ${redactUrl(request.uri)}`);
    if (method === 'OPTIONS') {
      this.reply(request, 200, [['Public', PUBLIC_METHODS]]);
      return;
    }
    if (!['DESCRIBE', 'SETUP', 'PLAY', 'PAUSE', 'TEARDOWN', 'GET_PARAMETER', 'SET_PARAMETER'].includes(method)) {
      const known = ['ANNOUNCE', 'RECORD', 'REDIRECT'].includes(method);
      this.reply(request, known ? 405 : 501, [['Allow', PUBLIC_METHODS]]);
      return;
    }
    if (!this.authorize(request)) return;
    switch (method) {
      case 'DESCRIBE': return this.describe(request);
      case 'SETUP': return this.setup(request);
      case 'PLAY': return this.play(request);
      case 'PAUSE': return this.pause(request);
      case 'TEARDOWN': return this.teardown(request);
      default: return this.parameter(request);
    }
  }

  /** Answers 401/403 and returns false unless the request may proceed. */
  private authorize(request: RtspRequest): boolean {
    const refusal = this.access.check(request);
    if (!refusal) return true;
    this.reply(request, refusal.status, refusal.headers);
    return false;
  }

  private async describe(request: RtspRequest): Promise<void> {
    const target = parseTarget(request.uri);
    const prepared = await this.prepare(target.cameraId);
    const sdp = buildSdp({
      sessionId: String(Date.now()),
      name: target.cameraId,
      address: this.socket.localAddress ? normalizeAddress(this.socket.localAddress) : '127.0.0.1',
      tracks: prepared.plan,
    });
    this.reply(request, 200, [
      ['Content-Base', `${target.base}/`],
      ['Content-Type', 'application/sdp'],
    ], Buffer.from(sdp, 'utf8'));
  }

  /** A DESCRIBE's (or SETUP's) preparation, reused while its hold is on (DESCRIBE → SETUP...). */
  private async prepare(cameraId: string): Promise<Prepared> {
    // Later, tracks may have changed: prepare again.
    const existing = this.prepared.get(cameraId);
    if (existing?.hold) return existing;
    this.prepared.delete(cameraId);
    const result = await prepareCamera(cameraId, this.server, this.log, () => this.closed);
    this.prepared.set(cameraId, result);
    return result;
  }

  private async setup(request: RtspRequest): Promise<void> {
    const target = parseTarget(request.uri);
    const sessionHeader = sessionIdOf(request);
    let session = sessionHeader !== undefined ? this.sessions.get(sessionHeader) : undefined;
    if (sessionHeader !== undefined && !session) throw new HttpishError(454, 'Session not found');
    if (session && session.cameraId !== target.cameraId) {
      throw new HttpishError(459, 'A session carries one camera');
    }
    if (session?.isPlaying) throw new HttpishError(455, 'Session is already playing');
    const prepared = await this.prepare(target.cameraId);
    const served = target.trackId === undefined
      ? (prepared.plan.length === 1 ? prepared.plan[0] : undefined)
      : prepared.plan.find((t) => t.trackId === target.trackId);
    if (!served) throw new HttpishError(404, 'No such track');
    if (session?.isSetUp(served.trackId)) throw new HttpishError(455, 'Track already set up');

    const transportHeader = request.headers.get('transport') ?? '';
    const choice = chooseTransport(transportHeader, this.server.udpPorts !== undefined);
    if (!choice) {
      this.reply(request, 461, []);
      return;
    }
    if (!session) {
      if (this.server.sessionCount() >= this.server.limits.maxSessions) {
        refusalLog(this.log).note('warn', 're-stream: sessions refused at the session limit', `re-stream refused a session for ${target.cameraId}: ${this.server.limits.maxSessions} sessions already open`);
        throw new HttpishError(453, 'Too many sessions');
      }
      session = this.createSession(target.cameraId, prepared);
    }
    let transport: SessionTransport;
    let transportReply: string;
    if (choice.type === 'tcp') {
      const [rtpChannel, rtcpChannel] = this.pickChannels(choice.channels);
      transport = { type: 'tcp', rtpChannel, rtcpChannel };
      transportReply = `RTP/AVP/TCP;unicast;interleaved=${rtpChannel}-${rtcpChannel}`;
    } else {
      const udp = this.server.udpPorts!;
      transport = { type: 'udp', address: this.remoteAddress, rtpPort: choice.ports[0], rtcpPort: choice.ports[1] };
      transportReply = `RTP/AVP;unicast;client_port=${choice.ports[0]}-${choice.ports[1]};server_port=${udp.rtpPort}-${udp.rtcpPort}`;
    }
    const ssrc = session.setupTrack(served, transport, stripCredentials(request.uri));
    this.reply(request, 200, [
      ['Transport', `${transportReply};ssrc=${ssrc.toString(16).toUpperCase().padStart(8, '0')}`],
      ['Session', `${session.id};timeout=${Math.round(this.server.limits.sessionTimeoutMs / 1000)}`],
    ]);
  }

  private createSession(cameraId: string, prepared: Prepared): RestreamSession {
    const limits = this.server.limits;
    const session: RestreamSession = new RestreamSession(
      cameraId,
      this.remote,
      prepared.videoSets,
      this.socket,
      this.server.udpPorts,
      {
        maxQueuedBytes: limits.maxQueuedBytes,
        senderReportIntervalMs: limits.senderReportIntervalMs,
        burstGraceMs: limits.burstGraceMs,
        udpBytesPerTick: 64 * 1024,
      },
      this.log,
      (reason) => {
        this.log.info(`re-stream session ${session.id} for ${cameraId} ended: ${reason}`);
        this.sessions.delete(session.id);
        // The client would otherwise wait for packets that never come; closing makes it reconnect.
        this.destroy(reason);
      },
    );
    this.sessions.set(session.id, session);
    return session;
  }

  /** Interleaved channels must be unique on the connection; keep the client's choice when free. */
  private pickChannels(requested: [number, number] | undefined): [number, number] {
    const used = new Set<number>();
    for (const session of this.sessions.values()) {
      for (const t of session.transports) if (t.type === 'tcp') used.add(t.rtpChannel).add(t.rtcpChannel);
    }
    if (requested && !used.has(requested[0]) && !used.has(requested[1])) return requested;
    for (let channel = 0; channel < 254; channel += 2) {
      if (!used.has(channel) && !used.has(channel + 1)) return [channel, channel + 1];
    }
    throw new HttpishError(453, 'No interleaved channel left');
  }

  private async play(request: RtspRequest): Promise<void> {
    const session = this.requireSession(request);
    if (!session.hasTracks) throw new HttpishError(455, 'No track set up');
    const headers: Array<[string, string]> = [['Session', session.id], ['Range', 'npt=0.000-']];
    if (session.isPlaying) {
      this.reply(request, 200, headers);
      return;
    }
    const source = this.server.getSource(session.cameraId);
    if (!source) throw new HttpishError(404, `No camera "${session.cameraId}"`);
    const rtpInfo = session.play(source);
    // Only now drop the hold: the session's own subscription keeps the Source pulling.
    const prepared = this.prepared.get(session.cameraId);
    prepared?.hold?.release();
    if (prepared) prepared.hold = undefined;
    if (rtpInfo) headers.push(['RTP-Info', rtpInfo]);
    this.reply(request, 200, headers);
    session.startFlow();
    const kind = session.transports.some((t) => t.type === 'udp') ? 'UDP' : 'TCP';
    // Debug, not info: snapshot ffmpegs come and go every few seconds.
    this.log.debug(`re-stream: ${this.remote} is playing ${session.cameraId} over ${kind} (session ${session.id})`);
  }

  private async pause(request: RtspRequest): Promise<void> {
    const session = this.requireSession(request);
    session.pause();
    this.reply(request, 200, [['Session', session.id]]);
  }

  private async teardown(request: RtspRequest): Promise<void> {
    const session = this.requireSession(request);
    this.endSession(session, 'teardown');
    this.reply(request, 200, [['Session', session.id]]);
  }

  /** GET_PARAMETER / SET_PARAMETER: keep-alives. We expose no parameters. */
  private async parameter(request: RtspRequest): Promise<void> {
    const id = sessionIdOf(request);
    const headers: Array<[string, string]> = [];
    if (id !== undefined) {
      const session = this.requireSession(request);
      session.touch();
      headers.push(['Session', session.id]);
    }
    if (request.method === 'SET_PARAMETER' && request.body.length > 0) {
      this.reply(request, 451, headers);
      return;
    }
    this.reply(request, 200, headers);
  }

  private requireSession(request: RtspRequest): RestreamSession {
    const id = sessionIdOf(request);
    const session = id !== undefined ? this.sessions.get(id) : undefined;
    if (!session) throw new HttpishError(454, 'Session not found');
    session.touch();
    return session;
  }

  private endSession(session: RestreamSession, reason: string): void {
    const stats = session.stats();
    session.close();
    this.sessions.delete(session.id);
    this.log.debug(`re-stream session ${session.id} for ${session.cameraId} closed (${reason}): ` +
      `${stats.framesSent} frames sent, ${stats.framesDropped} dropped`);
  }

  private reply(request: RtspRequest, status: number, headers: Array<[string, string]>, body?: Buffer): void {
    this.sendRaw(status, request.headers.get('cseq'), headers, body);
  }

  private sendRaw(status: number, cseq: string | undefined, headers: Array<[string, string]>, body?: Buffer): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(formatResponse(status, cseq, headers, body));
  }
}
