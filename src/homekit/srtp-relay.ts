/**
 * The last hop of a HomeKit stream: ffmpeg writes plain RTP to loopback ports, and this relay
 * protects it with HomeKit's SRTP key and sends it to the Home app from the port we advertised in
 * SetupEndpoints — the same port on which the Home app's RTCP arrives (symmetric RTP).
 *
 * Why not let ffmpeg send SRTP itself:
 * - one sequence-number and timestamp space per stream that survives restarting ffmpeg (new
 *   bitrate on RECONFIGURE, falling back to another encoder, dropping audio after an audio error),
 *   which ffmpeg's own SRTP cannot do without breaking the receiver's rollover counter;
 * - the GOP burst at the start (the re-stream sends the cached GOP at once so the picture appears
 *   immediately) is mapped to "now" instead of playing a GOP late forever: video frames that
 *   arrive ahead of their time are squeezed together, stale audio is dropped;
 * - the time from START to the first packet, packet counts and the Home app's RTCP are all seen
 *   here, so a silent controller is noticed and the stream stopped.
 *
 * Sender reports are written here (ffmpeg's are dropped: their timestamps no longer match).
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import { SrtcpSession, SrtpSession } from 'werift';
import { parseRtp, timestampDelta } from '../media/rtp.js';
import { buildSenderReport, isRtcpPacket } from '../rtp/rtcp.js';
import { bindUdpSocket } from '../util/udp.js';
import { SrtpStreamWriter, SRTP_PROFILE_AES128_CM_SHA1_80 } from '../rtp/srtp-writer.js';

export type RelayKind = 'video' | 'audio';

export interface RelayStreamOptions {
  kind: RelayKind;
  /**
   * Bound on the address HomeKit reached us at; its port is the one advertised in the
   * SetupEndpoints answer. The relay sends from it and listens on it for the controller's RTCP.
   */
  socket: dgram.Socket;
  target: { address: string; port: number };
  /** HomeKit's SRTP master key (16 bytes) and salt (14 bytes) for AES_CM_128_HMAC_SHA1_80. */
  key: Buffer;
  salt: Buffer;
  ssrc: number;
  payloadType: number;
  clockRate: number;
  /**
   * RTP the controller sends on this port (the Home app's microphone, two-way audio), decrypted
   * with the same key. Without it such packets are only counted as signs of life.
   */
  onIncomingRtp?: (packet: IncomingRtp) => void;
}

/** One decrypted RTP packet from the controller; `payload` is a copy the receiver may keep. */
export interface IncomingRtp {
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  payload: Buffer;
}

export interface SrtpRelayOptions {
  video: RelayStreamOptions;
  audio?: RelayStreamOptions;
  /** How often to send RTCP sender reports (HomeKit's rtcp_interval), ms. */
  rtcpIntervalMs: number;
  /** Emit 'controller-silent' when no RTCP came from the controller for this long, ms. */
  silenceTimeoutMs: number;
  /** How far ahead of real time a packet may be before it counts as part of a burst, ms (default 100). */
  maxLeadMs?: number;
  /** Monotonic clock in ms (default performance.now). */
  now?: () => number;
}

export interface RelayStreamStats {
  packetsSent: number;
  bytesSent: number;
  /** Audio packets dropped because they were stale (part of the start burst). */
  packetsDropped: number;
  /** Video frames whose timestamps were pulled forward (part of the start burst). */
  framesSqueezed: number;
  controllerPackets: number;
  /** RTP from the controller that was decrypted and handed on (two-way audio). */
  incomingRtp: number;
  /** RTP from the controller that failed SRTP authentication or parsing: dropped. */
  incomingRejected: number;
}

export interface SrtpRelayEvents {
  /** The first packet of that kind went out, `ms` after `markStart()`. */
  'first-packet': [kind: RelayKind, ms: number];
  /** No RTCP from the controller for `silenceTimeoutMs`. */
  'controller-silent': [silentForMs: number];
}

class RelayStream {
  readonly input: dgram.Socket;
  readonly stats: RelayStreamStats = { packetsSent: 0, bytesSent: 0, packetsDropped: 0, framesSqueezed: 0, controllerPackets: 0, incomingRtp: 0, incomingRejected: 0 };
  firstPacketAt = -1;
  lastControllerPacketAt = -1;
  private readonly writer: SrtpStreamWriter;
  private readonly srtcp: SrtcpSession;
  private readonly maxLeadTicks: number;
  private readonly tsBase = randomInt(0, 0x1_0000_0000);
  private readonly cname: string;
  // Sequence numbers: output = input + offset, re-anchored at every new ffmpeg (epoch).
  private lastOutSeq = randomInt(0, 0x10000);
  private seqOffset = 0;
  // Timestamps in an unwrapped integer domain (ticks of clockRate): output = input + offset.
  private fresh = true;
  private anySent = false;
  private lastInTs = 0;
  private inU = 0;
  private maxInU = 0;
  private offset = 0;
  private lastOutU = 0;
  private droppedSinceSend = false;
  private lastSendNow = 0;

  constructor(private readonly options: RelayStreamOptions, maxLeadMs: number, private readonly now: () => number, private readonly onFirst: () => void) {
    const keys = { localMasterKey: options.key, localMasterSalt: options.salt, remoteMasterKey: options.key, remoteMasterSalt: options.salt };
    // werift derives the session keys (RFC 3711 KDF); the fast writer then protects each packet.
    const context = new SrtpSession({ keys, profile: SRTP_PROFILE_AES128_CM_SHA1_80 }).localContext;
    this.writer = new SrtpStreamWriter(
      { profile: SRTP_PROFILE_AES128_CM_SHA1_80, srtpSessionKey: context.srtpSessionKey, srtpSessionSalt: context.srtpSessionSalt, srtpSessionAuthTag: context.srtpSessionAuthTag },
      options.ssrc,
    );
    this.srtcp = new SrtcpSession({ keys, profile: SRTP_PROFILE_AES128_CM_SHA1_80 });
    this.maxLeadTicks = Math.round((maxLeadMs * options.clockRate) / 1000);
    this.cname = `webrtc-cameras-${options.kind}`;
    // A GOP burst from ffmpeg arrives faster than the event loop may read it: ask for a large
    // receive buffer (the kernel caps it at net.core.rmem_max).
    this.input = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
    this.input.on('message', (message) => this.fromFfmpeg(message));
    this.input.on('error', () => undefined);
    // The controller's SRTP, when it sends any: the same key as ours, its own SSRC.
    const incoming = options.onIncomingRtp ? new SrtpSession({ keys, profile: SRTP_PROFILE_AES128_CM_SHA1_80 }) : undefined;
    options.socket.on('message', (message) => {
      this.stats.controllerPackets++;
      this.lastControllerPacketAt = this.now();
      if (incoming && options.onIncomingRtp && !isRtcpPacket(message)) this.fromController(incoming, message, options.onIncomingRtp);
    });
  }

  get kind(): RelayKind {
    return this.options.kind;
  }

  bind(): Promise<number> {
    return bindUdpSocket(this.input, '127.0.0.1');
  }

  private fromController(srtp: SrtpSession, message: Buffer, deliver: (packet: IncomingRtp) => void): void {
    let plain: Buffer;
    try {
      plain = srtp.decrypt(message);
    } catch {
      // Not the controller's key (a stranger on the port) or a damaged packet.
      this.stats.incomingRejected++;
      return;
    }
    const rtp = parseRtp(plain);
    if (typeof rtp === 'string') {
      this.stats.incomingRejected++;
      return;
    }
    this.stats.incomingRtp++;
    deliver({ payloadType: rtp.payloadType, sequenceNumber: rtp.sequenceNumber, timestamp: rtp.timestamp, ssrc: rtp.ssrc, payload: Buffer.from(rtp.payload) });
  }

  /** ffmpeg is being (re)started: its numbering starts over, ours continues. */
  newEpoch(): void {
    this.fresh = true;
  }

  private ticks(ms: number): number {
    return Math.floor((ms * this.options.clockRate) / 1000);
  }

  private fromFfmpeg(message: Buffer): void {
    if (isRtcpPacket(message)) return; // ffmpeg's reports carry its own timestamps; ours replace them
    const rtp = parseRtp(message);
    if (typeof rtp === 'string') return;
    const nowMs = this.now();
    const nowTicks = this.ticks(nowMs);
    let outU: number;
    if (this.fresh) {
      this.fresh = false;
      this.seqOffset = (this.lastOutSeq + 1 - rtp.sequenceNumber) & 0xffff;
      this.lastInTs = rtp.timestamp;
      this.inU = 0;
      this.maxInU = 0;
      // Start at "now", and never before what was already sent (an ffmpeg restart).
      outU = this.anySent ? Math.max(nowTicks, this.lastOutU + 1) : nowTicks;
      this.offset = outU;
    } else {
      this.inU += timestampDelta(this.lastInTs, rtp.timestamp);
      this.lastInTs = rtp.timestamp;
      if (this.inU > this.maxInU) {
        // A new frame (or audio packet). Normally it keeps its spacing from the previous one.
        // After dropped packets, this one takes the slot right after the last one sent, so the
        // timeline stays gapless (the mapping moves back by what was dropped).
        let candidate = this.droppedSinceSend ? this.lastOutU + (this.inU - this.maxInU) : this.inU + this.offset;
        if (candidate - nowTicks > this.maxLeadTicks) {
          if (this.options.kind === 'audio') {
            // Stale audio from the start burst: drop it, and let the next packet take its slot
            // so the timeline stays gapless and catches up with real time.
            this.maxInU = this.inU;
            this.droppedSinceSend = true;
            this.stats.packetsDropped++;
            // The next packet sent takes this one's sequence number too, or the Home app would
            // count every dropped packet as lost.
            this.seqOffset = (this.seqOffset - 1) & 0xffff;
            return;
          }
          // Video cannot drop frames (later ones reference them): squeeze them towards now.
          candidate = Math.max(nowTicks, this.lastOutU + 1);
          this.stats.framesSqueezed++;
        }
        this.offset = candidate - this.inU;
        this.maxInU = this.inU;
        outU = candidate;
      } else {
        // Another packet of the same frame, or a reordered (B-)frame: same mapping.
        outU = this.inU + this.offset;
      }
    }
    const sequenceNumber = (rtp.sequenceNumber + this.seqOffset) & 0xffff;
    this.lastOutSeq = sequenceNumber;
    if (outU >= this.lastOutU || !this.anySent) {
      this.lastOutU = outU;
      this.lastSendNow = nowMs;
    }
    this.droppedSinceSend = false;
    const timestamp = (outU + this.tsBase) >>> 0;
    const packet = this.writer.protect(this.options.payloadType, rtp.marker, sequenceNumber, timestamp, rtp.payload);
    this.options.socket.send(packet, this.options.target.port, this.options.target.address);
    this.stats.packetsSent++;
    this.stats.bytesSent += rtp.payload.length;
    if (!this.anySent) {
      this.anySent = true;
      this.firstPacketAt = nowMs;
      this.onFirst();
    }
  }

  /** An RTCP sender report plus SDES CNAME (RFC 3550 compound packet), SRTCP-protected. */
  sendReport(): void {
    if (!this.anySent) return;
    const nowMs = this.now();
    const rtpTs = (this.lastOutU + this.ticks(nowMs - this.lastSendNow) + this.tsBase) >>> 0;
    // V=2, no report blocks (we receive nothing worth reporting), then the SDES CNAME.
    const packet = this.srtcp.encrypt(buildSenderReport({
      ssrc: this.options.ssrc,
      ntpMs: Date.now(),
      rtpTimestamp: rtpTs,
      packetCount: this.stats.packetsSent,
      octetCount: this.stats.bytesSent,
      cname: this.cname,
    }));
    this.options.socket.send(packet, this.options.target.port, this.options.target.address);
  }

  close(): void {
    try {
      this.input.close();
    } catch {
      // already closed
    }
  }
}

/** One HomeKit stream's relay: video, and audio when negotiated. */
export class SrtpRelay extends EventEmitter<SrtpRelayEvents> {
  private readonly streams: RelayStream[] = [];
  private readonly now: () => number;
  private startedAt = -1;
  private reportTimer: NodeJS.Timeout | undefined;
  private silenceTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private silenceReported = false;
  readonly videoPort: number;
  readonly audioPort: number | undefined;

  private constructor(private readonly options: SrtpRelayOptions, streams: RelayStream[], ports: number[]) {
    super();
    this.now = options.now ?? (() => performance.now());
    this.streams = streams;
    this.videoPort = ports[0]!;
    this.audioPort = ports[1];
  }

  /** Binds the loopback ports ffmpeg will write to. */
  static async create(options: SrtpRelayOptions): Promise<SrtpRelay> {
    const now = options.now ?? (() => performance.now());
    const maxLead = options.maxLeadMs ?? 100;
    const holder: { relay?: SrtpRelay } = {};
    const make = (o: RelayStreamOptions): RelayStream => new RelayStream(o, maxLead, now, () => holder.relay?.firstPacket(o.kind));
    const streams = [make(options.video), ...(options.audio ? [make(options.audio)] : [])];
    try {
      const ports = await Promise.all(streams.map((s) => s.bind()));
      holder.relay = new SrtpRelay(options, streams, ports);
      return holder.relay;
    } catch (error) {
      for (const s of streams) s.close();
      throw error;
    }
  }

  /** START: time the first packet from here, send reports, watch the controller's RTCP. */
  markStart(): void {
    if (this.startedAt >= 0 || this.closed) return;
    this.startedAt = this.now();
    this.reportTimer = setInterval(() => {
      for (const stream of this.streams) stream.sendReport();
    }, Math.max(200, this.options.rtcpIntervalMs));
    this.reportTimer.unref();
    this.silenceTimer = setInterval(() => this.checkSilence(), Math.min(1000, this.options.silenceTimeoutMs / 2));
    this.silenceTimer.unref();
  }

  /** Call before (re)starting ffmpeg: its numbering starts over, ours continues. */
  newEpoch(): void {
    for (const stream of this.streams) stream.newEpoch();
  }

  /** ms from START to the first video packet, when it went out. */
  get firstVideoPacketMs(): number | undefined {
    const video = this.streams[0];
    return video && video.firstPacketAt >= 0 && this.startedAt >= 0 ? video.firstPacketAt - this.startedAt : undefined;
  }

  stats(): { video: RelayStreamStats; audio?: RelayStreamStats } {
    const [video, audio] = this.streams;
    return { video: { ...video!.stats }, ...(audio ? { audio: { ...audio.stats } } : {}) };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.reportTimer);
    clearInterval(this.silenceTimer);
    for (const stream of this.streams) stream.close();
  }

  private firstPacket(kind: RelayKind): void {
    if (this.startedAt < 0) return;
    this.emit('first-packet', kind, this.now() - this.startedAt);
  }

  private checkSilence(): void {
    if (this.closed || this.silenceReported) return;
    const last = Math.max(this.startedAt, ...this.streams.map((s) => s.lastControllerPacketAt));
    const silentFor = this.now() - last;
    if (silentFor >= this.options.silenceTimeoutMs) {
      this.silenceReported = true;
      this.emit('controller-silent', silentFor);
    }
  }
}
