/**
 * The transcoded variants of the plugin's cameras, made on first use: at most one VP8 variant, one
 * H.264 variant and one Opus sound Source per camera, whatever the number of viewers, and none at
 * all until a viewer needs one.
 */
import type { FfmpegCapabilities } from '../ffmpeg/capabilities.js';
import { Source } from '../media/source.js';
import type { BroadcastSource } from '../media/types.js';
import { prefixedLogger, type Logger } from '../util/logger.js';
import type { VariantCodec } from '../ffmpeg/transcode-args.js';
import { describeStep, variantCodecName, variantUpstream, type VariantInput } from './variant-upstream.js';
import { opusAudioUpstream } from './opus-audio.js';
import { OpusDubbedSource } from './opus-dubbed-source.js';
import { VARIANT_STEPS, type KeepUpSettings } from './keep-up.js';
import { HardwareEncoderChoice, hardwareCandidates, type HardwareEncoder, type TrialResult } from '../ffmpeg/hardware-encoders.js';

export interface VariantCamera {
  id: string;
  name: string;
  source: VariantInput;
}

export interface TranscodedVariantsOptions {
  ffmpeg: FfmpegCapabilities | undefined;
  /** The camera's loopback re-stream URL. */
  restreamUrl: (id: string) => string;
  log: Logger;
  debug?: boolean;
  /** Stop the transcoder this long after its last viewer left (default 10 s). */
  idleTimeoutMs?: number;
  /** When a slow encoder steps down (tests shorten it). */
  keepUp?: Partial<KeepUpSettings>;
  /** How a hardware encoder is tried (default: a one-second encode with this ffmpeg). */
  hardwareTrial?: (encoder: HardwareEncoder) => Promise<TrialResult>;
}

export class TranscodedVariants {
  /** Each camera's variants, by codec. */
  private readonly encoded: Record<VariantCodec, Map<string, Source>> = { VP8: new Map(), H264: new Map() };
  /** The step each variant's encoder runs at now, and the one it started at (src/transcode/keep-up.ts). */
  private readonly steps: Record<VariantCodec, Map<string, { step: number; first: number }>> = { VP8: new Map(), H264: new Map() };
  /** Each camera's Opus sound, and the camera as H.264 browsers get it (its video, that sound). */
  private readonly opus = new Map<string, Source>();
  private readonly dubbed = new Map<string, OpusDubbedSource>();
  private hardware: HardwareEncoderChoice | undefined;

  constructor(private readonly options: TranscodedVariantsOptions) {}

  /**
   * Whether this ffmpeg can encode `codec` at all (libvpx, libx264); without it the viewers that
   * need that variant get a plain refusal.
   */
  available(codec: VariantCodec = 'VP8'): boolean {
    const ffmpeg = this.options.ffmpeg;
    if (!ffmpeg) return false;
    const software = codec === 'H264' ? ffmpeg.has.libx264 : ffmpeg.has.libvpx;
    return software || hardwareCandidates(ffmpeg, codec).length > 0;
  }

  /** The hardware encoders' trials, run once on first need (none at all without a variant). */
  private hardwareChoice(ffmpeg: FfmpegCapabilities): HardwareEncoderChoice {
    this.hardware ??= new HardwareEncoderChoice(ffmpeg, this.options.log, this.options.hardwareTrial);
    return this.hardware;
  }

  /** The camera's `codec` + Opus variant, created on first use; `undefined` when ffmpeg cannot make one. */
  variantFor(codec: VariantCodec, camera: VariantCamera): Source | undefined {
    const existing = this.encoded[codec].get(camera.id);
    if (existing) return existing;
    const ffmpeg = this.options.ffmpeg;
    if (!ffmpeg || !this.available(codec)) return undefined;
    const name = `${camera.name} (${variantCodecName(codec)})`;
    const log = prefixedLogger(this.options.log, name);
    const variant = new Source({
      id: camera.id,
      name,
      upstream: variantUpstream({
        codec,
        ffmpegPath: ffmpeg.path,
        ffmpegVersion: ffmpeg.version,
        inputUrl: () => this.options.restreamUrl(camera.id),
        input: camera.source,
        withAudio: ffmpeg.has.libopus,
        log,
        ...(this.options.debug ? { debug: true } : {}),
        ...(this.options.keepUp ? { keepUp: this.options.keepUp } : {}),
        onStep: (step, first) => this.steps[codec].set(camera.id, { step, first }),
        hardware: {
          choose: () => this.hardwareChoice(ffmpeg).choose(codec),
          failed: (encoder, reason) => this.hardwareChoice(ffmpeg).failed(encoder, reason),
        },
      }),
      logger: log,
      logNamesCamera: true,
      upstreamNoun: 'the transcoder',
      idleTimeoutMs: this.options.idleTimeoutMs ?? 10_000,
    });
    this.encoded[codec].set(camera.id, variant);
    log.info(codec === 'H264'
      ? "transcoding to H.264 for viewers that cannot take the camera's own codec (one encoder for all of them)"
      : 'transcoding to VP8 for browsers without H.264 (one encoder for all of them)');
    return variant;
  }

  /**
   * The camera as browsers that take its video get it: its own video, and its sound as Opus when it
   * is AAC (one encoder per camera, started by the first viewer that needs it, stopped 10 s after
   * the last). `undefined` without libopus: such viewers get the video alone, as before.
   */
  withOpusSound(camera: VariantCamera & { source: VariantInput & BroadcastSource }): BroadcastSource | undefined {
    const existing = this.dubbed.get(camera.id);
    if (existing) return existing;
    const ffmpeg = this.options.ffmpeg;
    if (!ffmpeg?.has.libopus) return undefined;
    const dubbed = new OpusDubbedSource(camera.source, () => this.opusFor(camera, ffmpeg));
    this.dubbed.set(camera.id, dubbed);
    return dubbed;
  }

  private opusFor(camera: VariantCamera, ffmpeg: FfmpegCapabilities): Source {
    const existing = this.opus.get(camera.id);
    if (existing) return existing;
    const name = `${camera.name} (Opus sound)`;
    const log = prefixedLogger(this.options.log, name);
    const source = new Source({
      id: camera.id,
      name,
      upstream: opusAudioUpstream({ ffmpeg, input: camera.source, log, ...(this.options.debug ? { debug: true } : {}) }),
      logger: log,
      logNamesCamera: true,
      upstreamNoun: 'the sound encoder',
      idleTimeoutMs: this.options.idleTimeoutMs ?? 10_000,
    });
    this.opus.set(camera.id, source);
    log.info("turning the camera's AAC sound into Opus for browsers (one encoder for all of them)");
    return source;
  }

  /** How many of the camera's encoders (VP8 and H.264 variants, Opus sound) are running or starting now. */
  running(id: string): number {
    const busy = (source: Source | undefined): number => (source?.state.state === 'live' || source?.state.state === 'connecting' ? 1 : 0);
    return busy(this.encoded.VP8.get(id)) + busy(this.encoded.H264.get(id)) + busy(this.opus.get(id));
  }

  /**
   * How far the camera's busiest variant encoder has stepped down to keep up (0: its full picture;
   * each step about halves its work), while one runs; undefined when none does.
   */
  reducedSteps(id: string): number | undefined {
    const running = this.encoders(id);
    return running.length ? Math.max(...running.map((r) => r.stepsDown)) : undefined;
  }

  /**
   * The camera's variant encoders running now: codec, the picture they encode at (the largest box,
   * "640x360 at 15 fps") and how many steps down they went to keep up (the Homebridge UI shows it).
   */
  encoders(id: string): Array<{ codec: VariantCodec; picture: string; stepsDown: number }> {
    return (['VP8', 'H264'] as const).flatMap((codec) => {
      const state = this.encoded[codec].get(id)?.state.state;
      if (state !== 'live' && state !== 'connecting') return [];
      const at = this.steps[codec].get(id);
      const step = at ? VARIANT_STEPS[at.step] : undefined;
      return [{ codec, picture: step ? describeStep(step) : 'starting', stepsDown: at ? at.step - at.first : 0 }];
    });
  }

  async remove(id: string): Promise<void> {
    const closing = [this.encoded.VP8.get(id), this.encoded.H264.get(id), this.opus.get(id)];
    for (const map of [this.encoded.VP8, this.encoded.H264, this.opus, this.dubbed, this.steps.VP8, this.steps.H264]) map.delete(id);
    await Promise.allSettled(closing.map((source) => source?.close()));
  }

  async closeAll(): Promise<void> {
    const all = [...this.encoded.VP8.values(), ...this.encoded.H264.values(), ...this.opus.values()];
    for (const map of [this.encoded.VP8, this.encoded.H264, this.opus, this.dubbed, this.steps.VP8, this.steps.H264]) map.clear();
    await Promise.allSettled(all.map((variant) => variant.close()));
  }
}
