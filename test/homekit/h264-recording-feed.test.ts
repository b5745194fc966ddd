/**
 * An H.265 camera recorded as H.264 (src/homekit/recording/h264-recording-feed.ts): the GStreamer
 * camera (H.265 640x360 25 fps, 2 s GOP, AAC-LC) behind the real RTSP client and Source, the real
 * ffmpeg/libx264 as the encoder. What a recording needs of it: H.264 frames on the camera's own
 * clock (each one's timestamp a camera frame's, keyframes exactly the camera's), the camera's
 * sound in the camera's order among them, a decodable fMP4, one encoder, and an encoder that dies
 * started again without the sound stopping.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runningFfmpegCount, runningFfmpegPids } from '../../src/ffmpeg/ffmpeg-process.js';
import { H264RecordingFeed } from '../../src/homekit/recording/h264-recording-feed.js';
import { avcConfigFromKeyframe, Fmp4Muxer } from '../../src/media/fmp4/muxer.js';
import type { MediaFrame } from '../../src/media/types.js';
import { decodeVideo, probe } from '../helpers/ffprobe.js';
import { memoryLogger, startCameraRig, waitFor, type CameraRig } from './camera-rig.js';

const GOP_FRAMES = 50;

/** A frame's identity on the camera's clock. */
const key = (f: MediaFrame): string => `${f.kind}:${f.timestamp}`;

describe('an H.265 camera recorded as H.264, from the real camera and the real ffmpeg', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  let rig: CameraRig;

  it("H.264 on the camera's clock: keyframes exactly the camera's, the sound in camera order, a decodable fMP4, one encoder, gone with the last subscriber", async (t) => {
    rig = await startCameraRig({ codec: 'h265', audio: 'aac', keyframeIntervalFrames: GOP_FRAMES });
    cleanup.push(() => rig.close());
    // Everything the camera's Source delivers, from before the feed starts.
    const camera: MediaFrame[] = [];
    const direct = rig.source.subscribe({ write: (frame) => (camera.push(frame), true) });
    cleanup.push(() => direct.unsubscribe());
    await waitFor(() => camera.some((f) => f.kind === 'video' && f.codec === 'H265'), 20_000, "the camera's first H.265 frame");

    const log = memoryLogger();
    const ffmpegBefore = runningFfmpegCount();
    const feed = new H264RecordingFeed({ source: rig.source, ffmpeg: rig.ffmpeg, log, bitrateKbps: () => 800 });
    assert.deepEqual(feed.tracks.map((track) => [track.kind, track.codec]), [['video', 'H264'], ['audio', 'AAC']]);
    const out: MediaFrame[] = [];
    const subscription = feed.subscribe({ write: (frame) => (out.push(frame), true) });
    cleanup.push(() => subscription.unsubscribe());
    await waitFor(() => out.filter((f) => f.kind === 'video' && f.keyframe).length >= 3, 30_000, 'three H.264 keyframes from the feed');
    // And 2 s of sound after the first GOP out (under load the keyframes alone can come sooner).
    const liveSound = (): number => {
      const gopEnd = out.filter((f) => f.kind === 'video')[GOP_FRAMES];
      return gopEnd ? out.slice(out.indexOf(gopEnd)).filter((f) => f.kind === 'audio').length : 0;
    };
    await waitFor(() => liveSound() >= 25, 30_000, 'two seconds of sound after the first GOP');
    assert.equal(runningFfmpegCount(), ffmpegBefore + 1, 'one encoder');

    const video = out.filter((f) => f.kind === 'video');
    assert.ok(video.every((f) => f.codec === 'H264'), 'every video frame out is H.264');
    assert.ok(video[0]!.keyframe, 'the feed begins on a keyframe');
    const types = (f: MediaFrame): number[] => f.units.map((u) => u[0]! & 0x1f);
    for (const frame of video.filter((f) => f.keyframe)) {
      assert.ok([7, 8, 5].every((type) => types(frame).includes(type)), `a keyframe carries SPS, PPS and an IDR: ${types(frame).join(' ')}`);
    }
    assert.ok(video.every((f) => !types(f).includes(9)), 'no access unit delimiter is left in a frame');
    // Each frame out is a camera frame, by its timestamp, keyframe for keyframe.
    const cameraVideo = new Map(camera.filter((f) => f.kind === 'video').map((f) => [f.timestamp, f]));
    for (const frame of video) {
      const original = cameraVideo.get(frame.timestamp);
      assert.ok(original, `H.264 frame at ${frame.timestamp} has a camera frame's timestamp`);
      assert.equal(frame.keyframe, original.keyframe, `keyframe out exactly where the camera had one (${frame.timestamp})`);
    }
    // No camera frame skipped between the first and the last frame out.
    const first = camera.findIndex((f) => key(f) === key(video[0]!));
    const last = camera.findIndex((f) => key(f) === key(video.at(-1)!));
    assert.equal(video.length, camera.slice(first, last + 1).filter((f) => f.kind === 'video').length, 'one frame out per camera frame');
    // The sound, interleaved as the camera sent it (the replayed GOP aside: compare the live part).
    const liveFrom = out.findIndex((f) => f.kind === 'video' && f.timestamp === video[GOP_FRAMES]?.timestamp);
    assert.ok(liveFrom > 0, 'a GOP and more out');
    const liveOut = out.slice(liveFrom).map(key);
    const start = camera.findIndex((f) => key(f) === liveOut[0]);
    assert.deepEqual(liveOut, camera.slice(start, start + liveOut.length).map(key), 'the same frames in the same order as the camera sent them');
    // AAC at 16 kHz is 15.6 frames a second; the live part is a GOP (2 s) or more.
    assert.ok(liveOut.filter((k) => k.startsWith('audio')).length >= 25, 'the sound came through');
    const stats = feed.stats();
    assert.equal(stats.framesLost, 0, JSON.stringify(stats));
    t.diagnostic(`feed: ${JSON.stringify(stats)}`);

    // The fMP4 a recording is made of: decodable, frame for frame.
    const muxer = new Fmp4Muxer({ video: avcConfigFromKeyframe(video[0]!) });
    const fragments: Buffer[] = [muxer.initSegment()];
    let gop: MediaFrame[] = [];
    for (const frame of video) {
      if (frame.keyframe && gop.length > 0) {
        fragments.push(muxer.fragment(gop));
        gop = [];
      }
      gop.push(frame);
    }
    const recorded = video.length - gop.length;
    const dir = await mkdtemp(join(tmpdir(), 'h265-recording-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'recording.mp4');
    await writeFile(file, Buffer.concat(fragments));
    const info = await probe(file);
    assert.deepEqual([info.video?.codecName, info.video?.width, info.video?.height], ['h264', 640, 360]);
    const decoded = await decodeVideo(file, { timeoutMs: 60_000 });
    assert.deepEqual(decoded.errors, []);
    assert.equal(decoded.videoFrames, recorded);

    subscription.unsubscribe();
    await waitFor(() => runningFfmpegCount() === ffmpegBefore, 10_000, 'the encoder to stop with the last subscriber');
    assert.equal(feed.stats().encoding, false);
    assert.equal(await rig.camera.sessionCount(), 1, 'one camera session');
    assert.match(log.text(), /re-encoded to H\.264 by one ffmpeg/);
  });

  it('an encoder that dies: its frames are lost, the sound goes on, a new one starts at the next keyframe, and the log says why once', async () => {
    const log = memoryLogger();
    const feed = new H264RecordingFeed({ source: rig.source, ffmpeg: rig.ffmpeg, log, bitrateKbps: () => 800, restartDelayMs: 200 });
    const out: MediaFrame[] = [];
    const before = new Set(runningFfmpegPids());
    const subscription = feed.subscribe({ write: (frame) => (out.push(frame), true) });
    cleanup.push(() => subscription.unsubscribe());
    await waitFor(() => out.filter((f) => f.kind === 'video' && f.keyframe).length >= 2, 30_000, 'two H.264 keyframes');
    const pid = runningFfmpegPids().find((p) => !before.has(p));
    assert.ok(pid, "the feed's encoder");
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !feed.stats().encoding, 5000, 'the feed to see its encoder gone');
    // From here on no encoder runs until the pause is over and the camera's next keyframe comes.
    const gapFrom = out.length;
    await waitFor(() => feed.stats().starts === 2, 10_000, 'a second encoder');
    await waitFor(() => out.slice(gapFrom).filter((f) => f.kind === 'video' && f.keyframe).length >= 1, 10_000, 'a keyframe from the new encoder');
    const after = out.slice(gapFrom);
    const firstVideo = after.findIndex((f) => f.kind === 'video');
    assert.ok(after[firstVideo]!.keyframe, 'pictures come back on a keyframe');
    assert.ok(after.slice(0, firstVideo).filter((f) => f.kind === 'audio').length >= 5, 'the sound went on while no encoder ran');
    const timestamps = out.filter((f) => f.kind === 'video').map((f) => f.timestamp);
    assert.ok(timestamps.every((ts, i) => i === 0 || ((ts - timestamps[i - 1]!) | 0) > 0), 'video timestamps only move forward');
    assert.equal(log.text().match(/H\.264 encoder exited/g)?.length, 1, log.text());
    subscription.unsubscribe();
  });
});
