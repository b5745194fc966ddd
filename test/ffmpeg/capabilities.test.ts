import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildCapabilities, parseEncoders, parseMuxers, parseVersion } from '../../src/ffmpeg/capabilities.js';

describe('ffmpeg output parsing', () => {
  it('reads versions of release, distribution and git builds', () => {
    assert.deepEqual(parseVersion('ffmpeg version 5.1.6-0+deb12u1 Copyright (c) 2000-2024'), { version: '5.1.6-0+deb12u1', majorVersion: 5 });
    assert.deepEqual(parseVersion('ffmpeg version n6.1.1 Copyright'), { version: 'n6.1.1', majorVersion: 6 });
    assert.deepEqual(parseVersion('ffmpeg version N-113016-g1fc2d8b Copyright'), { version: 'N-113016-g1fc2d8b' });
    assert.deepEqual(parseVersion('something else'), { version: 'unknown' });
  });

  it('reads encoders only after the dashed line', () => {
    const names = parseEncoders(' V..... = Video\n ------\n V....D libx264   libx264 H.264\n A..X.. opus   Opus\n');
    assert.deepEqual([...names], ['libx264', 'opus']);
  });

  it('reads muxers in the old and the new flag layout', () => {
    assert.deepEqual([...parseMuxers(' .E = Muxing supported\n --\n  E rtp     RTP output\n  E tee  Multiple\n')], ['rtp', 'tee']);
    assert.deepEqual([...parseMuxers(' --\n  E. mp4   MP4\n DE  matroska,webm  Matroska\n')], ['mp4', 'matroska', 'webm']);
  });

  it('summarises capabilities', () => {
    const caps = buildCapabilities('/x', 'PATH', 'ffmpeg version 7.0', ' ------\n V..... h264_v4l2m2m  V4L2\n V..... h264_nvenc  NV\n V..... hevc_vaapi  x\n', ' --\n');
    assert.deepEqual(caps.hardwareH264Encoders, ['h264_nvenc', 'h264_v4l2m2m']);
    assert.equal(caps.has.libx264, false);
    assert.equal(caps.has.tee, false);
  });
});
