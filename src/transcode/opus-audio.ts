/**
 * A camera's AAC sound as Opus, for browsers that take the camera's H.264 as it is but cannot play
 * AAC over WebRTC (all of them). It is an ordinary `Source` upstream like the VP8 variant, with one
 * difference: ffmpeg reads a pipe the plugin feeds, not the re-stream. The plugin subscribes to the
 * camera's Source for audio only, writes each AAC access unit behind an ADTS header to ffmpeg's
 * stdin, and reads Opus in Ogg from its stdout (flags in src/ffmpeg/transcode-args.ts).
 *
 * Timing, which is what keeps the sound in step with the untouched video:
 * - every input sample is numbered in the order it was fed, and each fed frame remembers its first
 *   sample number, its camera timestamp and its capture time (the camera's, from its RTCP sender
 *   reports, or its arrival here: the rule the video's sender reports follow too);
 * - each Opus packet's first sample (counted from the packets' own TOC durations, minus OpusHead's
 *   pre-skip) is an input sample number at 48 kHz, so the fed frame it came from is known exactly;
 * - the packet gets that frame's camera timestamp (moved to 48 kHz) and capture time, passed to the
 *   Source as a sender report before the packet. A gap in the camera's audio is a gap in the Opus
 *   timestamps, and the viewers' sender reports map both tracks to the same capture clock, so a
 *   browser lines them up itself; what transcoding costs is latency (one AAC frame and one Opus
 *   frame), never an offset.
 *
 * One such ffmpeg runs per camera while at least one viewer needs it (the Source's idle timeout
 * stops it after the last). A camera whose sound is not AAC, or whose AAC cannot be carried in ADTS
 * (AAC-LD/ELD), gets a clear error naming it and the viewers keep the video.
 */
import type { FfmpegCapabilities } from '../ffmpeg/capabilities.js';
import { describeDiagnosis, diagnoseFfmpeg } from '../ffmpeg/ffmpeg-diagnosis.js';
import { FfmpegProcess } from '../ffmpeg/ffmpeg-process.js';
import { OPUS_PAYLOAD_TYPE, opusAudioArgs } from '../ffmpeg/transcode-args.js';
import { adtsHeader, parseAudioSpecificConfig, type AudioSpecificConfigInfo } from '../media/adts.js';
import { serializeRtp } from '../media/rtp.js';
import { isOpusTags, OggReader, opusPacketSamples, parseOpusHead } from '../media/ogg.js';
import type { FrameSink, MediaFrame, TrackDescription, UpstreamFactory, UpstreamHandlers, UpstreamSession } from '../media/types.js';
import type { Logger } from '../util/logger.js';
import { waitForInputTracks, type VariantInput } from './variant-upstream.js';

/** The one track the Opus upstream gives: what browsers are offered (48000/2 whatever the channels). */
export const OPUS_AUDIO_TRACK: TrackDescription = {
  kind: 'audio',
  codec: 'OPUS',
  payloadType: OPUS_PAYLOAD_TYPE,
  clockRate: 48000,
  channels: 2,
  fmtp: {},
  controlUrl: 'pipe:opus',
};

/** AAC fed but not yet encoded, at most (about 8 s at 16 kHz): ffmpeg that falls this far behind has stopped. */
const MAX_PENDING_FRAMES = 128;
/** AAC waiting in the pipe, at most; ffmpeg that leaves this much unread is stuck. */
const MAX_PIPE_BYTES = 256 * 1024;

export interface OpusAudioOptions {
  ffmpeg: Pick<FfmpegCapabilities, 'path'>;
  /** The camera's own Source: its AAC frames are what is encoded. */
  input: VariantInput;
  log: Logger;
  debug?: boolean;
  /** How long to wait for the camera to describe its tracks (default 15 s). */
  tracksTimeoutMs?: number;
  bitrateKbps?: number;
}

/** Whether a camera's tracks make this upstream useful: AAC sound. */
export function needsOpusAudio(tracks: ReadonlyArray<TrackDescription>): boolean {
  return tracks.some((t) => t.kind === 'audio' && t.codec === 'AAC');
}

export function opusAudioUpstream(options: OpusAudioOptions): UpstreamFactory {
  return (handlers, signal) => openOpusAudioSession(options, handlers, signal);
}

/** One fed AAC frame: where its samples start in the feed, and when and where they were on the camera. */
interface FedFrame {
  /** Input samples fed before this frame. */
  firstSample: number;
  samples: number;
  /** The frame's camera timestamp, unwrapped (input clock). */
  timestamp: number;
  /** Capture time, ms since epoch. */
  captureMs: number;
}

/**
 * Maps Opus output to the AAC input it came from. Separate from the process plumbing so that its
 * arithmetic is tested on its own (test/transcode/opus-audio.test.ts).
 */
export class OpusTimeline {
  private readonly fed: FedFrame[] = [];
  private fedSamples = 0;
  private lastInputTimestamp: number | undefined;
  private unwrapped = 0;
  private outputSamples = 0;
  private preSkip: number | undefined;

  constructor(
    /** The camera's AAC clock rate (its RTP clock: the output rate when SBR is signalled). */
    private readonly inputRate: number,
    private readonly frameSamples: number,
  ) {}

  /** AAC frames fed and not yet fully covered by Opus output. */
  get pendingFrames(): number {
    return this.fed.length;
  }

  /** Notes a frame just fed to ffmpeg (`timestamp` is its 32-bit camera timestamp). */
  fedFrame(timestamp: number, captureMs: number): void {
    if (this.lastInputTimestamp === undefined) this.unwrapped = timestamp;
    else this.unwrapped += (timestamp - this.lastInputTimestamp) | 0;
    this.lastInputTimestamp = timestamp;
    this.fed.push({ firstSample: this.fedSamples, samples: this.frameSamples, timestamp: this.unwrapped, captureMs });
    this.fedSamples += this.frameSamples;
  }

  /** The OpusHead's pre-skip: the encoder's priming, not sound. */
  setPreSkip(samples: number): void {
    this.preSkip = samples;
  }

  /**
   * The next Opus packet of `samples` (48 kHz): its RTP timestamp (48 kHz, 32-bit) and capture
   * time, or undefined before the OpusHead or before any frame was fed.
   */
  nextPacket(samples: number): { timestamp: number; captureMs: number } | undefined {
    const start = this.outputSamples;
    this.outputSamples += samples;
    if (this.preSkip === undefined || this.fed.length === 0) return undefined;
    const input = ((start - this.preSkip) * this.inputRate) / 48000;
    // Frames wholly before this packet are done with (the output only moves forward).
    while (this.fed.length > 1 && this.fed[0]!.firstSample + this.fed[0]!.samples <= input) this.fed.shift();
    const frame = this.fed[0]!;
    const into = input - frame.firstSample;
    return {
      timestamp: Math.round(((frame.timestamp + into) * 48000) / this.inputRate) >>> 0,
      captureMs: frame.captureMs + (into * 1000) / this.inputRate,
    };
  }
}

/** What the camera's AAC track must say for ffmpeg to read it from a pipe; a clear error otherwise. */
export function aacInputConfig(track: TrackDescription): AudioSpecificConfigInfo {
  const hex = track.fmtp['config'];
  if (!hex) throw new Error("the camera's AAC track has no AudioSpecificConfig (fmtp config) in its SDP");
  let config: AudioSpecificConfigInfo;
  try {
    config = parseAudioSpecificConfig(hex);
  } catch (error) {
    throw new Error(`the camera's AAC track has an unreadable AudioSpecificConfig: ${error instanceof Error ? error.message : String(error)}`);
  }
  // adtsHeader says exactly what does not fit (AAC-LD/ELD, a rate without an index...).
  adtsHeader(config, 0);
  return config;
}

async function openOpusAudioSession(options: OpusAudioOptions, handlers: UpstreamHandlers, signal: AbortSignal): Promise<UpstreamSession> {
  const tracks = await waitForInputTracks(options.input, options.tracksTimeoutMs ?? 15_000, signal);
  signal.throwIfAborted();
  const aac = tracks.find((t) => t.kind === 'audio' && t.codec === 'AAC');
  if (!aac) throw new Error(`the camera sends ${tracks.some((t) => t.kind === 'audio') ? 'no AAC' : 'no'} sound to turn into Opus`);
  const config = aacInputConfig(aac);
  signal.throwIfAborted();
  const timeline = new OpusTimeline(aac.clockRate, config.frameSamples);
  const reader = new OggReader();
  const ssrc = Math.floor(Math.random() * 0xffffffff);
  let sequenceNumber = Math.floor(Math.random() * 0x10000);
  let closed = false;
  let stopping: Promise<unknown> | undefined;

  // Called only from events (ffmpeg's output and exit, the camera's frames, close()), all of which
  // come after `encoder` and `subscription` below exist.
  const end = (error?: Error): void => {
    if (closed) return;
    closed = true;
    subscription.unsubscribe();
    encoder.stdin?.end();
    stopping = encoder.stop(1000);
    handlers.onClose(error);
  };

  const onOgg = (chunk: Buffer): void => {
    if (closed) return;
    let packets;
    try {
      packets = reader.push(chunk);
    } catch (error) {
      end(new Error(`the Opus encoder wrote something that is not Ogg (${error instanceof Error ? error.message : String(error)})`));
      return;
    }
    for (const packet of packets) {
      const head = parseOpusHead(packet.data);
      if (head) {
        timeline.setPreSkip(head.preSkip);
        continue;
      }
      if (isOpusTags(packet.data) || packet.data.length === 0) continue;
      let samples: number;
      try {
        samples = opusPacketSamples(packet.data);
      } catch {
        continue;
      }
      const at = timeline.nextPacket(samples);
      if (!at) continue;
      // The packet's own capture time, so that the Source stamps exactly this frame with it.
      handlers.onSenderReport?.(0, at.timestamp, at.captureMs);
      // Every packet is a whole Opus frame: the marker stays clear.
      handlers.onRtp(0, serializeRtp({ marker: false, payloadType: OPUS_PAYLOAD_TYPE, sequenceNumber: sequenceNumber++ & 0xffff, timestamp: at.timestamp, ssrc }, packet.data));
    }
  };

  const encoder = new FfmpegProcess({
    ffmpegPath: options.ffmpeg.path,
    args: opusAudioArgs({ ...(options.debug ? { debug: true } : {}), ...(options.bitrateKbps ? { bitrateKbps: options.bitrateKbps } : {}) }),
    label: 'Opus audio',
    log: options.log,
    stdin: true,
    onStdout: onOgg,
    ...(options.debug ? { debug: true } : {}),
  });
  // A pipe closing under a write (ffmpeg died) is reported by the exit, not as an unhandled error.
  encoder.stdin?.on('error', () => undefined);
  void encoder.exited.then((exit) => {
    if (exit.requested || closed) return;
    end(new Error(`the Opus audio encoder stopped: ${describeDiagnosis(diagnoseFfmpeg(exit))}`));
  });

  const sink: FrameSink = {
    write: (frame: MediaFrame) => {
      if (closed || frame.kind !== 'audio' || frame.codec !== 'AAC') return true;
      const stdin = encoder.stdin;
      if (!stdin || !encoder.running) return true;
      // A damaged frame is left out: it becomes a gap in the timestamps, not a glitch.
      if (frame.damaged) return true;
      if (stdin.writableLength > MAX_PIPE_BYTES || timeline.pendingFrames > MAX_PENDING_FRAMES) {
        end(new Error(`the Opus audio encoder fell behind (${timeline.pendingFrames} AAC frames not encoded)`));
        return true;
      }
      const captureMs = frame.captureTime ?? performance.timeOrigin + frame.receivedAt;
      frame.units.forEach((unit, i) => {
        // Several access units in one frame follow each other on the camera's clock.
        const offset = i * config.frameSamples;
        stdin.write(Buffer.concat([adtsHeader(config, unit.length), unit]));
        timeline.fedFrame((frame.timestamp + offset) >>> 0, captureMs + (offset * 1000) / aac.clockRate);
      });
      return true;
    },
  };
  const subscription = options.input.subscribe(sink, { kinds: ['audio'], fromKeyframe: false });
  options.log.debug(`Opus audio: ffmpeg ${encoder.pid ?? '?'} turning ${aac.clockRate} Hz AAC into Opus`);
  return {
    tracks: [OPUS_AUDIO_TRACK],
    close: async () => {
      end();
      await stopping;
    },
  };
}
