/**
 * A bounded in-memory queue that is a FrameSink on one side and an async iterator on the other:
 * how in-process consumers (snapshots, tests, the bench) read a Source. `write` refuses a frame
 * that does not fit and returns false, which tells the Source to cut this consumer back to the
 * next keyframe; memory therefore stays bounded however slow the reader is.
 */
import type { FrameSink, MediaFrame, SourceState, TrackDescription } from './types.js';
import { frameByteLength } from './frame.js';

export interface QueuedSinkOptions {
  /** Bytes of encoded media queued at most (default 8 MiB; more than one 4 MiB GOP replay). */
  maxBytes?: number;
  /** Frames queued at most (default 512). */
  maxFrames?: number;
  /** End the iteration when the Source reports `stopped` (default true). */
  closeOnStop?: boolean;
}

export class QueuedSink implements FrameSink, AsyncIterable<MediaFrame> {
  readonly maxBytes: number;
  readonly maxFrames: number;
  /** The latest tracks and state the Source reported. */
  tracks: ReadonlyArray<TrackDescription> = [];
  state: SourceState | undefined;
  /** Frames refused because the queue was full. */
  rejected = 0;

  private queue: Array<MediaFrame | undefined> = [];
  private head = 0;
  private bytes = 0;
  private isClosed = false;
  private readonly closeOnStop: boolean;
  private readonly waiters: Array<(frame: MediaFrame | undefined) => void> = [];

  constructor(options: QueuedSinkOptions = {}) {
    this.maxBytes = options.maxBytes ?? 8 * 1024 * 1024;
    this.maxFrames = options.maxFrames ?? 512;
    this.closeOnStop = options.closeOnStop ?? true;
  }

  write(frame: MediaFrame): boolean {
    if (this.isClosed) return false;
    const waiter = this.waiters.shift();
    if (waiter) {
      // A reader is already waiting: hand over directly, the queue stays empty.
      waiter(frame);
      return true;
    }
    const size = frameByteLength(frame);
    const count = this.queue.length - this.head;
    // An empty queue always takes one frame, so a keyframe bigger than maxBytes still gets through.
    if (count > 0 && (count >= this.maxFrames || this.bytes + size > this.maxBytes)) {
      this.rejected++;
      return false;
    }
    this.queue.push(frame);
    this.bytes += size;
    return true;
  }

  onTracks(tracks: ReadonlyArray<TrackDescription>): void {
    this.tracks = tracks;
  }

  onState(state: SourceState): void {
    this.state = state;
    if (state.state === 'stopped' && this.closeOnStop) this.close();
  }

  /** The next frame if one is queued, without waiting. */
  tryRead(): MediaFrame | undefined {
    if (this.head >= this.queue.length) return undefined;
    const frame = this.queue[this.head]!;
    this.queue[this.head++] = undefined; // let the frame go as soon as it is read
    this.bytes -= frameByteLength(frame);
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return frame;
  }

  /** Waits for the next frame; undefined once the sink is closed and drained, or `signal` aborts. */
  read(signal?: AbortSignal): Promise<MediaFrame | undefined> {
    const queued = this.tryRead();
    if (queued || this.isClosed || signal?.aborted) return Promise.resolve(queued);
    return new Promise((resolve) => {
      const onAbort = (): void => {
        const index = this.waiters.indexOf(deliver);
        if (index >= 0) this.waiters.splice(index, 1);
        resolve(undefined);
      };
      const deliver = (frame: MediaFrame | undefined): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(frame);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(deliver);
    });
  }

  /** Stops accepting frames; readers get what is queued, then undefined / the end of iteration. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Frames queued. */
  get length(): number {
    return this.queue.length - this.head;
  }

  /** Encoded bytes queued. */
  get byteLength(): number {
    return this.bytes;
  }

  [Symbol.asyncIterator](): AsyncIterator<MediaFrame> {
    return {
      next: async (): Promise<IteratorResult<MediaFrame>> => {
        const frame = await this.read();
        return frame ? { value: frame, done: false } : { value: undefined, done: true };
      },
      // Breaking out of `for await` closes the sink so the Source's writes start failing fast.
      return: async (): Promise<IteratorResult<MediaFrame>> => {
        this.close();
        return { value: undefined, done: true };
      },
    };
  }
}
