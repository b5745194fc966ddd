/**
 * The only thing src/webrtc needs from a camera (docs/design.md, "Viewer-side seam"). `Source`
 * (src/media/source.ts) satisfies it, and so can a transcoded variant of a camera (a later issue):
 * a viewer never knows which one it is fed from.
 */
import type { FrameSink, SourceState, TrackDescription } from '../media/types.js';

export type { FrameSink, MediaFrame, SourceState, TrackDescription } from '../media/types.js';

export interface BroadcastSource {
  readonly id: string;                        // camera id, the only name a viewer ever uses
  readonly tracks: ReadonlyArray<TrackDescription>;   // empty until the first connect
  readonly state: SourceState;
  subscribe(sink: FrameSink, options?: { kinds?: Array<'video' | 'audio'> }): { unsubscribe(): void };
  requestKeyframe(sink: FrameSink): void;      // re-send the cached GOP to that sink (PLI/FIR answer)
  on(event: 'tracks' | 'state', listener: (...args: unknown[]) => void): this;
  off(event: 'tracks' | 'state', listener: (...args: unknown[]) => void): this;
}
