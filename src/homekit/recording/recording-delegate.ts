/**
 * HAP-NodeJS's `CameraRecordingDelegate` for one camera (HomeKit Secure Video). Recording on
 * (`updateRecordingActive(true)`) starts the pre-buffer on the camera's one shared Source; off
 * releases it. A hub's recording stream is `recordingStream`: the init segment, the pre-buffer as
 * fragments, then live fragments of the hub's fragment length, each on a keyframe, until the hub
 * closes the stream. The camera's H.264 passes through; AAC audio passes as is; G.711 (PCMU/PCMA)
 * is encoded to AAC-LC at the hub's rate by one ffmpeg per recording stream (audio-encoder.ts);
 * Opus, or G.711 without a usable ffmpeg, records video only, which the log says once, by name. An
 * H.265 camera's video comes re-encoded to H.264 (`source` is then h264-recording-feed.ts), and so
 * does an H.264 camera's whose keyframes are further apart than the hub's fragments (`longGop`); a
 * camera whose video reaches here as anything but H.264 is refused, and each refused stream says so.
 */
import type {
  CameraRecordingConfiguration,
  CameraRecordingDelegate,
  HAP,
  HDSProtocolSpecificErrorReason,
  RecordingPacket,
} from 'homebridge';
import type { FfmpegCapabilities } from '../../ffmpeg/capabilities.js';
import type { Logger } from '../../util/logger.js';
import type { Subscribable, TrackDescription } from '../../media/types.js';
import { levelName, profileName } from '../stream-session.js';
import { G711_NAMES, RecordingAudioEncoder } from './audio-encoder.js';
import { DEFAULT_RECORDING_VIDEO_KBPS, H264RecordingFeed } from './h264-recording-feed.js';
import { Prebuffer } from './prebuffer.js';
import { recordingSampleRateHz } from './recording-options.js';
import { recordingStream, type RecordingAudio } from './recording-stream.js';
import type { RecordingStatus } from './recording-status.js';

export interface RecordingDelegateOptions {
  hap: HAP;
  /** The camera's shared Source (or anything that subscribes like it and knows its tracks). */
  source: Subscribable & { readonly tracks: ReadonlyArray<TrackDescription> };
  /**
   * The camera sends H.265: recordings are made from one H.264 encoder on it (h264-recording-feed.ts),
   * run by `ffmpeg` (which must have libx264) at the hub's selected bitrate.
   */
  reencode?: boolean;
  /**
   * The camera sends H.264: should its keyframes turn out further apart than the hub's fragments,
   * its video is re-encoded by `ffmpeg` too (h264-recording-feed.ts's `longGop`).
   */
  reencodeLongGop?: boolean;
  /** The camera's keyframe interval as its Source measured it (ms), so a long one is known at once. */
  cameraKeyframeIntervalMs?: () => number | undefined;
  /** The camera's logger (prefixed with its name). */
  log: Logger;
  /** The `prebufferSeconds` setting; clamped to 4-8, default 4. */
  prebufferSeconds?: number;
  /** HomeKit's RecordingAudioActive (Camera Operating Mode); audio is left out while it is false. */
  recordingAudioActive?: () => boolean;
  /** Pre-buffer byte cap (tests); default `prebufferByteCap`. */
  prebufferMaxBytes?: number;
  /** The ffmpeg `findFfmpeg` chose (undefined: none found); it encodes a G.711 camera's sound to AAC. */
  ffmpeg?: FfmpegCapabilities | undefined;
  /** The `ffmpeg.debug` setting: log the encoder's ffmpeg output line by line. */
  ffmpegDebug?: boolean;
  /** The sound encoder's start-up grace before its lag counts (tests); default `STARTUP_GRACE_MS`. */
  encoderStartupGraceMs?: number;
}

const AUDIO_NAMES: Partial<Record<string, string>> = { ...G711_NAMES, OPUS: 'Opus' };
/** The fragment length HomeKit hubs ask for, until this one has chosen. */
const DEFAULT_FRAGMENT_MS = 4000;

export class HomeKitRecordingDelegate implements CameraRecordingDelegate {
  readonly prebuffer: Prebuffer;
  /**
   * What recordings are made from when the camera's video may need re-encoding (an H.265 camera, or
   * an H.264 one whose GOP may be too long); undefined when the camera's own video is always recorded.
   */
  readonly feed: H264RecordingFeed | undefined;
  private configuration: CameraRecordingConfiguration | undefined;
  private readonly streams = new Map<number, AbortController>();
  private readonly said = new Set<string>();
  private readonly log: Logger;
  private recordings = 0;
  private lastRecordingAt: number | undefined;
  /** The newest refusal or shortfall, for the Homebridge UI (the log has said it too). */
  private problem: string | undefined;

  constructor(private readonly options: RecordingDelegateOptions) {
    this.log = options.log;
    const ffmpeg = options.ffmpeg;
    this.feed = (options.reencode || options.reencodeLongGop) && ffmpeg
      ? new H264RecordingFeed({
        source: options.source,
        ffmpeg,
        log: options.log,
        // The hub's choice once it made one; until then what HomeKit usually asks of 1080p.
        bitrateKbps: () => this.selectedBitrateKbps() ?? DEFAULT_RECORDING_VIDEO_KBPS,
        ...(options.reencodeLongGop
          ? {
            longGop: {
              maxKeyframeIntervalMs: () => this.configuration?.mediaContainerConfiguration.fragmentLength ?? DEFAULT_FRAGMENT_MS,
              ...(options.cameraKeyframeIntervalMs ? { knownKeyframeIntervalMs: options.cameraKeyframeIntervalMs } : {}),
            },
          }
          : {}),
        ...(options.ffmpegDebug ? { debug: true } : {}),
      })
      : undefined;
    this.prebuffer = new Prebuffer({
      source: this.source,
      log: options.log,
      ...(options.prebufferSeconds !== undefined ? { seconds: options.prebufferSeconds } : {}),
      ...(options.prebufferMaxBytes !== undefined ? { maxBytes: options.prebufferMaxBytes } : {}),
    });
  }

  /** What recordings are made from: the camera's Source, or its H.264 re-encoding (an H.265 camera). */
  get source(): Subscribable & { readonly tracks: ReadonlyArray<TrackDescription> } {
    return this.feed ?? this.options.source;
  }

  /** Whether recordings re-encode the camera's video: an H.265 camera's always, an H.264 camera's once its GOP was seen too long. */
  get reencodes(): boolean {
    return this.feed !== undefined && (this.options.reencode === true || this.feed.stats().longGop);
  }

  /** The video bitrate the hub selected (kbit/s), once it has chosen a configuration. */
  selectedBitrateKbps(): number | undefined {
    const bitRate = this.configuration?.videoCodec.parameters.bitRate;
    return bitRate !== undefined && bitRate > 0 ? bitRate : undefined;
  }

  /** Recording streams in progress. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** For the Homebridge UI: recording on or off at the hub, the pre-buffer held, the newest problem. */
  status(): RecordingStatus {
    const buffer = this.prebuffer.stats();
    const problem = this.problem ?? this.feed?.problem;
    return {
      state: this.streams.size > 0 ? 'recording' : buffer.active ? 'buffering' : 'off',
      prebufferSeconds: this.prebuffer.seconds,
      bufferedSeconds: buffer.seconds,
      bufferedBytes: buffer.bytes,
      recordings: this.recordings,
      ...(this.lastRecordingAt !== undefined ? { lastRecordingAt: this.lastRecordingAt } : {}),
      ...(problem !== undefined ? { problem } : {}),
    };
  }

  /**
   * A recording trigger happened now (the motion sensor turned on, a doorbell press): the stream the
   * hub opens next reaches the pre-buffer length back from this moment, not from when it asks.
   */
  markEvent(): void {
    this.prebuffer.markEvent();
  }

  updateRecordingActive(active: boolean): void {
    if (active === this.prebuffer.active) return;
    if (active) {
      this.prebuffer.start();
      this.log.info(`HomeKit Secure Video recording is on: keeping a ${this.prebuffer.seconds} s pre-buffer from the camera's stream.`);
    } else {
      this.prebuffer.stop();
      this.log.info('HomeKit Secure Video recording is off: the pre-buffer is released.');
    }
  }

  updateRecordingConfiguration(configuration: CameraRecordingConfiguration | undefined): void {
    this.configuration = configuration;
    if (!configuration) {
      this.log.info('HomeKit Secure Video: the hub cleared its recording configuration.');
      return;
    }
    const { resolution, parameters } = configuration.videoCodec;
    this.log.info(
      `HomeKit Secure Video configuration: H.264 ${profileName(parameters.profile)} ${levelName(parameters.level)} ` +
        `${resolution[0]}x${resolution[1]}@${resolution[2]}, ${configuration.mediaContainerConfiguration.fragmentLength} ms fragments, ` +
        `${configuration.prebufferLength} ms pre-buffer; ${this.options.reencode && this.feed ? "the camera's video is re-encoded to H.264" : "the camera's own H.264 is passed through"}.`,
    );
  }

  async *handleRecordingStreamRequest(streamId: number, signal?: AbortSignal): AsyncGenerator<RecordingPacket> {
    const { hap } = this.options;
    const configuration = this.configuration;
    // Each request checks again; what it finds wrong now is what the UI shows.
    this.problem = undefined;
    // HDSProtocolError tells the hub why (HAP-NodeJS closes the stream with that reason, no stack trace).
    if (!configuration) {
      this.log.warn('HomeKit Secure Video: a recording was requested before the hub chose a recording configuration.');
      throw new hap.HDSProtocolError(hap.HDSProtocolSpecificErrorReason.INVALID_CONFIGURATION);
    }
    const video = this.source.tracks.find((t) => t.kind === 'video');
    if (video && video.codec !== 'H264') {
      this.problem = `the camera sends ${video.codec}; recordings need H.264, and this camera's video has no H.264 encoder`;
      this.log.error(`HomeKit Secure Video: ${this.problem}.`);
      throw new hap.HDSProtocolError(hap.HDSProtocolSpecificErrorReason.UNSUPPORTED);
    }
    if (!this.prebuffer.active) {
      // HAP-NodeJS only asks while recording is active; if the order ever differs, record from now.
      this.log.warn('HomeKit Secure Video: a recording was requested while recording was off; it starts without a pre-buffer.');
      this.prebuffer.start();
    }
    const stop = new AbortController();
    this.streams.get(streamId)?.abort();
    this.streams.set(streamId, stop);
    const onOuterAbort = (): void => stop.abort();
    signal?.addEventListener('abort', onOuterAbort, { once: true });
    if (signal?.aborted) stop.abort();
    this.recordings++;
    this.lastRecordingAt = Date.now();
    this.log.debug(`Recording stream ${streamId} started.`);
    try {
      yield* recordingStream({
        prebuffer: this.prebuffer,
        prebufferMs: configuration.prebufferLength,
        ...(this.prebuffer.eventTimestamp !== undefined ? { eventTimestamp: this.prebuffer.eventTimestamp } : {}),
        fragmentMs: configuration.mediaContainerConfiguration.fragmentLength,
        audio: this.audioFor(configuration, streamId),
        log: this.log,
        signal: stop.signal,
      });
    } finally {
      signal?.removeEventListener('abort', onOuterAbort);
      if (this.streams.get(streamId) === stop) this.streams.delete(streamId);
      this.log.debug(`Recording stream ${streamId} ended.`);
    }
  }

  acknowledgeStream(streamId: number): void {
    this.end(streamId);
  }

  closeRecordingStream(streamId: number, reason: HDSProtocolSpecificErrorReason | undefined): void {
    if (reason !== undefined && reason !== this.options.hap.HDSProtocolSpecificErrorReason.NORMAL) {
      this.log.warn(`Recording stream ${streamId} was closed by the hub with reason ${reason}.`);
    }
    this.end(streamId);
  }

  /** Ends every recording stream and releases the pre-buffer (plugin shutdown). */
  close(): void {
    for (const id of [...this.streams.keys()]) this.end(id);
    this.prebuffer.stop();
  }

  private end(streamId: number): void {
    this.streams.get(streamId)?.abort();
    this.streams.delete(streamId);
  }

  /**
   * The camera's AAC to pass through, its G.711 to encode, or undefined for video only (said once
   * per reason).
   */
  private audioFor(configuration: CameraRecordingConfiguration, streamId: number): RecordingAudio | undefined {
    const { hap, ffmpeg } = this.options;
    const audio = this.source.tracks.find((t) => t.kind === 'audio');
    if (!audio) return undefined;
    if (this.options.recordingAudioActive && !this.options.recordingAudioActive()) return undefined;
    const name = AUDIO_NAMES[audio.codec] ?? audio.codec;
    if (configuration.audioCodec.type !== hap.AudioRecordingCodecType.AAC_LC) {
      // Only AAC-LC is offered, so a hub should never ask. Encoding ELD would need libfdk_aac and a
      // container from ffmpeg that carries ELD (ADTS cannot); that path is not built.
      const encoder = ffmpeg?.has.libfdkAac
        ? `this ffmpeg has libfdk_aac, but encoding AAC-ELD for recordings is not built`
        : ffmpeg ? 'it needs libfdk_aac, which this ffmpeg lacks' : 'it needs an ffmpeg with libfdk_aac';
      this.sayOnce('eld', `HomeKit Secure Video: the hub asked for AAC-ELD audio (${encoder}); recordings are video-only.`);
      return undefined;
    }
    if (audio.codec === 'PCMU' || audio.codec === 'PCMA') {
      const outputSampleRate = recordingSampleRateHz(hap, configuration.audioCodec.samplerate);
      if (!ffmpeg || !ffmpeg.has.aac || outputSampleRate === undefined) {
        const why = !ffmpeg
          ? 'ffmpeg was not found (see the message above), and it encodes the sound to AAC'
          : !ffmpeg.has.aac
            ? `this ffmpeg (${ffmpeg.path}) has no aac encoder`
            : `the hub asked for an unknown sample rate (${String(configuration.audioCodec.samplerate)})`;
        this.sayOnce(`encode:${audio.codec}`, `HomeKit Secure Video: the camera's audio is ${name}; recordings are video-only because ${why}.`);
        return undefined;
      }
      const plan = {
        codec: audio.codec,
        inputSampleRate: audio.clockRate,
        inputChannels: audio.channels ?? 1,
        outputSampleRate,
        // Mono or stereo: HomeKit offers and asks no more, and a camera microphone has no more.
        outputChannels: Math.min(2, Math.max(1, configuration.audioCodec.audioChannels ?? 1)),
        bitrateKbps: configuration.audioCodec.bitrate,
      };
      this.sayOnce(
        `encode-on:${audio.codec}:${outputSampleRate}`,
        `HomeKit Secure Video: the camera's ${name} audio is encoded to AAC-LC ${outputSampleRate / 1000} kHz for recordings (one ffmpeg while a recording runs).`,
        'info',
        false,
      );
      return {
        mode: 'encode',
        start: () => new RecordingAudioEncoder({
          plan,
          ffmpeg,
          log: this.log,
          label: `recording ${streamId} audio`,
          // Each way of failing is a warning once; a broken ffmpeg must not warn at every motion event.
          report: (kind, message) => this.sayOnce(`encoder:${kind}`, message, 'warn'),
          ...(this.options.ffmpegDebug ? { debug: true } : {}),
          ...(this.options.encoderStartupGraceMs !== undefined ? { startupGraceMs: this.options.encoderStartupGraceMs } : {}),
        }),
      };
    }
    if (audio.codec !== 'AAC') {
      this.sayOnce(
        `codec:${audio.codec}`,
        `HomeKit Secure Video: the camera's audio is ${name}; recordings are video-only (HomeKit records AAC, and ${name} to AAC is not built).`,
      );
      return undefined;
    }
    const config = audio.fmtp['config'];
    if (!config || !/^([0-9a-f]{2})+$/i.test(config)) {
      this.sayOnce('aac-config', "HomeKit Secure Video: the camera's AAC track has no AudioSpecificConfig in its SDP; recordings are video-only.");
      return undefined;
    }
    return { mode: 'copy', track: { audioSpecificConfig: Buffer.from(config, 'hex'), sampleRate: audio.clockRate, channels: audio.channels ?? 1 } };
  }

  /**
   * Logs `message` the first time `key` comes up (at `level`); repeats go to debug. A shortfall
   * (`problem`, the default) is also kept, without the log's prefix, for the Homebridge UI's card.
   */
  private sayOnce(key: string, message: string, level: 'info' | 'warn' = 'info', problem = true): void {
    if (problem) this.problem = message.replace(/^HomeKit Secure Video: /, '').replace(/\.$/, '');
    if (this.said.has(key)) {
      this.log.debug(message);
      return;
    }
    this.said.add(key);
    this.log[level](message);
  }
}
