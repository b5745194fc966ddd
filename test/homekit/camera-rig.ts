/**
 * A real camera pipeline without Homebridge, for the HomeKit tests and the bench: the GStreamer
 * fake camera → RTSP client → Source → loopback re-stream, plus the ffmpeg found on this machine.
 */
import { findFfmpeg } from '../../src/ffmpeg/find-ffmpeg.js';
import type { FfmpegCapabilities } from '../../src/ffmpeg/capabilities.js';
import type { StreamSessionDeps } from '../../src/homekit/stream-session.js';
import { Source } from '../../src/media/source.js';
import { createRestreamServer, type RestreamServer } from '../../src/restream/server.js';
import { rtspUpstream } from '../../src/rtsp/upstream.js';
import { silentLogger, type Logger } from '../../src/util/logger.js';
import { FakeCamera, type FakeCameraOptions } from '../helpers/fake-camera.js';

export interface CameraRig {
  camera: FakeCamera;
  source: Source;
  restream: RestreamServer;
  ffmpeg: FfmpegCapabilities;
  url: string;
  close(): Promise<void>;
}

export async function startCameraRig(options: FakeCameraOptions & { id?: string; idleTimeoutMs?: number } = {}): Promise<CameraRig> {
  const camera = await FakeCamera.start({ width: 640, height: 360, fps: 25, keyframeIntervalFrames: 50, audio: 'pcmu', ...options });
  const id = options.id ?? 'cam';
  const source = new Source({
    id,
    upstream: rtspUpstream({ url: camera.url, cameraName: id, logger: silentLogger }),
    idleTimeoutMs: options.idleTimeoutMs ?? 10_000,
  });
  const restream = await createRestreamServer({ getSource: (want) => (want === id ? source : undefined) });
  const ffmpeg = await findFfmpeg({ log: silentLogger, bundledPath: () => Promise.resolve(undefined) });
  if (!ffmpeg) throw new Error('the tests need ffmpeg on PATH');
  return {
    camera,
    source,
    restream,
    ffmpeg,
    url: restream.url(id),
    async close() {
      await restream.close();
      await source.close();
      await camera.close();
    },
  };
}

/** The camera's side of a HomeKit stream: which ffmpeg, what it reads, what the Source knows. */
export type SessionCamera = Pick<StreamSessionDeps, 'ffmpeg' | 'inputUrl' | 'cameraVideo' | 'cameraHasAudio'>;

/** This rig as a stream's camera: its ffmpeg, its re-stream URL, and its Source's picture and tracks. */
export function rigCamera(rig: CameraRig): SessionCamera {
  return {
    ffmpeg: rig.ffmpeg,
    inputUrl: () => rig.url,
    cameraVideo: () => {
      const stats = rig.source.stats();
      return { codec: stats.codec, width: stats.width, height: stats.height, bitrateBps: stats.video?.bitrateBps };
    },
    cameraHasAudio: () => rig.source.tracks.length === 0 || rig.source.tracks.some((t) => t.kind === 'audio'),
  };
}

/**
 * A HomeKit stream's settings as the tests use them: libx264 without extra options, Opus, no ffmpeg
 * debug output, 15 s without RTCP ends a stream. `overrides` replace any of it.
 */
export function streamSessionDeps(camera: SessionCamera, log: Logger, overrides: Partial<StreamSessionDeps> = {}): StreamSessionDeps {
  return {
    ...camera,
    videoEncoder: 'libx264',
    encoderArgs: [],
    audioCodecs: ['opus'],
    debug: false,
    log,
    silenceTimeoutMs: 15_000,
    ...overrides,
  };
}

/** A logger that keeps every line, for asserting on messages. */
export interface MemoryLogger extends Logger {
  lines: string[];
  text(): string;
}

export function memoryLogger(echo = process.env['HK_TEST_LOG'] === '1'): MemoryLogger {
  const lines: string[] = [];
  const add = (level: string) => (message: string) => {
    lines.push(`${level} ${message}`);
    if (echo) console.log(`${level} ${message}`);
  };
  return { lines, text: () => lines.join('\n'), info: add('info'), warn: add('warn'), error: add('error'), debug: add('debug') };
}

export { waitFor } from '../helpers/wait.js';
