/**
 * Everything HomeKit about one camera, on its (registered or restored) accessory:
 * - the CameraController, configured once the camera's real picture size is known (read from its
 *   SPS on a first short pull, remembered in the accessory's context for the next start);
 * - the streaming delegate (one ffmpeg per Home app viewer, all reading the loopback re-stream);
 * - Home app snapshots, answered by the camera's snapshot service (src/snapshots, built and
 *   registered with the web server by src/runtime, handed in here);
 * - the MotionSensor, driven by ONVIF motion events (`motion`) and/or the camera's calls of its
 *   motion web address (`motionHttpTrigger`, issue 16: `motionFromWeb()`, which the runtime's web
 *   trigger calls), on while either says motion; and ONVIF device information;
 * - HomeKit Secure Video when `recording` is on (issue 16): HAP's recording options and the
 *   recording delegate (src/homekit/recording) fed by the camera's one shared Source, with the
 *   MotionSensor above as the trigger that starts a recording (HAP adds CameraOperatingMode,
 *   CameraRecordingManagement and DataStreamTransportManagement); not offered for a camera that
 *   does not send H.264;
 * - for a doorbell (issue 17), a DoorbellController instead of the CameraController (HAP adds the
 *   Doorbell service, whose ProgrammableSwitchEvent SINGLE_PRESS rings the Home app with the
 *   camera's snapshot), tamper as StatusTampered on the MotionSensor, and line crossing / field
 *   detection as a second MotionSensor.
 *
 * `start()` never waits for the camera; everything that needs it happens in the background.
 */
import type { API, CameraController, CameraControllerOptions, PlatformAccessory, Resolution, Service } from 'homebridge';
import type { CameraConfig, FfmpegConfig } from '../config/types.js';
import type { FfmpegCapabilities } from '../ffmpeg/capabilities.js';
import { splitArgs } from '../ffmpeg/homekit-args.js';
import { QueuedSink } from '../media/queued-sink.js';
import type { TalkChannel } from '../media/talk-channel.js';
import type { TimerSeam } from '../media/timers.js';
import type { CodecName, SourceState, SourceStats, Subscribable, TrackDescription } from '../media/types.js';
import type { ConnectedOnvifDevice } from '../onvif/device.js';
import { MotionState } from '../onvif/motion.js';
import type { Logger } from '../util/logger.js';
import { applyOnvifInformation } from './accessory-info.js';
import { OnvifLink } from './onvif-link.js';
import { prebufferSecondsFrom } from './recording/prebuffer.js';
import { HomeKitRecordingDelegate } from './recording/recording-delegate.js';
import { recordingOptions } from './recording/recording-options.js';
import { guardDataStreamConnections } from './hap-guards.js';
import type { RecordingStatus } from './recording/recording-status.js';
import { HomeKitStreamingDelegate } from './streaming-delegate.js';
import { chooseAudio, resolutionsFor, streamingOptions } from './streaming-options.js';

/** What the HomeKit camera needs from the camera's Source (`Source` satisfies it). */
export interface HomeKitCameraSource extends Subscribable {
  readonly state: Pick<SourceState, 'state'>;
  readonly tracks: ReadonlyArray<TrackDescription>;
  stats(): SourceStats;
}

/** Where Home app snapshots come from (src/snapshots' `SnapshotService` satisfies it). */
export interface HomeKitSnapshots {
  getSnapshot(size: { width?: number; height?: number }): Promise<Buffer | undefined>;
}

export interface HomeKitCameraOptions {
  api: API;
  accessory: PlatformAccessory;
  camera: CameraConfig;
  source: HomeKitCameraSource;
  services: { restreamUrl(id: string): string };
  /** The camera's snapshot service, shared with the web page's tiles. */
  snapshots: HomeKitSnapshots;
  ffmpeg: FfmpegCapabilities | undefined;
  ffmpegConfig: FfmpegConfig;
  log: Logger;
  onvifDevice?: () => Promise<ConnectedOnvifDevice>;
  /** The camera's speaker (two-way audio): Home app live views may talk through it, with Opus. */
  talk?: TalkChannel;
  /** How long the first start waits for the camera's picture size (default 8000 ms). */
  probeTimeoutMs?: number;
  /** An ONVIF doorbell press (doorbell cameras): the runtime debounces it and calls `ringDoorbell()`. */
  onDoorbellPress?: () => void;
  /** Clock and timers of the web motion's reset time (tests); default the real ones. */
  clock?: { now: () => number; timers: TimerSeam };
}

/** Subtype of the second MotionSensor (line crossing / field detection), so a restart finds it again. */
export const CROSSING_SENSOR_SUBTYPE = 'crossing';

/**
 * Kept in the accessory's context so the next start knows the picture at once: its size for the
 * stream resolutions, and for HomeKit Secure Video the video codec (recording is offered for H.264
 * only) and the AAC track (the recording options name its rate, and must not change between starts
 * without reason: HAP forgets the hub's recording choice when they do).
 */
interface VideoMemory {
  width: number;
  height: number;
  codec?: CodecName;
  aac?: { sampleRate: number; channels: number };
}

interface HomeKitContext {
  homekitVideo?: VideoMemory;
}

export const DEFAULT_STREAM_TIMEOUT_SECONDS = 15;

export class HomeKitCamera {
  readonly delegate: HomeKitStreamingDelegate | undefined;
  private recordingDelegate: HomeKitRecordingDelegate | undefined;
  /** Why recording, though configured, was not offered (the camera's codec). */
  private recordingRefusal: string | undefined;
  private controller: CameraController | undefined;
  private motionService: Service | undefined;
  private readonly onvif: OnvifLink | undefined;
  private readonly log: Logger;
  private readonly probe = new AbortController();
  private stopped = false;
  /** What ONVIF says (`motion`); the web trigger's and the picture's states are below; the sensor shows any. */
  private onvifMotion = false;
  /** What the sensor shows now: ONVIF or web motion. */
  private motionShown = false;
  private readonly webMotion: MotionState | undefined;
  /** Motion the plugin sees in the picture (`videoMotion`, src/motion/), pulses like the web trigger's. */
  private readonly videoMotion: MotionState | undefined;
  private tampered = false;
  private readonly crossingService: Service | undefined;

  constructor(private readonly options: HomeKitCameraOptions) {
    const { camera, ffmpeg, log } = options;
    this.log = log;
    if (ffmpeg) {
      const audio = chooseAudio(ffmpeg, camera.audio, options.talk !== undefined);
      this.delegate = new HomeKitStreamingDelegate({
        hap: options.api.hap,
        maxStreams: camera.maxHomeKitStreams,
        snapshot: (size) => options.snapshots.getSnapshot(size),
        ffmpeg,
        inputUrl: () => options.services.restreamUrl(camera.id),
        cameraVideo: () => {
          const stats = options.source.stats();
          return {
            ...(stats.codec ? { codec: stats.codec } : {}),
            ...(stats.width ? { width: stats.width } : {}),
            ...(stats.height ? { height: stats.height } : {}),
            ...(stats.video?.bitrateBps ? { bitrateBps: stats.video.bitrateBps } : {}),
            ...(stats.fps ? { fps: stats.fps } : {}),
          };
        },
        cameraHasAudio: () => options.source.tracks.length === 0 || options.source.tracks.some((t) => t.kind === 'audio'),
        videoEncoder: this.videoEncoder(ffmpeg),
        encoderArgs: splitArgs(options.ffmpegConfig.encoderOptions),
        audioCodecs: audio.codecs,
        debug: options.ffmpegConfig.debug,
        log,
        silenceTimeoutMs: (options.ffmpegConfig.streamTimeoutSeconds ?? DEFAULT_STREAM_TIMEOUT_SECONDS) * 1000,
        ...(options.talk && audio.codecs.includes('opus') ? { talk: options.talk } : {}),
      });
      if (options.talk && !audio.codecs.includes('opus')) {
        log.warn(`The Home app cannot talk through this camera: its microphone needs Opus, and ${camera.audio ? 'this ffmpeg has no libopus' : 'the camera\'s audio is off (audio: false)'}. The watch page's Hold to talk still works.`);
      }
    }
    const connect = options.onvifDevice;
    this.onvif = connect
      ? new OnvifLink({
          connect,
          log,
          motion: camera.motion,
          motionResetSeconds: camera.motionResetSeconds,
          onDevice: (device) => {
            const changed = applyOnvifInformation(options.api.hap, options.accessory, camera, device.info);
            if (changed.length) log.info(`Accessory details from ONVIF: ${changed.join(', ')}.`);
          },
          onMotion: (detected) => this.setMotion(detected),
          ...(camera.doorbell?.onvif ? { doorbell: { topics: camera.doorbell.topics }, onDoorbell: () => options.onDoorbellPress?.() } : {}),
          tamper: camera.tamperSensor,
          onTamper: (tampered) => this.setTampered(tampered),
          crossing: camera.crossingSensor,
          onCrossing: (detected) => this.crossingService?.updateCharacteristic(options.api.hap.Characteristic.MotionDetected, detected),
        })
      : undefined;
    this.crossingService = this.crossingSensor();
    if (camera.motionHttpTrigger) {
      // Each call is a pulse: motion until motionResetSeconds after the last one (the sender may
      // never say it ended), or until a call says it ended (`end()`).
      this.webMotion = this.pulsedMotion('web trigger');
    }
    if (camera.videoMotion) this.videoMotion = this.pulsedMotion('picture');
  }

  /** A motion source whose events are pulses: on until the reset time after the last one. */
  private pulsedMotion(name: string): MotionState {
    const { camera, log, clock } = this.options;
    const state = new MotionState({
      resetTimeoutMs: camera.motionResetSeconds * 1000,
      log,
      name,
      ...(clock ? { now: clock.now, timers: clock.timers } : {}),
    });
    state.on('change', () => this.showMotion());
    return state;
  }

  /** A picture in which the detector (src/motion/) saw motion: on until the reset time after the last. */
  motionFromVideo(): void {
    this.videoMotion?.update(true, 'picture', true);
  }

  /**
   * A call of the camera's motion web address: motion now (`on`, held until the reset time has
   * passed since the last call), or motion over at once. Answers what the sensor shows afterwards
   * (still on after an "off" while ONVIF reports motion). Nothing happens for a camera without
   * `motionHttpTrigger` (the runtime offers no route then).
   */
  motionFromWeb(on: boolean): { motion: boolean } {
    if (on) this.webMotion?.update(true, 'web', true);
    else this.webMotion?.end();
    return { motion: this.motionNow() };
  }

  /**
   * Rings the Home app (ProgrammableSwitchEvent SINGLE_PRESS on the Doorbell service). False when
   * the camera is no doorbell or its controller is not configured yet (no ffmpeg, still starting).
   */
  ringDoorbell(): boolean {
    const controller = this.controller;
    if (!controller || !(controller instanceof this.options.api.hap.DoorbellController)) return false;
    this.recordingDelegate?.markEvent();
    controller.ringDoorbell();
    return true;
  }

  /** The second MotionSensor when `crossingSensor` is on; a cached one is removed when it is off. */
  private crossingSensor(): Service | undefined {
    const { api, accessory, camera } = this.options;
    const existing = accessory.getServiceById(api.hap.Service.MotionSensor, CROSSING_SENSOR_SUBTYPE);
    if (!camera.crossingSensor) {
      if (existing) accessory.removeService(existing);
      return undefined;
    }
    const service = existing ?? accessory.addService(api.hap.Service.MotionSensor, `${camera.name} Crossing`, CROSSING_SENSOR_SUBTYPE);
    service.updateCharacteristic(api.hap.Characteristic.MotionDetected, false);
    return service;
  }

  /** Starts ONVIF, and configures the controller in the background. */
  start(): void {
    this.onvif?.start();
    this.configured = this.configure().catch((error: unknown) => {
      this.log.error(`The Home app camera could not be set up: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  /**
   * Settles once the camera controller is on the accessory (or setting it up failed, which is
   * logged). An external accessory must not be published before this: HomeKit reads its services once.
   */
  configured: Promise<void> = Promise.resolve();

  /** Stops every stream (and its ffmpeg) and motion events. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.probe.abort();
    // Ends the hub's recording streams and releases the pre-buffer's subscription of the Source.
    this.recordingDelegate?.close();
    this.webMotion?.dispose();
    this.videoMotion?.dispose();
    await Promise.allSettled([this.delegate?.close(), this.onvif?.stop()]);
  }

  /** The controller once configured (tests). */
  get cameraController(): CameraController | undefined {
    return this.controller;
  }

  /**
   * HomeKit Secure Video as the Homebridge UI shows it; undefined when the camera's `recording`
   * setting is off. Before the accessory is set up (the camera's codec not known yet) it reads 'off'.
   */
  recordingStatus(): RecordingStatus | undefined {
    const { camera } = this.options;
    if (!camera.recording) return undefined;
    if (this.recordingDelegate) return this.recordingDelegate.status();
    const prebufferSeconds = prebufferSecondsFrom(camera.recording.prebufferSeconds);
    const idle = { prebufferSeconds, bufferedSeconds: 0, bufferedBytes: 0, recordings: 0 };
    if (this.recordingRefusal) return { state: 'unavailable', ...idle, problem: this.recordingRefusal };
    if (!this.options.ffmpeg) return { state: 'unavailable', ...idle, problem: 'ffmpeg was not found, so this camera has no Home app video and no recordings' };
    return { state: 'off', ...idle };
  }

  /** The HomeKit Secure Video delegate, when recording is offered (tests). */
  get recording(): HomeKitRecordingDelegate | undefined {
    return this.recordingDelegate;
  }

  private videoEncoder(ffmpeg: FfmpegCapabilities): string {
    const wanted = this.options.ffmpegConfig.videoEncoder?.trim();
    if (!wanted || wanted === 'libx264') return 'libx264';
    if (!ffmpeg.encoders.has(wanted)) {
      this.log.warn(`ffmpeg.videoEncoder "${wanted}" is not in this ffmpeg (${ffmpeg.path}); Home app streams that need encoding use libx264.`);
      return 'libx264';
    }
    return wanted;
  }

  private async configure(): Promise<void> {
    const { api, accessory, camera, ffmpeg } = this.options;
    if (!ffmpeg || !this.delegate) {
      this.log.warn('No Home app video for this camera: ffmpeg was not found (see the message above). Its accessory stays, and the watch page still works.');
      return;
    }
    const context = accessory.context as HomeKitContext;
    let size: VideoMemory | undefined = context.homekitVideo;
    if (size) {
      // Known from the last start: configure at once, and check the size again in the background.
      void this.measure().then((now) => {
        if (!now) return;
        if (now.width !== size?.width || now.height !== size?.height) {
          this.log.info(`The camera's picture is now ${now.width}x${now.height} (was ${size?.width}x${size?.height}); Home app resolutions follow at the next restart.`);
        } else if (now.codec !== size.codec || JSON.stringify(now.aac) !== JSON.stringify(size.aac)) {
          this.log.debug('The camera\'s codecs changed since the last start; HomeKit Secure Video options follow at the next restart.');
        } else {
          return;
        }
        context.homekitVideo = now;
      });
    } else {
      size = await this.measure();
      if (this.stopped) return;
      if (size) context.homekitVideo = size;
    }
    const resolutions: Resolution[] = resolutionsFor(size?.width, size?.height);
    const audio = chooseAudio(ffmpeg, camera.audio, this.options.talk !== undefined);
    const recording = this.recordingFor(resolutions, size);
    const controllerOptions: CameraControllerOptions = {
      cameraStreamCount: camera.maxHomeKitStreams,
      delegate: this.delegate,
      streamingOptions: streamingOptions(api.hap, resolutions, audio.codecs, this.options.talk !== undefined),
      // One MotionSensor, made and restored by HAP: ONVIF motion and the motion web address set it,
      // and with recording it is also the trigger that starts a recording (HAP links it to
      // CameraRecordingManagement).
      sensors: { motion: motionSensorOn(camera) },
      ...(recording ? { recording } : {}),
    };
    // A doorbell is a camera controller with the Doorbell service; the Home app rings with its snapshot.
    const controller = camera.doorbell ? new api.hap.DoorbellController(controllerOptions) : new api.hap.CameraController(controllerOptions);
    accessory.configureController(controller);
    this.delegate.attach(controller);
    this.controller = controller;
    if (controller.motionService) {
      this.motionService = controller.motionService;
      // Linked from every stream service, so Home treats motion as this camera's (notifications with its picture).
      for (const management of controller.streamManagements) management.getService().addLinkedService(controller.motionService);
      controller.motionService.updateCharacteristic(api.hap.Characteristic.MotionDetected, this.motionNow());
      if (camera.tamperSensor) this.setTampered(this.tampered);
    }
    const sizeText = size ? `camera picture ${size.width}x${size.height}` : 'camera picture size unknown (it did not answer in time), offering every standard size';
    this.log.info(
      `Home app camera ready: ${sizeText}; resolutions ${resolutions.map(([w, h, f]) => `${w}x${h}@${f}`).join(', ')}; ` +
        `up to ${camera.maxHomeKitStreams} stream(s); ${audio.message}${motionSensorOn(camera) ? `; motion sensor on (${motionSources(camera)})` : ''}${camera.doorbell ? '; video doorbell' : ''}` +
        `${recording ? `; ${this.recordingSummary(recording.options.prebufferLength)}` : ''}.`,
    );
  }

  /**
   * HAP's `recording` options and the delegate when `recording` is on and the camera's video can be
   * recorded: its H.264 passes through (re-encoded, when ffmpeg has libx264, should its keyframes
   * turn out too far apart for the hub's fragments), its H.265 is re-encoded to H.264 (likewise),
   * and a camera known to send anything else is not offered recording at all (said once, here),
   * rather than accepting a hub that would then get nothing.
   */
  private recordingFor(resolutions: Resolution[], memory: VideoMemory | undefined): CameraControllerOptions['recording'] {
    const { api, camera, source } = this.options;
    if (!camera.recording) return undefined;
    const codec = memory?.codec ?? source.tracks.find((t) => t.kind === 'video')?.codec;
    // An H.265 camera records through one H.264 encoder (h264-recording-feed.ts), when ffmpeg has libx264.
    const hasLibx264 = this.options.ffmpeg?.has.libx264 === true;
    const reencode = codec === 'H265' && hasLibx264;
    // An H.264 camera whose keyframes are further apart than the hub's fragments, likewise.
    const reencodeLongGop = codec !== 'H265' && hasLibx264;
    if (codec !== undefined && codec !== 'H264' && !reencode) {
      const why = codec === 'H265'
        ? 'this camera sends H.265 and this ffmpeg has no libx264 to re-encode it; use an ffmpeg with libx264 (ffmpeg.videoProcessor) or set the camera\'s stream to H.264'
        : `recording needs H.264 and this camera sends ${codec}; set the camera's stream to H.264 to record`;
      this.recordingRefusal = `not offered: ${why}`;
      this.log.warn(`HomeKit Secure Video is not offered: ${why}.`);
      return undefined;
    }
    const prebufferSeconds = prebufferSecondsFrom(camera.recording.prebufferSeconds);
    const aac = memory?.aac ?? aacOf(source.tracks);
    // Recording keeps a data-stream port open to the network: a stranger's bad frame must not end Homebridge.
    guardDataStreamConnections(api.hap, this.log);
    this.recordingDelegate = new HomeKitRecordingDelegate({
      hap: api.hap,
      source,
      ...(reencode ? { reencode: true } : {}),
      ...(reencodeLongGop ? { reencodeLongGop: true, cameraKeyframeIntervalMs: () => source.stats().keyframeIntervalMs } : {}),
      log: this.log,
      prebufferSeconds,
      // `audio: false` keeps the camera's sound out of recordings as out of live streams.
      recordingAudioActive: () => camera.audio && this.recordingAudioActive(),
      // A G.711 camera's sound is encoded to AAC for recordings by this ffmpeg, and an H.265 camera's video to H.264.
      ffmpeg: this.options.ffmpeg,
      ...(this.options.ffmpegConfig.debug ? { ffmpegDebug: true } : {}),
    });
    return {
      options: recordingOptions(api.hap, {
        resolutions,
        prebufferSeconds,
        ...(aac ? { aacSampleRate: aac.sampleRate, aacChannels: aac.channels } : {}),
      }),
      delegate: this.recordingDelegate,
    };
  }

  /** The log's words for what was offered and what starts a recording. */
  private recordingSummary(prebufferMs: number): string {
    const { camera } = this.options;
    const triggers = [...(motionSensorOn(camera) ? ['motion'] : []), ...(camera.doorbell ? ['doorbell presses'] : [])];
    return `HomeKit Secure Video offered (${prebufferMs / 1000} s pre-buffer; ` +
      `${triggers.length ? `recordings start on ${triggers.join(' and ')}` : 'nothing starts a recording yet'})`;
  }

  /** HomeKit's RecordingAudioActive (the Home app's "record audio" switch); off until the hub says. */
  private recordingAudioActive(): boolean {
    const service = this.controller?.recordingManagement?.recordingManagementService;
    return Boolean(service?.getCharacteristic(this.options.api.hap.Characteristic.RecordingAudioActive).value);
  }

  /** Pulls briefly (video only) until the Source knows the picture size from the SPS. */
  private async measure(): Promise<VideoMemory | undefined> {
    const { source } = this.options;
    const known = (): VideoMemory | undefined => {
      const stats = source.stats();
      if (!stats.width || !stats.height) return undefined;
      const codec = source.tracks.find((t) => t.kind === 'video')?.codec;
      const aac = aacOf(source.tracks);
      return { width: stats.width, height: stats.height, ...(codec ? { codec } : {}), ...(aac ? { aac } : {}) };
    };
    const already = known();
    if (already) return already;
    const sink = new QueuedSink({ maxFrames: 1 });
    let subscription: { unsubscribe(): void } | undefined;
    try {
      subscription = source.subscribe(sink, { kinds: ['video'] });
    } catch {
      return undefined; // the Source is closed (shutting down)
    }
    const deadline = Date.now() + (this.options.probeTimeoutMs ?? 8000);
    try {
      while (!this.probe.signal.aborted && Date.now() < deadline) {
        const size = known();
        if (size) return size;
        // Frames are not needed, only the SPS the Source parses: drain so the sink never refuses.
        while (sink.tryRead()) { /* discard */ }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return known();
    } finally {
      subscription.unsubscribe();
      sink.close();
    }
  }

  /** StatusTampered (an optional characteristic of the MotionSensor, added on first use). */
  private setTampered(tampered: boolean): void {
    this.tampered = tampered;
    const { Characteristic } = this.options.api.hap;
    this.motionService?.updateCharacteristic(Characteristic.StatusTampered, tampered ? Characteristic.StatusTampered.TAMPERED : Characteristic.StatusTampered.NOT_TAMPERED);
  }

  private setMotion(detected: boolean): void {
    this.onvifMotion = detected;
    this.showMotion();
  }

  private motionNow(): boolean {
    return this.onvifMotion || (this.onvif?.motionDetected ?? false) || (this.webMotion?.detected ?? false) || (this.videoMotion?.detected ?? false);
  }

  private showMotion(): void {
    const now = this.motionNow();
    // The start of motion (from any source) is the event a recording's pre-buffer counts back from.
    if (now && !this.motionShown) this.recordingDelegate?.markEvent();
    this.motionShown = now;
    this.motionService?.updateCharacteristic(this.options.api.hap.Characteristic.MotionDetected, now);
  }
}

/** The accessory has a motion sensor when ONVIF motion, the motion web address or the picture drives it. */
function motionSensorOn(camera: CameraConfig): boolean {
  return camera.motion || camera.motionHttpTrigger || camera.videoMotion;
}

function motionSources(camera: CameraConfig): string {
  const sources = [camera.motion ? 'ONVIF events' : undefined, camera.motionHttpTrigger ? 'web trigger' : undefined, camera.videoMotion ? 'the picture' : undefined].filter(Boolean);
  return sources.length > 1 ? `${sources.slice(0, -1).join(', ')} and ${sources.at(-1)}` : sources.join('');
}

/** The camera's AAC track as the recording options name it, if it sends AAC. */
function aacOf(tracks: ReadonlyArray<TrackDescription>): VideoMemory['aac'] {
  const audio = tracks.find((t) => t.kind === 'audio');
  return audio?.codec === 'AAC' ? { sampleRate: audio.clockRate, channels: audio.channels ?? 1 } : undefined;
}
