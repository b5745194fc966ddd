/**
 * One browser (or WHEP client) watching one camera: one werift RTCPeerConnection, fed as a
 * `FrameSink` of the camera's shared Source.
 *
 * Cost per viewer is the point of this file. The Source cuts every frame into RTP payloads once;
 * a viewer only writes a 12-byte header and SRTP-protects each payload with its own keys, then
 * hands it to the ICE pair's UDP socket (see srtp-writer.ts and packet-transport.ts). werift is
 * still what negotiates, runs ICE/DTLS and parses RTCP; its per-packet RTP send path and its
 * MediaStreamTrack fan-out are not used, so there are no track clones to leak.
 *
 * Life cycle: created -> (waitForTracks) -> createOffer/applyAnswer or answerOffer -> connected ->
 * closed. The peer subscribes to the Source at once (that starts the camera pull) and drops
 * frames until DTLS is up; then it asks the Source for the cached GOP so the picture appears at
 * once. Every way out (close(), ICE failure, a peer that never connects, the Source's tracks
 * changing incompatibly) goes through `close()`, which releases everything exactly once.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  MediaStream,
  RTCDtlsTransport,
  RTCPeerConnection,
  RtpHeader,
  RtpPacket,
  type RTCRtpCodecParameters,
  type RTCRtpTransceiver,
  type RtcpPacket,
} from 'werift';
import { parseH264Sps } from '../media/h264-sps.js';
import { every, plainTimers, realTimers, type TimerHandle, type TimerSeam } from '../media/timers.js';
import type { FrameSink, MediaFrame, SourceState, TrackDescription } from '../media/types.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { refusalLog } from '../util/summary-log.js';
import { RemoteCandidateFilter } from './remote-candidates.js';
import type { BroadcastSource } from '../media/types.js';
import { audioCodec, h264Codec, offerVideoCodec, planMedia, UnsupportedCodecError, vp8Codec, type MediaPlan } from './codecs.js';
import {
  announceCandidates,
  announceInSdp,
  localCandidateAllowed,
  restrictSdpCandidates,
  DEFAULT_ICE_SETTINGS,
  icePeerConfig,
  resolveAnnouncedAddresses,
  type IceSettings,
} from './ice-config.js';
import { OutboundStream } from './outbound-stream.js';
import { resolvePacketTransport, type PacketTransport } from './packet-transport.js';
import { ReplayPacer } from './replay-pacer.js';
import { answerAcceptsVideo, filterOfferForH264, filterOfferForVp8 } from './sdp-filter.js';
import { SrtpStreamWriter } from '../rtp/srtp-writer.js';
import type { IceCandidateJson, StreamInfo } from './types.js';

export type ViewerCloseReason =
  | 'closed'
  | 'connect-timeout'
  | 'ice-failed'
  | 'disconnected'
  | 'tracks-changed'
  | 'unsupported-codec'
  | 'error';

export type ViewerPhase = 'new' | 'negotiating' | 'connected' | 'closed';

export interface ViewerPeerOptions {
  source: BroadcastSource;
  ice?: IceSettings;
  logger?: Logger;
  /** Shown in logs and stats; random when absent. */
  id?: string;
  /**
   * The address the viewer's HTTP/WebSocket connection came from: its remote ICE candidates may
   * name that address even when it is loopback or one of the server's own (remote-candidates.ts).
   */
  remoteAddress?: string;
  /** A peer that has not connected this long after the offer/answer is reaped (default `CONNECT_TIMEOUT_MS`). */
  connectTimeoutMs?: number;
  /** A peer that stays `disconnected` this long is released (default 8 s). */
  disconnectGraceMs?: number;
  /**
   * A connected viewer from which no RTCP arrived for this long is released (default 10 s).
   * Browsers report every second; werift alone notices a vanished peer only after the 30 s ICE
   * consent expiry, sending it media all the while.
   */
  silenceTimeoutMs?: number;
  /** Keyframe requests (PLI/FIR) answered at most this often (default 1000 ms). */
  keyframeRequestIntervalMs?: number;
  /** Bytes waiting to be sent above which the viewer counts as congested (default 4 MiB). */
  maxQueuedBytes?: number;
  /**
   * Bytes waiting to be sent, in place of the ICE transport's own figure: a seam for tests and
   * benches to simulate a congested viewer (loopback never pushes back).
   */
  congestionProbe?: () => number;
  /**
   * Video packets kept for NACK retransmission (default 2048; 0 disables NACK answers). Only
   * references to the Source's shared payloads are kept, so a long history is cheap, and it must
   * cover a whole GOP replay.
   */
  nackHistoryPackets?: number;
  /** Rate at which a GOP replay (and the live video queued behind it) is sent (default 40 Mbit/s). */
  replayPaceMbps?: number;
  /** A frame older than this is a replay (GOP cache) and is moved to the present (default 300 ms). */
  staleFrameMs?: number;
  /**
   * `direct` (default) protects and sends packets itself; `werift` uses RTCRtpSender.sendRtp, kept
   * for comparison in the benchmark and as a fallback should werift's internals change.
   */
  sendPath?: 'direct' | 'werift';
  /**
   * Monotonic clock in ms (default performance.now; frame ages compare it with the Source's
   * `receivedAt`, so both must use the same clock) and timers (default the real ones) for the
   * connect timeout, disconnect grace, silence check, sender reports, keyframe-request spacing and
   * the tracks wait. Tests drive time with them. Sender reports still carry the real wall clock.
   */
  now?: () => number;
  timers?: TimerSeam;
}

export interface ViewerStats {
  id: string;
  cameraId: string;
  phase: ViewerPhase;
  /** Wall-clock creation time (ms since the epoch). */
  createdAt: number;
  /** Milestones in ms after creation, for time-to-first-frame breakdowns. */
  timeline: {
    tracks?: number;
    offer?: number;
    answer?: number;
    iceConnected?: number;
    connected?: number;
    firstVideoPacket?: number;
  };
  sendPath: 'direct' | 'werift';
  transport?: 'udp' | 'generic';
  srtpProfile?: number;
  packetsSent: number;
  bytesSent: number;
  framesSent: number;
  framesDropped: number;
  congestionEvents: number;
  keyframeRequests: number;
  keyframeRequestsAnswered: number;
  nacks: number;
  retransmissions: number;
  /** Last fraction lost the viewer reported for video (0..1). */
  videoFractionLost?: number;
}

interface ViewerPeerEvents {
  candidate: [IceCandidateJson | null];
  connected: [];
  info: [StreamInfo];
  sourceState: [SourceState];
  closed: [ViewerCloseReason, string | undefined];
}

/**
 * ICE and DTLS finish in well under a second on a LAN and in a second or two through TURN; an
 * unconnected viewer holds one of the camera's few slots, and offers that never connect are free
 * to send, so they are reaped after a few seconds rather than the 20 s this once was. The page
 * simply retries a viewer that was reaped.
 */
export const CONNECT_TIMEOUT_MS = 5_000;

const DEFAULTS = {
  connectTimeoutMs: CONNECT_TIMEOUT_MS,
  disconnectGraceMs: 8_000,
  silenceTimeoutMs: 10_000,
  keyframeRequestIntervalMs: 1_000,
  maxQueuedBytes: 4 * 1024 * 1024,
  nackHistoryPackets: 2048,
  replayPaceMbps: 40,
  staleFrameMs: 300,
};

const SENDER_REPORT_INTERVAL_MS = 1_000;
/**
 * What a GOP replay may send in one go after a pause. A receiver's socket holds about 90
 * full-size datagrams at Linux's default 208 KiB buffer, and a busy receiver reads in turns (libuv
 * takes at most 32 datagrams per socket per loop turn): bursts of 64 KiB at 80 Mbit/s overflowed
 * it on a loaded machine (RcvbufErrors rising, damaged frames a few frames into the replay), so a
 * burst stays below one read turn (13 packets) and the rate below what a starved receiver drains.
 * A 2 s GOP at 2 Mbit/s still drains in 100 ms, and its keyframe arrives in the first 10-20 ms.
 */
const REPLAY_BURST_BYTES = 16 * 1024;
/** The same packet is resent at most this often, however often it is NACKed. */
const RETRANSMIT_MIN_INTERVAL_MS = 100;
/**
 * A viewer that NACKs more than this share of its video packets for two seconds in a row cannot
 * keep up (slow Wi-Fi, a starved phone): it is cut back to the next keyframe like a congested one.
 */
const LOSS_CUTBACK_RATIO = 0.2;

/** How long `waitForTracks` waits by default before giving up on a camera that does not answer. */
export const DEFAULT_TRACKS_TIMEOUT_MS = 15_000;

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class ViewerPeer extends EventEmitter<ViewerPeerEvents> {
  readonly id: string;
  readonly source: BroadcastSource;
  private readonly log: Logger;
  private readonly ice: IceSettings;
  private readonly opts: typeof DEFAULTS & { sendPath: 'direct' | 'werift'; congestionProbe: (() => number) | undefined };
  private phaseValue: ViewerPhase = 'new';
  private readonly remoteCandidates: RemoteCandidateFilter;
  private pcValue: RTCPeerConnection | undefined;
  private plan: MediaPlan | undefined;
  private videoTransceiver: RTCRtpTransceiver | undefined;
  private audioTransceiver: RTCRtpTransceiver | undefined;
  private video: OutboundStream | undefined;
  private audio: OutboundStream | undefined;
  private transport: PacketTransport | undefined;
  private pacer: ReplayPacer | undefined;
  private dtls: RTCDtlsTransport | undefined;
  private subscription: { unsubscribe(): void } | undefined;
  private readonly disposers: Array<() => void> = [];
  private connectTimer: TimerHandle | undefined;
  private disconnectTimer: TimerHandle | undefined;
  private stopReports: (() => void) | undefined;
  private lastKeyframeRequestAt = Number.NEGATIVE_INFINITY;
  private lastRtcpAt = 0;
  /** NACKed vs sent video packets in the current one-second window, for the loss cut-back. */
  private readonly lossWindow = { nacked: 0, sentAtStart: 0, heavy: 0, cutBack: false };
  private pendingKeyframeTimer: TimerHandle | undefined;
  private readonly now: () => number;
  /** One-shot timers (default: plain ones, as before) and the repeating ones (default: not keeping the process alive, as before). */
  private readonly timers: TimerSeam;
  private readonly repeatTimers: TimerSeam;
  private readonly createdAtPerf: number;
  private infoSent: StreamInfo | undefined;
  private lastSps: Buffer | undefined;
  /** Announced public addresses, resolved to IPv4 when negotiation starts. */
  private announced: string[] = [];
  private closePromise: Promise<void> | undefined;
  private readonly statsValue: ViewerStats;
  /** The sink identity the Source knows this viewer by. */
  readonly sink: FrameSink;

  constructor(options: ViewerPeerOptions) {
    super();
    this.id = options.id ?? randomUUID();
    this.remoteCandidates = new RemoteCandidateFilter(options.remoteAddress);
    this.source = options.source;
    this.log = options.logger ?? silentLogger;
    this.ice = options.ice ?? DEFAULT_ICE_SETTINGS;
    this.now = options.now ?? (() => performance.now());
    this.timers = options.timers ?? plainTimers;
    this.repeatTimers = options.timers ?? realTimers;
    this.createdAtPerf = this.now();
    this.opts = {
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      disconnectGraceMs: options.disconnectGraceMs ?? DEFAULTS.disconnectGraceMs,
      silenceTimeoutMs: options.silenceTimeoutMs ?? DEFAULTS.silenceTimeoutMs,
      keyframeRequestIntervalMs: options.keyframeRequestIntervalMs ?? DEFAULTS.keyframeRequestIntervalMs,
      maxQueuedBytes: options.maxQueuedBytes ?? DEFAULTS.maxQueuedBytes,
      nackHistoryPackets: options.nackHistoryPackets ?? DEFAULTS.nackHistoryPackets,
      replayPaceMbps: options.replayPaceMbps ?? DEFAULTS.replayPaceMbps,
      staleFrameMs: options.staleFrameMs ?? DEFAULTS.staleFrameMs,
      sendPath: options.sendPath ?? 'direct',
      congestionProbe: options.congestionProbe,
    };
    this.statsValue = {
      id: this.id,
      cameraId: this.source.id,
      phase: 'new',
      createdAt: Date.now(),
      timeline: {},
      sendPath: this.opts.sendPath,
      packetsSent: 0,
      bytesSent: 0,
      framesSent: 0,
      framesDropped: 0,
      congestionEvents: 0,
      keyframeRequests: 0,
      keyframeRequestsAnswered: 0,
      nacks: 0,
      retransmissions: 0,
    };
    this.sink = {
      write: (frame) => this.write(frame),
      onTracks: (tracks) => this.onSourceTracks(tracks),
      onState: (state) => this.emit('sourceState', state),
    };
    // Subscribing now starts the camera pull while signalling runs; frames are dropped until DTLS is up.
    this.subscription = this.source.subscribe(this.sink);
  }

  private mark(milestone: keyof ViewerStats['timeline']): void {
    this.statsValue.timeline[milestone] ??= Math.round((this.now() - this.createdAtPerf) * 10) / 10;
  }

  get phase(): ViewerPhase {
    return this.phaseValue;
  }

  get closed(): boolean {
    return this.phaseValue === 'closed';
  }

  /** The werift peer connection, once negotiation started. */
  get peerConnection(): RTCPeerConnection | undefined {
    return this.pcValue;
  }

  stats(): ViewerStats {
    const s = this.statsValue;
    s.phase = this.phaseValue;
    s.packetsSent = (this.video?.packetsSent ?? 0) + (this.audio?.packetsSent ?? 0) + s.retransmissions;
    s.framesSent = (this.video?.framesSent ?? 0) + (this.audio?.framesSent ?? 0);
    if (this.transport) s.transport = this.transport.kind;
    return { ...s, timeline: { ...s.timeline } };
  }

  /**
   * Resolves with the Source's tracks once known (the camera connected), or rejects on timeout or
   * close. Learns of them through this viewer's own sink (`onTracks`), not a listener on the shared
   * Source, so a hundred waiting viewers add no listeners there; a slow poll covers Sources that
   * do not call `onTracks`.
   */
  waitForTracks(timeoutMs = DEFAULT_TRACKS_TIMEOUT_MS): Promise<ReadonlyArray<TrackDescription>> {
    if (this.source.tracks.length > 0) return Promise.resolve(this.source.tracks);
    return new Promise((resolve, reject) => {
      const started = this.now();
      const check = (): void => {
        if (this.closed) {
          cleanup();
          reject(new Error('viewer closed'));
        } else if (this.source.tracks.length > 0) {
          cleanup();
          resolve(this.source.tracks);
        } else if (this.now() - started >= timeoutMs) {
          cleanup();
          reject(new Error(`camera ${this.source.id} did not deliver its tracks within ${timeoutMs} ms`));
        }
      };
      const cleanup = (): void => {
        stopPolling();
        this.tracksWaiters.delete(check);
      };
      const stopPolling = every(this.timers, 250, check);
      this.tracksWaiters.add(check);
    });
  }

  private readonly tracksWaiters = new Set<() => void>();

  /** What the page is told about the stream, from the plan and the SPS when known. */
  streamInfo(): StreamInfo | undefined {
    const plan = this.plan;
    if (!plan) return undefined;
    const info: StreamInfo = { codec: plan.video ? plan.video.codec : null, audio: plan.audio ? plan.audio.codec : null };
    const sps = plan.video?.track.parameterSets?.find((nal) => nal.length > 0 && (nal[0]! & 0x1f) === 7);
    const parsed = sps ? parseH264Sps(sps) : undefined;
    if (parsed) {
      info.width = parsed.width;
      info.height = parsed.height;
    }
    if (plan.notes.length > 0) info.message = plan.notes.join(' ');
    return info;
  }

  // ---------------------------------------------------------------- negotiation

  private decidePlan(): MediaPlan {
    if (this.plan) return this.plan;
    this.mark('tracks');
    const plan = planMedia(this.source.tracks);
    for (const note of plan.notes) this.log.warn(`Camera ${this.source.id}, viewer ${this.id}: ${note}`);
    this.plan = plan;
    return plan;
  }

  private newPeerConnection(videoCodec: RTCRtpCodecParameters | undefined): RTCPeerConnection {
    const plan = this.decidePlan();
    const pc = new RTCPeerConnection({
      ...icePeerConfig(this.ice),
      // One transport for audio and video: one ICE check list, one DTLS handshake, one socket.
      bundlePolicy: 'max-bundle',
      codecs: {
        video: videoCodec ? [videoCodec] : [],
        audio: plan.audio ? [audioCodec(plan.audio)] : [],
      },
      headerExtensions: { video: [], audio: [] },
    });
    this.pcValue = pc;
    this.phaseValue = 'negotiating';
    const candidate = pc.onIceCandidate.subscribe((c) => this.onLocalCandidate(c));
    const state = pc.connectionStateChange.subscribe((s) => this.onConnectionState(s));
    const ice = pc.iceConnectionStateChange.subscribe((s) => {
      if (s === 'connected') this.mark('iceConnected');
    });
    this.disposers.push(candidate.unSubscribe, state.unSubscribe, ice.unSubscribe);
    return pc;
  }

  private startConnectTimer(): void {
    if (this.connectTimer) return;
    this.connectTimer = this.timers.setTimeout(() => {
      this.connectTimer = undefined;
      if (this.phaseValue !== 'connected') {
        refusalLog(this.log).note('info', `Camera ${this.source.id}: viewers that never connected were released`, `Camera ${this.source.id}: viewer ${this.id} never connected; released`);
        void this.close('connect-timeout');
      }
    }, this.opts.connectTimeoutMs);
  }

  /**
   * Server-offer path (WebSocket signalling). Needs the Source's tracks. Throws
   * `UnsupportedCodecError` when the camera's video cannot be passed through.
   */
  async createOffer(): Promise<string> {
    this.assertOpen();
    const plan = this.decidePlan();
    await this.resolveAnnounced();
    const pc = this.newPeerConnection(plan.video ? offerVideoCodec(plan.video) : undefined);
    // A shared stream id puts audio and video in one sync group, so the browser lip-syncs them.
    const stream = new MediaStream({ id: `camera-${this.source.id}` });
    if (plan.video) this.videoTransceiver = pc.addTransceiver('video', { direction: 'sendonly', streams: [stream] });
    if (plan.audio) this.audioTransceiver = pc.addTransceiver('audio', { direction: 'sendonly', streams: [stream] });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this.assertOpen();
    this.mark('offer');
    this.startConnectTimer();
    return restrictSdpCandidates(announceInSdp(pc.localDescription?.sdp ?? offer.sdp, this.announced), this.ice);
  }

  /** The browser's answer to `createOffer`. Throws `UnsupportedCodecError` when it refused the video. */
  async applyAnswer(sdp: string): Promise<void> {
    this.assertOpen();
    const pc = this.pcValue;
    if (!pc || pc.signalingState !== 'have-local-offer') throw new Error('no offer is waiting for an answer');
    const video = this.plan?.video;
    if (video && !answerAcceptsVideo(sdp)) {
      const name = video.codec === 'VP8' ? 'VP8' : 'H.264';
      throw new UnsupportedCodecError(
        `Your browser cannot play ${name} video, which this camera sends. Try Chrome, Edge, Safari or Firefox.`,
        `browser answer rejected the ${name} video section`,
      );
    }
    this.mark('answer');
    await pc.setRemoteDescription({ type: 'answer', sdp: this.remoteCandidates.filterSdp(sdp) });
  }

  /**
   * Client-offer path (WHEP). Cleans the offer (NOTES.md: werift picks the first H.264 by MIME
   * alone), answers, and waits up to `gatherTimeoutMs` for ICE gathering so the answer carries
   * candidates. Throws `UnsupportedCodecError` when the client cannot take the stream's video
   * (H.264 from the camera, or VP8 from its transcoded variant).
   */
  async answerOffer(offerSdp: string, gatherTimeoutMs = 3_000): Promise<string> {
    this.assertOpen();
    const plan = this.decidePlan();
    await this.resolveAnnounced();
    const vp8 = plan.video?.codec === 'VP8';
    const filtered = vp8 ? filterOfferForVp8(offerSdp) : filterOfferForH264(offerSdp);
    if (plan.video && !filtered.h264 && (!plan.audio || !filtered.hasAudio)) {
      throw new UnsupportedCodecError(
        vp8 ? 'The client did not offer VP8, which this stream sends.' : 'The client did not offer H.264 (packetization-mode=1), which this camera sends.',
        vp8 ? 'client offer has no VP8' : 'client offer has no H.264 packetization-mode=1',
      );
    }
    const chosen = filtered.h264;
    const videoCodec = plan.video && chosen ? (vp8 ? vp8Codec(chosen.payloadType) : h264Codec(chosen.payloadType, chosen.fmtp)) : undefined;
    const pc = this.newPeerConnection(videoCodec);
    await pc.setRemoteDescription({ type: 'offer', sdp: this.remoteCandidates.filterSdp(filtered.sdp) });
    this.assertOpen();
    const stream = new MediaStream({ id: `camera-${this.source.id}` });
    for (const transceiver of pc.getTransceivers()) {
      const wanted = transceiver.kind === 'video' ? videoCodec !== undefined && !this.videoTransceiver : !!plan.audio && !this.audioTransceiver;
      if (!wanted) {
        transceiver.setDirection('inactive');
        continue;
      }
      transceiver.setDirection('sendonly');
      transceiver.sender.setStreams([stream]);
      if (transceiver.kind === 'video') this.videoTransceiver = transceiver;
      else this.audioTransceiver = transceiver;
    }
    if (!this.videoTransceiver && !this.audioTransceiver) {
      throw new UnsupportedCodecError('The client offered nothing this camera can send.', 'no usable section in client offer');
    }
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.assertOpen();
    await this.waitForGathering(pc, gatherTimeoutMs);
    this.assertOpen();
    // From when the client gets the answer: gathering must not eat into its few seconds.
    this.startConnectTimer();
    return restrictSdpCandidates(announceInSdp(pc.localDescription?.sdp ?? answer.sdp, this.announced), this.ice);
  }

  private async resolveAnnounced(): Promise<void> {
    const configured = this.ice.announcedAddresses ?? [];
    if (configured.length === 0) return;
    this.announced = await resolveAnnouncedAddresses(configured, (problem) => this.log.warn(problem));
    this.assertOpen();
  }

  private waitForGathering(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.timers.clearTimeout(timer);
        sub.unSubscribe();
        resolve();
      };
      const sub = pc.iceGatheringStateChange.subscribe((state) => {
        if (state === 'complete') done();
      });
      const timer = this.timers.setTimeout(done, timeoutMs);
    });
  }

  /** A remote ICE candidate (trickle); `null` or an empty candidate means end of candidates. */
  async addRemoteCandidate(candidate: IceCandidateJson | null): Promise<void> {
    const pc = this.pcValue;
    if (!pc || this.closed) return;
    if (candidate === null || candidate.candidate === '') {
      await pc.addIceCandidate(null);
      return;
    }
    const verdict = this.remoteCandidates.admit(candidate.candidate);
    if (!verdict.ok) {
      this.log.debug(`Camera ${this.source.id}, viewer ${this.id}: remote candidate ignored (${verdict.reason})`);
      return;
    }
    await pc.addIceCandidate({
      candidate: candidate.candidate,
      sdpMid: candidate.sdpMid ?? undefined,
      sdpMLineIndex: candidate.sdpMLineIndex ?? undefined,
    });
  }

  private onLocalCandidate(candidate: { candidate: string; sdpMid?: string; sdpMLineIndex?: number } | undefined): void {
    if (this.closed) return;
    if (!candidate) {
      this.emit('candidate', null);
      return;
    }
    if (!localCandidateAllowed(candidate.candidate, this.ice)) return;
    const json: IceCandidateJson = {
      candidate: candidate.candidate,
      sdpMid: candidate.sdpMid ?? null,
      sdpMLineIndex: candidate.sdpMLineIndex ?? null,
    };
    this.emit('candidate', json);
    for (const extra of announceCandidates(candidate.candidate, this.announced)) {
      this.emit('candidate', { ...json, candidate: extra });
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('viewer closed');
  }

  // ---------------------------------------------------------------- connection state

  private onConnectionState(state: string): void {
    if (this.closed) return;
    switch (state) {
      case 'connected':
        if (this.disconnectTimer !== undefined) {
          this.timers.clearTimeout(this.disconnectTimer);
          this.disconnectTimer = undefined;
        }
        if (this.phaseValue !== 'connected') this.onConnected();
        break;
      case 'disconnected':
        // Wi-Fi hiccups recover by themselves; a viewer that stays away is released.
        this.disconnectTimer ??= this.timers.setTimeout(() => {
          this.disconnectTimer = undefined;
          void this.close('disconnected');
        }, this.opts.disconnectGraceMs);
        break;
      case 'failed':
        void this.close('ice-failed');
        break;
      case 'closed':
        void this.close('closed');
        break;
      default:
        break;
    }
  }

  private onConnected(): void {
    const pc = this.pcValue;
    const sender = (this.videoTransceiver ?? this.audioTransceiver)?.sender;
    const dtls = sender?.dtlsTransport;
    if (!pc || !dtls) {
      void this.close('error', 'connected without a transport');
      return;
    }
    this.phaseValue = 'connected';
    this.dtls = dtls;
    if (this.connectTimer !== undefined) {
      this.timers.clearTimeout(this.connectTimer);
      this.connectTimer = undefined;
    }
    this.mark('connected');
    let profile: number | undefined;
    try {
      profile = dtls.srtp.localContext.profile;
    } catch {
      profile = undefined;
    }
    this.statsValue.srtpProfile = profile;
    const direct = this.opts.sendPath === 'direct';
    const makeStream = (transceiver: RTCRtpTransceiver | undefined, kind: 'video' | 'audio'): OutboundStream | undefined => {
      const codec = transceiver?.sender.codec;
      if (!transceiver || !codec) return undefined;
      const ssrc = transceiver.sender.ssrc;
      return new OutboundStream({
        kind,
        ssrc,
        payloadType: codec.payloadType,
        clockRate: codec.clockRate,
        ...(direct ? { writer: new SrtpStreamWriter(dtls.srtp.localContext, ssrc) } : {}),
        historySize: kind === 'video' ? this.opts.nackHistoryPackets : 0,
      });
    };
    try {
      this.video = makeStream(this.videoTransceiver, 'video');
      this.audio = makeStream(this.audioTransceiver, 'audio');
    } catch (error) {
      void this.close('error', `cannot set up SRTP: ${errorText(error)}`);
      return;
    }
    this.lastRtcpAt = this.now();
    if (direct) {
      const bytesPerMs = (this.opts.replayPaceMbps * 1e6) / 8 / 1000;
      this.pacer = new ReplayPacer((parts) => this.sendParts(parts), bytesPerMs, REPLAY_BURST_BYTES);
    }
    const rtcp = dtls.onRtcp.subscribe((packet) => this.onRtcp(packet));
    this.disposers.push(rtcp.unSubscribe);
    this.stopReports = every(this.repeatTimers, SENDER_REPORT_INTERVAL_MS, () => this.sendReports());
    this.log.debug(`Camera ${this.source.id}: viewer ${this.id} connected (SRTP profile ${String(profile)})`);
    this.emit('connected');
    // The picture starts from the Source's GOP cache, not from the camera's next keyframe.
    this.requestKeyframe(true);
  }

  // ---------------------------------------------------------------- media out

  private write(frame: MediaFrame): boolean {
    if (this.phaseValue !== 'connected') return true;
    const out = frame.kind === 'video' ? this.video : this.audio;
    if (!out) return true;
    if (out.waitingForKeyframe && !frame.keyframe) {
      this.statsValue.framesDropped++;
      return true;
    }
    const transport = this.currentTransport();
    if (!transport) return true;
    // The pacer's queue counts only beyond a replay's worth: a replay is bounded by the GOP cache.
    const paced = Math.max(0, (this.pacer?.queuedBytes ?? 0) - this.opts.maxQueuedBytes);
    const queued = (this.opts.congestionProbe ? this.opts.congestionProbe() : transport.queuedBytes()) + paced;
    // A keyframe is already the fresh start a loss cut-back aims for; only cut inside a GOP.
    const lossCutBack = frame.kind === 'video' && this.lossWindow.cutBack && !frame.keyframe;
    if (frame.kind === 'video') this.lossWindow.cutBack = false;
    if (queued > this.opts.maxQueuedBytes || lossCutBack) {
      // Congested: the Source skips this viewer's video up to the next keyframe.
      this.statsValue.congestionEvents++;
      this.statsValue.framesDropped++;
      if (frame.kind === 'video') out.waitingForKeyframe = true;
      return false;
    }
    const now = this.now();
    const age = now - frame.receivedAt;
    if (frame.kind === 'audio' && age > this.opts.staleFrameMs) {
      // Old audio (a replayed cache) would only put sound out of step; the next frame is live.
      this.statsValue.framesDropped++;
      return true;
    }
    const timestamp = out.timestampFor(frame, age, this.opts.staleFrameMs);
    if (age <= this.opts.staleFrameMs) {
      out.noteLive(timestamp, frame.captureTime ?? performance.timeOrigin + frame.receivedAt);
    }
    if (frame.keyframe && frame.kind === 'video') {
      out.waitingForKeyframe = false;
      this.checkResolution(frame);
    }
    const packets = frame.packets;
    let bytes = 0;
    try {
      if (this.opts.sendPath === 'direct') {
        // Replayed video, and live video behind a replay still draining, goes through the pacer.
        const pacer = frame.kind === 'video' && this.pacer && (age > this.opts.staleFrameMs || this.pacer.active) ? this.pacer : undefined;
        for (let i = 0; i < packets.length; i++) {
          const p = packets[i]!;
          const parts = out.protect(p.marker, timestamp, p.payload);
          const size = parts[0]!.length + parts[1]!.length + parts[2]!.length;
          if (pacer) pacer.push(parts, size);
          else transport.send(parts);
          bytes += size;
        }
      } else {
        this.writeViaWerift(frame.kind, out, timestamp, packets);
      }
    } catch (error) {
      // The socket went away under us (ICE closing); the connection-state handler finishes the job.
      this.transport = undefined;
      this.log.debug(`Camera ${this.source.id}: viewer ${this.id} send failed: ${errorText(error)}`);
      return true;
    }
    if (frame.kind === 'video' && this.statsValue.timeline.firstVideoPacket === undefined) this.mark('firstVideoPacket');
    this.statsValue.bytesSent += bytes;
    out.framesSent++;
    return true;
  }

  /** Sends one protected packet now (the pacer's output); a vanished socket is not an error here. */
  private sendParts(parts: Buffer[]): void {
    if (this.phaseValue !== 'connected') return;
    try {
      this.currentTransport()?.send(parts);
    } catch {
      this.transport = undefined;
    }
  }

  private writeViaWerift(
    kind: 'video' | 'audio',
    out: OutboundStream,
    timestamp: number,
    packets: MediaFrame['packets'],
  ): void {
    const sender = (kind === 'video' ? this.videoTransceiver : this.audioTransceiver)?.sender;
    if (!sender) return;
    for (const p of packets) {
      const header = new RtpHeader({
        payloadType: out.payloadType,
        sequenceNumber: out.nextSequence(p.payload.length),
        timestamp,
        marker: p.marker,
        ssrc: out.ssrc,
      });
      this.statsValue.bytesSent += p.payload.length + 12;
      void sender.sendRtp(new RtpPacket(header, p.payload));
    }
  }

  private currentTransport(): PacketTransport | undefined {
    const connection = this.dtls?.iceTransport.connection;
    if (!connection) return undefined;
    if (this.transport && this.transport.pair === connection.nominated) return this.transport;
    this.transport = resolvePacketTransport(connection);
    return this.transport;
  }

  private checkResolution(frame: MediaFrame): void {
    // Cheap: one byte per unit; the SPS is parsed only when its bytes differ from the last one.
    const sps = frame.units.find((u) => u.length > 0 && (u[0]! & 0x1f) === 7);
    if (!sps) return;
    const info = this.infoSent;
    if (info && this.lastSps && this.lastSps.equals(sps)) return;
    this.lastSps = sps;
    const parsed = parseH264Sps(sps);
    const base = this.streamInfo();
    if (!parsed || !base) return;
    if (info && info.width === parsed.width && info.height === parsed.height) return;
    const next: StreamInfo = { ...base, width: parsed.width, height: parsed.height };
    this.infoSent = next;
    this.emit('info', next);
  }

  /** Records what the page was told, so a resolution change is reported once. */
  markInfoSent(info: StreamInfo): void {
    this.infoSent = info;
  }

  // ---------------------------------------------------------------- RTCP

  private onRtcp(packet: RtcpPacket): void {
    if (this.closed) return;
    this.lastRtcpAt = this.now();
    const video = this.video;
    switch (packet.type) {
      case 206: {
        const fb = packet.feedback;
        if (!video) return;
        if ('fir' in fb) {
          // FIR (RFC 5104): media SSRC is 0, the target is in the FCI entries.
          if (fb.fir.some((entry) => entry.ssrc === video.ssrc)) this.onKeyframeRequest('FIR');
        } else if (fb.count === 1 && 'mediaSsrc' in fb && fb.mediaSsrc === video.ssrc) {
          this.onKeyframeRequest('PLI');
        }
        return;
      }
      case 205: {
        const fb = packet.feedback;
        if (!video || !('lost' in fb) || fb.mediaSourceSsrc !== video.ssrc) return;
        this.onNack(video, fb.lost);
        return;
      }
      case 200:
      case 201: {
        for (const report of packet.reports) {
          if (video && report.ssrc === video.ssrc) this.statsValue.videoFractionLost = report.fractionLost / 256;
        }
        return;
      }
      default:
        return;
    }
  }

  private onNack(video: OutboundStream, lost: number[]): void {
    this.statsValue.nacks++;
    this.lossWindow.nacked += lost.length;
    const transport = this.currentTransport();
    if (!transport || this.opts.sendPath !== 'direct') return;
    const now = this.now();
    for (const seq of lost) {
      const packet = video.retransmission(seq, now, RETRANSMIT_MIN_INTERVAL_MS);
      if (!packet) continue;
      try {
        transport.send(packet);
      } catch {
        return;
      }
      this.statsValue.retransmissions++;
      for (const part of packet) this.statsValue.bytesSent += part.length;
    }
  }

  private onKeyframeRequest(kind: 'PLI' | 'FIR'): void {
    this.statsValue.keyframeRequests++;
    this.log.debug(`Camera ${this.source.id}: viewer ${this.id} sent ${kind}`);
    this.requestKeyframe(false);
  }

  /**
   * Asks the Source to replay its GOP cache to this viewer only. Rate-limited: browsers repeat
   * PLIs while they wait, and every answer is a burst of a whole GOP. A request inside the quiet
   * interval is answered once at its end.
   */
  private requestKeyframe(force: boolean): void {
    if (this.closed) return;
    const now = this.now();
    const wait = this.lastKeyframeRequestAt + this.opts.keyframeRequestIntervalMs - now;
    if (!force && wait > 0) {
      // A little later than our own interval, so the Source's equal per-sink limit has expired too.
      this.pendingKeyframeTimer ??= this.timers.setTimeout(() => {
        this.pendingKeyframeTimer = undefined;
        this.requestKeyframe(true);
      }, wait + 25);
      return;
    }
    this.lastKeyframeRequestAt = now;
    this.statsValue.keyframeRequestsAnswered++;
    // No local "wait for keyframe" here: a replay starts with one, and when the Source has none
    // cached it holds this sink's video until the next live keyframe itself.
    this.source.requestKeyframe(this.sink);
  }

  /** Once a second: is this viewer losing so much that it should skip to the next keyframe? */
  private evaluateLoss(): void {
    const video = this.video;
    const window = this.lossWindow;
    if (!video) return;
    const sent = video.packetsSent - window.sentAtStart;
    const heavy = sent > 50 && window.nacked / sent > LOSS_CUTBACK_RATIO;
    window.heavy = heavy ? window.heavy + 1 : 0;
    if (window.heavy >= 2) {
      window.heavy = 0;
      window.cutBack = true;
      this.log.debug(`Camera ${this.source.id}: viewer ${this.id} is losing ${Math.round((100 * window.nacked) / sent)}% of video; skipping to the next keyframe`);
    }
    window.nacked = 0;
    window.sentAtStart = video.packetsSent;
  }

  private sendReports(): void {
    const dtls = this.dtls;
    if (!dtls || this.phaseValue !== 'connected') return;
    if (this.now() - this.lastRtcpAt > this.opts.silenceTimeoutMs) {
      this.log.info(`Camera ${this.source.id}: viewer ${this.id} went silent; released`);
      void this.close('disconnected', 'no RTCP from the viewer');
      return;
    }
    this.evaluateLoss();
    // On the werift path werift's own sender reports (it counts what it sent).
    if (this.opts.sendPath !== 'direct') return;
    const now = performance.timeOrigin + performance.now(); // the real wall clock: SRs map RTP time to NTP
    const reports = [this.video?.senderReport(now), this.audio?.senderReport(now)].filter((r) => r !== undefined);
    if (reports.length === 0) return;
    dtls.sendRtcp(reports).catch(() => undefined);
  }

  // ---------------------------------------------------------------- source changes

  private onSourceTracks(tracks: ReadonlyArray<TrackDescription>): void {
    for (const waiter of [...this.tracksWaiters]) waiter();
    const plan = this.plan;
    if (!plan || this.closed || tracks.length === 0) return;
    let next: MediaPlan;
    try {
      next = planMedia(tracks);
    } catch (error) {
      void this.close('tracks-changed', errorText(error));
      return;
    }
    const same = (next.video?.codec ?? null) === (plan.video?.codec ?? null) && (next.audio?.codec ?? null) === (plan.audio?.codec ?? null);
    if (!same) {
      // What was negotiated no longer describes the stream; the page reconnects and renegotiates.
      void this.close('tracks-changed', 'the camera changed its codecs');
      return;
    }
    this.plan = { ...next, notes: plan.notes };
  }

  // ---------------------------------------------------------------- teardown

  /** Releases everything, once: subscription, timers, werift subscriptions, transceivers, the pc. */
  close(reason: ViewerCloseReason = 'closed', detail?: string): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.phaseValue = 'closed';
    this.closePromise = this.teardown(reason, detail);
    return this.closePromise;
  }

  private async teardown(reason: ViewerCloseReason, detail: string | undefined): Promise<void> {
    for (const waiter of [...this.tracksWaiters]) waiter();
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    for (const timer of [this.connectTimer, this.disconnectTimer, this.pendingKeyframeTimer]) {
      if (timer !== undefined) this.timers.clearTimeout(timer);
    }
    this.stopReports?.();
    this.connectTimer = this.disconnectTimer = this.pendingKeyframeTimer = this.stopReports = undefined;
    for (const dispose of this.disposers.splice(0)) {
      try {
        dispose();
      } catch {
        // An already-disposed werift subscription; nothing left to release.
      }
    }
    this.pacer?.clear();
    this.pacer = undefined;
    this.video?.clearHistory();
    this.audio?.clearHistory();
    this.transport = undefined;
    this.dtls = undefined;
    const pc = this.pcValue;
    if (pc) {
      for (const transceiver of pc.getTransceivers()) {
        // No tracks are attached on the direct path; stop() also ends werift's RTCP loop.
        transceiver.sender.track?.stop();
        transceiver.sender.stop();
      }
      try {
        await pc.close();
      } catch (error) {
        this.log.debug(`Camera ${this.source.id}: viewer ${this.id} close: ${errorText(error)}`);
      }
    }
    this.videoTransceiver = this.audioTransceiver = undefined;
    this.log.debug(`Camera ${this.source.id}: viewer ${this.id} closed (${reason}${detail ? `: ${detail}` : ''})`);
    this.emit('closed', reason, detail);
    this.removeAllListeners();
  }
}

let warmUpPromise: Promise<void> | undefined;

/**
 * Pays werift's one-time costs (the DTLS certificate, first-use compilation of its SDP and ICE
 * code: ~70-200 ms) before the first viewer arrives, so that viewer's first frame is not late.
 * Idempotent; never rejects.
 */
export function warmUpWebRtc(): Promise<void> {
  warmUpPromise ??= (async () => {
    try {
      await RTCDtlsTransport.SetupCertificate();
      const pc = new RTCPeerConnection({ iceServers: [], iceUseIpv6: false, codecs: { video: [h264Codec()], audio: [] } });
      pc.addTransceiver('video', { direction: 'sendonly' });
      await pc.setLocalDescription(await pc.createOffer());
      await pc.close();
    } catch {
      // Only an optimisation: the first real viewer pays the cost instead.
    }
  })();
  return warmUpPromise;
}
