/**
 * A snapshot from the camera's own stream: the Source's GOP cache hands a new subscriber the
 * latest keyframe at once (warm), or the first keyframe after connecting (cold). That one access
 * unit, as Annex-B with its parameter sets, is all ffmpeg needs to decode one picture.
 */
import type { MediaFrame, SourceState, Subscribable, TrackDescription } from '../media/types.js';
import { QueuedSink } from '../media/queued-sink.js';
import { FfmpegProcess } from '../ffmpeg/ffmpeg-process.js';
import { describeDiagnosis, diagnoseFfmpeg } from '../ffmpeg/ffmpeg-diagnosis.js';
import { snapshotArgs } from '../ffmpeg/homekit-args.js';
import type { Logger } from '../util/logger.js';
import { h264NalType } from '../media/h264-depacketizer.js';
import { h265NalType } from '../media/h265-depacketizer.js';

/** What snapshots need from a camera's Source (`Source` satisfies it). */
export interface SnapshotFrameSource extends Subscribable {
  readonly state: Pick<SourceState, 'state'>;
  readonly tracks: ReadonlyArray<TrackDescription>;
  /** State changes (a camera that starts refusing sends the snapshot to its still image at once). */
  on?(event: 'state', listener: (...args: unknown[]) => void): unknown;
  off?(event: 'state', listener: (...args: unknown[]) => void): unknown;
}

export interface EncodedKeyframe {
  codec: 'h264' | 'h265';
  /** Annex-B: start code before every NAL unit, parameter sets first. */
  annexB: Buffer;
  /** performance.now() when it arrived from the camera. */
  receivedAt: number;
}

const START_CODE = Buffer.from([0, 0, 0, 1]);

function nalType(codec: 'h264' | 'h265', unit: Buffer): number {
  return codec === 'h264' ? h264NalType(unit) : h265NalType(unit);
}

/** A JPEG starts with FF D8. */
export function isJpeg(image: Buffer): boolean {
  return image.length > 2 && image[0] === 0xff && image[1] === 0xd8;
}

/** Parameter-set NAL types: H.264 SPS 7 / PPS 8; H.265 VPS 32 / SPS 33 / PPS 34. */
function isParameterSet(codec: 'h264' | 'h265', type: number): boolean {
  return codec === 'h264' ? type === 7 || type === 8 : type >= 32 && type <= 34;
}

/** The frame as Annex-B, with the track's parameter sets in front when the frame lacks them. */
export function toAnnexB(frame: MediaFrame, tracks: ReadonlyArray<TrackDescription>): EncodedKeyframe | undefined {
  const codec = frame.codec === 'H264' ? 'h264' : frame.codec === 'H265' ? 'h265' : undefined;
  if (!codec) return undefined;
  const hasParameterSets = frame.units.some((u) => u.length > 0 && isParameterSet(codec, nalType(codec, u)));
  const sets = hasParameterSets ? [] : (tracks.find((t) => t.kind === 'video')?.parameterSets ?? []);
  const parts: Buffer[] = [];
  for (const unit of [...sets, ...frame.units]) {
    if (unit.length === 0) continue;
    parts.push(START_CODE, unit);
  }
  return { codec, annexB: Buffer.concat(parts), receivedAt: frame.receivedAt };
}

/**
 * Subscribes for video only, takes the first keyframe (the cached one when the Source is live) and
 * unsubscribes. Resolves undefined when none arrives within `timeoutMs` or `signal` aborts.
 */
export async function takeKeyframe(source: SnapshotFrameSource, timeoutMs: number, signal?: AbortSignal): Promise<EncodedKeyframe | undefined> {
  // Small queue: only the first keyframe matters; the rest may be refused.
  const sink = new QueuedSink({ maxFrames: 4, maxBytes: 4 * 1024 * 1024 });
  const subscription = source.subscribe(sink, { kinds: ['video'] });
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const onAbort = (): void => controller.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const frame = await sink.read(controller.signal);
      if (!frame) return undefined;
      if (frame.kind === 'video' && frame.keyframe) return toAnnexB(frame, sink.tracks.length ? sink.tracks : source.tracks);
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    subscription.unsubscribe();
    sink.close();
  }
}

export interface DecodeOptions {
  ffmpegPath: string;
  codec: 'h264' | 'h265' | 'mjpeg';
  input: Buffer;
  width?: number;
  height?: number;
  log: Logger;
  debug?: boolean;
  /** Kill ffmpeg after this long (default 4000 ms). */
  timeoutMs?: number;
}

/** One ffmpeg: one picture in on stdin, one JPEG out on stdout. Rejects with ffmpeg's reason. */
export async function decodeToJpeg(options: DecodeOptions): Promise<Buffer> {
  const ffmpeg = new FfmpegProcess({
    ffmpegPath: options.ffmpegPath,
    args: snapshotArgs({ codec: options.codec, ...(options.width ? { width: options.width } : {}), ...(options.height ? { height: options.height } : {}), ...(options.debug ? { debug: true } : {}) }),
    label: 'snapshot',
    log: options.log,
    ...(options.debug ? { debug: true } : {}),
    stdin: true,
    stdout: true,
  });
  const timer = setTimeout(() => void ffmpeg.stop(500), options.timeoutMs ?? 4000);
  try {
    ffmpeg.stdin?.end(options.input);
    const exit = await ffmpeg.exited;
    const jpeg = ffmpeg.stdoutBuffer();
    // Anything but a JPEG is not a picture, whatever the exit code says.
    if (exit.code === 0 && isJpeg(jpeg)) return jpeg;
    throw new Error(exit.requested ? 'decoding took too long' : describeDiagnosis(diagnoseFfmpeg(exit)));
  } finally {
    clearTimeout(timer);
  }
}
