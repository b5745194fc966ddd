/**
 * The camera's ONVIF side as HomeKit uses it: device information for the accessory details, and
 * motion events for the MotionSensor. ONVIF may be unreachable at start (the camera boots after
 * Homebridge); connecting is retried in the background with a growing delay, never in a hot loop,
 * and never blocks the camera's start.
 */
import type { ConnectedOnvifDevice } from '../onvif/device.js';
import { OnvifMotionEvents } from '../onvif/events.js';
import { MotionState } from '../onvif/motion.js';
import type { Logger } from '../util/logger.js';

export interface OnvifLinkOptions {
  connect: () => Promise<ConnectedOnvifDevice>;
  log: Logger;
  /** Subscribe to motion events (the camera's `motion` setting). */
  motion: boolean;
  motionResetSeconds: number;
  onDevice?: (device: ConnectedOnvifDevice) => void;
  onMotion?: (detected: boolean) => void;
  /** First retry delay (default 5 s), doubling up to `maxRetryMs` (default 5 min). */
  retryMs?: number;
  maxRetryMs?: number;
}

export class OnvifLink {
  private readonly controller = new AbortController();
  private events: OnvifMotionEvents | undefined;
  private motionState: MotionState | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly options: OnvifLinkOptions) {}

  start(): void {
    this.running ??= this.run().catch((error: unknown) => {
      this.options.log.debug(`ONVIF link stopped: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  get motionDetected(): boolean {
    return this.motionState?.detected ?? false;
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await this.running;
    await this.events?.stop();
    this.motionState?.dispose();
    this.events = undefined;
  }

  private async run(): Promise<void> {
    const signal = this.controller.signal;
    let delay = this.options.retryMs ?? 5000;
    const max = this.options.maxRetryMs ?? 300_000;
    let attempt = 0;
    while (!signal.aborted) {
      try {
        const device = await this.options.connect();
        if (signal.aborted) return;
        this.options.onDevice?.(device);
        if (this.options.motion) this.subscribe(device);
        return;
      } catch (error) {
        attempt++;
        const text = `ONVIF is not reachable (${error instanceof Error ? error.message : String(error)}); ${this.options.motion ? 'the motion sensor waits' : 'accessory details wait'}, retrying in ${Math.round(delay / 1000)} s`;
        // Say it once loudly, then quietly: the camera may simply be off.
        if (attempt === 1) this.options.log.warn(text);
        else this.options.log.debug(text);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve();
          }, { once: true });
        });
        delay = Math.min(max, delay * 2);
      }
    }
  }

  private subscribe(device: ConnectedOnvifDevice): void {
    const motion = new MotionState({ resetTimeoutMs: this.options.motionResetSeconds * 1000, log: this.options.log });
    this.motionState = motion;
    motion.on('change', (detected) => this.options.onMotion?.(detected));
    const events = new OnvifMotionEvents({ device, motion, log: this.options.log });
    this.events = events;
    events.on('subscribed', () => this.options.log.debug('motion events: subscribed'));
    events.start();
    this.options.log.info(`Motion sensor: following the camera's ONVIF motion events (reset after ${this.options.motionResetSeconds} s).`);
  }
}
