// A real `BroadcastSource` for viewer tests, until src/media/source.ts is wired in: real H.264
// (libx264, testsrc2) and PCMU, PCMA or AAC-LC (a sine) made once by ffmpeg, cut into access
// units and RTP payloads with the project's packetizer, then played out in real time (or in a
// test's `FakeTime`, through the `timers`/`now` options) on a continuous timeline, looping at a GOP
// boundary. AAC frames carry raw access units (as the Source's do) but their `packets` are not
// AAC-hbr: use it for frame consumers (recording), not the re-stream. It keeps a GOP cache
// (replayed on subscribe and on requestKeyframe, to that sink only), honours `write() === false`
// (that sink skips video to the next keyframe), and counts what it did so tests can check it.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packetizeH264 } from '../../src/media/h264-packetizer.js';
import { splitAdts } from './adts.js';
import { every, plainTimers, type TimerHandle, type TimerSeam } from '../../src/media/timers.js';
import type { BroadcastSource, FrameSink, MediaFrame, SourceState, SourceStats, TrackDescription } from '../../src/media/types.js';

const run = promisify(execFile);

export interface SyntheticSourceOptions {
  id?: string;
  width?: number;
  height?: number;
  fps?: number;
  /** Frames per GOP (keyframe interval). Default 50 (2 s at 25 fps). */
  gop?: number;
  /** Seconds of media generated; rounded to whole GOPs. Default 8. */
  seconds?: number;
  profile?: 'baseline' | 'main' | 'high';
  /** Target video bitrate (CBR-ish); default: x264's CRF choice. */
  bitrateKbps?: number;
  /** AAC: AAC-LC 16 kHz mono (ffmpeg's native encoder), 1024 samples a frame, `config` in the fmtp. */
  audio?: 'PCMU' | 'PCMA' | 'AAC' | false;
  /** Tracks reported instead of the real ones (e.g. an H.265 camera); media is not sent then. */
  tracksOverride?: TrackDescription[];
  /** Delay between the first subscribe and the tracks/live state, like a camera connecting. */
  connectDelayMs?: number;
  /** Deliver the GOP cache on subscribe (default true). */
  replayOnSubscribe?: boolean;
  /** The clock seam (src/media/timers.ts): a test's `FakeTime` plays the media out in fake time. */
  timers?: TimerSeam;
  /** Milliseconds clock paired with `timers` (default performance.now). */
  now?: () => number;
}

interface Prepared {
  video: Array<{ units: Buffer[]; keyframe: boolean }>;
  audio: Buffer[];
  /** Samples per audio frame and the audio clock: 160 at 8 kHz for G.711, 1024 at 16 kHz for AAC. */
  audioFrameSamples: number;
  audioClockRate: number;
  /** AAC: the AudioSpecificConfig, hex, as an SDP's fmtp `config`. */
  aacConfig?: string;
  sps: Buffer;
  pps: Buffer;
}

const prepared = new Map<string, Promise<Prepared>>();

function splitAnnexB(data: Buffer): Buffer[] {
  const units: Buffer[] = [];
  let start = -1;
  let i = 0;
  while (i + 2 < data.length) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      if (start >= 0) {
        let end = i;
        while (end > start && data[end - 1] === 0) end--;
        units.push(data.subarray(start, end));
      }
      i += 3;
      start = i;
    } else {
      i++;
    }
  }
  if (start >= 0 && start < data.length) units.push(data.subarray(start));
  return units;
}

async function prepare(
  o: Required<Pick<SyntheticSourceOptions, 'width' | 'height' | 'fps' | 'gop' | 'seconds' | 'profile' | 'audio'>> & { bitrateKbps?: number },
): Promise<Prepared> {
  const key = createHash('sha1')
    .update(JSON.stringify([o.width, o.height, o.fps, o.gop, o.seconds, o.profile, o.audio, o.bitrateKbps]))
    .digest('hex')
    .slice(0, 12);
  const dir = join(tmpdir(), `wrc-synth-${key}`);
  await mkdir(dir, { recursive: true });
  const frames = Math.max(1, Math.round((o.seconds * o.fps) / o.gop)) * o.gop;
  const h264 = join(dir, 'video.h264');
  if (!existsSync(h264)) {
    const tmp = `${h264}.${process.pid}.tmp`;
    await run('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', `testsrc2=size=${o.width}x${o.height}:rate=${o.fps}`,
      '-frames:v', String(frames),
      '-c:v', 'libx264', '-profile:v', o.profile, '-preset', 'ultrafast', '-tune', 'zerolatency',
      '-pix_fmt', 'yuv420p', '-g', String(o.gop), '-keyint_min', String(o.gop), '-sc_threshold', '0', '-bf', '0',
      '-x264-params', 'aud=1:repeat-headers=1',
      ...(o.bitrateKbps ? ['-b:v', `${o.bitrateKbps}k`, '-maxrate', `${o.bitrateKbps}k`, '-bufsize', `${o.bitrateKbps}k`] : []),
      '-f', 'h264', tmp,
    ]);
    await rename(tmp, h264);
  }
  const aac = o.audio === 'AAC';
  const audioFile = join(dir, `audio.${aac ? 'adts' : o.audio === 'PCMA' ? 'al' : 'ul'}`);
  const audioRate = aac ? 16000 : 8000;
  if (o.audio && !existsSync(audioFile)) {
    const tmp = `${audioFile}.${process.pid}.tmp`;
    await run('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=${audioRate}:duration=${frames / o.fps}`,
      '-ac', '1', '-ar', String(audioRate),
      ...(aac ? ['-c:a', 'aac', '-b:a', '48k', '-f', 'adts'] : ['-f', o.audio === 'PCMA' ? 'alaw' : 'mulaw']), tmp,
    ]);
    await rename(tmp, audioFile);
  }
  const units = splitAnnexB(await readFile(h264));
  const video: Prepared['video'] = [];
  let current: Buffer[] | undefined;
  let sps: Buffer | undefined;
  let pps: Buffer | undefined;
  for (const unit of units) {
    const type = unit[0]! & 0x1f;
    if (type === 9) {
      current = [];
      video.push({ units: current, keyframe: false });
      continue;
    }
    if (!current) {
      current = [];
      video.push({ units: current, keyframe: false });
    }
    if (type === 7) sps ??= unit;
    if (type === 8) pps ??= unit;
    if (type === 5) video[video.length - 1]!.keyframe = true;
    current.push(unit);
  }
  if (!sps || !pps) throw new Error('synthetic source: ffmpeg output has no SPS/PPS');
  let audio: Buffer[] = [];
  let aacConfig: string | undefined;
  if (aac) {
    const adts = splitAdts(await readFile(audioFile));
    audio = adts.frames;
    aacConfig = adts.audioSpecificConfig.toString('hex');
  } else if (o.audio) {
    const raw = await readFile(audioFile);
    for (let at = 0; at + 160 <= raw.length; at += 160) audio.push(raw.subarray(at, at + 160));
  }
  const media = { video: video.filter((f) => f.units.length > 0), audio, sps, pps, audioFrameSamples: aac ? 1024 : 160, audioClockRate: audioRate };
  return aacConfig ? { ...media, aacConfig } : media;
}

interface SinkState {
  readonly sink: FrameSink;
  readonly video: boolean;
  readonly audio: boolean;
  /** Skips video until the next keyframe (after write() returned false). */
  waitKeyframe: boolean;
  /** False once unsubscribed (perhaps by an earlier sink's write during the same frame). */
  active: boolean;
  /** The sink's entry in `framesBySink`. */
  readonly counts: { video: number; replayed: number; keyframes: number };
}

export class SyntheticSource extends EventEmitter implements BroadcastSource {
  readonly id: string;
  tracksValue: ReadonlyArray<TrackDescription> = [];
  stateValue: SourceState = { state: 'idle' };
  private readonly sinks = new Map<FrameSink, SinkState>();
  /**
   * The sinks in subscription order, replaced (never changed in place) on (un)subscribe, so the
   * fan-out walks it with no copy and no lookup per frame, as the Source's SubscriberSet does:
   * bench:webrtc measures the viewers' cost behind this source, not this helper's.
   */
  private fanout: readonly SinkState[] = [];
  private readonly gopCache: MediaFrame[] = [];
  private stopTicking: (() => void) | undefined;
  private connectTimer: TimerHandle | undefined;
  private readonly timers: TimerSeam;
  private readonly now: () => number;
  private startedAt = 0;
  private videoIndex = 0;
  private audioIndex = 0;
  private videoSeq = 1000;
  private audioSeq = 5000;
  private videoTs = 90_000;
  private audioTs: number;
  /** Counters for assertions. */
  readonly counters = { subscribes: 0, unsubscribes: 0, keyframeRequests: 0, cutBacks: 0, videoFrames: 0, audioFrames: 0 };
  readonly keyframeRequestsBySink = new Map<FrameSink, number>();
  /** Video frames written per sink, and how many of them were replays. */
  readonly framesBySink = new Map<FrameSink, { video: number; replayed: number; keyframes: number }>();
  /** Called for every frame the source emits live (bench hook). */
  onLiveFrame?: (frame: MediaFrame) => void;

  private constructor(
    private readonly media: Prepared,
    private readonly options: Required<Omit<SyntheticSourceOptions, 'tracksOverride' | 'bitrateKbps' | 'timers' | 'now'>> & {
      tracksOverride?: TrackDescription[];
      bitrateKbps?: number;
    },
    clock: Pick<SyntheticSourceOptions, 'timers' | 'now'>,
  ) {
    super();
    this.id = options.id;
    this.audioTs = media.audioClockRate; // one second in, like the video's 90_000
    this.timers = clock.timers ?? plainTimers;
    this.now = clock.now ?? (() => performance.now());
  }

  static async create(options: SyntheticSourceOptions = {}): Promise<SyntheticSource> {
    const o = {
      id: options.id ?? 'synthetic',
      width: options.width ?? 640,
      height: options.height ?? 360,
      fps: options.fps ?? 25,
      gop: options.gop ?? 50,
      seconds: options.seconds ?? 8,
      profile: options.profile ?? 'baseline',
      audio: options.audio ?? 'PCMU',
      connectDelayMs: options.connectDelayMs ?? 30,
      replayOnSubscribe: options.replayOnSubscribe ?? true,
      ...(options.bitrateKbps ? { bitrateKbps: options.bitrateKbps } : {}),
      ...(options.tracksOverride ? { tracksOverride: options.tracksOverride } : {}),
    };
    const key = JSON.stringify([o.width, o.height, o.fps, o.gop, o.seconds, o.profile, o.audio, options.bitrateKbps]);
    let media = prepared.get(key);
    if (!media) {
      media = prepare(o);
      prepared.set(key, media);
    }
    return new SyntheticSource(await media, o, { timers: options.timers, now: options.now });
  }

  get tracks(): ReadonlyArray<TrackDescription> {
    return this.tracksValue;
  }

  get state(): SourceState {
    return this.stateValue;
  }

  /** Frames in the GOP cache (since the last keyframe). */
  get gopCacheLength(): number {
    return this.gopCache.length;
  }

  get subscriberCount(): number {
    return this.sinks.size;
  }

  /** What the page and the metrics read: the picture and the subscribers; no network counters. */
  stats(): SourceStats {
    const live = this.stateValue.state === 'live' && !this.options.tracksOverride;
    return {
      id: this.id,
      name: this.id,
      state: this.stateValue.state,
      subscribers: this.sinks.size,
      reconnects: 0,
      ...(live ? { codec: 'H264' as const, width: this.options.width, height: this.options.height, fps: this.options.fps } : {}),
      bitrateBps: 0,
      packetsReceived: 0,
      packetsLost: 0,
      gopCacheBytes: 0,
      gopCacheFrames: this.gopCache.length,
    };
  }

  /** The tracks the camera would report. */
  describeTracks(): TrackDescription[] {
    if (this.options.tracksOverride) return this.options.tracksOverride;
    const profileLevelId = this.media.sps.subarray(1, 4).toString('hex');
    const tracks: TrackDescription[] = [
      {
        kind: 'video',
        codec: 'H264',
        payloadType: 96,
        clockRate: 90000,
        fmtp: { 'packetization-mode': '1', 'profile-level-id': profileLevelId },
        controlUrl: 'synthetic://camera/video',
        parameterSets: [this.media.sps, this.media.pps],
      },
    ];
    if (this.options.audio) {
      tracks.push({
        kind: 'audio',
        codec: this.options.audio,
        payloadType: { PCMA: 8, PCMU: 0, AAC: 97 }[this.options.audio],
        clockRate: this.media.audioClockRate,
        channels: 1,
        // AAC as an RTSP camera announces it (RFC 3640); frames carry one raw access unit each.
        fmtp: this.media.aacConfig
          ? { mode: 'AAC-hbr', sizelength: '13', indexlength: '3', indexdeltalength: '3', config: this.media.aacConfig }
          : {},
        controlUrl: 'synthetic://camera/audio',
      });
    }
    return tracks;
  }

  subscribe(sink: FrameSink, options?: { kinds?: Array<'video' | 'audio'> }): { unsubscribe(): void } {
    this.counters.subscribes++;
    const kinds = options?.kinds ?? ['video', 'audio'];
    const counts = { video: 0, replayed: 0, keyframes: 0 };
    const state: SinkState = { sink, video: kinds.includes('video'), audio: kinds.includes('audio'), waitKeyframe: false, active: true, counts };
    const previous = this.sinks.get(sink);
    if (previous) previous.active = false; // subscribing a sink again replaces its subscription
    this.sinks.set(sink, state);
    this.framesBySink.set(sink, counts);
    this.fanout = [...this.fanout.filter((s) => s !== previous), state];
    if (this.stateValue.state === 'idle') this.connect();
    else if (this.options.replayOnSubscribe) this.replay(sink);
    let done = false;
    return {
      unsubscribe: () => {
        if (done) return;
        done = true;
        this.counters.unsubscribes++;
        state.active = false;
        this.fanout = this.fanout.filter((s) => s !== state);
        if (this.sinks.get(sink) !== state) return;
        this.sinks.delete(sink);
        this.keyframeRequestsBySink.delete(sink);
        this.framesBySink.delete(sink);
      },
    };
  }

  requestKeyframe(sink: FrameSink): void {
    this.counters.keyframeRequests++;
    this.keyframeRequestsBySink.set(sink, (this.keyframeRequestsBySink.get(sink) ?? 0) + 1);
    if (this.sinks.has(sink)) this.replay(sink);
  }

  /** Stops playing out; subscribers stay (as if the camera dropped: state 'retrying'). */
  stop(): void {
    this.stopTicking?.();
    if (this.connectTimer !== undefined) this.timers.clearTimeout(this.connectTimer);
    this.stopTicking = this.connectTimer = undefined;
    this.setState({ state: 'stopped' });
  }

  /** Changes the tracks (as on a camera restart with new settings). */
  setTracks(tracks: TrackDescription[]): void {
    this.tracksValue = tracks;
    this.emit('tracks', tracks);
    for (const sink of [...this.sinks.keys()]) sink.onTracks?.(tracks);
  }

  private setState(state: SourceState): void {
    this.stateValue = state;
    this.emit('state', state);
    for (const sink of [...this.sinks.keys()]) sink.onState?.(state);
  }

  private connect(): void {
    this.setState({ state: 'connecting' });
    this.connectTimer = this.timers.setTimeout(() => {
      this.connectTimer = undefined;
      this.setTracks(this.describeTracks());
      this.setState({ state: 'live' });
      if (this.options.tracksOverride) return;
      this.startedAt = this.now();
      this.stopTicking = every(this.timers, 5, () => this.tick());
      this.tick();
    }, this.options.connectDelayMs);
  }

  private replay(sink: FrameSink): void {
    const state = this.sinks.get(sink);
    if (!state || !state.video) return;
    state.waitKeyframe = false;
    for (const frame of this.gopCache) {
      if (!state.active) return;
      this.deliver(state, frame, true);
    }
  }

  private deliver(state: SinkState, frame: MediaFrame, replay: boolean): void {
    if (frame.kind === 'video') {
      if (!state.video || (state.waitKeyframe && !frame.keyframe)) return;
      state.waitKeyframe = false;
      const counts = state.counts;
      counts.video++;
      if (replay) counts.replayed++;
      if (frame.keyframe) counts.keyframes++;
    } else if (!state.audio) {
      return;
    }
    const ok = state.sink.write(frame);
    if (!ok && frame.kind === 'video') {
      state.waitKeyframe = true;
      this.counters.cutBacks++;
    }
  }

  private emitFrame(frame: MediaFrame): void {
    if (frame.kind === 'video') {
      if (frame.keyframe) this.gopCache.length = 0;
      this.gopCache.push(frame);
      this.counters.videoFrames++;
    } else {
      this.counters.audioFrames++;
    }
    this.onLiveFrame?.(frame);
    const fanout = this.fanout;
    for (let i = 0; i < fanout.length; i++) {
      const state = fanout[i]!;
      if (state.active) this.deliver(state, frame, false);
    }
  }

  private tick(): void {
    const elapsed = this.now() - this.startedAt;
    const { fps } = this.options;
    while ((this.videoIndex * 1000) / fps <= elapsed) {
      const source = this.media.video[this.videoIndex % this.media.video.length]!;
      const packets = packetizeH264(source.units);
      const frame: MediaFrame = {
        kind: 'video',
        codec: 'H264',
        clockRate: 90000,
        timestamp: this.videoTs >>> 0,
        sequenceNumber: this.videoSeq & 0xffff,
        keyframe: source.keyframe,
        units: source.units,
        packets,
        receivedAt: this.now(),
        captureTime: Date.now(),
      };
      this.videoSeq += packets.length;
      this.videoTs += 90000 / fps;
      this.videoIndex++;
      this.emitFrame(frame);
    }
    if (this.media.audio.length === 0 || !this.options.audio) return;
    const frameMs = (this.media.audioFrameSamples * 1000) / this.media.audioClockRate;
    while (this.audioIndex * frameMs <= elapsed) {
      const payload = this.media.audio[this.audioIndex % this.media.audio.length]!;
      const frame: MediaFrame = {
        kind: 'audio',
        codec: this.options.audio,
        clockRate: this.media.audioClockRate,
        timestamp: this.audioTs >>> 0,
        sequenceNumber: this.audioSeq & 0xffff,
        keyframe: true,
        units: [payload],
        packets: [{ payload, marker: false }],
        receivedAt: this.now(),
        captureTime: Date.now(),
      };
      this.audioSeq += 1;
      this.audioTs += this.media.audioFrameSamples;
      this.audioIndex++;
      this.emitFrame(frame);
    }
  }

  /** Stops everything (test teardown). */
  close(): void {
    this.stop();
    this.sinks.clear();
    this.removeAllListeners();
  }
}
