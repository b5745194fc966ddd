import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseH264Sps } from '../../src/media/h264-sps.js';
import { parseH265Sps } from '../../src/media/h265-sps.js';
import { unescapeRbsp } from '../../src/media/bit-reader.js';
import { encodeStream, splitAnnexB } from './helpers/streams.js';

function firstNal(stream: Buffer, match: (nal: Buffer) => boolean): Buffer {
  const nal = splitAnnexB(stream).find(match);
  assert.ok(nal, 'stream has the NAL unit');
  return nal;
}

const h264Sps = (nal: Buffer): boolean => (nal[0]! & 0x1f) === 7;

for (const [profile, idc, name] of [['baseline', 66, 'Constrained Baseline'], ['main', 77, 'Main'], ['high', 100, 'High']] as const) {
  test(`H.264 SPS from a real ${profile} stream: 1280x720, ${name}, 25 fps`, () => {
    const sps = parseH264Sps(firstNal(encodeStream({ codec: 'h264', width: 1280, height: 720, profile, preset: 'veryfast', seconds: 0.2 }), h264Sps));
    assert.ok(sps);
    assert.equal(sps.width, 1280);
    assert.equal(sps.height, 720);
    assert.equal(sps.profileIdc, idc);
    assert.equal(sps.profileName, name);
    assert.equal(sps.levelIdc, 31);
    assert.equal(sps.level, 3.1);
    assert.equal(sps.fps, 25);
    assert.equal(sps.frameMbsOnly, true);
    assert.match(sps.profileLevelId, /^[0-9a-f]{6}$/);
    assert.equal(sps.profileLevelId.slice(0, 2), idc.toString(16));
  });
}

test('H.264 SPS cropping: 1920x1080 (coded 1088) and 640x360 (coded 368)', () => {
  const full = parseH264Sps(firstNal(encodeStream({ codec: 'h264', width: 1920, height: 1080, profile: 'high', preset: 'veryfast', fps: 30, seconds: 0.2 }), h264Sps));
  assert.ok(full);
  assert.deepEqual([full.width, full.height, full.fps, full.level, full.profileName], [1920, 1080, 30, 4, 'High']);
  const small = parseH264Sps(firstNal(encodeStream({ codec: 'h264', width: 640, height: 360, profile: 'main', fps: 15, seconds: 0.2 }), h264Sps));
  assert.ok(small);
  assert.deepEqual([small.width, small.height, small.fps], [640, 360, 15]);
});

test('H.264 SPS: horizontal crop (1366x768)', () => {
  const wide = parseH264Sps(firstNal(encodeStream({ codec: 'h264', width: 1366, height: 768, profile: 'high', seconds: 0.2 }), h264Sps));
  assert.ok(wide);
  assert.deepEqual([wide.width, wide.height], [1366, 768]);
});

test('H.264 SPS: High 4:2:2 with scaling matrices, and interlaced (field) coding', () => {
  const chroma422 = parseH264Sps(firstNal(encodeStream({
    codec: 'h264', width: 1280, height: 720, profile: 'high422', pixFmt: 'yuv422p', preset: 'veryfast', params: 'cqm=jvt', seconds: 0.2,
  }), h264Sps));
  assert.ok(chroma422);
  assert.deepEqual([chroma422.width, chroma422.height, chroma422.profileIdc, chroma422.chromaFormatIdc], [1280, 720, 122, 2]);
  const interlaced = parseH264Sps(firstNal(encodeStream({
    codec: 'h264', width: 1920, height: 1080, preset: 'veryfast', params: 'interlaced=1', seconds: 0.2,
  }), h264Sps));
  assert.ok(interlaced);
  assert.equal(interlaced.frameMbsOnly, false);
  assert.deepEqual([interlaced.width, interlaced.height], [1920, 1080]);
});

test('H.264 SPS parser refuses garbage without throwing', () => {
  assert.equal(parseH264Sps(Buffer.from([0x67])), undefined);
  assert.equal(parseH264Sps(Buffer.from([0x68, 1, 2, 3, 4])), undefined); // a PPS
  assert.equal(parseH264Sps(Buffer.from([0x67, 100, 0, 31, 0, 0, 0, 0])), undefined);
  const real = firstNal(encodeStream({ codec: 'h264', width: 1280, height: 720, profile: 'high', seconds: 0.2 }), h264Sps);
  for (let cut = 1; cut < real.length; cut++) parseH264Sps(real.subarray(0, cut)); // must not throw
});

test('emulation-prevention bytes are removed', () => {
  assert.deepEqual([...unescapeRbsp(Buffer.from([1, 0, 0, 3, 1, 0, 0, 3, 0, 0, 3]))], [1, 0, 0, 1, 0, 0, 0, 0]);
  const plain = Buffer.from([1, 2, 3]);
  assert.equal(unescapeRbsp(plain), plain);
});

test('H.265 SPS from a real libx265 stream', () => {
  const stream = encodeStream({ codec: 'h265', width: 1280, height: 720, seconds: 0.2 });
  const sps = parseH265Sps(firstNal(stream, (nal) => ((nal[0]! >> 1) & 0x3f) === 33));
  assert.ok(sps);
  assert.deepEqual([sps.width, sps.height, sps.profileIdc, sps.profileName], [1280, 720, 1, 'Main']);
  const cropped = parseH265Sps(firstNal(encodeStream({ codec: 'h265', width: 1920, height: 1080, seconds: 0.2 }),
    (nal) => ((nal[0]! >> 1) & 0x3f) === 33));
  assert.ok(cropped);
  assert.deepEqual([cropped.width, cropped.height], [1920, 1080]);
});
