/**
 * HAP-NodeJS's CameraStreamingDelegate for one camera: snapshots come from the shared snapshot
 * service, every live stream is a `HomeKitStreamSession` (its own ffmpeg reading the camera's
 * loopback re-stream, so N viewers still mean one camera session). Sessions end on STOP, when
 * ffmpeg fails for good, when the Home app goes silent, and all at once on shutdown.
 */
import type {
  CameraController,
  CameraStreamingDelegate,
  HAP,
  PrepareStreamCallback,
  PrepareStreamRequest,
  SnapshotRequest,
  SnapshotRequestCallback,
  StartStreamRequest,
  StreamingRequest,
  StreamRequestCallback,
} from 'homebridge';
import type { Logger } from '../util/logger.js';
import { HomeKitStreamSession, levelName, profileName, type StartParameters, type StreamSessionDeps } from './stream-session.js';

export interface StreamingDelegateOptions extends StreamSessionDeps {
  hap: HAP;
  /** maxHomeKitStreams: more concurrent Home app viewers are refused. */
  maxStreams: number;
  snapshot(size: { width: number; height: number }): Promise<Buffer | undefined>;
  /** A prepared session that never STARTs is released after this long (default 30 s). */
  prepareTimeoutMs?: number;
}

export class HomeKitStreamingDelegate implements CameraStreamingDelegate {
  private controller: CameraController | undefined;
  private readonly sessions = new Map<string, HomeKitStreamSession>();
  private readonly prepareTimers = new Map<string, NodeJS.Timeout>();
  private readonly log: Logger;
  private closed = false;

  constructor(private readonly options: StreamingDelegateOptions) {
    this.log = options.log;
  }

  /** The controller, so a session that ends on its own can tell HAP (forceStopStreamingSession). */
  attach(controller: CameraController): void {
    this.controller = controller;
  }

  /** Live sessions (prepared or streaming). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  session(id: string): HomeKitStreamSession | undefined {
    return this.sessions.get(id);
  }

  handleSnapshotRequest(request: SnapshotRequest, callback: SnapshotRequestCallback): void {
    this.options.snapshot({ width: request.width, height: request.height }).then(
      (image) => (image ? callback(undefined, image) : callback(new Error('no snapshot available yet'))),
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
    );
  }

  prepareStream(request: PrepareStreamRequest, callback: PrepareStreamCallback): void {
    if (this.closed) {
      callback(new Error('the camera is shutting down'));
      return;
    }
    if (this.sessions.size >= this.options.maxStreams) {
      this.log.warn(`A Home app viewer was turned away: ${this.options.maxStreams} stream(s) already run (maxHomeKitStreams).`);
      callback(new Error('too many streams'));
      return;
    }
    HomeKitStreamSession.prepare(request, this.options).then(
      (session) => {
        if (this.closed) {
          void session.stop();
          callback(new Error('the camera is shutting down'));
          return;
        }
        this.sessions.set(session.id, session);
        session.once('ended', () => this.ended(session));
        // SetupEndpoints without a START (the viewer gave up) must not hold the ports forever.
        const timer = setTimeout(() => {
          this.prepareTimers.delete(session.id);
          if (!session.running) void this.drop(session.id);
        }, this.options.prepareTimeoutMs ?? 30_000);
        timer.unref();
        this.prepareTimers.set(session.id, timer);
        callback(undefined, { video: session.answer.video, audio: session.answer.audio });
      },
      (error: unknown) => {
        this.log.error(`Could not prepare a Home app stream: ${error instanceof Error ? error.message : String(error)}`);
        callback(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  handleStreamRequest(request: StreamingRequest, callback: StreamRequestCallback): void {
    const { hap } = this.options;
    const session = this.sessions.get(request.sessionID);
    switch (request.type) {
      case hap.StreamRequestTypes.START: {
        if (!session) {
          callback(new Error('unknown stream session'));
          return;
        }
        this.clearPrepareTimer(session.id);
        session.begin(this.startParameters(request)).then(
          () => callback(),
          (error: unknown) => {
            this.log.error(`Could not start a Home app stream: ${error instanceof Error ? error.message : String(error)}`);
            callback(error instanceof Error ? error : new Error(String(error)));
            void this.drop(session.id);
          },
        );
        return;
      }
      case hap.StreamRequestTypes.RECONFIGURE: {
        // Answer at once: HAP waits for it, and the restart (if any) happens in the background.
        callback();
        void session?.reconfigure({
          width: request.video.width,
          height: request.video.height,
          fps: request.video.fps,
          maxBitrateKbps: request.video.max_bit_rate,
        });
        return;
      }
      case hap.StreamRequestTypes.STOP: {
        callback();
        void this.drop(request.sessionID);
        return;
      }
    }
  }

  /** Shutdown: stop every session and wait for every ffmpeg to exit. */
  async close(): Promise<void> {
    this.closed = true;
    const ids = [...this.sessions.keys()];
    await Promise.all(ids.map((id) => this.drop(id)));
  }

  private startParameters(request: StartStreamRequest): StartParameters {
    const { hap } = this.options;
    const audioCodec = request.audio.codec === hap.AudioStreamingCodecType.OPUS ? 'opus'
      : request.audio.codec === hap.AudioStreamingCodecType.AAC_ELD ? 'aac-eld' : 'other';
    return {
      video: {
        width: request.video.width,
        height: request.video.height,
        fps: request.video.fps,
        maxBitrateKbps: request.video.max_bit_rate,
        profile: profileName(request.video.profile),
        level: levelName(request.video.level),
        payloadType: request.video.pt,
        mtu: request.video.mtu,
        rtcpIntervalMs: Math.max(200, Math.round(request.video.rtcp_interval * 1000)),
      },
      audio: {
        codec: audioCodec,
        sampleRateHz: request.audio.sample_rate * 1000,
        channels: Math.max(1, request.audio.channel),
        bitrateKbps: Math.max(16, request.audio.max_bit_rate),
        vbr: request.audio.bit_rate === 0,
        packetTimeMs: request.audio.packet_time,
        payloadType: request.audio.pt,
      },
    };
  }

  private clearPrepareTimer(id: string): void {
    const timer = this.prepareTimers.get(id);
    if (timer) clearTimeout(timer);
    this.prepareTimers.delete(id);
  }

  private async drop(id: string): Promise<void> {
    this.clearPrepareTimer(id);
    const session = this.sessions.get(id);
    if (!session) return;
    this.sessions.delete(id);
    await session.stop();
  }

  /** The session ended by itself: tell HAP so the Home app stops waiting and can retry. */
  private ended(session: HomeKitStreamSession): void {
    if (this.sessions.get(session.id) !== session) return;
    this.sessions.delete(session.id);
    this.clearPrepareTimer(session.id);
    try {
      this.controller?.forceStopStreamingSession(session.id);
    } catch (error) {
      this.log.debug(`forceStopStreamingSession failed: ${String(error)}`);
    }
  }
}
