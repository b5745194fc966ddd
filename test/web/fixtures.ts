/**
 * Fakes for the web layer's seams: a camera Source that only has state and tracks (no media), a
 * registry over them, and small raw-HTTP helpers for requests fetch() would normalise away.
 */
import { EventEmitter } from 'node:events';
import { connect } from 'node:net';
import type { FrameSink, SourceState, SourceStats, TrackDescription } from '../../src/media/types.js';
import type { BroadcastSource, CameraRegistry } from '../../src/web/types.js';

export const H264_TRACK: TrackDescription = {
  kind: 'video',
  codec: 'H264',
  payloadType: 96,
  clockRate: 90000,
  fmtp: { 'packetization-mode': '1', 'profile-level-id': '42e01f' },
  controlUrl: 'rtsp://admin:hunter2-secret@192.168.77.10:554/stream1/trackID=0',
};

export const PCMU_TRACK: TrackDescription = {
  kind: 'audio',
  codec: 'PCMU',
  payloadType: 0,
  clockRate: 8000,
  channels: 1,
  fmtp: {},
  controlUrl: 'rtsp://admin:hunter2-secret@192.168.77.10:554/stream1/trackID=1',
};

export interface FakeStats {
  width?: number;
  height?: number;
  fps?: number;
  bitrateBps?: number;
  subscribers?: number;
}

/** A Source with state, tracks and stats but no media. Extra fields mimic what a real one may hold. */
export class FakeSource extends EventEmitter implements BroadcastSource {
  tracks: ReadonlyArray<TrackDescription>;
  state: SourceState;
  /** Like a real Source, it knows its camera URL (with the password). The API must never show it. */
  readonly url: string;
  currentStats: FakeStats;

  constructor(
    readonly id: string,
    readonly name: string,
    options: { state?: SourceState; tracks?: ReadonlyArray<TrackDescription>; stats?: FakeStats } = {},
  ) {
    super();
    this.state = options.state ?? { state: 'idle' };
    this.tracks = options.tracks ?? [];
    this.currentStats = options.stats ?? {};
    this.url = 'rtsp://admin:hunter2-secret@192.168.77.10:554/stream1';
  }

  /** A full `SourceStats`: what the fake was given, over the figures of a camera that sends nothing. */
  stats(): SourceStats {
    return {
      id: this.id,
      name: this.name,
      state: this.state.state,
      subscribers: 0,
      reconnects: 0,
      bitrateBps: 0,
      packetsReceived: 0,
      packetsLost: 0,
      gopCacheBytes: 0,
      gopCacheFrames: 0,
      ...this.currentStats,
    };
  }

  subscribe(_sink: FrameSink): { unsubscribe(): void } {
    return { unsubscribe: () => undefined };
  }

  requestKeyframe(_sink: FrameSink): void {}

  setState(state: SourceState): void {
    this.state = state;
    this.emit('state', state);
  }
}

export function registryOf(sources: ReadonlyArray<BroadcastSource>): CameraRegistry {
  return {
    get: (id) => sources.find((source) => source.id === id),
    list: () => sources,
  };
}

/** Three cameras in different states, as the page tests and screenshots use. */
export function sampleCameras(): FakeSource[] {
  return [
    new FakeSource('front-door', 'Front door', {
      state: { state: 'live' },
      tracks: [H264_TRACK, PCMU_TRACK],
      stats: { width: 1280, height: 720, fps: 25, bitrateBps: 2_150_000, subscribers: 2 },
    }),
    new FakeSource('garden', 'Garden', {
      state: {
        state: 'retrying',
        lastError: 'connect ECONNREFUSED rtsp://admin:hunter2-secret@192.168.77.10:554/stream1',
        retryInMs: 4000,
      },
      tracks: [H264_TRACK],
    }),
    new FakeSource('garage', 'Garage', { state: { state: 'idle' } }),
  ];
}

export interface RawResponse {
  status: number;
  head: string;
  body: string;
}

/** Sends bytes exactly as given (fetch would resolve `..` and reject odd targets before sending). */
export function rawRequest(port: number, text: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('connect', () => socket.write(text));
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const all = Buffer.concat(chunks).toString('latin1');
      const split = all.indexOf('\r\n\r\n');
      const head = split >= 0 ? all.slice(0, split) : all;
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, head, body: split >= 0 ? all.slice(split + 4) : '' });
    });
    socket.setTimeout(5000, () => socket.destroy());
  });
}
