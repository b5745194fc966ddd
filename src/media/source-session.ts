/**
 * One session of a Source with its camera (one connection attempt, and what it delivers once
 * live): which of the camera's tracks are used, a receiver and a depacketising pipeline per track,
 * and the packet path from RTP to the shared `MediaFrame`. The Source owns the lifecycle across
 * sessions (connect, retry, idle) and the fan-out; a session is closed once and never reused, so
 * a late callback of an old session does nothing.
 */
import type { Logger } from '../util/logger.js';
import type { DepacketizerCounters, MediaFrame, MediaKind, RtpPacketView, TrackDescription, UpstreamSession } from './types.js';
import { Vp8Pipeline } from './vp8-pipeline.js';
import { VideoPipeline } from './video-pipeline.js';
import { AacPipeline, PassthroughAudioPipeline } from './audio.js';
import type { PipelineFrame, TrackPipeline } from './pipeline.js';
import type { TimerSeam } from './timers.js';
import { TrackReceiver } from './track-receiver.js';
import { KindState, addCounters } from './kind-state.js';

const VIDEO_CODECS: ReadonlySet<string> = new Set(['H264', 'H265', 'VP8']);
const AUDIO_CODECS: ReadonlySet<string> = new Set(['PCMU', 'PCMA', 'AAC', 'OPUS']);

/** One track of one session. */
interface TrackRuntime {
  kind: MediaKind;
  state: KindState;
  pipeline: TrackPipeline;
  receiver: TrackReceiver;
  description: TrackDescription;
  senderReport: { rtpTimestamp: number; wallClockMs: number } | undefined;
}

export interface SourceSessionOptions {
  generation: number;
  /** This attempt follows a failed one: once live it counts as a reconnect. */
  retry: boolean;
  /** The Source's per-kind states, which outlive sessions; a session adds the kinds it uses. */
  kinds: Partial<Record<MediaKind, KindState>>;
  reorderWaitMs: number;
  now: () => number;
  timers: TimerSeam;
  random: () => number;
  log: Logger;
  /** A frame for the GOP cache and the subscribers. */
  onFrame(frame: MediaFrame): void;
  /** The session's first video frame (first frame for an audio-only camera), `ms` after it started. */
  onFirstFrame(ms: number): void;
  /** A video track's parameter sets changed in band: `updated` replaces `old` among the published tracks. */
  onTrackChanged(old: TrackDescription, updated: TrackDescription): void;
}

export class SourceSession {
  readonly generation: number;
  readonly retry: boolean;
  readonly controller = new AbortController();
  readonly startedAt: number;
  upstream: UpstreamSession | undefined;
  /** Last video packet (any packet for an audio-only camera): a camera whose video died while audio goes on is stalled too. */
  lastPacketAt: number;
  hasVideo = false;
  firstFrameAt = -1;
  /** Video frames are dropped until the session's first keyframe: earlier ones reference frames we never had. */
  private awaitingKeyframe = true;
  private readonly tracks: Array<TrackRuntime | undefined> = [];
  /** `now` of the packet being processed, shared by the frames it completes. */
  private packetNow = 0;
  private closed = false;

  constructor(private readonly options: SourceSessionOptions) {
    this.generation = options.generation;
    this.retry = options.retry;
    this.startedAt = options.now();
    this.lastPacketAt = this.startedAt;
  }

  /** Builds the track runtimes; returns the descriptions to publish, or undefined if no track is usable. */
  setupTracks(tracks: ReadonlyArray<TrackDescription>): TrackDescription[] | undefined {
    const result: TrackDescription[] = [];
    const used: Partial<Record<MediaKind, boolean>> = {};
    const { kinds, log } = this.options;
    tracks.forEach((description, index) => {
      const kind = description.kind;
      const supported = kind === 'video' ? VIDEO_CODECS.has(description.codec) : AUDIO_CODECS.has(description.codec);
      if (!supported || used[kind]) {
        log.debug(`ignoring ${kind} track ${index} (${String(description.codec)})`);
        return;
      }
      used[kind] = true;
      let state = kinds[kind];
      if (!state) {
        state = new KindState(kind, description.codec, description.clockRate, Math.floor(this.options.random() * 0x10000));
        kinds[kind] = state;
      }
      state.codec = description.codec;
      state.timeline.rebase(description.clockRate);
      // The pipeline's and receiver's callbacks need the runtime, and the runtime holds them.
      const ref: { runtime?: TrackRuntime } = {};
      const onFrame = (frame: PipelineFrame): void => {
        if (ref.runtime) this.onFrame(ref.runtime, frame);
      };
      let pipeline: TrackPipeline;
      let published = description;
      if (kind === 'video' && description.codec === 'VP8') {
        pipeline = new Vp8Pipeline(onFrame);
      } else if (kind === 'video') {
        const video: VideoPipeline = new VideoPipeline(description, onFrame, () => {
          if (ref.runtime) this.onParameterSetsChanged(ref.runtime, video);
        });
        pipeline = video;
        state.info = video.info ?? state.info;
        const parameterSets = video.parameterSets();
        if (parameterSets.length > 0) published = { ...description, parameterSets };
      } else if (description.codec === 'AAC') {
        pipeline = new AacPipeline(description, onFrame);
      } else {
        pipeline = new PassthroughAudioPipeline(description.codec, onFrame);
      }
      const receiver = new TrackReceiver({
        payloadType: description.payloadType,
        counters: state,
        reorderWaitMs: this.options.reorderWaitMs,
        now: this.options.now,
        timers: this.options.timers,
        deliver: (rtp, lossBefore, now) => {
          if (ref.runtime) this.deliver(ref.runtime, rtp, lossBefore, now);
        },
        onRestart: (ssrcChanged) => {
          if (ref.runtime) this.onStreamRestart(ref.runtime, ssrcChanged);
        },
      });
      const runtime: TrackRuntime = { kind, state, description: published, pipeline, receiver, senderReport: undefined };
      ref.runtime = runtime;
      this.tracks[index] = runtime;
      result.push(published);
    });
    this.hasVideo = used.video === true;
    this.awaitingKeyframe = this.hasVideo;
    return result.length > 0 ? result : undefined;
  }

  /** An RTP packet for the upstream's track `trackIndex`, which arrived `ageMs` ago. */
  onRtp(trackIndex: number, packet: Buffer, ageMs: number): void {
    const track = this.tracks[trackIndex];
    if (!track) return;
    const now = this.options.now() - ageMs;
    if ((track.kind === 'video' || !this.hasVideo) && now > this.lastPacketAt) this.lastPacketAt = now;
    track.receiver.push(packet, now);
  }

  /** An RTCP sender report: maps the track's RTP time to wall-clock time. */
  onSenderReport(trackIndex: number, rtpTimestamp: number, wallClockMs: number): void {
    const track = this.tracks[trackIndex];
    if (track) track.senderReport = { rtpTimestamp, wallClockMs };
  }

  /** The depacketizer counters this session has so far for one kind (stats add them to the totals). */
  counters(state: KindState): DepacketizerCounters[] {
    const out: DepacketizerCounters[] = [];
    for (const track of this.tracks) if (track && track.state === state) out.push(track.pipeline.counters);
    return out;
  }

  /** Ends the session: aborts the attempt, banks its counters, drops what is half assembled. */
  close(): void {
    this.closed = true;
    this.controller.abort();
    for (const track of this.tracks) {
      if (!track) continue;
      addCounters(track.state.depacketizerTotals, track.pipeline.counters);
      track.receiver.stop();
      track.pipeline.reset();
    }
  }

  /** The camera restarted its stream inside the session: the half-assembled rest of the old one is dropped. */
  private onStreamRestart(track: TrackRuntime, ssrcChanged: boolean): void {
    track.pipeline.reset();
    if (ssrcChanged) {
      this.options.log.debug(`${track.kind} SSRC changed`);
      track.state.timeline.rebase(); // new timestamp base too
      track.senderReport = undefined;
    }
    if (track.kind === 'video') this.awaitingKeyframe = true; // a resync, not loss: restart at a keyframe
  }

  /** An in-sequence packet from the receiver: feeds it to the track's depacketizer. */
  private deliver(track: TrackRuntime, rtp: RtpPacketView, lossBefore: boolean, now: number): void {
    const state = track.state;
    state.bytes.add(now, rtp.payload.length);
    this.packetNow = now;
    try {
      track.pipeline.push(rtp, lossBefore);
    } catch (error) {
      // Pipelines validate their input; this is the last line of defence for the hot path.
      state.packetsMalformed++;
      track.pipeline.reset();
      this.options.log.debug(`dropped a packet that broke the ${track.kind} depacketizer: ${String(error)}`);
    }
  }

  private onFrame(track: TrackRuntime, input: PipelineFrame): void {
    if (this.closed) return;
    const now = this.packetNow;
    if (track.kind === 'video' && this.awaitingKeyframe) {
      if (!input.keyframe) return;
      this.awaitingKeyframe = false;
    }
    const frame = track.state.toMediaFrame(input, now, track.senderReport);
    if (this.firstFrameAt < 0 && (track.kind === 'video' || !this.hasVideo)) {
      this.firstFrameAt = now;
      this.options.onFirstFrame(now - this.startedAt);
    }
    this.options.onFrame(frame);
  }

  private onParameterSetsChanged(runtime: TrackRuntime, pipeline: VideoPipeline): void {
    if (this.closed) return;
    runtime.state.info = pipeline.info ?? runtime.state.info;
    const old = runtime.description;
    runtime.description = { ...old, parameterSets: pipeline.parameterSets() };
    this.options.onTrackChanged(old, runtime.description);
  }
}
