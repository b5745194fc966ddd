// A BroadcastSource that is nothing but its tracks, its subscribers and what was asked of it: for
// tests of who routes which Source where (signalling's variant choice, the Opus-dubbed camera),
// where a real camera would add nothing but time. The media itself is tested with real cameras.
import { EventEmitter } from 'node:events';
import type { BroadcastSource, FrameSink, MediaFrame, SourceState, SourceStats, SubscribeOptions, TrackDescription } from '../../src/media/types.js';

export const H264_TRACK: TrackDescription = { kind: 'video', codec: 'H264', payloadType: 96, clockRate: 90_000, fmtp: { 'packetization-mode': '1' }, controlUrl: 'v' };
export const H265_TRACK: TrackDescription = { kind: 'video', codec: 'H265', payloadType: 96, clockRate: 90_000, fmtp: {}, controlUrl: 'v' };
export const VP8_TRACK: TrackDescription = { kind: 'video', codec: 'VP8', payloadType: 96, clockRate: 90_000, fmtp: {}, controlUrl: 'v' };
export const AAC_TRACK: TrackDescription = { kind: 'audio', codec: 'AAC', payloadType: 97, clockRate: 16_000, fmtp: { config: '1408' }, controlUrl: 'a' };
export const PCMU_TRACK: TrackDescription = { kind: 'audio', codec: 'PCMU', payloadType: 0, clockRate: 8000, fmtp: {}, controlUrl: 'a' };

export class StandInSource extends EventEmitter implements BroadcastSource {
  readonly sinks = new Map<FrameSink, SubscribeOptions>();
  readonly keyframeRequests: FrameSink[] = [];
  state: SourceState = { state: 'idle' };
  constructor(readonly id: string, public tracks: ReadonlyArray<TrackDescription> = []) {
    super();
    if (tracks.length > 0) this.state = { state: 'live' };
  }
  subscribe(sink: FrameSink, options: SubscribeOptions = {}): { unsubscribe(): void } {
    this.sinks.set(sink, options);
    return { unsubscribe: () => this.sinks.delete(sink) };
  }
  requestKeyframe(sink: FrameSink): void {
    this.keyframeRequests.push(sink);
  }
  stats(): SourceStats {
    return { id: this.id, name: this.id, state: this.state.state, subscribers: this.sinks.size, reconnects: 0, bitrateBps: 0, packetsReceived: 0, packetsLost: 0, gopCacheBytes: 0, gopCacheFrames: 0 };
  }
  /** The camera (re)described its tracks. */
  describe(tracks: TrackDescription[]): void {
    this.tracks = tracks;
    for (const sink of [...this.sinks.keys()]) sink.onTracks?.(tracks);
    this.emit('tracks', tracks);
  }
  push(frame: Partial<MediaFrame> & Pick<MediaFrame, 'kind' | 'codec'>): void {
    for (const sink of [...this.sinks.keys()]) sink.write({ clockRate: 1, timestamp: 0, sequenceNumber: 0, keyframe: true, units: [], packets: [], receivedAt: 0, ...frame });
  }
}
