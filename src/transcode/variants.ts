/**
 * The transcoded variants of the plugin's cameras, made on first use: at most one VP8 variant
 * Source per camera, whatever the number of viewers, and none at all until a browser needs one.
 */
import type { FfmpegCapabilities } from '../ffmpeg/capabilities.js';
import { Source } from '../media/source.js';
import { prefixedLogger, type Logger } from '../util/logger.js';
import { vp8VariantUpstream, type VariantInput } from './vp8-variant.js';

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

  /** Whether the camera's encoder is running (or starting) now. */
  running(id: string): boolean {
    const state = this.vp8.get(id)?.state.state;
    return state === 'live' || state === 'connecting';
  }

  async remove(id: string): Promise<void> {
    const variant = this.vp8.get(id);
    this.vp8.delete(id);
    await variant?.close();
  }

  async closeAll(): Promise<void> {
    const all = [...this.vp8.values()];
    this.vp8.clear();
    await Promise.allSettled(all.map((variant) => variant.close()));
  }
}
