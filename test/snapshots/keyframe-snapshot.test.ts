// The keyframe snapshot's pure parts: JPEG recognition, Annex-B assembly with the parameter sets in
// front, and taking the first keyframe from a (fake) Source, on time or not at all.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { isJpeg, takeKeyframe, toAnnexB, type SnapshotFrameSource } from '../../src/snapshots/keyframe-snapshot.js';
import type { FrameSink, MediaFrame, TrackDescription } from '../../src/media/types.js';

const SC = [0, 0, 0, 1];
const SPS = Buffer.from([0x67, 0x42, 0x00, 0x1f]);
const PPS = Buffer.from([0x68, 0xce, 0x3c, 0x80]);
const IDR = Buffer.from([0x65, 0x88, 0x84]);
const NON_IDR = Buffer.from([0x41, 0x9a]);

function track(parameterSets?: Buffer[]): TrackDescription {
  return { kind: 'video', codec: 'H264', payloadType: 96, clockRate: 90_000, fmtp: {}, controlUrl: 'rtsp://x/track1', ...(parameterSets ? { parameterSets } : {}) };
}

function frame(units: Buffer[], extra: Partial<MediaFrame> = {}): MediaFrame {
  return { kind: 'video', codec: 'H264', clockRate: 90_000, timestamp: 0, sequenceNumber: 0, keyframe: true, units, packets: [], receivedAt: 42, ...extra };
}

describe('isJpeg', () => {
  it('recognises the FF D8 start and refuses anything shorter than three bytes', () => {
    assert.equal(isJpeg(Buffer.from([0xff, 0xd8, 0xff, 0xe0])), true);
    assert.equal(isJpeg(Buffer.from([0xff, 0xd8])), false);
    assert.equal(isJpeg(Buffer.from([0x89, 0x50, 0x4e, 0x47])), false, 'a PNG');
    assert.equal(isJpeg(Buffer.alloc(0)), false);
  });
});

describe('toAnnexB', () => {
  it('puts the track\'s parameter sets in front of a keyframe that lacks them', () => {
    const out = toAnnexB(frame([IDR]), [track([SPS, PPS])])!;
    assert.equal(out.codec, 'h264');
    assert.equal(out.receivedAt, 42);
    assert.deepEqual([...out.annexB], [...SC, ...SPS, ...SC, ...PPS, ...SC, ...IDR]);
  });

  it('keeps the frame\'s own parameter sets and adds none; empty units are skipped', () => {
    const out = toAnnexB(frame([SPS, Buffer.alloc(0), PPS, IDR]), [track([Buffer.from([0x67, 0x64])])])!;
    assert.deepEqual([...out.annexB], [...SC, ...SPS, ...SC, ...PPS, ...SC, ...IDR]);
  });

  it('uses H.265 NAL types for H.265 (VPS/SPS/PPS are 32-34)', () => {
    const vps = Buffer.from([0x40, 0x01, 0x0c]);
    const idr = Buffer.from([0x26, 0x01, 0xaf]);
    const withSets = toAnnexB(frame([vps, idr], { codec: 'H265' }), [track([SPS])])!;
    assert.equal(withSets.codec, 'h265');
    assert.deepEqual([...withSets.annexB], [...SC, ...vps, ...SC, ...idr], 'the frame carried a VPS: nothing added');
  });

  it('is undefined for a codec ffmpeg is not asked to decode this way', () => {
    assert.equal(toAnnexB(frame([Buffer.from([1])], { codec: 'VP8' }), []), undefined);
  });

  it('without parameter sets anywhere, gives the frame alone', () => {
    assert.deepEqual([...toAnnexB(frame([IDR]), [])!.annexB], [...SC, ...IDR]);
  });
});

/** A Source stand-in: the test pushes frames to whoever subscribed. */
function fakeSource(tracks: TrackDescription[] = [track([SPS, PPS])]) {
  const sinks = new Set<FrameSink>();
  let unsubscribed = 0;
  const kinds: unknown[] = [];
  const source: SnapshotFrameSource = {
    state: { state: 'live' },
    tracks,
    subscribe(sink, options) {
      sinks.add(sink);
      kinds.push(options?.kinds);
      return { unsubscribe: () => { sinks.delete(sink); unsubscribed++; } };
    },
  };
  return {
    source,
    kinds,
    push: (f: MediaFrame) => { for (const s of sinks) s.write(f); },
    announce: (t: TrackDescription[]) => { for (const s of sinks) s.onTracks?.(t); },
    get unsubscribed() { return unsubscribed; },
    get subscribers() { return sinks.size; },
  };
}

describe('takeKeyframe', () => {
  it('skips delta frames, takes the first keyframe, asks for video only and unsubscribes', async () => {
    const cam = fakeSource();
    const taking = takeKeyframe(cam.source, 5000);
    cam.push(frame([NON_IDR], { keyframe: false }));
    cam.push(frame([IDR], { receivedAt: 7 }));
    const key = await taking;
    assert.equal(key?.receivedAt, 7);
    assert.deepEqual([...key!.annexB], [...SC, ...SPS, ...SC, ...PPS, ...SC, ...IDR]);
    assert.deepEqual(cam.kinds, [['video']]);
    assert.equal(cam.unsubscribed, 1);
    assert.equal(cam.subscribers, 0);
  });

  it('prefers the tracks the sink was told about (a camera restart with new parameter sets)', async () => {
    const cam = fakeSource([track([Buffer.from([0x67, 0x01])])]);
    const taking = takeKeyframe(cam.source, 5000);
    const newSps = Buffer.from([0x67, 0x02]);
    cam.announce([track([newSps])]);
    cam.push(frame([IDR]));
    assert.deepEqual([...(await taking)!.annexB], [...SC, ...newSps, ...SC, ...IDR]);
  });

  it('resolves undefined when no keyframe comes in time, or when the caller aborts', async (t) => {
    const cam = fakeSource();
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let settled = false;
    const late = takeKeyframe(cam.source, 2000).finally(() => { settled = true; });
    cam.push(frame([NON_IDR], { keyframe: false }));
    t.mock.timers.tick(1999);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false, 'still waiting 1 ms before the limit');
    t.mock.timers.tick(1);
    assert.equal(await late, undefined);
    assert.equal(cam.unsubscribed, 1);
    const controller = new AbortController();
    const taking = takeKeyframe(cam.source, 60_000, controller.signal);
    cam.push(frame([NON_IDR], { keyframe: false }));
    controller.abort();
    assert.equal(await taking, undefined);
    assert.equal(cam.subscribers, 0);
  });
});
