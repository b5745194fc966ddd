/**
 * From the Source's `MediaFrame`s to fragmented MP4: the init segment from a keyframe's own SPS and
 * PPS, then fragments that each start on a video keyframe. H.264 access units become AVCC samples
 * (each NAL unit behind a 4-byte length; access unit delimiters dropped, parameter sets kept in
 * `avcC` only); AAC access units pass as they are. Decode times come from the frames' timestamps
 * (90 kHz video, the sample rate for audio) on one running clock per track, so a gap between two
 * fragments stays a gap; a sample's duration is the distance to the next one, and a track's last
 * sample in a fragment repeats the delta before it. Each track has its own `tfdt`, so audio that
 * arrives late (an encoder's output) simply goes into a later fragment.
 */
import { h264NalType, H264_NAL } from '../h264-depacketizer.js';
import { parseH264Sps } from '../h264-sps.js';
import type { MediaFrame } from '../types.js';
import { mediaFragment, type Fmp4Sample, type TrackRun } from './fragment.js';
import { AUDIO_TRACK_ID, VIDEO_TIMESCALE, VIDEO_TRACK_ID, initSegment } from './init-segment.js';
import type { AacTrackConfig, AvcTrackConfig } from './sample-entries.js';

/** A frame length used only when a track has a single sample and no delta to repeat. */
const FALLBACK_VIDEO_DURATION = VIDEO_TIMESCALE / 25;
const FALLBACK_AAC_DURATION = 1024;

/** The H.264 track's configuration read from a keyframe's in-band SPS and PPS. */
export function avcConfigFromKeyframe(frame: MediaFrame): AvcTrackConfig {
  if (frame.kind !== 'video' || frame.codec !== 'H264') {
    throw new Error(`fMP4: recording needs H.264 video, got ${frame.kind} ${frame.codec}`);
  }
  if (!frame.keyframe) throw new Error('fMP4: the init segment needs a keyframe, got a non-keyframe');
  const sps = frame.units.find((u) => h264NalType(u) === H264_NAL.SPS);
  const pps = frame.units.find((u) => h264NalType(u) === H264_NAL.PPS);
  if (!sps) throw new Error('fMP4: the keyframe carries no SPS, so there is no avcC to write');
  if (!pps) throw new Error('fMP4: the keyframe carries no PPS, so there is no avcC to write');
  const info = parseH264Sps(sps);
  if (!info) throw new Error('fMP4: the SPS cannot be parsed (picture size unknown)');
  return { sps, pps, width: info.width, height: info.height };
}

interface TrackClock {
  lastTimestamp: number;
  decodeTime: number;
}

export class Fmp4Muxer {
  private sequence = 0;
  private video: TrackClock | undefined;
  private audio: TrackClock | undefined;

  /**
   * `audioFromStart`: the audio frames' timestamps already count samples from the recording's first
   * video frame (audio encoded for the recording, see src/homekit/recording/audio-encoder.ts), so
   * they are decode times as they are; otherwise (a camera's AAC passed through) the audio joins
   * the video's clock at the video frame it arrived after.
   */
  constructor(readonly config: { video: AvcTrackConfig; audio?: AacTrackConfig; audioFromStart?: boolean }) {}

  initSegment(): Buffer {
    return initSegment(this.config);
  }

  /** Fragments written so far. */
  get fragments(): number {
    return this.sequence;
  }

  /**
   * One `moof`+`mdat` for these frames (in arrival order). The first video frame must be a
   * keyframe; audio is kept only when the muxer has an audio track.
   */
  fragment(frames: ReadonlyArray<MediaFrame>): Buffer {
    const video = frames.filter((f) => f.kind === 'video');
    const first = video[0];
    if (!first) throw new Error('fMP4: a fragment needs at least one video frame');
    if (!first.keyframe) {
      throw new Error(`fMP4: fragment ${this.sequence + 1} does not start on a keyframe (video timestamp ${first.timestamp})`);
    }
    const videoRun = this.videoRun(video);
    const runs: TrackRun[] = [videoRun];
    if (this.config.audio) {
      const audio = frames.filter((f) => f.kind === 'audio');
      if (audio.length > 0) {
        // Audio joins the video's clock at the video frame it arrived after (within one frame);
        // every frame before the first audio frame is video, so its index counts them.
        const arrivedAfter = Math.max(0, frames.indexOf(audio[0]!) - 1);
        const joinAt = videoRun.baseDecodeTime + videoRun.samples.slice(0, arrivedAfter).reduce((sum, s) => sum + s.duration, 0);
        runs.push(this.audioRun(audio, joinAt));
      }
    }
    this.sequence++;
    return mediaFragment(this.sequence, runs);
  }

  private videoRun(frames: ReadonlyArray<MediaFrame>): TrackRun {
    const samples = frames.map((f): Fmp4Sample => ({ data: this.avccSample(f), duration: 0, sync: f.keyframe }));
    const { base, clock } = this.advance(this.video, frames, VIDEO_TIMESCALE, FALLBACK_VIDEO_DURATION, samples);
    this.video = clock;
    return { trackId: VIDEO_TRACK_ID, baseDecodeTime: base, samples };
  }

  private audioRun(frames: ReadonlyArray<MediaFrame>, videoJoinTime: number): TrackRun {
    const rate = this.config.audio!.sampleRate;
    const samples = frames.map((f): Fmp4Sample => {
      if (f.codec !== 'AAC') throw new Error(`fMP4: the audio track is AAC, got a ${f.codec} frame`);
      return { data: f.units[0] ?? Buffer.alloc(0), duration: 0, sync: true };
    });
    const clock = this.audio ?? (this.config.audioFromStart
      ? { lastTimestamp: 0, decodeTime: 0 }
      : { lastTimestamp: frames[0]!.timestamp, decodeTime: Math.round((videoJoinTime / VIDEO_TIMESCALE) * rate) });
    const advanced = this.advance(clock, frames, rate, FALLBACK_AAC_DURATION, samples);
    this.audio = advanced.clock;
    return { trackId: AUDIO_TRACK_ID, baseDecodeTime: advanced.base, samples };
  }

  /**
   * Sets each sample's duration from the timestamps and moves the track's clock on. The RTP
   * timestamps wrap at 2^32, so every difference is taken modulo 2^32.
   */
  private advance(
    clock: TrackClock | undefined,
    frames: ReadonlyArray<MediaFrame>,
    timescale: number,
    fallback: number,
    samples: Fmp4Sample[],
  ): { base: number; clock: TrackClock } {
    const scale = (f: MediaFrame, delta: number): number => Math.round((delta * timescale) / f.clockRate);
    const firstFrame = frames[0]!;
    const base = clock ? clock.decodeTime + scale(firstFrame, (firstFrame.timestamp - clock.lastTimestamp) >>> 0) : 0;
    let previous = fallback;
    for (let i = 0; i < frames.length; i++) {
      const next = frames[i + 1];
      const duration = next ? scale(frames[i]!, (next.timestamp - frames[i]!.timestamp) >>> 0) : previous;
      samples[i]!.duration = duration;
      previous = duration;
    }
    const last = frames[frames.length - 1]!;
    const lastDecode = base + samples.slice(0, -1).reduce((sum, s) => sum + s.duration, 0);
    return { base, clock: { lastTimestamp: last.timestamp, decodeTime: lastDecode } };
  }

  /** The access unit as length-prefixed NAL units, without delimiters and the parameter sets avcC has. */
  private avccSample(frame: MediaFrame): Buffer {
    if (frame.codec !== 'H264') throw new Error(`fMP4: the video track is H.264, got a ${frame.codec} frame`);
    const parts: Buffer[] = [];
    for (const unit of frame.units) {
      const type = h264NalType(unit);
      if (type === H264_NAL.AUD) continue;
      if (type === H264_NAL.SPS || type === H264_NAL.PPS) {
        const known = type === H264_NAL.SPS ? this.config.video.sps : this.config.video.pps;
        if (unit.equals(known)) continue;
        // A new SPS/PPS means the camera changed its stream: the avcC no longer describes it.
        throw new Error('fMP4: the camera changed its SPS/PPS mid-recording; a new init segment is needed');
      }
      const length = Buffer.alloc(4);
      length.writeUInt32BE(unit.length);
      parts.push(length, unit);
    }
    return Buffer.concat(parts);
  }
}
