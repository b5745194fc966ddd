/**
 * What a Source keeps per media kind across sessions: the output timeline (so timestamps and
 * sequence numbers never jump back across reconnects), the cumulative counters and measurements,
 * and turning a pipeline's frame into the shared `MediaFrame` in that timeline. Also the Source's
 * `stats()` snapshot, which is read from these states.
 */
import type { CodecName, DepacketizerCounters, MediaFrame, MediaKind, SourceStats, SourceState, TrackDescription, TrackStats } from './types.js';
import { timestampDelta } from './rtp.js';
import { OutputTimeline } from './timeline.js';
import { RateMeter } from './rate-meter.js';
import type { VideoInfo } from './video-pipeline.js';
import type { PipelineFrame } from './pipeline.js';
import { newDepacketizerCounters } from './nal-assembler.js';
import { SourceFrame } from './frame.js';
import type { ReceptionCounters } from './track-receiver.js';

/** A bitrate is known once the meter has this much of the camera's stream. */
export const MIN_BITRATE_SPAN_MS = 1000;

/** Per-kind state that outlives sessions: the output timeline and cumulative counters. */
export class KindState implements ReceptionCounters {
  readonly timeline: OutputTimeline;
  readonly bytes = new RateMeter();
  readonly frames = new RateMeter();
  readonly depacketizerTotals = newDepacketizerCounters();
  codec: CodecName;
  packetsReceived = 0;
  packetsLost = 0;
  packetsLate = 0;
  packetsMalformed = 0;
  framesOut = 0;
  framesDamaged = 0;
  keyframes = 0;
  info: VideoInfo | undefined;
  lastKeyframeAt = -1;
  keyframeIntervalMs: number | undefined;

  constructor(
    readonly kind: MediaKind,
    codec: CodecName,
    clockRate: number,
    initialSequence: number,
  ) {
    this.codec = codec;
    this.timeline = new OutputTimeline(clockRate, initialSequence);
  }

  /**
   * Maps a pipeline frame into the output timeline, counts it, and returns the frame every
   * subscriber will share. `senderReport` (the camera's latest RTCP SR) gives the capture time.
   */
  toMediaFrame(input: PipelineFrame, now: number, senderReport: { rtpTimestamp: number; wallClockMs: number } | undefined): MediaFrame {
    if (this.kind === 'video' && input.keyframe) {
      this.keyframes++;
      if (this.lastKeyframeAt >= 0) this.keyframeIntervalMs = now - this.lastKeyframeAt;
      this.lastKeyframeAt = now;
    }
    const timeline = this.timeline;
    const packetCount = input.packets ? input.packets.length : input.cut.count(input.units);
    const frame = new SourceFrame(
      this.kind,
      this.codec,
      timeline.clockRate,
      timeline.map(input.timestamp, now),
      timeline.takeSequence(packetCount),
      input.keyframe,
      input.units,
      input.byteLength,
      now,
      packetCount,
      input.packets,
      input.cut,
    );
    if (senderReport) {
      frame.captureTime = senderReport.wallClockMs + (timestampDelta(senderReport.rtpTimestamp, input.timestamp) * 1000) / timeline.clockRate;
    }
    if (input.damaged) {
      frame.damaged = true;
      this.framesDamaged++;
    }
    this.framesOut++;
    this.frames.add(now, 1);
    return frame;
  }

  /** This kind's stats; `liveCounters` are the depacketizer counters of the session under way. */
  stats(now: number, liveCounters: ReadonlyArray<DepacketizerCounters>): TrackStats {
    const depacketizer = { ...this.depacketizerTotals };
    for (const counters of liveCounters) addCounters(depacketizer, counters);
    return {
      codec: this.codec,
      clockRate: this.timeline.clockRate,
      packetsReceived: this.packetsReceived,
      packetsLost: this.packetsLost,
      packetsLate: this.packetsLate,
      packetsMalformed: this.packetsMalformed,
      framesOut: this.framesOut,
      keyframes: this.keyframes,
      framesDamaged: this.framesDamaged,
      // Over its first moments a camera's rate is its first keyframe's burst (a 640x360 camera read
      // as 10 Mbit/s 0.05 s in, and the Home app's stream was transcoded for it): 0, unknown, until then.
      bitrateBps: this.bytes.spanMs(now) >= MIN_BITRATE_SPAN_MS ? Math.round(this.bytes.perSecond(now) * 8) : 0,
      fps: Math.round(this.frames.perSecond(now) * 10) / 10,
      depacketizer,
    };
  }
}

/** The Source-wide figures `buildSourceStats` adds to the per-kind ones. */
export interface SourceFigures {
  id: string;
  name: string;
  state: SourceState;
  subscribers: number;
  reconnects: number;
  gopCacheBytes: number;
  gopCacheFrames: number;
  timeToFirstFrameMs: number | undefined;
}

/** The Source's `stats()` snapshot: O(1) in packets. */
export function buildSourceStats(
  figures: SourceFigures,
  kinds: Partial<Record<MediaKind, KindState>>,
  now: number,
  liveCounters: (state: KindState) => DepacketizerCounters[],
): SourceStats {
  const video = kinds.video;
  const audio = kinds.audio;
  const out: SourceStats = {
    id: figures.id,
    name: figures.name,
    state: figures.state.state,
    subscribers: figures.subscribers,
    reconnects: figures.reconnects,
    bitrateBps: 0,
    packetsReceived: 0,
    packetsLost: 0,
    gopCacheBytes: figures.gopCacheBytes,
    gopCacheFrames: figures.gopCacheFrames,
  };
  if (figures.state.lastError !== undefined) out.lastError = figures.state.lastError;
  if (figures.timeToFirstFrameMs !== undefined) out.timeToFirstFrameMs = figures.timeToFirstFrameMs;
  const primary = video ?? audio;
  if (primary) out.codec = primary.codec;
  if (video) {
    out.video = video.stats(now, liveCounters(video));
    out.fps = out.video.fps;
    const info = video.info;
    if (info) {
      out.width = info.width;
      out.height = info.height;
      out.profile = info.profileName;
      out.level = info.level;
      if (info.fps !== undefined) out.declaredFps = info.fps;
    }
    if (video.keyframeIntervalMs !== undefined) out.keyframeIntervalMs = video.keyframeIntervalMs;
  }
  if (audio) out.audio = audio.stats(now, liveCounters(audio));
  for (const track of [out.video, out.audio]) {
    if (!track) continue;
    out.bitrateBps += track.bitrateBps;
    out.packetsReceived += track.packetsReceived;
    out.packetsLost += track.packetsLost;
  }
  return out;
}

export function addCounters(into: DepacketizerCounters, from: DepacketizerCounters): void {
  for (const key of Object.keys(into) as Array<keyof DepacketizerCounters>) into[key] += from[key];
}

/** True when two track lists would tell a subscriber nothing new. */
export function sameTracks(a: ReadonlyArray<TrackDescription>, b: ReadonlyArray<TrackDescription>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.kind !== y.kind || x.codec !== y.codec || x.payloadType !== y.payloadType || x.clockRate !== y.clockRate) return false;
    if (x.channels !== y.channels || JSON.stringify(x.fmtp) !== JSON.stringify(y.fmtp)) return false;
    const px = x.parameterSets ?? [];
    const py = y.parameterSets ?? [];
    if (px.length !== py.length || px.some((p, j) => !p.equals(py[j]!))) return false;
  }
  return true;
}
