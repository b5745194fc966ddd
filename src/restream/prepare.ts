/**
 * Getting a camera ready to describe: subscribe a watching sink (which starts an idle camera's
 * pull), wait until the Source knows its tracks and, for H.264/H.265 whose SDP lacks parameter
 * sets, until a keyframe has shown them, then plan the served tracks. The sink stays subscribed
 * until PLAY so the camera keeps streaming between DESCRIBE and PLAY.
 */
import type { FrameSink, MediaFrame } from '../media/types.js';
import type { Logger } from '../util/logger.js';
import { HttpishError } from './protocol.js';
import { parameterSetsFromTrack, parameterSetsFromUnits, planTracks, type ParameterSets, type ServedTrack } from './sdp.js';
import type { RestreamLimits, RestreamSource } from './types.js';

/** A DESCRIBE's preparation: the plan offered, and a subscription that keeps the Source pulling until PLAY. */
export /** A DESCRIBE's preparation: the plan offered, and a subscription that keeps the Source pulling until PLAY. */
interface Prepared {
  source: RestreamSource;
  hold: HoldSink | undefined;
  plan: ServedTrack[];
  videoSets: ParameterSets | undefined;
  heldSince: number;
}

/**
 * A sink that only watches: it keeps the Source pulling between DESCRIBE and PLAY, and remembers the
 * parameter sets of the newest keyframe so the SDP carries the camera's current SPS/PPS.
 */
export class HoldSink implements FrameSink {
  videoSets: ParameterSets | undefined;
  private readonly listeners = new Set<() => void>();
  subscription: { unsubscribe(): void } | undefined;

  write(frame: MediaFrame): boolean {
    if (frame.kind === 'video' && frame.keyframe) {
      const sets = parameterSetsFromUnits(frame.codec, frame.units);
      if (sets) {
        this.videoSets = sets;
        this.notify();
      }
    }
    return true;
  }

  onTracks(): void {
    this.notify();
  }

  listen(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  release(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    this.listeners.clear();
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

/** What a preparation needs from the server. */
export interface PrepareContext {
  readonly limits: Pick<RestreamLimits, 'readyTimeoutMs' | 'keyframeWaitMs'>;
  getSource(id: string): RestreamSource | undefined;
}

/**
 * Subscribes a HoldSink (starting the camera pull if it is idle) and waits until the Source knows
 * its tracks and, for video without parameter sets in its SDP, until a keyframe has shown them.
 * `isClosed` ends the wait early when the client went away.
 */
export async function prepareCamera(cameraId: string, context: PrepareContext, log: Logger, isClosed: () => boolean): Promise<Prepared> {
  const source = context.getSource(cameraId);
  if (!source) throw new HttpishError(404, `No camera "${cameraId}"`);
  const hold = new HoldSink();
  hold.subscription = source.subscribe(hold, { kinds: ['video'] });
  const limits = context.limits;
  try {
    const ready = await waitFor(hold, () => source.tracks.length > 0, limits.readyTimeoutMs, isClosed);
    if (!ready) {
      log.warn(`re-stream: camera ${cameraId} did not deliver its tracks within ${limits.readyTimeoutMs} ms`);
      throw new HttpishError(503, `Camera "${cameraId}" is not available`, [['Retry-After', '5']]);
    }
    const video = source.tracks.find((t) => t.kind === 'video' && (t.codec === 'H264' || t.codec === 'H265'));
    if (video && !hold.videoSets && !parameterSetsFromTrack(video)) {
      await waitFor(hold, () => hold.videoSets !== undefined, limits.keyframeWaitMs, isClosed);
    }
  } catch (error) {
    hold.release();
    throw error;
  }
  if (isClosed()) {
    hold.release();
    throw new HttpishError(503, 'connection closed');
  }
  const plan = planTracks(source.tracks, hold.videoSets);
  if (plan.length === 0) {
    hold.release();
    log.warn(`re-stream: camera ${cameraId} has no track the re-stream can serve`);
    throw new HttpishError(503, `Camera "${cameraId}" has no playable track`);
  }
  return { source, hold, plan, videoSets: hold.videoSets, heldSince: performance.now() };
}

/** Resolves true once `ready()` holds (checked on every Source event and on a slow poll), false on timeout. */
function waitFor(hold: HoldSink, ready: () => boolean, timeoutMs: number, isClosed: () => boolean): Promise<boolean> {
  if (ready()) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    let done = false;
    const finish = (value: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timeout);
      clearInterval(poll);
      unlisten();
      resolve(value);
    };
    const check = (): void => {
      if (isClosed()) finish(false);
      else if (ready()) finish(true);
    };
    const unlisten = hold.listen(check);
    // The poll covers Sources that fill in `tracks` without calling the sink's onTracks.
    const poll = setInterval(check, 100);
    const timeout = setTimeout(() => finish(false), timeoutMs);
  });
}
