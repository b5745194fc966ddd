/**
 * PTZ (pan/tilt/zoom) for ONVIF cameras: what a camera can do (`discoverPtz`: the PTZ service from
 * GetServices/GetCapabilities, a PTZ-capable profile, the node's and the configuration's velocity and
 * translation ranges), the SOAP calls (ContinuousMove/Stop, RelativeMove where continuous moves are
 * absent, GetPresets, GotoPreset, GotoHomePosition), and `PtzController`, the per-camera gatekeeper a
 * web page talks to: one mover at a time with a lease that expires, a rate limit on moves, velocities
 * clamped to the camera's ranges, and a Stop that is always sent after a continuous move, even when
 * the client vanishes (a dead-man timer).
 *
 * Viewers never pass URLs or raw SOAP: a move is three numbers in [-1, 1], a preset is a token the
 * camera itself listed.
 *
 * This file is the controller; the discovery and the SOAP calls are in ptz-client.ts.
 */
import { EventEmitter } from 'node:events';

import type { Logger } from '../util/logger.js';
import { OnvifError } from './errors.js';
import type { PtzClient, PtzPreset, PtzVector } from './ptz-client.js';

// Moved to ptz-client.ts; re-exported for the modules that import them from here.
export { OnvifPtz, discoverPtz, parsePresets, parsePtzSpace, scaleToRange } from './ptz-client.js';
export type { PtzCapabilities, PtzClient, PtzPreset, PtzRange, PtzSpace, PtzVector } from './ptz-client.js';

// ---------------------------------------------------------------------------------------------------
// The per-camera controller

/** Who asks; `ptz` is the viewer's PTZ right (admins have it). */
export interface PtzViewer {
  id: string;
  ptz: boolean;
}

export type PtzRefusalReason = 'forbidden' | 'busy' | 'rate-limited' | 'invalid' | 'unsupported';

/** A request the controller refused before it reached the camera; `message` is for the viewer. */
export class PtzRefusedError extends Error {
  constructor(
    readonly reason: PtzRefusalReason,
    message: string,
  ) {
    super(message);
    this.name = 'PtzRefusedError';
  }
}

export interface PtzState {
  /** Viewer holding control, if the lease is current. */
  mover: string | undefined;
  moving: boolean;
  /** What the camera was last told: 'move', 'stop', 'preset', 'home'. */
  last: 'move' | 'stop' | 'preset' | 'home' | undefined;
}

export interface PtzControllerEvents {
  /** Every change, for the other viewers to see the camera being moved (and by whom). */
  state: [PtzState];
}

/** Timers, replaceable in tests. */
export interface PtzClock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const REAL_CLOCK: PtzClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => {
    const timer = setTimeout(callback, ms);
    timer.unref?.();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface PtzControllerOptions {
  ptz: PtzClient;
  /** Camera name for log lines. */
  camera: string;
  log: Logger;
  /** How long control stays with a viewer after their last command. Default 5000 ms. */
  leaseMs?: number;
  /** Least time between two commands that reach the camera (stops excepted). Default 250 ms. */
  minIntervalMs?: number;
  /** A continuous move stops this long after the last move or keep-alive. Default 1000 ms. */
  deadManMs?: number;
  /** RelativeMove step, as a fraction of the translation range, for cameras without continuous moves. Default 0.1. */
  relativeStep?: number;
  clock?: PtzClock;
}

/**
 * One per camera. A viewer's page sends `move` while a button is held (repeating it as a keep-alive)
 * and `stop` on release; `release` when the viewer disconnects. Commands go to the camera one at a
 * time, in order, so a Stop can never overtake the move it ends.
 */
export class PtzController extends EventEmitter<PtzControllerEvents> {
  private readonly clock: PtzClock;
  private mover: string | undefined;
  private leaseUntil = 0;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private moving: { vector: PtzVector } | undefined;
  private deadMan: unknown;
  private last: PtzState['last'];
  private queue: Promise<unknown> = Promise.resolve();
  private presets: PtzPreset[] | undefined;
  private disposed = false;
  /** Set when the camera refused ContinuousMove as not supported although its node lists velocities. */
  private continuousRefused = false;

  constructor(private readonly options: PtzControllerOptions) {
    super();
    this.clock = options.clock ?? REAL_CLOCK;
  }

  get state(): PtzState {
    return { mover: this.currentMover(), moving: this.moving !== undefined, last: this.last };
  }

  /**
   * How long the current mover's lease has left (0 when nobody holds it, or it ran out while a move
   * still holds control). A lease runs out without any call, so no `state` event says so: whoever
   * shows the mover (runtime/camera-ptz.ts) looks again at this time instead of the controller
   * keeping a timer per lease.
   */
  get leaseRemainingMs(): number {
    return this.currentMover() === undefined ? 0 : Math.max(0, this.leaseUntil - this.clock.now());
  }

  /** Starts (or changes, or keeps alive) a move. Continuous when the camera can, else one relative step. */
  async move(viewer: PtzViewer, vector: PtzVector): Promise<void> {
    const clean = this.checkVector(vector);
    this.admit(viewer);
    const caps = this.options.ptz.capabilities;
    if (caps.continuous && !this.continuousRefused) {
      if (this.moving && sameVector(this.moving.vector, clean)) {
        // A keep-alive for the move already running: no camera round trip, so no rate limit.
        this.touch(viewer);
        this.armDeadMan();
        return;
      }
      if (isZero(clean)) return this.stop(viewer);
      this.rateLimit();
      this.touch(viewer);
      this.moving = { vector: clean };
      this.last = 'move';
      this.armDeadMan();
      this.emitState();
      try {
        return await this.enqueue(() => this.options.ptz.continuousMove(clean, (this.options.deadManMs ?? 1000) * 2));
      } catch (error) {
        // Some firmwares list velocity spaces yet refuse ContinuousMove: step with RelativeMove from now on.
        if (!(error instanceof OnvifError) || error.code !== 'ACTION_NOT_SUPPORTED' || !caps.relative) throw error;
        this.continuousRefused = true;
        this.options.log.debug(`[${this.options.camera}] ContinuousMove refused; using RelativeMove steps`);
        // Stop now rather than at the dead-man delay: the state must not say "moving", and a Stop after a
        // failed move is the rule (harmless if nothing moved).
        await this.sendStop('continuous move refused');
        return this.relativeStep(clean);
      }
    }
    if (!caps.relative) throw new PtzRefusedError('unsupported', 'this camera cannot be moved');
    if (isZero(clean)) return;
    this.rateLimit();
    this.touch(viewer);
    return this.relativeStep(clean);
  }

  private relativeStep(clean: PtzVector): Promise<void> {
    this.last = 'move';
    this.emitState();
    const step = this.options.relativeStep ?? 0.1;
    return this.enqueue(() => this.options.ptz.relativeMove({ pan: clean.pan * step, tilt: clean.tilt * step, zoom: clean.zoom * step }));
  }

  /** Ends a move. Refused to viewers without the right or the lease; rate-limited only when nothing is moving. */
  async stop(viewer: PtzViewer): Promise<void> {
    this.admit(viewer);
    // A stop that ends a move always goes out; one with nothing moving (a preset's travel, a double
    // click) counts against the rate limit like any other command, so stops cannot flood the camera.
    if (!this.moving) this.rateLimit();
    this.touch(viewer);
    await this.sendStop('requested');
  }

  async listPresets(): Promise<PtzPreset[]> {
    this.presets = await this.enqueue(() => this.options.ptz.getPresets());
    return this.presets;
  }

  /** Goes to a preset the camera listed; anything else is refused without reaching the camera. */
  async gotoPreset(viewer: PtzViewer, token: string): Promise<void> {
    this.admit(viewer);
    const presets = this.presets ?? (await this.listPresets());
    if (!presets.some((p) => p.token === token)) throw new PtzRefusedError('invalid', 'this camera has no such preset');
    this.rateLimit();
    this.touch(viewer);
    if (this.moving) await this.sendStop('preset');
    this.last = 'preset';
    this.emitState();
    return this.enqueue(() => this.options.ptz.gotoPreset(token));
  }

  async gotoHome(viewer: PtzViewer): Promise<void> {
    this.admit(viewer);
    if (!this.options.ptz.capabilities.home) throw new PtzRefusedError('unsupported', 'this camera has no home position');
    this.rateLimit();
    this.touch(viewer);
    if (this.moving) await this.sendStop('home');
    this.last = 'home';
    this.emitState();
    return this.enqueue(() => this.options.ptz.gotoHome());
  }

  /** The viewer went away (page closed, connection lost): stop their move and free control at once. */
  async release(viewerId: string): Promise<void> {
    if (this.mover !== viewerId) return;
    this.mover = undefined;
    this.leaseUntil = 0;
    if (this.moving) await this.sendStop('viewer left');
    else this.emitState();
  }

  /** Resolves once every command handed to the camera so far has been answered (or has failed). */
  async idle(): Promise<void> {
    await this.queue;
  }

  /** Stops any move and refuses further commands (camera removed, plugin shutting down). */
  async dispose(): Promise<void> {
    if (this.moving) await this.sendStop('shutdown');
    this.disposed = true;
    this.removeAllListeners();
  }

  // --- internals --------------------------------------------------------------------------------------

  private currentMover(): string | undefined {
    if (this.mover !== undefined && (this.moving || this.clock.now() < this.leaseUntil)) return this.mover;
    return undefined;
  }

  private admit(viewer: PtzViewer): void {
    if (this.disposed) throw new PtzRefusedError('unsupported', 'PTZ is no longer available for this camera');
    if (!viewer.ptz) throw new PtzRefusedError('forbidden', 'you may watch this camera but not move it');
    const holder = this.currentMover();
    if (holder !== undefined && holder !== viewer.id) throw new PtzRefusedError('busy', 'someone else is moving this camera');
  }

  private touch(viewer: PtzViewer): void {
    const changed = this.mover !== viewer.id;
    this.mover = viewer.id;
    this.leaseUntil = this.clock.now() + (this.options.leaseMs ?? 5000);
    if (changed) this.emitState();
  }

  private rateLimit(): void {
    const now = this.clock.now();
    if (now - this.lastSentAt < (this.options.minIntervalMs ?? 250)) throw new PtzRefusedError('rate-limited', 'too many PTZ commands; slow down');
    this.lastSentAt = now;
  }

  private checkVector(vector: PtzVector): PtzVector {
    const values = [vector.pan, vector.tilt, vector.zoom];
    if (!values.every((v) => typeof v === 'number' && Number.isFinite(v))) throw new PtzRefusedError('invalid', 'a move needs three numbers');
    const clamp = (v: number): number => Math.max(-1, Math.min(1, v));
    return { pan: clamp(vector.pan), tilt: clamp(vector.tilt), zoom: clamp(vector.zoom) };
  }

  private armDeadMan(): void {
    if (this.deadMan !== undefined) this.clock.clearTimeout(this.deadMan);
    this.deadMan = this.clock.setTimeout(() => {
      this.deadMan = undefined;
      // No keep-alive: the client vanished or froze with a button held. The camera must not keep turning.
      void this.sendStop('no keep-alive').catch(() => undefined);
    }, this.options.deadManMs ?? 1000);
  }

  private async sendStop(why: string): Promise<void> {
    if (this.deadMan !== undefined) {
      this.clock.clearTimeout(this.deadMan);
      this.deadMan = undefined;
    }
    const wasMoving = this.moving !== undefined;
    this.moving = undefined;
    this.last = 'stop';
    this.emitState();
    if (wasMoving && why !== 'requested') this.options.log.debug(`[${this.options.camera}] PTZ stop (${why})`);
    try {
      await this.enqueue(() => this.options.ptz.stop());
    } catch (error) {
      // One more try: a camera left turning is the failure that matters here.
      this.options.log.warn(`[${this.options.camera}] PTZ stop failed, sending it again: ${(error as Error).message}`);
      await this.enqueue(() => this.options.ptz.stop());
    }
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private emitState(): void {
    this.emit('state', this.state);
  }
}

function isZero(v: PtzVector): boolean {
  return v.pan === 0 && v.tilt === 0 && v.zoom === 0;
}

function sameVector(a: PtzVector, b: PtzVector): boolean {
  return a.pan === b.pan && a.tilt === b.tilt && a.zoom === b.zoom;
}
