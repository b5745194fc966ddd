/**
 * One recording as HomeKit pulls it: the init segment, then the pre-buffer as fragments, then live
 * fragments until the hub closes the stream. Frames come from the pre-buffer's `follow`, so the
 * recording continues exactly where the buffered frames end. The camera's H.264 (and AAC, when it
 * sends AAC) passes through; the init segment is built from the first keyframe's own SPS and PPS.
 * A G.711 camera's sound is encoded to AAC for the recording (audio-encoder.ts): its frames go to
 * the encoder as they arrive (not through the queue the hub drains), and each fragment takes the
 * AAC frames that start before its end, waiting at most `AUDIO_WAIT_MS` for them; what comes later
 * goes into the next fragment.
 */
import type { Logger } from '../../util/logger.js';
import { Fmp4Muxer, avcConfigFromKeyframe } from '../../media/fmp4/muxer.js';
import type { AacTrackConfig } from '../../media/fmp4/sample-entries.js';
import { QueuedSink } from '../../media/queued-sink.js';
import type { MediaFrame } from '../../media/types.js';
import { FragmentCutter } from './fragment-cutter.js';
import { mediaSeconds, type Prebuffer } from './prebuffer.js';
import type { RecordingAudioEncoder } from './audio-encoder.js';

/** What HAP-NodeJS's `RecordingPacket` is; declared here so this module needs no HAP import. */
export interface RecordingChunk {
  data: Buffer;
  isLast: boolean;
}

export interface RecordingStreamOptions {
  prebuffer: Prebuffer;
  /** The hub's selected pre-buffer length. */
  prebufferMs: number;
  /** The trigger's moment (90 kHz, `Prebuffer.eventTimestamp`): the pre-buffer counts back from it. */
  eventTimestamp?: number;
  /** The hub's selected fragment length. */
  fragmentMs: number;
  /** The camera's AAC passed through, G.711 encoded to AAC, or undefined for a video-only recording. */
  audio: RecordingAudio | undefined;
  log: Logger;
  /** Aborted when the hub closes the stream (or the connection drops). */
  signal: AbortSignal;
}

export type RecordingAudio =
  | { mode: 'copy'; track: AacTrackConfig }
  /** Starts this recording's encoder (its ffmpeg); called once per recording stream. */
  | { mode: 'encode'; start: () => RecordingAudioEncoder };

/**
 * How long a finished fragment waits for the encoder's AAC up to its end. ffmpeg holds back about
 * 1024 input samples (128 ms at 8 kHz) plus the AAC encoder's look-ahead, so live audio is done
 * about 0.2 s after the video; sound that takes longer goes into the next fragment.
 */
export const AUDIO_WAIT_MS = 400;

/** Live frames waiting for the hub to take the previous fragment: 16 MiB, several fragments. */
const LIVE_QUEUE_BYTES = 16 * 1024 * 1024;
const LIVE_QUEUE_FRAMES = 8192;

/**
 * Where the recording begins among the buffered frames: the newest keyframe at least `prebufferMs`
 * before the event (`eventTimestamp`, when one is held) or else before the newest video frame, or
 * the oldest buffered keyframe when less is buffered.
 */
export function prebufferStart(frames: ReadonlyArray<MediaFrame>, prebufferMs: number, eventTimestamp?: number): number {
  const newest = frames.findLast((f) => f.kind === 'video');
  if (!newest) return frames.length;
  const reference = eventTimestamp ?? newest.timestamp;
  let start = frames.findIndex((f) => f.kind === 'video' && f.keyframe);
  if (start < 0) return frames.length;
  frames.forEach((f, i) => {
    if (f.kind === 'video' && f.keyframe && mediaSeconds(reference, f.timestamp) * 1000 >= prebufferMs) start = i;
  });
  return start;
}

export async function* recordingStream(options: RecordingStreamOptions): AsyncGenerator<RecordingChunk> {
  const { log, signal } = options;
  const queue = new QueuedSink({ maxBytes: LIVE_QUEUE_BYTES, maxFrames: LIVE_QUEUE_FRAMES, closeOnStop: false });
  let skipToKeyframe = false;
  let skipped = 0;
  const audio = options.audio;
  const encoder = audio?.mode === 'encode' ? audio.start() : undefined;
  const follower = options.prebuffer.follow((frame) => {
    // The encoder sees every live frame at once, so ffmpeg works while the hub drains the queue.
    if (encoder) {
      encoder.observe(frame);
      if (frame.kind === 'audio') return;
    }
    // A hub far behind: drop to the next keyframe rather than grow without bound or send a hole.
    if (skipToKeyframe && !(frame.kind === 'video' && frame.keyframe)) return;
    skipToKeyframe = !queue.write(frame);
    if (skipToKeyframe) skipped++;
  });
  try {
    const buffered = follower.frames.slice(prebufferStart(follower.frames, options.prebufferMs, options.eventTimestamp));
    if (encoder) for (const frame of buffered) encoder.observe(frame);
    const newest = buffered.findLast((f) => f.kind === 'video');
    const seconds = newest ? ((newest.timestamp - buffered[0]!.timestamp) >>> 0) / 90000 : 0;
    log.debug(`Recording: ${seconds.toFixed(1)} s of pre-buffer from a keyframe, then live ${options.fragmentMs} ms fragments.`);
    const cutter = new FragmentCutter(options.fragmentMs);
    let muxer: Fmp4Muxer | undefined;
    /** The recording's first video timestamp: the encoded audio's time 0. */
    let origin = 0;
    let warnedOverlong = false;
    /** What one more frame lets us send: the init segment at the first keyframe, then each finished fragment. */
    const chunksFor = async (frame: MediaFrame): Promise<RecordingChunk[]> => {
      const chunks: RecordingChunk[] = [];
      if (encoder && frame.kind === 'audio') return chunks;
      if (!muxer) {
        if (frame.kind !== 'video' || !frame.keyframe) return chunks;
        const track = audio?.mode === 'copy' ? audio.track : encoder?.config;
        muxer = new Fmp4Muxer({ video: avcConfigFromKeyframe(frame), ...(track ? { audio: track } : {}), ...(encoder ? { audioFromStart: true } : {}) });
        origin = frame.timestamp;
        chunks.push({ data: muxer.initSegment(), isLast: false });
      }
      let fragment = cutter.push(frame);
      if (!fragment) return chunks;
      if (encoder) {
        // The fragment ends where `frame`, the next keyframe, begins.
        const end = Math.round((((frame.timestamp - origin) >>> 0) * encoder.config.sampleRate) / 90000);
        await encoder.until(origin, end, AUDIO_WAIT_MS, signal);
        if (signal.aborted) return chunks;
        fragment = [...fragment, ...encoder.take(origin, end)];
      }
      if (cutter.overlongFragments > 0 && !warnedOverlong) {
        warnedOverlong = true;
        log.warn(
          `Recording: the camera's keyframe interval is longer than the ${options.fragmentMs} ms fragments the hub asked for, ` +
            "so fragments are longer than asked; set the camera's I-frame interval to at most that",
        );
      }
      chunks.push({ data: muxer.fragment(fragment), isLast: false });
      return chunks;
    };
    for (const frame of buffered) {
      if (signal.aborted) return;
      yield* await chunksFor(frame);
    }
    for (;;) {
      const frame = await queue.read(signal);
      if (!frame || signal.aborted) return;
      yield* await chunksFor(frame);
    }
  } finally {
    follower.stop();
    queue.close();
    // The recording's ffmpeg ends with it (awaited: no orphan outlives the stream).
    await encoder?.close();
    if (skipped > 0) log.warn(`Recording: the hub fell behind; ${skipped} times the stream skipped to the next keyframe`);
  }
}
