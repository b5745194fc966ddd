/**
 * One camera's PTZ at run time (issue 17): once its ONVIF service answers, `discoverPtz` says what it
 * can do, and one `PtzController` (src/onvif/ptz.ts: one mover with a lease, rate limit, clamping,
 * dead-man Stop) serves both the web page (as the web layer's `CameraPtzControl`) and the Home app's
 * preset switches. A camera without PTZ gets no controller and says so once at debug level; any other
 * failure is logged once and retried quietly with a growing delay. Nothing here can fail the camera.
 */
import type { ConnectedOnvifDevice } from '../onvif/device.js';
import { OnvifError } from '../onvif/errors.js';
import { PtzController, PtzRefusedError, discoverPtz, type PtzClient, type PtzControllerOptions, type PtzPreset } from '../onvif/ptz.js';
import type { Logger } from '../util/logger.js';
import { HOMEKIT_PTZ_VIEWER_ID, type CameraPtzControl, type PtzCommand, type PtzOutcome, type PtzView } from '../web/ptz-types.js';

export interface CameraPtzOptions {
  /** Camera name for log lines (the logger already names the camera). */
  camera: string;
  /** The camera's shared ONVIF connection (runtime/camera-upstream.ts `onvifConnector`). */
  connect: () => Promise<ConnectedOnvifDevice>;
  log: Logger;
  /** First retry delay (default 10 s), doubling up to `maxRetryMs` (default 10 min). */
  retryMs?: number;
  maxRetryMs?: number;
  /** Replaceable in tests. */
  discover?: (device: ConnectedOnvifDevice) => Promise<PtzClient>;
  /**
   * Called when the camera's mover changes: someone took control (their `ptzViewerId`), or nobody
   * holds it any more (undefined: released, or the lease ran out). The watch pages hear it at once
   * (web/event-stream.ts `ptz` events) instead of at their next camera-list refresh.
   */
  onMover?: (moverId: string | undefined) => void;
  /** Controller settings (lease, rate limit, dead-man), for tests. */
  controller?: Partial<Omit<PtzControllerOptions, 'ptz' | 'camera' | 'log'>>;
}

/**
 * The Home app moves the camera under this viewer id, with the right (the user chose these switches).
 * Web callers' ids carry their kind (`user:`, `link:`: web/ptz-types.ts `ptzViewerId`), so no account can take it.
 */
export const HOMEKIT_VIEWER = { id: HOMEKIT_PTZ_VIEWER_ID, ptz: true } as const;

/** Least wait before looking again whether the mover's lease ran out. */
const LEASE_RECHECK_MS = 250;

export class CameraPtz implements CameraPtzControl {
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private controllerInstance: PtzController | undefined;
  private client: PtzClient | undefined;
  private presets: PtzPreset[] = [];
  private done = false;
  private readyWaiters: Array<() => void> = [];
  /** The mover last reported to `onMover`, and the timer that looks again when their lease should end. */
  private reportedMover: string | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: CameraPtzOptions) {}

  /** Starts discovery in the background; never throws. */
  start(): void {
    this.running ??= this.run();
  }

  /** The controller once PTZ is known; undefined for a camera without PTZ or not reached yet. */
  get controller(): PtzController | undefined {
    return this.controllerInstance;
  }

  /** This camera's control for the web layer, once it has PTZ. */
  control(): CameraPtzControl | undefined {
    return this.controllerInstance ? this : undefined;
  }

  /** Resolves when discovery has ended, with or without PTZ (tests, and whoever needs the presets). */
  settled(): Promise<void> {
    if (this.running === undefined || this.done) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /**
   * Does not wait for the run: an in-flight SOAP call (connect, discovery, presets) can take its
   * whole timeout at shutdown, and the camera's stop must not. The run checks the signal after each
   * await; a controller it makes after this point is disposed when it settles (`ready`).
   */
  async stop(): Promise<void> {
    this.abort.abort();
    const controller = this.controllerInstance;
    this.controllerInstance = undefined;
    clearTimeout(this.leaseTimer);
    await controller?.dispose().catch(() => undefined);
  }

  view(viewerId: string): PtzView {
    const controller = this.controllerInstance;
    const caps = controller ? this.client?.capabilities : undefined;
    const state = controller?.state;
    const space = caps?.continuous ?? caps?.relative;
    return {
      continuous: caps?.continuous !== undefined,
      zoom: space?.zoom !== undefined,
      home: caps?.home ?? false,
      presets: this.presets.map((p) => ({ token: p.token, name: p.name })),
      mover: state?.mover === undefined ? null : state.mover === viewerId ? 'you' : 'other',
      moving: state?.moving ?? false,
    };
  }

  async command(viewer: { id: string; ptz: boolean }, command: PtzCommand): Promise<PtzOutcome> {
    const controller = this.controllerInstance;
    if (!controller) return { ok: false, reason: 'unsupported', message: 'this camera has no pan/tilt/zoom' };
    try {
      switch (command.kind) {
        case 'move':
          await controller.move(viewer, { pan: command.pan, tilt: command.tilt, zoom: command.zoom });
          break;
        case 'stop':
          await controller.stop(viewer);
          break;
        case 'preset':
          await controller.gotoPreset(viewer, command.token);
          break;
        case 'home':
          await controller.gotoHome(viewer);
          break;
      }
      return { ok: true };
    } catch (error) {
      if (error instanceof PtzRefusedError) return { ok: false, reason: error.reason, message: error.message };
      throw error;
    }
  }

  /**
   * Goes to a preset named in the config (`ptzPresetSwitches`): its token first, else its name
   * (case-insensitive). Throws with a sentence for the log when that cannot be done.
   */
  async gotoConfiguredPreset(entry: string): Promise<void> {
    if (!this.controllerInstance) throw new Error('the camera\u2019s PTZ is not known yet (ONVIF not reachable, or the camera has no PTZ)');
    const wanted = entry.toLowerCase();
    const preset = this.presets.find((p) => p.token === entry) ?? this.presets.find((p) => p.name.toLowerCase() === wanted);
    if (!preset) throw new Error(`the camera has no preset "${entry}"; it lists ${listPresets(this.presets)}`);
    const outcome = await this.command(HOMEKIT_VIEWER, { kind: 'preset', token: preset.token });
    if (!outcome.ok) throw new Error(outcome.message);
  }

  private async run(): Promise<void> {
    const { log } = this.options;
    const signal = this.abort.signal;
    let delay = this.options.retryMs ?? 10_000;
    const max = this.options.maxRetryMs ?? 600_000;
    let warned = false;
    try {
      while (!signal.aborted) {
        try {
          const device = await this.options.connect();
          if (signal.aborted) return;
          const client = await (this.options.discover ?? discoverPtz)(device);
          if (signal.aborted) return;
          await this.ready(client);
          return;
        } catch (error) {
          // Stopped while the call was pending: its failure is the shutdown's, not worth a warning.
          if (signal.aborted) return;
          if (error instanceof OnvifError && error.code === 'NO_PTZ') {
            log.debug(`No PTZ controls: ${error.detail ?? error.message}`);
            return;
          }
          const text = `PTZ is not available yet (${error instanceof Error ? error.message : String(error)}); trying again in ${Math.round(delay / 1000)} s`;
          // Once loudly, then quietly: an unreachable camera is already reported by its stream.
          if (!warned) log.warn(text);
          else log.debug(text);
          warned = true;
          await pause(delay, signal);
          delay = Math.min(max, delay * 2);
        }
      }
    } finally {
      this.done = true;
      for (const resolve of this.readyWaiters.splice(0)) resolve();
    }
  }

  private async ready(client: PtzClient): Promise<void> {
    const controller = new PtzController({ ...this.options.controller, ptz: client, camera: this.options.camera, log: this.options.log });
    try {
      this.presets = await controller.listPresets();
    } catch (error) {
      // Moving works without presets; the page then shows none.
      this.options.log.debug(`PTZ presets unavailable: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (this.abort.signal.aborted) {
      // stop() came while the presets were asked for: nobody will dispose this controller later.
      await controller.dispose().catch(() => undefined);
      return;
    }
    this.client = client;
    this.controllerInstance = controller;
    controller.on('state', () => this.noteMover());
    const caps = client.capabilities;
    this.options.log.info(
      `PTZ: ${caps.continuous ? 'continuous' : 'step'} moves${caps.home ? ', home' : ''}; presets: ${listPresets(this.presets)}.`,
    );
  }

  /**
   * Reports a change of mover once. The controller says when someone takes or gives up control, but
   * a lease runs out silently, so while someone holds it this looks again when it should end (a
   * keep-alive or a new command may have renewed it meanwhile: then it waits for the new end).
   */
  private noteMover(): void {
    clearTimeout(this.leaseTimer);
    this.leaseTimer = undefined;
    const controller = this.controllerInstance;
    const mover = controller?.state.mover;
    if (mover !== this.reportedMover) {
      this.reportedMover = mover;
      this.options.onMover?.(mover);
    }
    if (controller && mover !== undefined) {
      // At least LEASE_RECHECK_MS: a move still running holds control past its lease (0 left).
      this.leaseTimer = setTimeout(() => this.noteMover(), Math.max(LEASE_RECHECK_MS, controller.leaseRemainingMs + 20));
      this.leaseTimer.unref();
    }
  }
}

/** "none", or the names (with their tokens where they differ), the first 20. */
function listPresets(presets: ReadonlyArray<PtzPreset>): string {
  if (presets.length === 0) return 'none';
  const named = presets.slice(0, 20).map((p) => (p.name && p.name !== p.token ? `"${p.name}" (${p.token})` : `"${p.token}"`));
  return `${named.join(', ')}${presets.length > 20 ? ` and ${presets.length - 20} more` : ''}`;
}

/** Waits `ms`, or less when the signal aborts (at once when it already has); never keeps the process alive. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    timer.unref();
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
