/**
 * The transcoded variants of the plugin's cameras, made on first use: at most one VP8 variant
 * Source and one Opus sound Source per camera, whatever the number of viewers, and none at all
 * until a browser needs one.
 */
import type { FfmpegCapabilities } from '../ffmpeg/capabilities.js';
import { Source } from '../media/source.js';
import type { BroadcastSource } from '../media/types.js';
import { prefixedLogger, type Logger } from '../util/logger.js';
import { vp8VariantUpstream, type VariantInput } from './vp8-variant.js';
import { opusAudioUpstream } from './opus-audio.js';
import { OpusDubbedSource } from './opus-dubbed-source.js';

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
}

export class TranscodedVariants {
  private readonly vp8 = new Map<string, Source>();
  /** Each camera's Opus sound, and the camera as H.264 browsers get it (its video, that sound). */
  private readonly opus = new Map<string, Source>();
  private readonly dubbed = new Map<string, OpusDubbedSource>();

  constructor(private readonly options: TranscodedVariantsOptions) {}

  /** Whether this ffmpeg can make VP8 at all (libvpx); without it browsers lacking H.264 get a plain refusal. */
  get available(): boolean {
    return this.options.ffmpeg?.has.libvpx === true;
  }

  /** The camera's VP8 + Opus variant, created on first use; `undefined` when ffmpeg cannot make one. */
  vp8For(camera: VariantCamera): Source | undefined {
    const existing = this.vp8.get(camera.id);
    if (existing) return existing;
    const ffmpeg = this.options.ffmpeg;
    if (!ffmpeg || !this.available) return undefined;
    const name = `${camera.name} (VP8)`;
    const log = prefixedLogger(this.options.log, name);
    const variant = new Source({
      id: camera.id,
      name,
      upstream: vp8VariantUpstream({
        ffmpegPath: ffmpeg.path,
        ffmpegVersion: ffmpeg.version,
        inputUrl: () => this.options.restreamUrl(camera.id),
        input: camera.source,
        withAudio: ffmpeg.has.libopus,
        log,
        ...(this.options.debug ? { debug: true } : {}),
      }),
      logger: log,
      logNamesCamera: true,
      upstreamNoun: 'the transcoder',
      idleTimeoutMs: this.options.idleTimeoutMs ?? 10_000,
    });
    this.vp8.set(camera.id, variant);
    log.info('transcoding to VP8 for browsers without H.264 (one encoder for all of them)');
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

  /** How many of the camera's encoders (VP8 variant, Opus sound) are running or starting now. */
  running(id: string): number {
    const busy = (source: Source | undefined): number => (source?.state.state === 'live' || source?.state.state === 'connecting' ? 1 : 0);
    return busy(this.vp8.get(id)) + busy(this.opus.get(id));
  }

  async remove(id: string): Promise<void> {
    const closing = [this.vp8.get(id), this.opus.get(id)];
    this.vp8.delete(id);
    this.opus.delete(id);
    this.dubbed.delete(id);
    await Promise.allSettled(closing.map((source) => source?.close()));
  }

  async closeAll(): Promise<void> {
    const all = [...this.vp8.values(), ...this.opus.values()];
    this.vp8.clear();
    this.opus.clear();
    this.dubbed.clear();
    await Promise.allSettled(all.map((variant) => variant.close()));
  }
}
