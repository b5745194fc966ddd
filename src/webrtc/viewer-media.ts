/**
 * A connected viewer's media out: one `OutboundStream` per kind over the Source's shared packets,
 * SRTP-protected by this viewer's keys and handed straight to the ICE pair's socket (see
 * srtp-writer.ts and packet-transport.ts), with GOP replays paced, and congestion turned into a
 * cut-back to the next keyframe. The RTCP the viewer sends back (keyframe requests, NACKs, loss
 * reports) acts on these streams, so it is read here too (`viewer-rtcp.ts` decides what it asks).
 */
import type { RTCDtlsTransport, RTCRtpTransceiver } from 'werift';
import type { FrameSink, MediaFrame } from '../media/types.js';
import { every, type TimerHandle, type TimerSeam } from '../media/timers.js';
import type { Logger } from '../util/logger.js';
import type { BroadcastSource } from '../media/types.js';
import { OutboundStream, type RetransmissionLimits } from './outbound-stream.js';
import { RetransmissionBudget } from './retransmission-budget.js';
import { resolvePacketTransport, type PacketTransport } from './packet-transport.js';
import { ReplayPacer } from './replay-pacer.js';
import { createRtpProtector, isSocketFull } from '../rtp/native-fanout.js';
import type { ViewerSettings, ViewerStats } from './viewer-options.js';
import { ViewerRtcpChannel, type RtcpReading, type ViewerRtcpTarget } from './viewer-rtcp.js';

/** What the viewer's RTCP asks of the peer rather than of the media (see viewer-rtcp.ts). */
export type ViewerFeedback = Pick<ViewerRtcpTarget, 'onKeyframeRequest' | 'onVideoFractionLost'>;

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
 * Packets further than this behind the newest frame are not resent: a receiver's jitter buffer has
 * moved on (libwebrtc keeps what it may resend for at least this long, longer only on a slow
 * round trip), and a late copy would only cost the receiver a decrypt.
 */
const RETRANSMIT_MAX_AGE_MS = 1_000;
/**
 * A viewer that NACKs more than this share of its video packets for two seconds in a row cannot
 * keep up (slow Wi-Fi, a starved phone): it is cut back to the next keyframe like a congested one.
 */
const LOSS_CUTBACK_RATIO = 0.2;

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export interface ViewerMediaOptions {
  id: string;
  source: BroadcastSource;
  /** The sink identity the Source knows this viewer by. */
  sink: FrameSink;
  log: Logger;
  settings: ViewerSettings;
  /** The viewer's stats, whose send counters this fills in. */
  stats: ViewerStats;
  now: () => number;
  /** One-shot timers (the keyframe-request spacing) and repeating ones (sender reports). */
  timers: TimerSeam;
  repeatTimers: TimerSeam;
  /** True while the viewer is connected (not before, not once closing). */
  connected(): boolean;
  /** The first video packet went out (a timeline milestone). */
  onFirstVideoPacket(): void;
  /** A video keyframe went out (the viewer checks it for a resolution change). */
  onKeyframeSent(frame: MediaFrame): void;
  /** The viewer fell silent: release it. */
  onSilent(): void;
  /** An authentic RTCP packet arrived from the viewer: its DTLS is up on its side too. */
  onRtcp?(): void;
}

export class ViewerMedia {
  private video: OutboundStream | undefined;
  private audio: OutboundStream | undefined;
  private transport: PacketTransport | undefined;
  /** Set once werift is let go (settle()): the one path there is from then on. */
  private settledTransport: PacketTransport | undefined;
  private pacer: ReplayPacer | undefined;
  private dtls: RTCDtlsTransport | undefined;
  private rtcp: ViewerRtcpChannel | undefined;
  private cname = '';
  private stopReports: (() => void) | undefined;
  private lastKeyframeRequestAt = Number.NEGATIVE_INFINITY;
  private pendingKeyframeTimer: TimerHandle | undefined;
  private lastRtcpAt = 0;
  /** NACKed vs sent video packets in the current one-second window, for the loss cut-back. */
  private readonly lossWindow = { nacked: 0, sentAtStart: 0, heavy: 0, cutBack: false };
  /** What the viewer's NACKs may still be answered with (retransmission-budget.ts). */
  private readonly retransmit: RetransmissionLimits = {
    minIntervalMs: RETRANSMIT_MIN_INTERVAL_MS,
    maxAgeMs: RETRANSMIT_MAX_AGE_MS,
    budget: new RetransmissionBudget(),
  };
  private stopped = false;

  constructor(private readonly options: ViewerMediaOptions) {}

  /** The video stream's SSRC, once connected: RTCP about other SSRCs is not ours. */
  get videoSsrc(): number | undefined {
    return this.video?.ssrc;
  }

  /**
   * DTLS is up: sets up the outgoing streams on the negotiated transceivers, and takes the viewer's
   * RTCP from here on (`cname` goes into our sender reports). Throws when SRTP cannot be set up.
   */
  start(
    dtls: RTCDtlsTransport,
    videoTransceiver: RTCRtpTransceiver | undefined,
    audioTransceiver: RTCRtpTransceiver | undefined,
    cname: string,
    feedback: ViewerFeedback,
  ): void {
    this.dtls = dtls;
    this.cname = cname;
    this.video = this.makeStream(dtls, videoTransceiver, 'video');
    this.audio = this.makeStream(dtls, audioTransceiver, 'audio');
    this.rtcp = new ViewerRtcpChannel(dtls, this.rtcpTarget(feedback));
  }

  private makeStream(dtls: RTCDtlsTransport, transceiver: RTCRtpTransceiver | undefined, kind: 'video' | 'audio'): OutboundStream | undefined {
    const codec = transceiver?.sender.codec;
    if (!transceiver || !codec) return undefined;
    const ssrc = transceiver.sender.ssrc;
    return new OutboundStream({
      kind,
      ssrc,
      payloadType: codec.payloadType,
      clockRate: codec.clockRate,
      writer: createRtpProtector(dtls.srtp.localContext, ssrc, this.options.settings.nativeFanout),
      historySize: kind === 'video' ? this.options.settings.nackHistoryPackets : 0,
    });
  }

  /**
   * What the viewer's RTCP acts on. Built apart from start(): closures made there would share its
   * scope, and so keep werift's DTLS transport (and with it the whole peer connection) alive for as
   * long as the viewer watches, also once werift has been let go (viewer-settle.ts).
   */
  private rtcpTarget(feedback: ViewerFeedback): ViewerRtcpTarget {
    return {
      videoSsrc: () => this.videoSsrc,
      onRtcp: () => this.noteRtcp(),
      onNack: (lost) => this.onNack(lost),
      onKeyframeRequest: (kind) => feedback.onKeyframeRequest(kind),
      onVideoFractionLost: (fraction) => feedback.onVideoFractionLost(fraction),
    };
  }

  /** Starts the pacer and the sender reports once the streams exist. */
  run(): void {
    this.lastRtcpAt = this.options.now();
    const bytesPerMs = (this.options.settings.replayPaceMbps * 1e6) / 8 / 1000;
    this.pacer = new ReplayPacer((parts) => this.sendParts(parts), bytesPerMs, REPLAY_BURST_BYTES);
    this.stopReports = every(this.options.repeatTimers, SENDER_REPORT_INTERVAL_MS, () => this.sendReports());
  }

  /** Adds the send counters to the viewer's stats. */
  fillStats(s: ViewerStats): void {
    s.rtcpRefused = this.rtcp?.counters.refused ?? s.rtcpRefused;
    s.packetsSent = (this.video?.packetsSent ?? 0) + (this.audio?.packetsSent ?? 0) + s.retransmissions;
    s.retransmissionsRefused = this.retransmit.budget.refused;
    s.retransmissionsTooOld = this.video?.retransmissionsTooOld ?? 0;
    s.framesSent = (this.video?.framesSent ?? 0) + (this.audio?.framesSent ?? 0);
    if (this.transport) {
      s.transport = this.transport.kind;
      s.sendPath = this.transport.nativeTarget() && (this.video ?? this.audio)?.sendsFrames ? 'native' : 'javascript';
    }
  }

  /** The Source's frame, as the viewer's sink gets it. False means congested (see FrameSink). */
  write(frame: MediaFrame): boolean {
    const { settings, stats } = this.options;
    if (!this.options.connected()) return true;
    const out = frame.kind === 'video' ? this.video : this.audio;
    if (!out) return true;
    if (out.waitingForKeyframe && !frame.keyframe) {
      stats.framesDropped++;
      return true;
    }
    const transport = this.currentTransport();
    if (!transport) return true;
    // The pacer's queue counts only beyond a replay's worth: a replay is bounded by the GOP cache.
    const paced = Math.max(0, (this.pacer?.queuedBytes ?? 0) - settings.maxQueuedBytes);
    const queued = (settings.congestionProbe ? settings.congestionProbe() : transport.queuedBytes()) + paced;
    // A keyframe is already the fresh start a loss cut-back aims for; only cut inside a GOP.
    const lossCutBack = frame.kind === 'video' && this.lossWindow.cutBack && !frame.keyframe;
    if (frame.kind === 'video') this.lossWindow.cutBack = false;
    if (queued > settings.maxQueuedBytes || lossCutBack) {
      // Congested: the Source skips this viewer's video up to the next keyframe.
      stats.congestionEvents++;
      stats.framesDropped++;
      if (frame.kind === 'video') out.waitingForKeyframe = true;
      return false;
    }
    const now = this.options.now();
    const age = now - frame.receivedAt;
    if (frame.kind === 'audio' && age > settings.staleFrameMs) {
      // Old audio (a replayed cache) would only put sound out of step; the next frame is live.
      stats.framesDropped++;
      return true;
    }
    const timestamp = out.timestampFor(frame, age, settings.staleFrameMs);
    if (age <= settings.staleFrameMs) {
      out.noteLive(timestamp, frame.captureTime ?? performance.timeOrigin + frame.receivedAt);
    }
    if (frame.keyframe && frame.kind === 'video') {
      out.waitingForKeyframe = false;
      this.options.onKeyframeSent(frame);
    }
    const packets = frame.packets;
    let bytes = 0;
    try {
      // Replayed video, and live video behind a replay still draining, goes through the pacer.
      const pacer = frame.kind === 'video' && this.pacer && (age > settings.staleFrameMs || this.pacer.active) ? this.pacer : undefined;
      const native = pacer ? undefined : transport.nativeTarget();
      if (native && out.sendsFrames) {
        // Native fan-out: the whole frame protected and sent in one call (one sendmmsg).
        const result = out.sendFrame(native, timestamp, packets);
        bytes = result.bytes;
        if (result.errno !== 0) {
          if (!isSocketFull(result.errno)) throw new Error(`sendmmsg failed (errno ${result.errno})`);
          // The socket buffer is full: the rest of the frame was dropped here rather than queued,
          // so this viewer is congested; its video skips to the next keyframe.
          stats.congestionEvents++;
          if (frame.kind === 'video') out.waitingForKeyframe = true;
        }
      } else {
        const first = out.reserve(timestamp, packets);
        for (let i = 0; i < packets.length; i++) {
          const p = packets[i]!;
          const parts = out.protect((first + i) & 0xffff, p.marker, timestamp, p.payload);
          let size = 0;
          for (let j = 0; j < parts.length; j++) size += parts[j]!.length;
          if (pacer) pacer.push(parts, size);
          else transport.send(parts);
          bytes += size;
        }
      }
    } catch (error) {
      // The socket went away under us (ICE closing); the connection-state handler finishes the job.
      this.transport = undefined;
      this.options.log.debug(`Camera ${this.options.source.id}: viewer ${this.options.id} send failed: ${errorText(error)}`);
      return true;
    }
    if (frame.kind === 'video' && stats.timeline.firstVideoPacket === undefined) this.options.onFirstVideoPacket();
    stats.bytesSent += bytes;
    if (frame.kind === 'video') this.retransmit.budget.earn(bytes);
    out.framesSent++;
    return true;
  }

  /** Any RTCP from the viewer: it is still there. */
  noteRtcp(): void {
    this.lastRtcpAt = this.options.now();
    this.options.onRtcp?.();
  }

  /**
   * One datagram from the viewer on the settled path: whether it was the viewer's RTCP, authentic
   * (and read here) or refused (counted), or something else.
   */
  readRtcp(data: Buffer): RtcpReading {
    return this.rtcp?.readSettled(data) ?? 'other';
  }

  /**
   * werift is let go (viewer-settle.ts): from now on packets leave by `transport` alone, and the
   * viewer's RTCP comes through `readRtcp` instead of werift's ICE connection.
   */
  settle(transport: PacketTransport): void {
    this.settledTransport = transport;
    this.transport = transport;
    this.dtls = undefined;
    this.rtcp?.stopReadingWerift();
  }

  /** A NACK for video packets: resends the ones still in the history. */
  onNack(lost: number[]): void {
    const stats = this.options.stats;
    const video = this.video;
    if (!video) return;
    stats.nacks++;
    this.lossWindow.nacked += lost.length;
    const transport = this.currentTransport();
    if (!transport) return;
    const now = this.options.now();
    for (const seq of lost) {
      const packet = video.retransmission(seq, now, this.retransmit);
      if (!packet) continue;
      let size = 0;
      for (const part of packet) size += part.length;
      // Paced like a replay: a NACK after a loss burst asks for a burst again, and sent at once it
      // overflowed the receiver's socket buffer as the first one did (a quarter of 117 resent
      // packets lost on loopback, test/webrtc/viewer-werift.test.ts).
      if (this.pacer) {
        this.pacer.push(packet, size);
      } else {
        try {
          transport.send(packet);
        } catch {
          return;
        }
      }
      stats.retransmissions++;
      stats.bytesSent += size;
    }
  }

  /**
   * Asks the Source to replay its GOP cache to this viewer only. Rate-limited: browsers repeat
   * PLIs while they wait, and every answer is a burst of a whole GOP. A request inside the quiet
   * interval is answered once at its end.
   */
  requestKeyframe(force: boolean): void {
    if (this.stopped) return;
    const now = this.options.now();
    const wait = this.lastKeyframeRequestAt + this.options.settings.keyframeRequestIntervalMs - now;
    if (!force && wait > 0) {
      // A little later than our own interval, so the Source's equal per-sink limit has expired too.
      this.pendingKeyframeTimer ??= this.options.timers.setTimeout(() => {
        this.pendingKeyframeTimer = undefined;
        this.requestKeyframe(true);
      }, wait + 25);
      return;
    }
    this.lastKeyframeRequestAt = now;
    this.options.stats.keyframeRequestsAnswered++;
    // No local "wait for keyframe" here: a replay starts with one, and when the Source has none
    // cached it holds this sink's video until the next live keyframe itself.
    this.options.source.requestKeyframe(this.options.sink);
  }

  /** Releases what is held: timers, the pacer's queue, the NACK history, the transport. */
  stop(): void {
    this.stopped = true;
    if (this.pendingKeyframeTimer !== undefined) this.options.timers.clearTimeout(this.pendingKeyframeTimer);
    this.pendingKeyframeTimer = undefined;
    this.stopReports?.();
    this.stopReports = undefined;
    this.pacer?.clear();
    this.pacer = undefined;
    this.video?.clearHistory();
    this.audio?.clearHistory();
    this.transport = this.settledTransport = undefined;
    this.dtls = undefined;
    this.rtcp?.stopReadingWerift();
    this.rtcp = undefined;
  }

  /** Sends one protected packet now (the pacer's output); a vanished socket is not an error here. */
  private sendParts(parts: Buffer[]): void {
    if (!this.options.connected()) return;
    try {
      this.currentTransport()?.send(parts);
    } catch {
      this.transport = undefined;
    }
  }

  private currentTransport(): PacketTransport | undefined {
    if (this.settledTransport) return this.settledTransport;
    const connection = this.dtls?.iceTransport.connection;
    if (!connection) return undefined;
    if (this.transport && this.transport.pair === connection.nominated) return this.transport;
    this.transport = resolvePacketTransport(connection, this.options.settings.nativeFanout);
    return this.transport;
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
      this.options.log.debug(
        `Camera ${this.options.source.id}: viewer ${this.options.id} is losing ${Math.round((100 * window.nacked) / sent)}% of video; skipping to the next keyframe`,
      );
    }
    window.nacked = 0;
    window.sentAtStart = video.packetsSent;
  }

  private sendReports(): void {
    const rtcp = this.rtcp;
    if (!rtcp || !this.options.connected()) return;
    if (this.options.now() - this.lastRtcpAt > this.options.settings.silenceTimeoutMs) {
      this.options.onSilent();
      return;
    }
    this.evaluateLoss();
    const transport = this.currentTransport();
    if (!transport) return;
    const now = performance.timeOrigin + performance.now(); // the real wall clock: SRs map RTP time to NTP
    const video = this.video?.senderReport(now, this.cname);
    const audio = this.audio?.senderReport(now, this.cname);
    // Both streams' reports in one compound packet (RFC 8108 aggregation, as browsers send theirs): one
    // SRTCP protection and one datagram a second per viewer instead of two.
    const compound = video && audio ? Buffer.concat([video, audio]) : (video ?? audio);
    if (!compound) return;
    try {
      transport.send(rtcp.protect(compound));
    } catch {
      this.transport = undefined;
    }
  }
}
