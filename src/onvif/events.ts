/**
 * ONVIF PullPoint events -> motion (and doorbell, tamper and crossing events for whoever listens). One subscription loop per camera:
 * CreatePullPointSubscription, then PullMessages (long poll) in a loop, Renew before the camera's
 * TerminationTime, Unsubscribe on stop. Any failure (fault, timeout, camera reboot, expired
 * subscription) ends the subscription and a new one is made after an exponential backoff with
 * jitter, re-reading the camera clock first (a rebooted camera may have lost it). Errors are logged
 * once per kind and camera; nothing here throws into the caller or emits 'error'. Reading the
 * notifications is in notifications.ts. Renewal times and the backoff run on an injectable clock
 * and timers (media/timers.ts), so tests move time instead of sleeping.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';

import { plainTimers, type TimerHandle, type TimerSeam } from '../media/timers.js';
import type { Logger } from '../util/logger.js';
import { redactUrl } from '../util/redact.js';
import type { OnvifDevice } from './device.js';
import { OnvifError, toOnvifError } from './errors.js';
import { MotionState, type MotionStateOptions } from './motion.js';
import { NS } from './soap.js';
import { eventFromNotification, parseNotificationMessages, type MotionEvent, type OnvifEvent } from './notifications.js';
import { child, escapeXml, serializeXml, textAt, textOf, type XmlElement } from './xml.js';

// Moved to notifications.ts; re-exported for the modules that import them from here.
export {
  classifyTopic,
  eventFromNotification,
  isDoorbellPress,
  isMotionTopic,
  motionFromNotification,
  normalizeTopic,
  parseBooleanValue,
  parseNotificationMessages,
  type MotionEvent,
  type NotificationMessage,
  type OnvifEvent,
  type OnvifEventKind,
  type PropertyOperation,
} from './notifications.js';

// ---------------------------------------------------------------------------------------------------
// The subscription loop

export interface OnvifMotionEventsOptions {
  device: OnvifDevice;
  /** Defaults to the device's logger (already prefixed with the camera name). */
  log?: Logger;
  /** Options for the motion state this creates, or a state to feed. */
  motion?: MotionStateOptions | MotionState;
  /** Long-poll duration of one PullMessages. Default 10 s (shortened when the subscription is short). */
  pullTimeoutSeconds?: number;
  messageLimit?: number;
  /** Subscription lifetime requested on create and renew. Default 60 s. */
  subscriptionSeconds?: number;
  /** Backoff between re-subscriptions. Default 1 s doubling to 60 s, with jitter. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** The local clock for renewal times. Default Date.now. */
  now?: () => number;
  /** Timers for the backoff. Default the real ones (a pending retry keeps the process alive, as before). */
  timers?: TimerSeam;
  /** The user's own doorbell topics (`doorbell.topic`), besides the built-in ones (notifications.ts). */
  doorbellTopics?: ReadonlyArray<string>;
}

export interface OnvifMotionEventsEvents {
  /** Every motion notification, after mapping (both property operations and pulses). */
  motion: [event: MotionEvent];
  /** Every notification the plugin understands (motion too): doorbell, tamper, crossing. */
  event: [event: OnvifEvent];
  /** A subscription was made (again). */
  subscribed: [address: string];
  /** A subscription failed or broke; a retry follows. */
  failure: [error: OnvifError];
}

interface Subscription {
  address: string;
  referenceHeaders: string;
  /** Local time at which to renew. */
  renewAt: number;
  /** Camera-reported lifetime of the subscription in ms. */
  lifetimeMs: number;
  renewUnsupported: boolean;
}

const EVENTS_ACTIONS = {
  create: `${NS.tev}/EventPortType/CreatePullPointSubscriptionRequest`,
  pull: `${NS.tev}/PullPointSubscription/PullMessagesRequest`,
  renew: 'http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/RenewRequest',
  unsubscribe: 'http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest',
} as const;

function parseTime(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const t = Date.parse(text);
  return Number.isFinite(t) ? t : undefined;
}

export class OnvifMotionEvents extends EventEmitter<OnvifMotionEventsEvents> {
  readonly motion: MotionState;
  private readonly device: OnvifDevice;
  private readonly log: Logger;
  private readonly ownsMotion: boolean;
  private controller: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private current: Subscription | undefined;
  private lastFailureCode: string | undefined;
  /** Topics already logged: each is said once, so users see what their camera sends. */
  private readonly seenTopics = new Set<string>();
  private readonly now: () => number;
  private readonly timers: TimerSeam;

  constructor(private readonly options: OnvifMotionEventsOptions) {
    super();
    this.now = options.now ?? Date.now;
    this.timers = options.timers ?? plainTimers;
    this.device = options.device;
    this.log = options.log ?? options.device.log;
    if (options.motion instanceof MotionState) {
      this.motion = options.motion;
      this.ownsMotion = false;
    } else {
      this.motion = new MotionState({ log: this.log, ...options.motion });
      this.ownsMotion = true;
    }
  }

  get running(): boolean {
    return this.controller !== undefined;
  }

  start(): void {
    if (this.controller) return;
    const controller = new AbortController();
    this.controller = controller;
    this.loop = this.run(controller.signal).catch((error: unknown) => {
      // run() handles its own errors; this is a last guard so nothing escapes as an unhandled rejection.
      this.log.error(`motion events stopped unexpectedly: ${(error as Error).message}`);
    });
  }

  /** Stops pulling and unsubscribes (best effort, short timeout). */
  async stop(): Promise<void> {
    const controller = this.controller;
    if (!controller) return;
    this.controller = undefined;
    controller.abort();
    await this.loop;
    this.loop = undefined;
    const subscription = this.current;
    this.current = undefined;
    if (subscription) {
      try {
        await this.request(subscription, 'Unsubscribe', EVENTS_ACTIONS.unsubscribe, '<wsnt:Unsubscribe/>', 3000);
        this.log.debug('unsubscribed from motion events');
      } catch (error) {
        this.log.debug(`unsubscribe failed (ignored): ${(error as Error).message}`);
      }
    }
    if (this.ownsMotion) this.motion.dispose();
  }

  private async run(signal: AbortSignal): Promise<void> {
    const initial = this.options.backoffInitialMs ?? 1000;
    const max = this.options.backoffMaxMs ?? 60_000;
    let attempt = 0;
    while (!signal.aborted) {
      try {
        const subscription = await this.subscribe(signal);
        this.current = subscription;
        if (this.lastFailureCode) this.log.info('motion events resumed');
        else this.log.debug(`subscribed to motion events at ${redactUrl(subscription.address)}`);
        this.lastFailureCode = undefined;
        attempt = 0;
        this.emit('subscribed', subscription.address);
        await this.pullLoop(subscription, signal);
      } catch (error) {
        if (signal.aborted) break;
        const failure = toOnvifError(error, this.device.name, 'motion events');
        this.reportFailure(failure);
        // The old subscription is gone or broken; the camera forgets it (or already has).
        this.current = undefined;
        // A re-subscription replays current states as "Initialized"; stale sources must not linger.
        this.motion.clearSources();
        const delay = Math.min(max, initial * 2 ** attempt) * (0.75 + Math.random() * 0.5);
        attempt = Math.min(attempt + 1, 30);
        await sleep(this.timers, delay, signal);
        if (signal.aborted) break;
        if (['NOT_AUTHORIZED', 'UNREACHABLE', 'TIMEOUT'].includes(failure.code)) {
          await this.device.syncClock().catch(() => undefined);
        }
      }
    }
  }

  private reportFailure(error: OnvifError): void {
    this.emit('failure', error);
    if (this.lastFailureCode !== error.code) {
      this.log.warn(`${error.message}; retrying`);
      this.lastFailureCode = error.code;
    } else {
      this.log.debug(`${error.message}; retrying`);
    }
  }

  private eventsUrl(): string {
    return this.device.services.events ?? this.device.services.device;
  }

  private async subscribe(signal: AbortSignal): Promise<Subscription> {
    const seconds = this.options.subscriptionSeconds ?? 60;
    const response = await this.device.soap.call({
      url: this.eventsUrl(),
      action: 'CreatePullPointSubscription',
      soapAction: EVENTS_ACTIONS.create,
      body: `<tev:CreatePullPointSubscription><tev:InitialTerminationTime>PT${seconds}S</tev:InitialTerminationTime></tev:CreatePullPointSubscription>`,
      header: this.addressingHeader(EVENTS_ACTIONS.create, this.eventsUrl()),
      signal,
    });
    const reference = child(response, 'SubscriptionReference');
    const announced = textAt(reference, 'Address');
    if (!announced) {
      throw new OnvifError({ code: 'BAD_RESPONSE', camera: this.device.name, action: 'CreatePullPointSubscription', detail: 'no subscription address' });
    }
    const parameters = child(reference, 'ReferenceParameters');
    const subscription: Subscription = {
      address: this.device.rewriteServiceUrl(announced),
      referenceHeaders: parameters ? parameters.children.map((c) => serializeXml(c)).join('') : '',
      renewAt: 0,
      lifetimeMs: seconds * 1000,
      renewUnsupported: false,
    };
    this.updateLifetime(subscription, response, seconds * 1000);
    return subscription;
  }

  /** Sets the renewal time from the camera's CurrentTime/TerminationTime (both on the camera clock). */
  private updateLifetime(subscription: Subscription, response: XmlElement, fallbackMs: number): void {
    const current = parseTime(textOf(child(response, 'CurrentTime')));
    const termination = parseTime(textOf(child(response, 'TerminationTime')));
    const lifetime = current !== undefined && termination !== undefined ? termination - current : termination !== undefined ? termination - (this.now() + this.device.clockOffsetMs) : fallbackMs;
    subscription.lifetimeMs = Math.max(1000, lifetime);
    subscription.renewAt = this.now() + subscription.lifetimeMs / 2;
  }

  private addressingHeader(action: string, to: string, referenceHeaders = ''): string {
    return (
      `<wsa:Action>${escapeXml(action)}</wsa:Action>` +
      `<wsa:MessageID>urn:uuid:${randomUUID()}</wsa:MessageID>` +
      `<wsa:To>${escapeXml(to)}</wsa:To>` +
      referenceHeaders
    );
  }

  private request(subscription: Subscription, action: string, soapAction: string, body: string, timeoutMs?: number, signal?: AbortSignal): Promise<XmlElement> {
    return this.device.soap.call({
      url: subscription.address,
      action,
      soapAction,
      body,
      header: this.addressingHeader(soapAction, subscription.address, subscription.referenceHeaders),
      timeoutMs,
      signal,
    });
  }

  private async pullLoop(subscription: Subscription, signal: AbortSignal): Promise<void> {
    const configured = this.options.pullTimeoutSeconds ?? 10;
    const limit = this.options.messageLimit ?? 16;
    const requestTimeout = 8000;
    while (!signal.aborted) {
      if (!subscription.renewUnsupported && this.now() >= subscription.renewAt) await this.renew(subscription, signal);
      // The long poll must end well before the renewal is due, or a short-lived subscription expires.
      const untilRenew = Math.max(0, subscription.renewAt - this.now());
      const pollSeconds = subscription.renewUnsupported ? configured : Math.max(1, Math.min(configured, Math.floor(untilRenew / 1000)));
      const response = await this.request(
        subscription,
        'PullMessages',
        EVENTS_ACTIONS.pull,
        `<tev:PullMessages><tev:Timeout>PT${pollSeconds}S</tev:Timeout><tev:MessageLimit>${limit}</tev:MessageLimit></tev:PullMessages>`,
        pollSeconds * 1000 + requestTimeout,
        signal,
      );
      if (subscription.renewUnsupported) this.updateLifetime(subscription, response, subscription.lifetimeMs);
      this.handle(response);
    }
  }

  private async renew(subscription: Subscription, signal: AbortSignal): Promise<void> {
    const seconds = this.options.subscriptionSeconds ?? 60;
    try {
      const response = await this.request(
        subscription,
        'Renew',
        EVENTS_ACTIONS.renew,
        `<wsnt:Renew><wsnt:TerminationTime>PT${seconds}S</wsnt:TerminationTime></wsnt:Renew>`,
        undefined,
        signal,
      );
      this.updateLifetime(subscription, response, seconds * 1000);
    } catch (error) {
      if (error instanceof OnvifError && error.code === 'ACTION_NOT_SUPPORTED') {
        // Such cameras extend the subscription on every PullMessages; keep pulling, track its times.
        this.log.debug('camera does not support Renew; relying on PullMessages to keep the subscription');
        subscription.renewUnsupported = true;
        return;
      }
      throw error;
    }
  }

  private handle(response: XmlElement): void {
    for (const message of parseNotificationMessages(response)) {
      const event = eventFromNotification(message, this.options.doorbellTopics);
      this.noteTopic(message.topicPath, event?.kind);
      if (!event) continue;
      if (event.kind === 'motion') {
        this.log.debug(`motion ${event.active ? 'on' : 'off'} (${event.operation ?? 'event'} ${event.topic})`);
        // Events without a PropertyOperation are pulses; a pulse "false" carries no information.
        this.motion.update(event.active, event.key, event.pulse);
        this.emit('motion', { topic: event.topic, active: event.active, operation: event.operation, key: event.key });
      }
      this.emit('event', event);
    }
  }

  /** Logs each topic the camera sends once (bounded: a chatty camera cannot fill the log). */
  private noteTopic(topicPath: string, kind: string | undefined): void {
    if (!topicPath || this.seenTopics.has(topicPath) || this.seenTopics.size >= 64) return;
    this.seenTopics.add(topicPath);
    this.log.info(`ONVIF event topic from the camera: ${topicPath} (${kind ?? 'not used by the plugin'})`);
  }
}

function sleep(timers: TimerSeam, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer: TimerHandle = timers.setTimeout(done, ms);
    function done(): void {
      timers.clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
