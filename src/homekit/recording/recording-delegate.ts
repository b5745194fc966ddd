/**
 * HAP-NodeJS's `CameraRecordingDelegate` for one camera (HomeKit Secure Video). Recording on
 * (`updateRecordingActive(true)`) starts the pre-buffer on the camera's one shared Source; off
 * releases it. A hub's recording stream is `recordingStream`: the init segment, the pre-buffer as
 * fragments, then live fragments of the hub's fragment length, each on a keyframe, until the hub
 * closes the stream. The camera's H.264 passes through; AAC audio passes as is; any other audio
 * (G.711, Opus) is left out for now, which the log says once, by codec name. A camera that does not
 * send H.264 cannot record yet, and each refused stream says so.
 */
import type {
  CameraRecordingConfiguration,
  CameraRecordingDelegate,
  HAP,
  HDSProtocolSpecificErrorReason,
  RecordingPacket,
} from 'homebridge';
import type { Logger } from '../../util/logger.js';
import type { AacTrackConfig } from '../../media/fmp4/sample-entries.js';
import type { Subscribable, TrackDescription } from '../../media/types.js';
import { levelName, profileName } from '../stream-session.js';
import { Prebuffer } from './prebuffer.js';
import { recordingStream } from './recording-stream.js';

export interface RecordingDelegateOptions {
  hap: HAP;
  /** The camera's shared Source (or anything that subscribes like it and knows its tracks). */
  source: Subscribable & { readonly tracks: ReadonlyArray<TrackDescription> };
  /** The camera's logger (prefixed with its name). */
  log: Logger;
  /** The `prebufferSeconds` setting; clamped to 4-8, default 4. */
  prebufferSeconds?: number;
  /** HomeKit's RecordingAudioActive (Camera Operating Mode); audio is left out while it is false. */
  recordingAudioActive?: () => boolean;
  /** Pre-buffer byte cap (tests); default `prebufferByteCap`. */
  prebufferMaxBytes?: number;
}

const AUDIO_NAMES: Partial<Record<string, string>> = { PCMU: 'G.711 µ-law (PCMU)', PCMA: 'G.711 A-law (PCMA)', OPUS: 'Opus' };

export class HomeKitRecordingDelegate implements CameraRecordingDelegate {
  readonly prebuffer: Prebuffer;
  private configuration: CameraRecordingConfiguration | undefined;
  private readonly streams = new Map<number, AbortController>();
  private readonly said = new Set<string>();
  private readonly log: Logger;

  constructor(private readonly options: RecordingDelegateOptions) {
    this.log = options.log;
    this.prebuffer = new Prebuffer({
      source: options.source,
      log: options.log,
      ...(options.prebufferSeconds !== undefined ? { seconds: options.prebufferSeconds } : {}),
      ...(options.prebufferMaxBytes !== undefined ? { maxBytes: options.prebufferMaxBytes } : {}),
    });
  }

  /** Recording streams in progress. */
  get streamCount(): number {
    return this.streams.size;
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
        `${configuration.prebufferLength} ms pre-buffer; the camera's own H.264 is passed through.`,
    );
  }

  async *handleRecordingStreamRequest(streamId: number, signal?: AbortSignal): AsyncGenerator<RecordingPacket> {
    const { hap } = this.options;
    const configuration = this.configuration;
    // HDSProtocolError tells the hub why (HAP-NodeJS closes the stream with that reason, no stack trace).
    if (!configuration) {
      this.log.warn('HomeKit Secure Video: a recording was requested before the hub chose a recording configuration.');
      throw new hap.HDSProtocolError(hap.HDSProtocolSpecificErrorReason.INVALID_CONFIGURATION);
    }
    const video = this.options.source.tracks.find((t) => t.kind === 'video');
    if (video && video.codec !== 'H264') {
      this.log.error(`HomeKit Secure Video: the camera sends ${video.codec}; recordings need H.264, and re-encoding for recordings is not built yet.`);
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
    this.log.debug(`Recording stream ${streamId} started.`);
    try {
      yield* recordingStream({
        prebuffer: this.prebuffer,
        prebufferMs: configuration.prebufferLength,
        ...(this.prebuffer.eventTimestamp !== undefined ? { eventTimestamp: this.prebuffer.eventTimestamp } : {}),
        fragmentMs: configuration.mediaContainerConfiguration.fragmentLength,
        audio: this.audioFor(configuration),
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

  /** The AAC track to pass through, or undefined for video only (said once per reason). */
  private audioFor(configuration: CameraRecordingConfiguration): AacTrackConfig | undefined {
    const audio = this.options.source.tracks.find((t) => t.kind === 'audio');
    if (!audio) return undefined;
    if (this.options.recordingAudioActive && !this.options.recordingAudioActive()) return undefined;
    if (configuration.audioCodec.type !== this.options.hap.AudioRecordingCodecType.AAC_LC) {
      this.sayOnce('eld', 'HomeKit Secure Video: the hub asked for AAC-ELD audio, which needs an encoder; recordings are video-only.');
      return undefined;
    }
    if (audio.codec !== 'AAC') {
      const name = AUDIO_NAMES[audio.codec] ?? audio.codec;
      this.sayOnce(
        `codec:${audio.codec}`,
        `HomeKit Secure Video: the camera's audio is ${name}; recordings are video-only for now (HomeKit records AAC, and ${name} to AAC is not built yet).`,
      );
      return undefined;
    }
    const config = audio.fmtp['config'];
    if (!config || !/^([0-9a-f]{2})+$/i.test(config)) {
      this.sayOnce('aac-config', "HomeKit Secure Video: the camera's AAC track has no AudioSpecificConfig in its SDP; recordings are video-only.");
      return undefined;
    }
    return { audioSpecificConfig: Buffer.from(config, 'hex'), sampleRate: audio.clockRate, channels: audio.channels ?? 1 };
  }

  private sayOnce(key: string, message: string): void {
    if (this.said.has(key)) return;
    this.said.add(key);
    this.log.info(message);
  }
}
