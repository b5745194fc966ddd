/**
 * The camera's ONVIF side as HomeKit uses it: device information for the accessory details, motion
 * events for the MotionSensor, and (issue 17) doorbell presses, tamper and line crossing / field
 * detection, each only when its setting asks for it. ONVIF may be unreachable at start (the camera boots after
 * Homebridge); connecting is retried in the background with a growing delay, never in a hot loop,
 * and never blocks the camera's start.
 */
import type { ConnectedOnvifDevice } from '../onvif/device.js';
import { OnvifMotionEvents, isDoorbellPress, type OnvifEvent } from '../onvif/events.js';
import { MotionState } from '../onvif/motion.js';
import type { Logger } from '../util/logger.js';

export interface OnvifLinkOptions {
  connect: () => Promise<ConnectedOnvifDevice>;
  log: Logger;
  /** Subscribe to motion events (the camera's `motion` setting). */
  motion: boolean;
  motionResetSeconds: number;
  /** Follow doorbell presses (ONVIF digital input, known vendor topics, and these topics of the user's). */
  doorbell?: { topics: ReadonlyArray<string> };
  /** Follow tamper events (the `tamperSensor` setting). */
  tamper?: boolean;
  /** Follow line crossing / field detection (the `crossingSensor` setting). */
  crossing?: boolean;
  onDevice?: (device: ConnectedOnvifDevice) => void;
  onMotion?: (detected: boolean) => void;
  /** A doorbell press (already told apart from a replayed state; debouncing is the caller's). */
  onDoorbell?: () => void;
  onTamper?: (tampered: boolean) => void;
  onCrossing?: (detected: boolean) => void;
  /** First retry delay (default 5 s), doubling up to `maxRetryMs` (default 5 min). */
  retryMs?: number;
  maxRetryMs?: number;
}

export class OnvifLink {
  private readonly controller = new AbortController();
  private events: OnvifMotionEvents | undefined;
  private motionState: MotionState | undefined;
  /** Tamper and crossing: each a `MotionState` too (several sources, pulses, a reset after the last). */
  private readonly states = new Map<OnvifEvent['kind'], MotionState>();
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
    for (const state of this.states.values()) state.dispose();
    this.states.clear();
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
        if (this.wantsEvents) this.subscribe(device);
        return;
      } catch (error) {
        attempt++;
        const text = `ONVIF is not reachable (${error instanceof Error ? error.message : String(error)}); ${this.options.motion ? 'the motion sensor waits' : this.wantsEvents ? 'ONVIF events wait' : 'accessory details wait'}, retrying in ${Math.round(delay / 1000)} s`;
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

  private get wantsEvents(): boolean {
    return this.options.motion || this.options.doorbell !== undefined || this.options.tamper === true || this.options.crossing === true;
  }

  private subscribe(device: ConnectedOnvifDevice): void {
    const { options } = this;
    const resetTimeoutMs = options.motionResetSeconds * 1000;
    const motion = new MotionState({ resetTimeoutMs, log: options.log });
    this.motionState = motion;
    if (options.motion) motion.on('change', (detected) => options.onMotion?.(detected));
    const follow = (kind: OnvifEvent['kind'], wanted: boolean | undefined, notify: ((on: boolean) => void) | undefined): void => {
      if (!wanted) return;
      const state = new MotionState({ resetTimeoutMs, log: options.log, name: kind });
      state.on('change', (on) => notify?.(on));
      this.states.set(kind, state);
    };
    follow('tamper', options.tamper, options.onTamper);
    follow('crossing', options.crossing, options.onCrossing);
    const events = new OnvifMotionEvents({ device, motion, log: options.log, ...(options.doorbell ? { doorbellTopics: options.doorbell.topics } : {}) });
    this.events = events;
    events.on('subscribed', () => options.log.debug('ONVIF events: subscribed'));
    events.on('event', (event) => {
      if (event.kind === 'doorbell') {
        if (options.doorbell && isDoorbellPress(event)) options.onDoorbell?.();
        return;
      }
      this.states.get(event.kind)?.update(event.active, event.key, event.pulse);
    });
    events.start();
    const following = [
      options.motion ? `motion (reset after ${options.motionResetSeconds} s)` : undefined,
      options.doorbell ? 'doorbell presses' : undefined,
      options.tamper ? 'tamper' : undefined,
      options.crossing ? 'line crossing / field detection' : undefined,
    ].filter(Boolean);
    if (options.motion) options.log.info(`Motion sensor: following the camera's ONVIF motion events (reset after ${options.motionResetSeconds} s).`);
    options.log.info(`ONVIF events: following ${following.join(', ')}; each topic the camera sends is logged once.`);
  }
}
