/**
 * "Test" in the Homebridge UI: can the plugin reach this camera with these credentials, what does
 * it stream, and what does the picture look like? The answer is in words a user can act on.
 *
 * - ONVIF: device query (clock, services, device information, stream URI) through src/onvif. A wrong
 *   password stops at the first refused request: one log-in attempt, no retry.
 * - RTSP: DESCRIBE, SETUP and a short PLAY through the plugin's own client, in a throw-away Source
 *   whose upstream refuses to reconnect, so a wrong password is one attempt and nothing lingers.
 * - A configured camera is tested through its running Source: no second session to the camera.
 * The snapshot is the stream's own keyframe decoded by ffmpeg (or the ONVIF snapshot without ffmpeg).
 */
import type { CameraConfig } from '../config/types.js';
import { takeKeyframe, decodeToJpeg } from '../snapshots/keyframe-snapshot.js';
import { Source } from '../media/source.js';
import type { UpstreamFactory } from '../media/types.js';
import { connectOnvifDevice, isOnvifError, type ConnectedOnvifDevice } from '../onvif/index.js';
import { RtspError } from '../rtsp/errors.js';
import { rtspUpstream } from '../rtsp/upstream.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { redactText } from '../util/redact.js';
import type { BroadcastSource } from '../web/types.js';

export type TestRequest =
  | { kind: 'onvif'; host: string; port: number; username: string; password: string }
  /** The URL without user info (parseTestRequest split a typed log-in off into the fields). */
  | { kind: 'rtsp'; url: string; username?: string; password?: string }
  | { kind: 'camera'; id: string };

export type FailureCode =
  | 'wrong-password' | 'port-closed' | 'unreachable' | 'timeout' | 'not-onvif' | 'stream-not-found'
  | 'camera-busy' | 'no-video' | 'bad-input' | 'failed';

export interface TestStep {
  step: 'onvif' | 'stream' | 'snapshot';
  ok: boolean;
  text: string;
}

export interface StreamFacts {
  codec: string;
  width: number | null;
  height: number | null;
  fps: number | null;
  audio: string | null;
  /** Browsers cannot take this codec as it is; the plugin transcodes it to VP8 with ffmpeg. */
  needsTranscode: boolean;
}

export interface TestResult {
  ok: boolean;
  steps: TestStep[];
  device?: { manufacturer: string | null; model: string | null; firmware: string | null };
  stream?: StreamFacts;
  /** JPEG, base64. */
  snapshot?: string;
  failure?: { code: FailureCode; text: string };
}

export interface TestDeps {
  /** ffmpeg for the snapshot; without it the ONVIF snapshot (if any) is used. */
  ffmpegPath: string | undefined;
  /** A configured, running camera by id. */
  source(id: string): BroadcastSource | undefined;
  config(id: string): CameraConfig | undefined;
  /**
   * The running camera this address and log-in already stream from, if any: its shared Source is
   * then tested instead of opening a second session to the camera.
   */
  running?(request: Exclude<TestRequest, { kind: 'camera' }>): BroadcastSource | undefined;
  log?: Logger;
  /** Deadline for the first keyframe (default 10 s). */
  keyframeTimeoutMs?: number;
  /** How long the short PLAY measures the frame rate after the first keyframe (default 1500 ms). */
  measureMs?: number;
}

const NAME = 'Test connection';

function codecWords(codec: string): string {
  return codec === 'H264' ? 'H.264' : codec === 'H265' ? 'H.265' : codec;
}

export function describeStream(s: StreamFacts): string {
  const size = s.width && s.height ? ` ${s.width}x${s.height}` : '';
  const fps = s.fps ? ` at ${Math.round(s.fps)} fps` : '';
  const audio = s.audio ? `, audio ${s.audio}` : ', no audio';
  const transcode = s.needsTranscode ? ` (browsers need ${codecWords(s.codec)} transcoded: the plugin does it with ffmpeg, one encoder per camera)` : '';
  return `Stream found: ${codecWords(s.codec)}${size}${fps}${audio}${transcode}`;
}

/** An RTSP error as a reason the user can act on. */
export function classifyRtspError(error: unknown): { code: FailureCode; text: string } {
  if (error instanceof RtspError) {
    switch (error.code) {
      case 'auth':
        return { code: 'wrong-password', text: 'Wrong user name or password: the camera refused the log-in for its stream (one attempt was made; many cameras lock the account after a few).' };
      case 'forbidden':
        return { code: 'wrong-password', text: 'The camera accepted the log-in but this user may not watch the stream (RTSP 403).' };
      case 'refused':
        return { code: 'port-closed', text: 'Port closed: nothing answers on the camera\u2019s RTSP port.' };
      case 'not-found':
        return { code: 'stream-not-found', text: 'The camera answered, but there is no stream at this path (RTSP 404). Check the address.' };
      case 'timeout':
      case 'stalled':
        return { code: 'timeout', text: 'The camera did not answer in time: is it online, and is this its RTSP port?' };
      case 'unavailable':
        return { code: 'camera-busy', text: 'The camera is busy (RTSP 503): often it has too many viewers already.' };
      case 'unsupported':
        return { code: 'no-video', text: 'The camera offers nothing this plugin can play (no H.264 or H.265 video).' };
      case 'transport':
        return { code: 'unreachable', text: 'The camera cannot be reached: check its address.' };
      default:
        return { code: 'failed', text: `The stream failed: ${redactText(error.message.replace(/^Camera "[^"]*" \([^)]*\): /, ''), [])}` };
    }
  }
  return { code: 'failed', text: `The stream failed: ${error instanceof Error ? error.message : String(error)}` };
}

/** An ONVIF error as a reason the user can act on. */
export function classifyOnvifError(error: unknown): { code: FailureCode; text: string } {
  if (isOnvifError(error)) {
    switch (error.code) {
      case 'NOT_AUTHORIZED':
        return { code: 'wrong-password', text: 'Wrong user name or password: the camera refused the ONVIF log-in (one attempt was made; also check that the camera\u2019s clock is right).' };
      case 'UNREACHABLE':
        return /refused/i.test(error.message)
          ? { code: 'port-closed', text: 'Port closed: nothing answers on this ONVIF port. Common ports are 80, 8000, 8080 and 2020.' }
          : { code: 'unreachable', text: 'The camera cannot be reached: check its address.' };
      case 'TIMEOUT':
        return { code: 'timeout', text: 'The camera did not answer in time: is it online, and is this its ONVIF port?' };
      case 'HTML_RESPONSE':
      case 'HTTP_ERROR':
      case 'BAD_RESPONSE':
        return { code: 'not-onvif', text: 'Not ONVIF: something answers on this port, but not an ONVIF camera (a web page or an error). Check the ONVIF port, and that ONVIF is turned on in the camera.' };
      case 'NO_VIDEO_PROFILE':
        return { code: 'no-video', text: 'The camera speaks ONVIF but reports no usable video stream.' };
      default:
        return { code: 'failed', text: `ONVIF failed: ${error.message}` };
    }
  }
  return { code: 'failed', text: `ONVIF failed: ${error instanceof Error ? error.message : String(error)}` };
}

/**
 * An upstream that opens exactly one session: a second call (the Source's reconnect) never reaches
 * the camera, so a failing test costs the camera one log-in attempt.
 */
function oneShot(inner: UpstreamFactory, onError: (error: unknown) => void): UpstreamFactory {
  let used = false;
  return async (handlers, signal) => {
    if (used) {
      // Park the reconnect until the test closes the Source.
      return await new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('test ended')), { once: true }));
    }
    used = true;
    try {
      return await inner(handlers, signal);
    } catch (error) {
      onError(error);
      throw error;
    }
  };
}

/** Reads stream facts from a Source after a keyframe; waits `measureMs` for a frame rate when it has none yet. */
async function streamFacts(source: BroadcastSource & { stats?: () => { width?: number; height?: number; fps?: number; declaredFps?: number } }, measureMs: number): Promise<StreamFacts> {
  const video = source.tracks.find((t) => t.kind === 'video');
  const audio = source.tracks.find((t) => t.kind === 'audio');
  let stats = source.stats?.() ?? {};
  // The rate the stream declares (SPS timing) beats one measured over a second or two that
  // includes the burst of frames a camera sends right after PLAY.
  if (stats.declaredFps !== undefined) stats = { ...stats, fps: stats.declaredFps };
  else if (stats.fps === undefined && measureMs > 0) {
    await new Promise((resolve) => setTimeout(resolve, measureMs));
    stats = source.stats?.() ?? {};
  }
  const codec = video?.codec ?? 'unknown';
  return {
    codec,
    width: stats.width ?? null,
    height: stats.height ?? null,
    fps: stats.fps !== undefined ? Math.round(stats.fps * 10) / 10 : null,
    audio: audio?.codec ?? null,
    needsTranscode: codec !== 'H264',
  };
}

async function snapshotFrom(source: BroadcastSource, deps: TestDeps, timeoutMs: number, result: TestResult, log: Logger): Promise<Buffer | undefined> {
  const frame = await takeKeyframe(source, timeoutMs);
  if (!frame) return undefined;
  if (!deps.ffmpegPath) return Buffer.alloc(0);
  try {
    return await decodeToJpeg({ ffmpegPath: deps.ffmpegPath, codec: frame.codec, input: frame.annexB, width: 640, log });
  } catch (error) {
    result.steps.push({ step: 'snapshot', ok: false, text: `The picture could not be decoded: ${error instanceof Error ? error.message : String(error)}` });
    return Buffer.alloc(0);
  }
}

/** Runs one test. Never throws: every failure is a `TestResult` with a reason. */
export async function testConnection(request: TestRequest, deps: TestDeps): Promise<TestResult> {
  const log = deps.log ?? silentLogger;
  const result: TestResult = { ok: false, steps: [] };
  const keyframeTimeoutMs = deps.keyframeTimeoutMs ?? 10_000;
  const measureMs = deps.measureMs ?? 1500;
  const fail = (failure: { code: FailureCode; text: string }, step: TestStep['step']): TestResult => {
    result.steps.push({ step, ok: false, text: failure.text });
    result.failure = failure;
    return result;
  };

  /** The camera's own shared Source: the test is one more subscriber, never a second session. */
  const viaShared = async (source: BroadcastSource): Promise<TestResult> => {
    const jpeg = await snapshotFrom(source, deps, keyframeTimeoutMs, result, log);
    if (jpeg === undefined) {
      const why = source.state.lastError ? `: ${redactText(source.state.lastError, [])}` : '';
      return fail({ code: 'timeout', text: `No picture from the camera within ${keyframeTimeoutMs / 1000} s (it is ${source.state.state}${why}).` }, 'stream');
    }
    result.stream = await streamFacts(source as BroadcastSource & { stats?: () => { fps?: number; declaredFps?: number } }, measureMs);
    result.steps.push({ step: 'stream', ok: true, text: describeStream(result.stream) });
    if (jpeg.length > 0) {
      result.snapshot = jpeg.toString('base64');
      result.steps.push({ step: 'snapshot', ok: true, text: 'Snapshot taken from the stream.' });
    }
    result.ok = true;
    return result;
  };

  if (request.kind === 'camera') {
    const source = deps.source(request.id);
    if (!source) return fail({ code: 'bad-input', text: `No running camera has the id "${request.id}".` }, 'stream');
    return await viaShared(source);
  }
  const shared = deps.running?.(request);

  let rtsp: { url: string; username?: string; password?: string };
  let device: ConnectedOnvifDevice | undefined;
  if (request.kind === 'onvif') {
    try {
      device = await connectOnvifDevice({
        name: `${request.host}:${request.port}`, host: request.host, port: request.port,
        username: request.username, password: request.password, log, timeoutMs: 6000,
      });
    } catch (error) {
      return fail(classifyOnvifError(error), 'onvif');
    }
    result.device = { manufacturer: device.info.manufacturer ?? null, model: device.info.model ?? null, firmware: device.info.firmwareRevision ?? null };
    const what = [device.info.manufacturer, device.info.model].filter(Boolean).join(' ') || 'an ONVIF camera';
    result.steps.push({ step: 'onvif', ok: true, text: `ONVIF reached: ${what}${device.info.firmwareRevision ? `, firmware ${device.info.firmwareRevision}` : ''}.` });
    if (shared) return await viaShared(shared);
    try {
      const stream = await device.resolveStream();
      rtsp = { url: stream.rtspUrl, ...(stream.username !== undefined ? { username: stream.username, password: stream.password ?? '' } : {}) };
    } catch (error) {
      return fail(classifyOnvifError(error), 'stream');
    }
  } else {
    if (shared) return await viaShared(shared);
    const { kind: _kind, ...login } = request;
    rtsp = login;
  }

  let streamError: unknown;
  let rejectOnError: ((error: unknown) => void) | undefined;
  const failed = new Promise<never>((_, reject) => { rejectOnError = reject; });
  failed.catch(() => undefined);
  const upstream = oneShot(
    rtspUpstream({ ...rtsp, cameraName: NAME, logger: log, transport: 'tcp', timeouts: {} }),
    (error) => { streamError = error; rejectOnError?.(error); },
  );
  const source = new Source({ id: 'connection-test', name: NAME, upstream, logger: log, idleTimeoutMs: 30_000 });
  try {
    let jpeg: Buffer | undefined;
    try {
      jpeg = await Promise.race([snapshotFrom(source, deps, keyframeTimeoutMs, result, log), failed]);
    } catch {
      return fail(classifyRtspError(streamError), 'stream');
    }
    if (jpeg === undefined) {
      return fail({ code: 'timeout', text: `The stream opened but no picture arrived within ${keyframeTimeoutMs / 1000} s.` }, 'stream');
    }
    result.stream = await streamFacts(source, measureMs);
    result.steps.push({ step: 'stream', ok: true, text: describeStream(result.stream) });
    if (jpeg.length > 0) {
      result.snapshot = jpeg.toString('base64');
      result.steps.push({ step: 'snapshot', ok: true, text: 'Snapshot taken from the stream.' });
    } else if (device) {
      try {
        result.snapshot = (await device.fetchSnapshot()).toString('base64');
        result.steps.push({ step: 'snapshot', ok: true, text: 'Snapshot taken from the camera\u2019s snapshot address.' });
      } catch {
        result.steps.push({ step: 'snapshot', ok: false, text: 'No snapshot: ffmpeg is missing and the camera offers no snapshot.' });
      }
    }
    result.ok = true;
    return result;
  } finally {
    await source.close();
  }
}
