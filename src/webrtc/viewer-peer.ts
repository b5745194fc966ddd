/**
 * One browser (or WHEP client) watching one camera: one werift RTCPeerConnection, fed as a
 * `FrameSink` of the camera's shared Source. This file is the life cycle; the parts beside it are
 * `viewer-negotiation.ts` (plan, offer/answer, ICE), `viewer-media.ts` (media out: the Source cuts
 * every frame into RTP payloads once, a viewer only writes a 12-byte header and SRTP-protects each
 * payload with its own keys; NACK answers, sender reports, keyframe requests), `viewer-rtcp.ts`
 * (what the viewer's RTCP asks for), `stream-info.ts`, `tracks-wait.ts` and `viewer-options.ts`.
 * werift negotiates, runs ICE/DTLS and parses RTCP; its per-packet RTP send path and its
 * MediaStreamTrack fan-out are not used (bench/webrtc.bench.ts measures them beside ours).
 *
 * Life cycle: created -> (waitForTracks) -> createOffer/applyAnswer or answerOffer -> connected ->
 * closed. The peer subscribes to the Source at once (that starts the camera pull) and drops
 * frames until DTLS is up; then it asks the Source for the cached GOP so the picture appears at
 * once. Every way out (close(), ICE failure, a peer that never connects, the Source's tracks
 * changing incompatibly) goes through `close()`, which releases everything exactly once. The file
 * stays at about 400 lines because that life cycle is one state machine (phase, timers, close)
 * which every part reports into.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { RTCDtlsTransport, RTCPeerConnection } from 'werift';
import { plainTimers, realTimers, type TimerHandle, type TimerSeam } from '../media/timers.js';
import type { FrameSink, SourceState, TrackDescription } from '../media/types.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { refusalLog } from '../util/summary-log.js';
import { RemoteCandidateFilter } from './remote-candidates.js';
import type { BroadcastSource } from '../media/types.js';
import { h264Codec, planMedia, type MediaPlan } from './codecs.js';
import { DEFAULT_ICE_SETTINGS } from './ice-config.js';
import type { IceCandidateJson, StreamInfo } from './types.js';
import {
  DEFAULT_TRACKS_TIMEOUT_MS,
  viewerSettings,
  type ViewerCloseReason,
  type ViewerPeerOptions,
  type ViewerPhase,
  type ViewerSettings,
  type ViewerStats,
} from './viewer-options.js';
import { ViewerNegotiation } from './viewer-negotiation.js';
import { ViewerMedia, errorText } from './viewer-media.js';
import { ResolutionWatch, streamInfoFor } from './stream-info.js';
import { TracksWait } from './tracks-wait.js';
import { guardDefaultStunServer } from './werift-stun.js';
import { ConsentResponder } from './consent-responder.js';
import { settleUdpPath, type SettledPath } from './viewer-settle.js';
import { settleTurnPath } from './viewer-settle-turn.js';
import { requestNativeHeapTrim } from '../rtp/native-heap-trim.js';
import { useOpensslX25519 } from './x25519.js';
import { ignoreStaleDtlsHellos } from './dtls-stale-hellos.js';
import { cacheDtlsCertificateParsing } from './dtls-certificate-cache.js';

// Moved to viewer-options.ts; re-exported for the modules that import them from here.
export { CONNECT_TIMEOUT_MS, DEFAULT_TRACKS_TIMEOUT_MS } from './viewer-options.js';
export type { ViewerCloseReason, ViewerPeerOptions, ViewerPhase, ViewerStats } from './viewer-options.js';

interface ViewerPeerEvents {
  candidate: [IceCandidateJson | null];
  connected: [];
  info: [StreamInfo];
  sourceState: [SourceState];
  closed: [ViewerCloseReason, string | undefined];
  /** The viewer's microphone (`talk`): one Opus payload and its 48 kHz RTP timestamp. */
  talkVoice: [Buffer, number];
}

export class ViewerPeer extends EventEmitter<ViewerPeerEvents> {
  readonly id: string;
  readonly source: BroadcastSource;
  private readonly log: Logger;
  private readonly opts: ViewerSettings;
  private phaseValue: ViewerPhase = 'new';
  private readonly negotiation: ViewerNegotiation;
  private readonly media: ViewerMedia;
  private subscription: { unsubscribe(): void } | undefined;
  private readonly disposers: Array<() => void> = [];
  private connectTimer: TimerHandle | undefined;
  private disconnectTimer: TimerHandle | undefined;
  private readonly now: () => number;
  /** One-shot timers (default: plain ones, as before); repeating ones default to not keeping the process alive. */
  private readonly timers: TimerSeam;
  private readonly createdAtPerf: number;
  private readonly resolution = new ResolutionWatch();
  private closePromise: Promise<void> | undefined;
  private readonly statsValue: ViewerStats;
  /** Answers the viewer's STUN consent checks once connected (consent-responder.ts). */
  private consent: ConsentResponder | undefined;
  /** The viewer's UDP path once werift is let go (viewer-settle.ts). */
  private settled: SettledPath | undefined;
  /**
   * `ready`: the next authentic RTCP tries to let werift go; `trying`: a try is on its way;
   * `done`: let go, or kept for good (a viewer that talks, the option off).
   */
  private settling: 'ready' | 'trying' | 'done' = 'ready';
  private readonly talks: boolean;
  private readonly tracksWait: TracksWait;
  /** The sink identity the Source knows this viewer by. */
  readonly sink: FrameSink;

  constructor(options: ViewerPeerOptions) {
    super();
    // Once per process (x25519.ts, dtls-stale-hellos.ts, dtls-certificate-cache.ts); warmUpWebRtc does them too, before the first viewer.
    useOpensslX25519();
    ignoreStaleDtlsHellos();
    cacheDtlsCertificateParsing();
    this.id = options.id ?? randomUUID();
    this.source = options.source;
    this.log = options.logger ?? silentLogger;
    const ice = options.ice ?? DEFAULT_ICE_SETTINGS;
    this.now = options.now ?? (() => performance.now());
    this.timers = options.timers ?? plainTimers;
    this.createdAtPerf = this.now();
    this.tracksWait = new TracksWait(this.source, this.timers, this.now, () => this.closed);
    this.opts = viewerSettings(options);
    this.talks = options.talk === true;
    this.statsValue = {
      id: this.id,
      cameraId: this.source.id,
      phase: 'new',
      createdAt: Date.now(),
      timeline: {},
      packetsSent: 0,
      bytesSent: 0,
      framesSent: 0,
      framesDropped: 0,
      congestionEvents: 0,
      keyframeRequests: 0,
      keyframeRequestsAnswered: 0,
      nacks: 0,
      retransmissions: 0,
      retransmissionsRefused: 0,
      retransmissionsTooOld: 0,
      rtcpRefused: 0,
      consentChecksAnswered: 0,
      weriftReleased: false,
    };
    this.sink = {
      write: (frame) => this.media.write(frame),
      onTracks: (tracks) => this.onSourceTracks(tracks),
      onState: (state) => this.emit('sourceState', state),
    };
    this.negotiation = new ViewerNegotiation({
      id: this.id,
      source: this.source,
      ice,
      log: this.log,
      timers: this.timers,
      remoteCandidates: new RemoteCandidateFilter(options.remoteAddress),
      mark: (milestone) => this.mark(milestone),
      closed: () => this.closed,
      onPeerConnection: () => {
        this.phaseValue = 'negotiating';
      },
      onConnectionState: (state) => this.onConnectionState(state),
      onCandidate: (candidate) => this.emit('candidate', candidate),
      startConnectTimer: () => this.startConnectTimer(),
      addDisposer: (dispose) => this.disposers.push(dispose),
      ...(options.talk ? { talk: true, onTalkVoice: (payload: Buffer, timestamp: number) => this.emit('talkVoice', payload, timestamp) } : {}),
      ...(options.receivesH265 ? { receivesH265: true } : {}),
    });
    this.media = new ViewerMedia({
      id: this.id,
      source: this.source,
      sink: this.sink,
      log: this.log,
      settings: this.opts,
      stats: this.statsValue,
      now: this.now,
      timers: this.timers,
      repeatTimers: options.timers ?? realTimers,
      connected: () => this.phaseValue === 'connected',
      onFirstVideoPacket: () => this.mark('firstVideoPacket'),
      onKeyframeSent: (frame) => {
        const next = this.resolution.check(frame, () => this.streamInfo());
        if (next) this.emit('info', next);
      },
      onSilent: () => {
        this.log.info(`Camera ${this.source.id}: viewer ${this.id} went silent; released`);
        void this.close('disconnected', 'no RTCP from the viewer');
      },
      onRtcp: () => {
        if (this.settling !== 'ready') return;
        this.settling = 'trying';
        // Not inside werift's receive path, which is what is being let go.
        setImmediate(() => {
          this.releaseWerift()
            .then((outcome) => {
              this.settling = outcome;
            })
            // Never a rejection out of here: the viewer keeps werift, as viewers on TCP do.
            .catch((error: unknown) => {
              this.settling = 'done';
              this.log.debug(`Camera ${this.source.id}: viewer ${this.id} keeps werift: ${errorText(error)}`);
            });
        });
      },
    });
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
    // undefined again once werift is let go (viewer-settle.ts).
    return this.negotiation.pc;
  }

  stats(): ViewerStats {
    const s = this.statsValue;
    s.phase = this.phaseValue;
    this.media.fillStats(s);
    s.consentChecksAnswered = this.consent?.answered ?? 0;
    if (this.settled) {
      s.settledDatagramsDropped = this.settled.counters.dropped + this.settled.counters.foreign;
      s.pathChanges = this.settled.counters.pathChanges;
    }
    return { ...s, timeline: { ...s.timeline } };
  }

  /** Resolves with the Source's tracks once known (the camera connected); rejects on timeout or close (tracks-wait.ts). */
  waitForTracks(timeoutMs = DEFAULT_TRACKS_TIMEOUT_MS): Promise<ReadonlyArray<TrackDescription>> {
    return this.tracksWait.wait(timeoutMs);
  }

  /** What the page is told about the stream, from the plan and the SPS when known. */
  streamInfo(): StreamInfo | undefined {
    const plan = this.negotiation.plan;
    return plan ? streamInfoFor(plan) : undefined;
  }

  /** The offer's section for the viewer's microphone, when it may talk. */
  get talkMid(): string | undefined {
    return this.negotiation.talkMid;
  }

  /** Records what the page was told, so a resolution change is reported once. */
  markInfoSent(info: StreamInfo): void {
    this.resolution.markSent(info);
  }

  // ---------------------------------------------------------------- negotiation (viewer-negotiation.ts)

  /**
   * Server-offer path (WebSocket signalling). Needs the Source's tracks. Throws
   * `UnsupportedCodecError` when the camera's video cannot be passed through.
   */
  createOffer(): Promise<string> {
    return this.negotiation.createOffer();
  }

  /** The browser's answer to `createOffer`. Throws `UnsupportedCodecError` when it refused the video. */
  applyAnswer(sdp: string): Promise<void> {
    return this.negotiation.applyAnswer(sdp);
  }

  /**
   * Client-offer path (WHEP): answers the client's offer, with candidates gathered for up to
   * `gatherTimeoutMs`. Throws `UnsupportedCodecError` when the client cannot take the stream's video.
   */
  answerOffer(offerSdp: string, gatherTimeoutMs = 3_000): Promise<string> {
    return this.negotiation.answerOffer(offerSdp, gatherTimeoutMs);
  }

  /** A remote ICE candidate (trickle); `null` or an empty candidate means end of candidates. */
  addRemoteCandidate(candidate: IceCandidateJson | null): Promise<void> {
    return this.negotiation.addRemoteCandidate(candidate);
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

  // ---------------------------------------------------------------- connection state

  private onConnectionState(state: string): void {
    // (A settled viewer hears nothing more from werift: releaseWerift() disposes its subscriptions
    // before werift closes.)
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
    const pc = this.negotiation.pc;
    const { videoTransceiver, audioTransceiver } = this.negotiation;
    const sender = (videoTransceiver ?? audioTransceiver)?.sender;
    const dtls = sender?.dtlsTransport;
    if (!pc || !dtls) {
      void this.close('error', 'connected without a transport');
      return;
    }
    this.phaseValue = 'connected';
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
    try {
      this.media.start(dtls, videoTransceiver, audioTransceiver, pc.cname, {
        onKeyframeRequest: (kind) => this.onKeyframeRequest(kind),
        onVideoFractionLost: (fraction) => {
          this.statsValue.videoFractionLost = fraction;
        },
      });
    } catch (error) {
      void this.close('error', `cannot set up SRTP: ${errorText(error)}`);
      return;
    }
    this.media.run();
    const consent = new ConsentResponder(dtls.iceTransport.connection);
    this.consent = consent;
    this.disposers.push(() => consent.close());
    this.log.debug(`Camera ${this.source.id}: viewer ${this.id} connected (SRTP profile ${String(profile)})`);
    this.emit('connected');
    // The picture starts from the Source's GOP cache, not from the camera's next keyframe. Asked
    // for once this turn of the event loop is over: werift is still handing DTLS's last flight to
    // the socket (through promises and Node's next-tick send), and a replay sent natively now
    // (native-fanout.ts sends at once) would reach the viewer before its DTLS is up, and be dropped.
    setImmediate(() => {
      if (!this.closed) this.media.requestKeyframe(true);
    });
  }

  /**
   * The viewer's RTCP arrived: its DTLS is complete on both sides. A viewer on a plain UDP pair
   * that does not talk needs werift for nothing more, so its peer connection is let go
   * (viewer-settle.ts); the rest keep it. `ready` when it could not be done now (no UDP pair at
   * the moment, say): the next RTCP tries again.
   */
  private async releaseWerift(): Promise<'ready' | 'done'> {
    if (!this.opts.releaseWerift || this.talks || this.closed || this.settled) return 'done';
    const pc = this.negotiation.pc;
    const dtls = (this.negotiation.videoTransceiver ?? this.negotiation.audioTransceiver)?.sender.dtlsTransport;
    const consent = this.consent;
    if (this.phaseValue !== 'connected' || !pc || !dtls || !consent) return 'ready';
    let path: SettledPath | undefined;
    try {
      const handlers = {
        readRtcp: (data: Buffer) => this.media.readRtcp(data),
        onAlert: () => {
          this.log.debug(`Camera ${this.source.id}: viewer ${this.id} closed its connection`);
          void this.close('closed', 'the viewer closed its connection');
        },
        // No address in the log line: a viewer's address is not the log's business.
        onPathChange: () => this.log.debug(`Camera ${this.source.id}: viewer ${this.id} moved to a new address; its media follow`),
        onChannelLost: () => void this.close('error', 'its TURN channel could not be refreshed'),
      };
      path = settleUdpPath(dtls, consent, this.opts.nativeFanout, handlers) ?? settleTurnPath(dtls, consent, this.opts.nativeFanout, handlers);
    } catch (error) {
      this.log.debug(`Camera ${this.source.id}: viewer ${this.id} keeps werift: ${errorText(error)}`);
      return 'done';
    }
    if (!path) return 'ready';
    this.settled = path;
    this.media.settle(path.transport);
    this.statsValue.weriftReleased = true;
    this.mark('weriftReleased');
    // werift's subscriptions go first, so that its closing is not taken for the viewer leaving.
    this.runDisposers();
    this.negotiation.release();
    await closeWerift(pc, (error) => this.log.debug(`Camera ${this.source.id}: viewer ${this.id} releasing werift: ${errorText(error)}`));
    this.log.debug(`Camera ${this.source.id}: viewer ${this.id} settled; werift let go`);
    // Its handshake's OpenSSL state and werift's objects are freed now: C heap glibc would keep.
    // (No logger passed: a closure here would share this method's context, and keep the viewer.)
    requestNativeHeapTrim();
    return 'done';
  }

  private onKeyframeRequest(kind: 'PLI' | 'FIR'): void {
    this.statsValue.keyframeRequests++;
    this.log.debug(`Camera ${this.source.id}: viewer ${this.id} sent ${kind}`);
    this.media.requestKeyframe(false);
  }

  // ---------------------------------------------------------------- source changes

  private onSourceTracks(tracks: ReadonlyArray<TrackDescription>): void {
    this.tracksWait.recheck();
    const plan = this.negotiation.plan;
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
    this.negotiation.replacePlan({ ...next, notes: plan.notes });
  }

  // ---------------------------------------------------------------- teardown

  /** werift subscriptions and the consent responder's hook, each released once. */
  private runDisposers(): void {
    for (const dispose of this.disposers.splice(0)) {
      try {
        dispose();
      } catch {
        // An already-disposed werift subscription; nothing left to release.
      }
    }
  }

  /** Releases everything, once: subscription, timers, werift subscriptions, transceivers, the pc. */
  close(reason: ViewerCloseReason = 'closed', detail?: string): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.phaseValue = 'closed';
    this.closePromise = this.teardown(reason, detail);
    return this.closePromise;
  }

  private async teardown(reason: ViewerCloseReason, detail: string | undefined): Promise<void> {
    this.tracksWait.recheck();
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    for (const timer of [this.connectTimer, this.disconnectTimer]) {
      if (timer !== undefined) this.timers.clearTimeout(timer);
    }
    this.connectTimer = this.disconnectTimer = undefined;
    this.runDisposers();
    this.media.stop();
    this.settled?.close();
    const pc = this.negotiation.pc;
    this.negotiation.release();
    if (pc) await closeWerift(pc, (error) => this.log.debug(`Camera ${this.source.id}: viewer ${this.id} close: ${errorText(error)}`));
    this.log.debug(`Camera ${this.source.id}: viewer ${this.id} closed (${reason}${detail ? `: ${detail}` : ''})`);
    this.emit('closed', reason, detail);
    this.removeAllListeners();
    requestNativeHeapTrim();
  }
}

/** Stops werift's senders (no tracks are attached; stop() also ends their RTCP loops) and closes the peer connection. */
async function closeWerift(pc: RTCPeerConnection, onError: (error: unknown) => void): Promise<void> {
  try {
    for (const transceiver of pc.getTransceivers()) {
      transceiver.sender.track?.stop();
      transceiver.sender.stop();
    }
    await pc.close();
  } catch (error) {
    onError(error);
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
    guardDefaultStunServer();
    useOpensslX25519();
    ignoreStaleDtlsHellos();
    cacheDtlsCertificateParsing();
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
