import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { every, realTimers, type TimerSeam } from '../media/timers.js';
import type { TrackDescription, UpstreamSession } from '../media/types.js';
import type { Logger } from '../util/logger.js';
import type { Credentials } from '../util/http-digest.js';
import { RtspConnection, seconds, type RtspResponse } from './connection.js';
import { normalizeAddress } from '../util/address.js';
import { RtspError, RtspErrorFactory } from './errors.js';
import { buildReceiverReport, looksLikeRtcp, parseRtcp, ReceptionStats } from './rtcp.js';
import { selectTracks } from './describe.js';
import { EventGate } from './event-gate.js';
import type { DescribedTrack } from './sdp.js';
import { parseTransport, tcpTransport, udpTransport } from './transport-header.js';
import { bindAddressFor, bindUdpPair, type UdpPair } from './udp.js';
import {
  DEFAULT_SESSION_TIMEOUT_S,
  describeFollowingRedirects,
  keepaliveIntervalMs,
  keepaliveMethodFor,
  sendKeepalive,
  sessionFromSetup,
  teardownBestEffort,
  type KeepaliveMethod,
} from './session-steps.js';
import type { RtspEndpoint, RtspTarget } from './url.js';

/**
 * One RTSP playback session: OPTIONS, DESCRIBE (following redirects), SETUP per track, PLAY, then
 * keep-alive, RTCP receiver reports and a no-data watchdog until `close()` or a failure.
 *
 * Why this file stays near 540 lines: it is one state machine (opening, playing, closing) whose
 * steps share the connection, the per-track transports and statistics, the session id and the
 * abort/lost hooks; a packet can arrive while SETUP and PLAY are still being answered, and a
 * failure in any step must release everything the earlier steps took. What reads answers without
 * that state lives in `describe.ts`, the steps the back-channel client shares (DESCRIBE following
 * redirects, the Session header, keep-alive, TEARDOWN) in `session-steps.ts`, the delivery gate in
 * `event-gate.ts`, the wire formats in `transport-header.ts`, `rtcp.ts` and `sdp.ts`.
 */

export interface RtspTimeouts {
  /** TCP connect. */
  connectMs: number;
  /** Each request's answer. */
  requestMs: number;
  /** TEARDOWN on the way out: best effort, so short. */
  teardownMs: number;
  /** No RTP for this long while playing: the camera is declared stalled. */
  stallMs: number;
  /** UDP: no packet this long after PLAY means UDP does not get through; fall back to TCP. */
  udpFirstPacketMs: number;
  /** Between two RTCP receiver reports. */
  rtcpIntervalMs: number;
}

export const DEFAULT_TIMEOUTS: RtspTimeouts = {
  connectMs: 5000,
  requestMs: 10_000,
  teardownMs: 1500,
  stallMs: 10_000,
  udpFirstPacketMs: 4000,
  rtcpIntervalMs: 5000,
};

export interface RtspSessionOptions {
  /** The camera URL without credentials, and the credentials as separate fields (`rtspEndpoint`). */
  endpoint: RtspEndpoint;
  /** Names the camera in every log line and error. */
  cameraName: string;
  logger: Logger;
  transport: 'tcp' | 'udp';
  /** Set up the audio track too (default true). */
  audio?: boolean;
  timeouts?: Partial<RtspTimeouts>;
  /** Redirects followed before giving up (default 5). */
  maxRedirects?: number;
  userAgent?: string;
  /**
   * Monotonic clock in ms (default performance.now) and timers (default the real ones, not keeping
   * the process alive) for keep-alive, receiver reports, the stall watchdog and the first UDP packet.
   * The connection's own socket timeouts (connect, request, teardown) stay on the real clock.
   */
  now?: () => number;
  timers?: TimerSeam;
  /**
   * The receive buffer each UDP media socket asks for (default 2 MiB; the kernel caps it at
   * net.core.rmem_max unless the process has CAP_NET_ADMIN). Smaller ones are for tests.
   */
  udpReceiveBufferBytes?: number;
}

export interface RtspSessionHandlers {
  /** `ageMs`: how long before this call the packet arrived (0 unless it was held, see `holdDelivery`). */
  onRtp(trackIndex: number, packet: Buffer, ageMs: number): void;
  onSenderReport?(trackIndex: number, rtpTimestamp: number, wallClockMs: number): void;
  /** Exactly once, only for a session whose `open` resolved; no error when `close()` ended it. */
  onClose(error?: Error): void;
}

/** A UDP packet held while nobody watches, until the next flush. */
interface HeldPacket {
  index: number;
  packet: Buffer;
  arrivedAt: number;
}

/** Interleaved media wait in the socket at most this long while held (see `holdDelivery`). */
const MAX_TCP_HOLD_MS = 100;

/**
 * A drained UDP hold (see `holdDelivery`) starts by flushing this often, and lengthens towards the
 * Source's interval while the sockets stay nearly empty: the camera's bitrate against the receive
 * buffer the kernel granted decides how long datagrams can safely wait there. The native receiver
 * gives draining up for good at half a buffer; flushing sooner from a third keeps a high-bitrate
 * camera drained where `net.core.rmem_max` is small (a Raspberry Pi's default: 8 Mbit/s drained
 * at 50 ms, where 250 ms fell back to a wakeup per burst).
 */
const MIN_UDP_FLUSH_MS = 50;
const FLUSH_SOONER_ABOVE_FILL = 1 / 3;
const FLUSH_LATER_BELOW_FILL = 1 / 8;

/** Events held between PLAY and the moment the caller has the session object. */
const MAX_GATED_EVENTS = 5000;

interface TrackState {
  description: TrackDescription;
  stats: ReceptionStats;
  /** TCP: interleaved channels. */
  channels?: [number, number];
  /** UDP sockets and the camera's ports. */
  udp?: UdpPair;
  serverRtcpPort?: number;
}

type State = 'opening' | 'playing' | 'closing' | 'closed';

export class RtspSession implements UpstreamSession {
  private readonly errors: RtspErrorFactory;
  private readonly log: Logger;
  private readonly timeouts: RtspTimeouts;
  private readonly credentials: Credentials | undefined;
  private readonly ssrc = randomBytes(4).readUInt32BE(0);
  private readonly cname = `homebridge-${randomBytes(4).toString('hex')}`;

  private target: RtspTarget;
  private connection: RtspConnection | undefined;
  private state: State = 'opening';
  private trackStates: TrackState[] = [];
  private channelMap = new Map<number, { track: number; rtcp: boolean }>();
  private sessionId: string | undefined;
  private sessionTimeoutS = DEFAULT_SESSION_TIMEOUT_S;
  private aggregateUrl = '';
  private keepaliveMethod: KeepaliveMethod = 'OPTIONS';
  private keepaliveInFlight = false;
  private stopRepeating: Array<() => void> = [];
  private readonly now: () => number;
  private readonly clock: TimerSeam;
  private lastRtpAt = 0;
  private cameraAddresses = new Set<string>();
  private droppedForeign = 0;
  /** The first fallback from a drained hold is logged; later ones (other tracks) say nothing new. */
  private loggedHoldFallback = false;
  private firstPacket: (() => void) | undefined;
  private lost: ((err: RtspError) => void) | undefined;
  /**
   * While holding (`holdDelivery`): its flush timer, and what the receivers delivered, all tracks,
   * put in arrival order at the next flush (a receiver whose slab filled up delivers by itself,
   * and must not overtake the others).
   */
  private hold: { stopFlushing: () => void; packets: HeldPacket[]; everyMs: number; intervalMs: number } | undefined;
  /** Inside `flushDelivery` (a nested one, from what a packet set off, would reorder packets). */
  private flushing = false;
  /** The connection died while opening; kept because no request may be pending to carry the error. */
  private lostWhileOpening: RtspError | undefined;
  private readonly gate: EventGate;
  private closePromise: Promise<void> | undefined;
  private abortCleanup: (() => void) | undefined;

  private constructor(
    private readonly options: RtspSessionOptions,
    private readonly handlers: RtspSessionHandlers,
  ) {
    const { endpoint } = options;
    this.target = endpoint.target;
    this.now = options.now ?? (() => performance.now());
    this.clock = options.timers ?? realTimers;
    this.credentials = endpoint.credentials;
    // The message shows the user's URL with the password masked, plus the password as a literal
    // secret in case a camera echoes it.
    this.errors = new RtspErrorFactory(options.cameraName, endpoint.shownUrl, endpoint.secrets);
    this.log = options.logger;
    this.gate = new EventGate(MAX_GATED_EVENTS, this.log);
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  }

  /** Opens a playing session. Rejects with an `RtspError`; on rejection no handler is ever called. */
  static async open(options: RtspSessionOptions, handlers: RtspSessionHandlers, signal?: AbortSignal): Promise<RtspSession> {
    const session = new RtspSession(options, handlers);
    await session.start(signal);
    return session;
  }

  get tracks(): ReadonlyArray<TrackDescription> {
    return this.trackStates.map((t) => t.description);
  }

  /** Which transport carries the media. */
  get transport(): 'tcp' | 'udp' {
    return this.trackStates.some((t) => t.udp) ? 'udp' : 'tcp';
  }

  /** The session id the camera gave, for diagnostics. */
  get id(): string | undefined {
    return this.sessionId;
  }

  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.closePromise = this.shutdown(undefined);
    return this.closePromise;
  }

  // ---------------------------------------------------------------- opening

  private async start(signal?: AbortSignal): Promise<void> {
    const checkAbort = (): void => {
      if (signal?.aborted) throw this.errors.create('aborted', 'connecting was aborted');
    };
    const onAbort = (): void => {
      if (this.state !== 'opening') {
        void this.close();
        return;
      }
      // Fails the pending request, or the wait for the first UDP packet, at once.
      const aborted = this.errors.create('aborted', 'connecting was aborted');
      this.connection?.destroy(aborted);
      this.lost?.(aborted);
    };
    signal?.addEventListener('abort', onAbort);
    this.abortCleanup = () => signal?.removeEventListener('abort', onAbort);
    try {
      if (this.target.secure) throw this.errors.create('unsupported', 'rtsps:// (RTSP over TLS) is not supported; use rtsp://');
      checkAbort();
      const { target, publicMethods, describe } = await describeFollowingRedirects(this.target, {
        errors: this.errors,
        log: this.log,
        maxRedirects: this.options.maxRedirects ?? 5,
        connect: async (next) => {
          this.connection?.close();
          this.connection = undefined;
          this.target = next;
          this.connection = await RtspConnection.open(this.connectionOptions(next), signal);
          return this.connection;
        },
      });
      this.target = target;
      checkAbort();
      const { selected, aggregateUrl } = selectTracks(describe, this.options.audio !== false, this.errors, this.log);
      this.aggregateUrl = aggregateUrl;
      this.keepaliveMethod = keepaliveMethodFor(publicMethods);
      await this.setupTracks(selected, checkAbort);
      checkAbort();
      await this.play();
      if (this.options.transport === 'udp') await this.awaitFirstUdpPacket();
      checkAbort();
      // E.g. a broken first frame in the same read as the PLAY answer: not a playing session.
      if (this.lostWhileOpening) throw this.lostWhileOpening;
    } catch (err) {
      this.abortCleanup();
      await this.cleanupAfterFailedOpen();
      throw err instanceof RtspError ? err : this.errors.create('protocol', `unexpected failure: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.state = 'playing';
    this.lost = undefined;
    this.startTimers();
    const tracks = this.trackStates.map((t) => `${t.description.codec} ${t.description.kind}`).join(', ');
    this.log.info(`playing ${tracks} over ${this.transport.toUpperCase()}${this.connection?.authDescription ? ` (${this.connection.authDescription})` : ''}`);
    // Media may already have arrived in the same TCP read as the PLAY answer. The caller gets the
    // session object only after a few promise hops, so deliver from the next macrotask on.
    setImmediate(() => this.gate.open());
  }

  private connectionOptions(target: RtspTarget) {
    return {
      target,
      errors: this.errors,
      logger: this.log,
      ...(this.credentials ? { credentials: this.credentials } : {}),
      connectTimeoutMs: this.timeouts.connectMs,
      requestTimeoutMs: this.timeouts.requestMs,
      userAgent: this.options.userAgent ?? 'homebridge-webrtc-cameras',
      onInterleaved: (channel: number, data: Buffer) => this.onInterleaved(channel, data),
      onLost: (err: RtspError) => this.onConnectionLost(err),
    };
  }

  private async setupTracks(selected: DescribedTrack[], checkAbort: () => void): Promise<void> {
    const conn = this.requireConnection();
    const bindAddress = bindAddressFor(conn.remoteAddress ?? this.target.hostname);
    if (conn.remoteAddress) this.cameraAddresses.add(conn.remoteAddress);

    for (let i = 0; i < selected.length; i++) {
      const track = selected[i]!;
      const { mediaIndex: _mediaIndex, ...description } = track;
      const state: TrackState = { description, stats: new ReceptionStats(track.clockRate) };
      let transport: string;
      if (this.options.transport === 'udp') {
        try {
          state.udp = await bindUdpPair(bindAddress, undefined, undefined, this.options.udpReceiveBufferBytes);
        } catch (err) {
          throw this.errors.create('transport', err instanceof Error ? err.message : String(err), { cause: err });
        }
        transport = udpTransport([state.udp.rtpPort, state.udp.rtcpPort]);
      } else {
        state.channels = [2 * i, 2 * i + 1];
        transport = tcpTransport(state.channels);
      }
      const headers: Record<string, string> = { Transport: transport };
      if (this.sessionId) headers['Session'] = this.sessionId;
      let response: RtspResponse;
      try {
        response = await conn.request('SETUP', track.controlUrl, { headers });
        checkAbort();
      } catch (err) {
        state.udp?.close();
        throw err;
      }

      if (response.status < 200 || response.status >= 300) {
        state.udp?.close();
        const error = this.errors.fromStatus('SETUP', response.status, response.reason);
        // A camera whose audio cannot be set up still has video worth showing.
        if (track.kind === 'audio' && this.trackStates.length > 0 && error.code !== 'unsupported-transport' && error.code !== 'auth') {
          this.log.warn(`continuing without audio: ${error.message}`);
          continue;
        }
        throw error;
      }
      this.takeSession(response);
      const index = this.trackStates.length;
      const answered = parseTransport(response.headers.get('transport') ?? '');
      if (state.udp && answered.tcp) {
        // The camera chose interleaved TCP although we asked for UDP; follow it.
        state.udp.close();
        delete state.udp;
        state.channels = answered.interleaved ?? [2 * i, 2 * i + 1];
      } else if (state.udp) {
        if (answered.serverPort) state.serverRtcpPort = answered.serverPort[1];
        const source = normalizeAddress(answered.source);
        if (source) this.addCameraAddress(source);
        this.listenUdp(index, state.udp);
      } else if (answered.interleaved) {
        state.channels = answered.interleaved;
      }
      if (state.channels) {
        this.channelMap.set(state.channels[0], { track: index, rtcp: false });
        this.channelMap.set(state.channels[1], { track: index, rtcp: true });
      }
      this.trackStates.push(state);
    }
  }

  private takeSession(response: RtspResponse): void {
    const { id, timeoutS } = sessionFromSetup(response, this.sessionId, this.errors, this.log);
    this.sessionId = id;
    if (timeoutS !== undefined) this.sessionTimeoutS = timeoutS;
  }

  private async play(): Promise<void> {
    const conn = this.requireConnection();
    const response = await conn.request('PLAY', this.aggregateUrl, {
      headers: { Session: this.sessionId ?? '', Range: 'npt=0.000-' },
    });
    if (response.status < 200 || response.status >= 300) throw this.errors.fromStatus('PLAY', response.status, response.reason);
    this.lastRtpAt = this.now();
    // UDP: a first report from each RTCP port opens NAT and firewall state towards the camera.
    if (this.trackStates.some((t) => t.udp)) this.sendReceiverReports();
  }

  private awaitFirstUdpPacket(): Promise<void> {
    if (!this.trackStates.some((t) => t.udp)) return Promise.resolve();
    if (this.trackStates.some((t) => t.stats.packetsReceived > 0)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.firstPacket = undefined;
        reject(
          this.errors.create(
            'unsupported-transport',
            `no UDP packet arrived within ${seconds(this.timeouts.udpFirstPacketMs)} of PLAY (firewall or NAT in the way?)`,
          ),
        );
      }, this.timeouts.udpFirstPacketMs);
      this.firstPacket = () => {
        this.clock.clearTimeout(timer);
        this.firstPacket = undefined;
        resolve();
      };
      this.lost = (err) => {
        this.clock.clearTimeout(timer);
        reject(err);
      };
    });
  }

  private async cleanupAfterFailedOpen(): Promise<void> {
    this.state = 'closed';
    this.stopTimers();
    await this.teardown();
    this.closeSockets();
  }

  private requireConnection(): RtspConnection {
    if (!this.connection) throw this.errors.create('transport', 'not connected');
    return this.connection;
  }

  // ---------------------------------------------------------------- media

  private onInterleaved(channel: number, data: Buffer): void {
    const entry = this.channelMap.get(channel);
    if (!entry) return; // a channel we did not set up (some cameras send on extra channels)
    if (entry.rtcp) this.onRtcp(entry.track, data);
    else this.onRtpPacket(entry.track, data, 0);
  }

  /**
   * While nobody watches (the Source says so), packets may wait and go on every `everyMs` (0: each
   * at once again, what waited first), which spares the process a wakeup and a trip into
   * JavaScript per packet:
   * - UDP: in the native receivers, each with its arrival time, so nothing downstream is late for
   *   it (dgram receivers cannot hold and deliver at once);
   * - interleaved (TCP): in the socket's kernel buffer, read in a burst at most every 100 ms (so
   *   that a high-bitrate camera never fills the TCP window); these packets count as arriving when
   *   read, and a subscriber gets the last burst's worth as live frames just after its replay.
   */
  holdDelivery(everyMs: number): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    const holding = everyMs > 0;
    const interleaved = this.trackStates.some((t) => t.channels);
    if (!holding) {
      if (interleaved) this.connection?.readInBursts(false);
      for (const track of this.trackStates) track.udp?.rtp.hold(false);
      this.flushDelivery();
      const hold = this.hold;
      this.hold = undefined;
      hold?.stopFlushing();
      // Normally empty now; not when this came from inside a flush, which is still delivering.
      this.deliverHeld(hold?.packets.splice(0) ?? []);
      return;
    }
    if (this.hold) return;
    const flushEvery = interleaved ? Math.min(everyMs, MAX_TCP_HOLD_MS) : everyMs;
    // Only native receivers drain (and report how full they are); dgram ones deliver as packets come.
    const draining = this.trackStates.some((t) => t.udp?.rtp.path === 'native');
    const intervalMs = draining ? Math.min(flushEvery, MIN_UDP_FLUSH_MS) : flushEvery;
    this.hold = { stopFlushing: every(this.clock, intervalMs, () => this.flushDelivery()), packets: [], everyMs: flushEvery, intervalMs };
    if (interleaved) this.connection?.readInBursts(true);
    for (const track of this.trackStates) track.udp?.rtp.hold(true);
  }

  /** Hands on what the receivers hold now, all tracks in the order the packets arrived. */
  flushDelivery(): void {
    const hold = this.hold;
    if (!hold || this.flushing || this.state === 'closed' || this.state === 'closing') return;
    this.flushing = true;
    try {
      this.connection?.readBurst(); // interleaved: read now, delivered as it is read
      let fill = -1;
      for (const track of this.trackStates) fill = Math.max(fill, track.udp?.rtp.flush() ?? -1);
      this.deliverHeld(hold.packets.splice(0));
      if (this.hold === hold) this.adaptFlushInterval(hold, fill);
    } finally {
      this.flushing = false;
    }
  }

  /** Flushes a drained UDP hold sooner or later by how full its fullest socket was (see MIN_UDP_FLUSH_MS). */
  private adaptFlushInterval(hold: NonNullable<RtspSession['hold']>, fill: number): void {
    if (fill < 0) return; // nothing drains: the receivers poll, or hold nothing
    let next = hold.intervalMs;
    if (fill > FLUSH_SOONER_ABOVE_FILL) next = Math.max(Math.min(MIN_UDP_FLUSH_MS, hold.everyMs), Math.floor(next / 2));
    else if (fill < FLUSH_LATER_BELOW_FILL) next = Math.min(hold.everyMs, next * 2);
    if (next === hold.intervalMs) return;
    hold.stopFlushing();
    hold.intervalMs = next;
    hold.stopFlushing = every(this.clock, next, () => this.flushDelivery());
  }

  /** Held packets of all tracks, on in the order they arrived, each with its age. */
  private deliverHeld(held: HeldPacket[]): void {
    // Stable: each track's own packets stay in their order.
    held.sort((a, b) => a.arrivedAt - b.arrivedAt);
    const now = this.now();
    for (const { index, packet, arrivedAt } of held) this.onRtpPacket(index, packet, now - arrivedAt);
  }

  private listenUdp(index: number, pair: UdpPair): void {
    // Only the camera may feed this session; anyone else on the LAN could inject video.
    const foreign = (from: string): void => {
      if (this.droppedForeign++ === 0) this.log.warn(`ignoring UDP packets from ${from}, which is not the camera`);
    };
    for (const address of this.cameraAddresses) pair.rtp.allow(address);
    const onPacket = (packet: Buffer, ageMs: number): void => {
      // Ages count from each receiver's own delivery: an arrival time orders the tracks alike.
      if (this.hold) this.hold.packets.push({ index, packet, arrivedAt: this.now() - ageMs });
      else this.onRtpPacket(index, packet, ageMs);
    };
    const onHoldFallback = (reason: string, receiveBufferBytes: number): void => {
      if (this.loggedHoldFallback) return;
      this.loggedHoldFallback = true;
      this.log.info(
        `while nobody watches, UDP packets are now read as they arrive rather than left in the socket between deliveries ` +
          `(${reason}; receive buffer ${Math.round(receiveBufferBytes / 1024)} KiB). Nothing is lost, but an unwatched camera ` +
          `costs a little more CPU; a larger net.core.rmem_max (sysctl) lets the socket keep them.`,
      );
    };
    pair.rtp.start({ onPacket, onForeign: foreign, onHoldFallback });
    pair.rtcp.on('message', (msg, rinfo) => {
      const from = normalizeAddress(rinfo.address) ?? '';
      if (this.cameraAddresses.has(from)) this.onRtcp(index, msg);
      else foreign(from);
    });
    // A late ICMP error must not crash the process; the watchdog judges the stream.
    pair.rtcp.on('error', (err) => this.log.debug(`UDP RTCP socket: ${err.message}`));
  }

  /** A camera address learnt during SETUP (a track's `source=`) feeds the tracks already set up too. */
  private addCameraAddress(address: string): void {
    this.cameraAddresses.add(address);
    for (const track of this.trackStates) track.udp?.rtp.allow(address);
  }

  /** `ageMs`: how long ago the packet arrived (held packets, see `holdDelivery`). */
  private onRtpPacket(index: number, packet: Buffer, ageMs: number): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    if (looksLikeRtcp(packet)) {
      this.onRtcp(index, packet);
      return;
    }
    if (packet.length < 12 || packet[0]! >> 6 !== 2) return;
    const now = this.now() - ageMs;
    if (now > this.lastRtpAt) this.lastRtpAt = now;
    this.trackStates[index]?.stats.onRtp(packet, now);
    this.firstPacket?.();
    this.gate.deliverCall(this.deliverRtp, index, packet, ageMs);
  }

  private readonly deliverRtp = (index: number, packet: Buffer, ageMs: number): void => this.handlers.onRtp(index, packet, ageMs);

  private onRtcp(index: number, packet: Buffer): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    const track = this.trackStates[index];
    if (!track) return;
    const summary = parseRtcp(packet);
    const now = this.now();
    for (const sr of summary.senderReports) {
      track.stats.onSenderReport(sr, now);
      const onSr = this.handlers.onSenderReport;
      if (onSr) this.deliver(() => onSr.call(this.handlers, index, sr.rtpTimestamp, sr.wallClockMs));
    }
    if (summary.byes.length > 0) this.log.debug(`the camera sent RTCP BYE on track ${index}`);
  }

  private deliver(event: () => void, essential = false): void {
    this.gate.deliver(event, essential);
  }

  // ---------------------------------------------------------------- keeping alive

  private startTimers(): void {
    const keepaliveMs = keepaliveIntervalMs(this.sessionTimeoutS);
    this.stopRepeating.push(every(this.clock, keepaliveMs, () => void this.keepalive()));
    this.stopRepeating.push(every(this.clock, this.timeouts.rtcpIntervalMs, () => this.sendReceiverReports()));
    const checkEvery = Math.max(50, Math.min(1000, this.timeouts.stallMs / 4));
    this.stopRepeating.push(
      every(this.clock, checkEvery, () => {
        this.flushDelivery(); // held packets are not silence
        const silent = this.now() - this.lastRtpAt;
        if (silent > this.timeouts.stallMs) {
          void this.fail(this.errors.create('stalled', `no media from the camera for ${seconds(Math.round(silent))}`));
        }
      }),
    );
  }

  private stopTimers(): void {
    for (const stop of this.stopRepeating) stop();
    this.stopRepeating = [];
    this.hold?.stopFlushing();
    this.hold = undefined;
  }

  private async keepalive(): Promise<void> {
    const conn = this.connection;
    if (this.state !== 'playing' || !conn?.alive || this.keepaliveInFlight) return;
    this.keepaliveInFlight = true;
    try {
      const outcome = await sendKeepalive(conn, this.keepaliveMethod, this.aggregateUrl, { Session: this.sessionId ?? '' }, this.errors, this.log);
      if (this.state !== 'playing') return;
      this.keepaliveMethod = outcome.next;
      // A missed keep-alive is not fatal by itself: the watchdog and the socket decide.
      if (outcome.failed) this.log.debug(outcome.failed);
      if (outcome.sessionLost) void this.fail(outcome.sessionLost);
    } finally {
      this.keepaliveInFlight = false;
    }
  }

  private sendReceiverReports(): void {
    const now = this.now();
    for (const track of this.trackStates) {
      const block = track.stats.reportBlock(now);
      const packet = buildReceiverReport(this.ssrc, block ? [block] : [], this.cname);
      if (track.channels) {
        this.connection?.sendInterleaved(track.channels[1], packet);
      } else if (track.udp && track.serverRtcpPort !== undefined) {
        const address = this.connection?.remoteAddress ?? this.target.hostname;
        track.udp.rtcp.send(packet, track.serverRtcpPort, address, (err) => {
          if (err) this.log.debug(`RTCP send failed: ${err.message}`);
        });
      }
    }
  }

  // ---------------------------------------------------------------- ending

  private onConnectionLost(err: RtspError): void {
    if (this.state === 'opening') {
      // Pending requests already fail with this error; a UDP wait needs telling; and after the last
      // answer (PLAY) nothing is pending, so `start` checks this before declaring the session playing.
      this.lostWhileOpening ??= err;
      this.lost?.(err);
      return;
    }
    if (this.state === 'playing') void this.fail(err);
  }

  private fail(error: RtspError): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.log.warn(`session ended: ${error.message}`);
    this.closePromise = this.shutdown(error);
    return this.closePromise;
  }

  private async shutdown(error: RtspError | undefined): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closing';
    this.stopTimers();
    this.abortCleanup?.();
    // Report first: a failure should not wait for the camera to answer TEARDOWN.
    if (error) this.deliver(() => this.handlers.onClose(error), true);
    await this.teardown();
    this.closeSockets();
    this.state = 'closed';
    if (!error) this.deliver(() => this.handlers.onClose(), true);
  }

  /** TEARDOWN, best effort and briefly: the camera frees its session slot sooner. */
  private async teardown(): Promise<void> {
    if (!this.sessionId) return;
    await teardownBestEffort(this.connection, this.aggregateUrl || this.target.url, { Session: this.sessionId }, this.timeouts.teardownMs, this.log);
  }

  private closeSockets(): void {
    this.connection?.close();
    for (const t of this.trackStates) t.udp?.close();
  }
}
