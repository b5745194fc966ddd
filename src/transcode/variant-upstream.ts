/**
 * A camera's transcoded variant, for viewers that cannot take the camera's own codec: VP8 + Opus
 * (Firefox without OpenH264; a VP8-only client), or H.264 + Opus (an H.265 camera's viewers that
 * take H.264: Chromium, Safari, most players). It is an ordinary `Source` whose "camera" is one
 * ffmpeg reading the loopback re-stream: the camera still has exactly one session, the variant
 * pulls on demand like any Source (ffmpeg starts with its first viewer and stops after the last),
 * and every viewer of the variant shares that one encoder, its GOP cache and its fan-out.
 */
import { describeDiagnosis, diagnoseFfmpeg } from '../ffmpeg/ffmpeg-diagnosis.js';
import { RestreamFfmpeg } from '../ffmpeg/ffmpeg-process.js';
import { H264_VARIANT_PAYLOAD_TYPE, OPUS_PAYLOAD_TYPE, variantArgs, variantAudioArgs, variantBitrateKbps, VP8_PAYLOAD_TYPE, type VariantCodec } from '../ffmpeg/transcode-args.js';
import { isRtcpPacket } from '../rtp/rtcp.js';
import type { FrameSink, SourceStats, Subscribable, TrackDescription, UpstreamFactory, UpstreamHandlers, UpstreamSession } from '../media/types.js';
import type { Logger } from '../util/logger.js';
import type { HardwareEncoder } from '../ffmpeg/hardware-encoders.js';
import { firstStep, KeepUpWatch, VARIANT_STEPS, type KeepUpSettings, type VariantStep } from './keep-up.js';
import { openLoopbackRtpReceiver, type RtpReceiver } from '../rtp/rtp-receiver.js';

/** What the variant needs from the camera's own Source. */
export interface VariantInput extends Subscribable {
  readonly tracks: ReadonlyArray<TrackDescription>;
  /** The camera's measured picture, to size the variant's bitrate. */
  stats?(): Pick<SourceStats, 'width' | 'height' | 'fps' | 'declaredFps'>;
  on(event: 'tracks', listener: (tracks: ReadonlyArray<TrackDescription>) => void): unknown;
  off(event: 'tracks', listener: (tracks: ReadonlyArray<TrackDescription>) => void): unknown;
}

export interface VariantOptions {
  /** What the variant's video is encoded to. */
  codec: VariantCodec;
  ffmpegPath: string;
  /** Its version, for flags that were renamed. */
  ffmpegVersion?: string;
  /** The camera's loopback re-stream URL, or a function issuing one (with a fresh token) per ffmpeg start. */
  inputUrl: string | (() => string);
  /** The camera's own Source: its tracks say whether there is audio to encode. */
  input: VariantInput;
  /** False when this ffmpeg has no libopus: video only. */
  withAudio: boolean;
  log: Logger;
  debug?: boolean;
  /** How long to wait for the camera to describe its tracks (default 15 s). */
  tracksTimeoutMs?: number;
  /** The largest picture the variant sends (default 1280x720); a slow encoder steps down from it. */
  maxWidth?: number;
  maxHeight?: number;
  /** Default: from the picture size and frame rate of each step (`variantBitrateKbps`). */
  videoBitrateKbps?: number;
  /** When to step down (or back up): tests shorten the windows. */
  keepUp?: Partial<KeepUpSettings>;
  /** The encoder now runs at `step` of `VARIANT_STEPS` (said at start and at every change). */
  onStep?(step: number, first: number): void;
  /** Which hardware encoder to use (one whose trial worked), and where to report one that failed. */
  hardware?: {
    choose(): Promise<HardwareEncoder | undefined>;
    failed(encoder: HardwareEncoder, reason: string): void;
  };
}

/** How a variant codec is named in log lines and errors. */
export function variantCodecName(codec: VariantCodec): string {
  return codec === 'H264' ? 'H.264' : 'VP8';
}

/** The tracks the variant's ffmpeg is told to send: known in advance, so no SDP to parse. */
export function variantTracks(codec: VariantCodec, withAudio: boolean): TrackDescription[] {
  const tracks: TrackDescription[] = [
    codec === 'H264'
      // Constrained Baseline (x264 -profile baseline); no sprop-parameter-sets: x264 puts SPS/PPS before every keyframe.
      ? { kind: 'video', codec: 'H264', payloadType: H264_VARIANT_PAYLOAD_TYPE, clockRate: 90000, fmtp: { 'packetization-mode': '1', 'profile-level-id': '42e01f' }, controlUrl: 'rtp://127.0.0.1/h264' }
      : { kind: 'video', codec: 'VP8', payloadType: VP8_PAYLOAD_TYPE, clockRate: 90000, fmtp: {}, controlUrl: 'rtp://127.0.0.1/vp8' },
  ];
  if (withAudio) {
    tracks.push({ kind: 'audio', codec: 'OPUS', payloadType: OPUS_PAYLOAD_TYPE, clockRate: 48000, channels: 2, fmtp: {}, controlUrl: 'rtp://127.0.0.1/opus' });
  }
  return tracks;
}

/** RTCP from ffmpeg's muxer (on the RTP port): not media. */
export { isRtcpPacket as isRtcp } from '../rtp/rtcp.js';

/** Resolves with the camera's tracks once it has described them (starting its pull meanwhile). */
export function waitForInputTracks(input: VariantInput, timeoutMs: number, signal: AbortSignal): Promise<ReadonlyArray<TrackDescription>> {
  if (input.tracks.length > 0) return Promise.resolve(input.tracks);
  return new Promise((resolve, reject) => {
    const onTracks = (tracks: ReadonlyArray<TrackDescription>): void => {
      if (tracks.length > 0) finish(() => resolve(tracks));
    };
    const onAbort = (): void => finish(() => reject(new Error('aborted')));
    const timer = setTimeout(() => finish(() => reject(new Error(`the camera did not describe its stream within ${Math.round(timeoutMs / 1000)} s`))), timeoutMs);
    const finish = (settle: () => void): void => {
      clearTimeout(timer);
      input.off('tracks', onTracks);
      signal.removeEventListener('abort', onAbort);
      settle();
    };
    input.on('tracks', onTracks);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function variantUpstream(options: VariantOptions): UpstreamFactory {
  return (handlers, signal) => openVariantSession(options, handlers, signal);
}

/**
 * What a step makes of the camera's picture ("640x360@15"): the scale filter never enlarges, so a
 * small camera looks the same in every box that holds it. Unknown picture: the box itself.
 */
export function effectivePicture(step: VariantStep, picture?: { width?: number; height?: number }): string {
  const width = picture?.width;
  const height = picture?.height;
  const fit = width && height ? Math.min(1, step.maxWidth / width, step.maxHeight / height) : undefined;
  const size = fit !== undefined && width && height ? `${Math.round(width * fit)}x${Math.round(height * fit)}` : `${step.maxWidth}x${step.maxHeight}`;
  return `${size}@${step.maxFps ?? 'full'}`;
}

/** "960x540", or "640x360 at 15 fps". */
export function describeStep(step: VariantStep): string {
  return `${step.maxWidth}x${step.maxHeight}${step.maxFps ? ` at ${step.maxFps} fps` : ''}`;
}

async function openVariantSession(options: VariantOptions, handlers: UpstreamHandlers, signal: AbortSignal): Promise<UpstreamSession> {
  // Hold the camera's Source while ffmpeg starts: its re-stream DESCRIBE then finds the pull
  // already going, and we learn whether there is audio before choosing ffmpeg's outputs. The hold
  // also counts the camera's video frames, which the encoder must keep up with.
  const name = variantCodecName(options.codec);
  let inputFrames = 0;
  let outputFrames = 0;
  const hold: FrameSink = {
    write: (frame) => {
      if (frame.kind === 'video') inputFrames++;
      return true;
    },
  };
  const held = options.input.subscribe(hold, { kinds: ['video'], fromKeyframe: false });
  const sockets: RtpReceiver[] = [];
  let ffmpeg: RestreamFfmpeg | undefined;
  /** The sound's own ffmpeg (transcode-args.ts says why): it runs across the picture's step changes. */
  let sound: RestreamFfmpeg | undefined;
  let stopWatching: (() => void) | undefined;
  let closed = false;
  /** ffmpeg's exit once `release` asked it to stop. */
  let stopping: Promise<unknown> | undefined;
  const release = (): boolean => {
    if (closed) return false;
    closed = true;
    held.unsubscribe();
    stopWatching?.();
    for (const socket of sockets) socket.close();
    stopping = Promise.all([ffmpeg?.stop(), sound?.stop()]);
    return true;
  };
  try {
    const inputTracks = await waitForInputTracks(options.input, options.tracksTimeoutMs ?? 15_000, signal);
    signal.throwIfAborted();
    const withAudio = options.withAudio && inputTracks.some((t) => t.kind === 'audio');
    if (!inputTracks.some((t) => t.kind === 'video')) throw new Error('the camera sends no video to transcode');
    sockets.push(await openLoopbackRtpReceiver());
    if (withAudio) sockets.push(await openLoopbackRtpReceiver());
    signal.throwIfAborted();
    const ports = sockets.map((s) => s.port);
    const picture = options.input.stats?.();
    const first = firstStep(options.maxWidth ?? 1280, options.maxHeight ?? 720, picture);
    sockets.forEach((socket, trackIndex) => {
      socket.start({
        onPacket: (packet) => {
          if (isRtcpPacket(packet)) return;
          // The marker bit ends a video frame (VP8 and H.264 alike).
          if (trackIndex === 0 && packet.length > 1 && (packet[1]! & 0x80) !== 0) outputFrames++;
          handlers.onRtp(trackIndex, packet);
        },
        onForeign: (from) => options.log.debug(`${name} variant: ignoring UDP packets from ${from}, which is not its ffmpeg`),
      });
    });

    let hardware = await options.hardware?.choose();
    signal.throwIfAborted();
    let currentStep = first;

    /**
     * One ffmpeg at `stepIndex`. Its unrequested exit ends the session, except a hardware encoder's
     * failure (its device gone, a driver error): that run is started again in software.
     */
    const start = (stepIndex: number): RestreamFfmpeg => {
      currentStep = stepIndex;
      const encoder = hardware;
      const step = VARIANT_STEPS[stepIndex]!;
      const fps = picture?.declaredFps ?? picture?.fps;
      const videoBitrateKbps = options.videoBitrateKbps ?? variantBitrateKbps({ ...picture, fps: step.maxFps && fps ? Math.min(fps, step.maxFps) : step.maxFps ?? fps }, step.maxWidth, step.maxHeight);
      const process = new RestreamFfmpeg({
        ffmpegPath: options.ffmpegPath,
        // Asked at every start, the restart with a longer probe included.
        args: (probe) => variantArgs(options.codec, {
          // A function gives each ffmpeg start its own single-use re-stream token.
          inputUrl: typeof options.inputUrl === 'function' ? options.inputUrl() : options.inputUrl,
          videoPort: ports[0]!,
          maxWidth: step.maxWidth,
          maxHeight: step.maxHeight,
          ...(step.maxFps ? { maxFps: step.maxFps } : {}),
          // Stepped down: the camera's decoding and scaling are the cheap kind too (they do not shrink with the box).
          ...(stepIndex > first ? { fastDecode: true } : {}),
          ...(encoder ? { hardware: encoder } : {}),
          videoBitrateKbps,
          ...(options.ffmpegVersion ? { ffmpegVersion: options.ffmpegVersion } : {}),
          ...(options.debug ? { debug: true } : {}),
          probe,
        }),
        label: `${name} variant`,
        log: options.log,
        ...(options.debug ? { debug: true } : {}),
      });
      void process.exited.then((exit) => {
        // A run stopped for a step change (or by close) is not the session ending.
        if (exit.requested || ffmpeg !== process || closed) return;
        const diagnosis = diagnoseFfmpeg(exit, encoder ? { videoEncoder: encoder.name } : {});
        if (encoder && diagnosis.remedy === 'default-video-encoder') {
          options.hardware?.failed(encoder, describeDiagnosis(diagnosis));
          hardware = undefined;
          ffmpeg = start(currentStep);
          watch.restarted(performance.now());
          return;
        }
        if (!release()) return;
        handlers.onClose(new Error(`the ${name} transcoder stopped: ${describeDiagnosis(diagnosis)}`));
      });
      options.log.debug(`${name} variant: ffmpeg ${process.pid ?? '?'} encoding the re-stream with ${encoder?.name ?? 'software'} at ${describeStep(step)}, ${videoBitrateKbps} kbit/s, to 127.0.0.1:${ports.join(',')}`);
      return process;
    };

    if (withAudio) {
      const process = new RestreamFfmpeg({
        ffmpegPath: options.ffmpegPath,
        args: (probe) => variantAudioArgs({
          inputUrl: typeof options.inputUrl === 'function' ? options.inputUrl() : options.inputUrl,
          audioPort: ports[1]!,
          ...(options.debug ? { debug: true } : {}),
          probe,
        }),
        label: `${name} variant sound`,
        log: options.log,
        ...(options.debug ? { debug: true } : {}),
      });
      sound = process;
      void process.exited.then((exit) => {
        if (exit.requested || closed) return;
        if (!release()) return;
        handlers.onClose(new Error(`the ${name} variant's sound encoder stopped: ${describeDiagnosis(diagnoseFfmpeg(exit, { audioEncoder: 'libopus' }))}`));
      });
    }
    const watch = new KeepUpWatch(first, performance.now(), options.keepUp);
    ffmpeg = start(first);
    options.onStep?.(first, first);
    let switching = false;
    const timer = setInterval(() => {
      if (closed || switching) return;
      const now = options.input.stats?.();
      const decision = watch.check(performance.now(), inputFrames, outputFrames, (a, b) => effectivePicture(VARIANT_STEPS[a]!, now) === effectivePicture(VARIANT_STEPS[b]!, now));
      if (decision.action !== 'step') return;
      const step = VARIANT_STEPS[decision.to]!;
      if (decision.reason === 'behind') {
        options.log.warn(`the ${name} encoder gave ${Math.round(decision.inRatio * 100)}% of the camera's frames (the machine is too busy for it); encoding at ${describeStep(step)} from now on`);
      } else {
        options.log.info(`the ${name} encoder has kept up for a while; trying ${describeStep(step)} again`);
      }
      // The old run ends before the new one starts: two on the same sockets would interleave their
      // streams. The viewers' picture pauses about a second and comes back from a keyframe.
      switching = true;
      const old = ffmpeg;
      void (old ? old.stop() : Promise.resolve()).then(() => {
        switching = false;
        if (closed) return;
        ffmpeg = start(decision.to);
        watch.restarted(performance.now());
        options.onStep?.(decision.to, first);
      });
    }, Math.min(1000, options.keepUp?.windowMs ?? 1000));
    timer.unref();
    stopWatching = () => clearInterval(timer);
    return {
      tracks: variantTracks(options.codec, withAudio),
      close: async () => {
        if (release()) handlers.onClose();
        await stopping;
      },
    };
  } catch (error) {
    release();
    throw error instanceof Error ? error : new Error(String(error));
  }
}
