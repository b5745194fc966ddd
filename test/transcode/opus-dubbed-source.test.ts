/**
 * The camera as H.264 browsers get it (src/transcode/opus-dubbed-source.ts): its video from its own
 * Source, its AAC sound from the Opus Source. Routing only, with two stand-in Sources; the real
 * encoder is in opus-audio.test.ts and the whole chain in a browser in test/e2e/.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FrameSink, MediaFrame, SourceState, TrackDescription } from '../../src/media/types.js';
import { OPUS_AUDIO_TRACK } from '../../src/transcode/opus-audio.js';
import { OpusDubbedSource } from '../../src/transcode/opus-dubbed-source.js';
import { AAC_TRACK, H264_TRACK, PCMU_TRACK, StandInSource } from '../helpers/stand-in-source.js';

const H264 = H264_TRACK;
const AAC = AAC_TRACK;
const AAC_ELD: TrackDescription = { ...AAC, fmtp: { config: 'F8F0212C00BC00' } };
const PCMU = PCMU_TRACK;

class Viewer implements FrameSink {
  frames: string[] = [];
  tracks: string[][] = [];
  states: string[] = [];
  write(frame: MediaFrame): boolean {
    this.frames.push(`${frame.kind}:${frame.codec}`);
    return true;
  }
  onTracks(tracks: ReadonlyArray<TrackDescription>): void {
    this.tracks.push(tracks.map((t) => t.codec));
  }
  onState(state: SourceState): void {
    this.states.push(state.state);
  }
}

function setup() {
  const camera = new StandInSource('cam');
  const opus = new StandInSource('cam');
  let opusMade = 0;
  const dubbed = new OpusDubbedSource(camera, () => {
    opusMade++;
    return opus;
  });
  return { camera, opus, dubbed, made: () => opusMade };
}

describe('OpusDubbedSource', () => {
  it('an AAC camera: video from the camera, sound from the Opus Source, the AAC never reaches the viewer', () => {
    const { camera, opus, dubbed } = setup();
    const viewer = new Viewer();
    const subscription = dubbed.subscribe(viewer);
    assert.equal(camera.sinks.size, 1);
    assert.equal(opus.sinks.size, 0, 'no encoder before the camera says its sound is AAC');
    camera.describe([H264, AAC]);
    assert.deepEqual(viewer.tracks, [['H264', 'OPUS']], 'the viewer is told Opus');
    assert.deepEqual(dubbed.tracks, [H264, OPUS_AUDIO_TRACK]);
    assert.deepEqual([...opus.sinks.values()], [{ kinds: ['audio'], fromKeyframe: false }]);
    camera.push({ kind: 'video', codec: 'H264' });
    camera.push({ kind: 'audio', codec: 'AAC' });
    opus.push({ kind: 'audio', codec: 'OPUS' });
    assert.deepEqual(viewer.frames, ['video:H264', 'audio:OPUS']);
    // A keyframe request goes to the camera, under the sink the camera knows.
    dubbed.requestKeyframe(viewer);
    assert.deepEqual(camera.keyframeRequests, [...camera.sinks.keys()]);
    subscription.unsubscribe();
    assert.equal(camera.sinks.size, 0);
    assert.equal(opus.sinks.size, 0, 'the last viewer gone, nothing holds the encoder');
  });

  it('a camera whose sound a browser takes (G.711) never starts the encoder and its sound passes', () => {
    const { camera, opus, dubbed, made } = setup();
    camera.describe([H264, PCMU]);
    const viewer = new Viewer();
    dubbed.subscribe(viewer);
    camera.push({ kind: 'audio', codec: 'PCMU' });
    assert.deepEqual(viewer.frames, ['audio:PCMU']);
    assert.equal(opus.sinks.size, 0);
    assert.equal(made(), 0, 'the Opus Source is not even made');
    assert.deepEqual(dubbed.tracks, [H264, PCMU]);
  });

  it('an H.265 + AAC camera starts no sound encoder: its viewers are about to move to a variant with its own Opus', () => {
    const { camera, opus, dubbed, made } = setup();
    camera.describe([{ ...H264, codec: 'H265' }, AAC]);
    dubbed.subscribe(new Viewer());
    assert.equal(opus.sinks.size, 0);
    assert.equal(made(), 0);
  });

  it('a video-only viewer, and AAC that cannot be read from a pipe (ELD), start no encoder; the ELD track stays AAC for the plan to drop', () => {
    const { camera, opus, dubbed } = setup();
    camera.describe([H264, AAC]);
    dubbed.subscribe(new Viewer(), { kinds: ['video'] });
    assert.equal(opus.sinks.size, 0);
    const eld = setup();
    eld.camera.describe([H264, AAC_ELD]);
    eld.dubbed.subscribe(new Viewer());
    assert.equal(eld.opus.sinks.size, 0);
    assert.deepEqual(eld.dubbed.tracks, [H264, AAC_ELD]);
  });

  it('a camera that comes back with G.711 instead of AAC lets go of the encoder; state and track events are the camera\'s', () => {
    const { camera, opus, dubbed } = setup();
    const viewer = new Viewer();
    dubbed.subscribe(viewer);
    camera.describe([H264, AAC]);
    assert.equal(opus.sinks.size, 1);
    const heard: string[][] = [];
    const listener = (tracks: unknown): void => {
      heard.push((tracks as TrackDescription[]).map((t) => t.codec));
    };
    dubbed.on('tracks', listener);
    camera.describe([H264, PCMU]);
    assert.equal(opus.sinks.size, 0);
    assert.deepEqual(viewer.tracks.at(-1), ['H264', 'PCMU']);
    dubbed.off('tracks', listener);
    camera.describe([H264, AAC]);
    assert.deepEqual(heard, [['H264', 'PCMU']], 'the listener got mapped tracks, and none after off()');
    assert.equal(camera.listenerCount('tracks'), 0);
    camera.state = { state: 'live' };
    assert.equal(dubbed.state.state, 'live');
    assert.equal(dubbed.id, 'cam');
  });
});
