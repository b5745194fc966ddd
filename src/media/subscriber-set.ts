/**
 * The Source's subscribers and the fan-out to them: per-subscriber backpressure (a sink that
 * refuses a frame is cut back to the next keyframe, counted, and never slows the others), GOP
 * replay for new subscribers and keyframe requests, and a copy-on-write list so that
 * (un)subscribing from inside a sink's `write` is safe.
 */
import type { Logger } from '../util/logger.js';
import type { FrameSink, MediaFrame, SourceState, Subscription, SubscriptionStats, SubscribeOptions, TrackDescription } from './types.js';

class SubscriptionImpl implements Subscription {
  active = true;
  delivered = 0;
  dropped = 0;
  dropsToKeyframe = 0;
  replays = 0;
  lastReplayAt = Number.NEGATIVE_INFINITY;
  /** Video held back until a keyframe. */
  waitingKeyframe = true;
  /** ...because the sink was congested (counts as drops) rather than because it just joined. */
  cutBack = false;
  private warnedThrow = false;

  constructor(
    readonly sink: FrameSink,
    readonly video: boolean,
    readonly audio: boolean,
    private readonly owner: SubscriberSet,
    private readonly log: Logger,
  ) {}

  unsubscribe(): void {
    if (!this.active) return;
    this.active = false;
    this.owner.remove(this);
  }

  stats(): SubscriptionStats {
    return {
      delivered: this.delivered,
      dropped: this.dropped,
      dropsToKeyframe: this.dropsToKeyframe,
      replays: this.replays,
      waitingForKeyframe: this.waitingKeyframe,
    };
  }

  /** The fan-out hot path: called once per frame per subscriber. */
  offer(frame: MediaFrame): void {
    if (!this.active) return; // unsubscribed by an earlier sink's write during this same frame
    if (frame.kind === 'video') {
      if (!this.video) return;
      if (this.waitingKeyframe) {
        if (!frame.keyframe) {
          if (this.cutBack) this.dropped++;
          return;
        }
        this.waitingKeyframe = false;
        this.cutBack = false;
      }
    } else if (!this.audio) {
      return;
    }
    let accepted: boolean;
    try {
      accepted = this.sink.write(frame);
    } catch (error) {
      // A throwing sink is treated as congested; it must not break delivery to the others.
      accepted = false;
      if (!this.warnedThrow) {
        this.warnedThrow = true;
        this.log.warn(`a subscriber's write failed: ${String(error)}`);
      }
    }
    if (accepted) {
      this.delivered++;
      return;
    }
    this.dropped++;
    if (frame.kind === 'video') {
      this.waitingKeyframe = true;
      this.cutBack = true;
      this.dropsToKeyframe++;
    }
  }

  /** Sends the cached GOP (`frames`, oldest first) to this sink, video from its keyframe. */
  replay(frames: ReadonlyArray<MediaFrame>, withAudio: boolean): void {
    if (!this.video || frames.length === 0) {
      // Nothing to start video from: hold it until the next live keyframe.
      this.waitingKeyframe = true;
      if (withAudio) for (const frame of frames) if (frame.kind === 'audio') this.offer(frame);
      return;
    }
    this.waitingKeyframe = true;
    this.cutBack = false;
    for (const frame of frames) {
      if (!this.active) return;
      if (frame.kind === 'audio' && !withAudio) continue;
      this.offer(frame);
    }
  }

  notifyState(state: SourceState): void {
    try {
      this.sink.onState?.(state);
    } catch (error) {
      this.log.debug(`a subscriber's onState failed: ${String(error)}`);
    }
  }

  notifyTracks(tracks: ReadonlyArray<TrackDescription>): void {
    try {
      this.sink.onTracks?.(tracks);
    } catch (error) {
      this.log.debug(`a subscriber's onTracks failed: ${String(error)}`);
    }
  }
}

export class SubscriberSet {
  private readonly bySink = new Map<FrameSink, SubscriptionImpl>();
  /** Copy-on-write list iterated by the fan-out, so (un)subscribing inside a write is safe. */
  private list: ReadonlyArray<SubscriptionImpl> = [];

  /** `onEmpty` runs when the last subscriber left by unsubscribing. */
  constructor(
    private readonly log: Logger,
    private readonly onEmpty: () => void,
  ) {}

  get size(): number {
    return this.list.length;
  }

  has(sink: FrameSink): boolean {
    return this.bySink.has(sink);
  }

  get(sink: FrameSink): SubscriptionImpl | undefined {
    return this.bySink.get(sink);
  }

  add(sink: FrameSink, options: SubscribeOptions): SubscriptionImpl {
    const kinds = options.kinds ?? ['video', 'audio'];
    const subscription = new SubscriptionImpl(sink, kinds.includes('video'), kinds.includes('audio'), this, this.log);
    this.bySink.set(sink, subscription);
    this.list = [...this.list, subscription];
    return subscription;
  }

  /** Called by `Subscription.unsubscribe`. */
  remove(subscription: SubscriptionImpl): void {
    if (this.bySink.get(subscription.sink) !== subscription) return;
    this.bySink.delete(subscription.sink);
    this.list = this.list.filter((s) => s !== subscription);
    if (this.list.length === 0) this.onEmpty();
  }

  /** One frame to every subscriber. */
  offer(frame: MediaFrame): void {
    const subscriptions = this.list;
    for (let i = 0; i < subscriptions.length; i++) subscriptions[i]!.offer(frame);
  }

  notifyState(state: SourceState): void {
    for (const subscription of this.list) subscription.notifyState(state);
  }

  notifyTracks(tracks: ReadonlyArray<TrackDescription>): void {
    for (const subscription of this.list) subscription.notifyTracks(tracks);
  }

  /** The Source closed: every subscription ends without being told one by one. */
  clear(): void {
    for (const subscription of this.list) subscription.active = false;
    this.list = [];
    this.bySink.clear();
  }
}
