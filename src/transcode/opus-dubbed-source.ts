/**
 * A camera as browsers get it when they take its H.264 as it is but not its sound: the camera's own
 * video (untouched, its GOP cache, its keyframe answers), and in place of its AAC track the Opus
 * that the camera's one Opus encoder makes (opus-audio.ts). Viewers subscribe to this as to any
 * `BroadcastSource` and never know two Sources feed them.
 *
 * Each subscriber holds the camera's Source, and the Opus Source only while the camera's tracks
 * say AAC (so a camera that turns out to send G.711 or Opus never starts an encoder, and its own
 * sound passes through). A camera whose AAC ffmpeg cannot read from a pipe (AAC-LD/ELD) keeps its
 * AAC track here, and the viewer's plan drops it with the usual note.
 */
import type { BroadcastSource, FrameSink, MediaFrame, SourceState, SourceStats, SubscribeOptions, TrackDescription } from '../media/types.js';
import { aacInputConfig, OPUS_AUDIO_TRACK } from './opus-audio.js';

/** True when `track` is AAC this plugin can turn into Opus. */
export function opusCanDub(track: TrackDescription): boolean {
  if (track.kind !== 'audio' || track.codec !== 'AAC') return false;
  try {
    aacInputConfig(track);
    return true;
  } catch {
    return false;
  }
}

/** The camera's tracks as a dubbed viewer sees them: AAC that can be turned into Opus becomes Opus. */
export function dubbedTracks(tracks: ReadonlyArray<TrackDescription>): TrackDescription[] {
  return tracks.map((t) => (opusCanDub(t) ? OPUS_AUDIO_TRACK : t));
}

type Listener = (...args: unknown[]) => void;

export class OpusDubbedSource implements BroadcastSource {
  /** The sink each subscriber's video comes through, for keyframe requests. */
  private readonly cameraSinks = new Map<FrameSink, FrameSink>();
  private readonly trackListeners = new Map<Listener, Listener>();

  constructor(
    private readonly camera: BroadcastSource,
    /** The camera's Opus Source, made on first use. */
    private readonly opus: () => BroadcastSource,
  ) {}

  get id(): string {
    return this.camera.id;
  }

  get tracks(): ReadonlyArray<TrackDescription> {
    return dubbedTracks(this.camera.tracks);
  }

  get state(): SourceState {
    return this.camera.state;
  }

  stats(): SourceStats {
    return this.camera.stats();
  }

  requestKeyframe(sink: FrameSink): void {
    const cameraSink = this.cameraSinks.get(sink);
    if (cameraSink) this.camera.requestKeyframe(cameraSink);
  }

  subscribe(sink: FrameSink, options: SubscribeOptions = {}): { unsubscribe(): void } {
    const kinds = options.kinds ?? ['video', 'audio'];
    const wantsAudio = kinds.includes('audio');
    let opusSubscription: { unsubscribe(): void } | undefined;
    let active = true;
    // The Opus Source's frames go straight to the sink; its tracks and state are not the camera's.
    const opusSink: FrameSink = { write: (frame) => sink.write(frame) };
    const followTracks = (tracks: ReadonlyArray<TrackDescription>): void => {
      // A camera whose video no browser takes as it is (H.265) sends its viewers to a variant,
      // which has its own Opus: no sound encoder for the moment before that.
      const videoPasses = tracks.every((t) => t.kind !== 'video' || t.codec === 'H264');
      const dub = active && wantsAudio && videoPasses && tracks.some(opusCanDub);
      if (dub && !opusSubscription) opusSubscription = this.opus().subscribe(opusSink, { kinds: ['audio'], fromKeyframe: false });
      else if (!dub && opusSubscription) {
        opusSubscription.unsubscribe();
        opusSubscription = undefined;
      }
    };
    const cameraSink: FrameSink = {
      // The camera's AAC never reaches a browser; any other sound passes.
      write: (frame: MediaFrame) => (frame.kind === 'audio' && frame.codec === 'AAC' ? true : sink.write(frame)),
      onTracks: (tracks) => {
        followTracks(tracks);
        sink.onTracks?.(dubbedTracks(tracks));
      },
      ...(sink.onState ? { onState: (state: SourceState) => sink.onState?.(state) } : {}),
    };
    this.cameraSinks.set(sink, cameraSink);
    const cameraSubscription = this.camera.subscribe(cameraSink, { ...options, kinds });
    followTracks(this.camera.tracks);
    return {
      unsubscribe: () => {
        active = false;
        cameraSubscription.unsubscribe();
        opusSubscription?.unsubscribe();
        opusSubscription = undefined;
        this.cameraSinks.delete(sink);
      },
    };
  }

  on(event: 'tracks' | 'state', listener: Listener): this {
    if (event === 'state') {
      this.camera.on(event, listener);
      return this;
    }
    const mapped: Listener = (tracks) => listener(dubbedTracks(tracks as ReadonlyArray<TrackDescription>));
    this.trackListeners.set(listener, mapped);
    this.camera.on(event, mapped);
    return this;
  }

  off(event: 'tracks' | 'state', listener: Listener): this {
    if (event === 'state') {
      this.camera.off(event, listener);
      return this;
    }
    const mapped = this.trackListeners.get(listener);
    if (mapped) {
      this.trackListeners.delete(listener);
      this.camera.off(event, mapped);
    }
    return this;
  }
}
