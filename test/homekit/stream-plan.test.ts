// What HomeKit is offered (resolutions, audio) and how each request is served (copy or transcode).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { homeKitStreamArgs, opusFrameDuration, snapshotArgs, splitArgs } from '../../src/ffmpeg/homekit-args.js';
import { planVideo, samePlan, type RequestedVideo } from '../../src/homekit/stream-plan.js';
import { chooseAudio, resolutionsFor } from '../../src/homekit/streaming-options.js';
import { ffmpegCapabilities } from '../helpers/fake-ffmpeg.js';

const request = (width: number, height: number, maxBitrateKbps = 299): RequestedVideo => ({ width, height, fps: 30, maxBitrateKbps, profile: 'main', level: '4.0' });
const x264 = { encoder: 'libx264', extraArgs: [] };

const caps = ffmpegCapabilities;

describe('HomeKit resolutions', () => {
  it('a 640x360 camera: standard sizes up to its own, the Watch sizes, nothing bigger', () => {
    const sizes = resolutionsFor(640, 360).map(([w, h, f]) => `${w}x${h}@${f}`);
    assert.deepEqual(sizes, ['640x360@30', '480x360@30', '480x270@30', '320x240@30', '320x240@15', '320x180@30']);
  });

  it('a 1080p camera gets every size; a 4K camera is capped at 1080p', () => {
    assert.equal(resolutionsFor(1920, 1080)[0]!.join('x'), '1920x1080x30');
    assert.equal(resolutionsFor(1920, 1080).length, 11);
    assert.deepEqual(resolutionsFor(3840, 2160), resolutionsFor(1920, 1080));
  });

  it('an odd camera size is offered as is, so its stream can be copied', () => {
    const sizes = resolutionsFor(704, 576).map(([w, h]) => `${w}x${h}`);
    assert.equal(sizes[0], '704x576');
    assert.ok(sizes.includes('640x480'));
    assert.ok(!sizes.includes('1280x720'));
  });

  it('unknown size: every standard size', () => {
    assert.equal(resolutionsFor(undefined, undefined).length, 11);
  });
});

describe('HomeKit audio choice', () => {
  it('Opus with libopus; AAC-ELD only with libfdk_aac; says which', () => {
    assert.deepEqual(chooseAudio(caps({ libopus: true }), true).codecs, ['opus']);
    assert.match(chooseAudio(caps({ libopus: true }), true).message, /Opus \(libopus\); AAC-ELD is not offered because this ffmpeg has no libfdk_aac/);
    assert.deepEqual(chooseAudio(caps({ libopus: true, libfdkAac: true }), true).codecs, ['opus', 'aac-eld']);
    // A camera the Home app may talk through: Opus alone, the codec its microphone then comes back in.
    assert.deepEqual(chooseAudio(caps({ libopus: true, libfdkAac: true }), true, true).codecs, ['opus']);
    assert.match(chooseAudio(caps({ libopus: true, libfdkAac: true }), true, true).message, /Opus \(libopus\) only, so that the Home app's microphone/);
    assert.deepEqual(chooseAudio(caps({ libfdkAac: true }), true, true).codecs, ['aac-eld'], 'without libopus: AAC-ELD still, for the camera\'s sound');
    assert.deepEqual(chooseAudio(caps({}), true).codecs, []);
    assert.match(chooseAudio(caps({}), true).message, /neither libopus/);
    assert.deepEqual(chooseAudio(caps({ libopus: true }), false).codecs, []);
    assert.deepEqual(chooseAudio(undefined, true).codecs, []);
  });
});

describe('copy or transcode', () => {
  it('copies H.264 that fits the request, even above HomeKit\'s (low) bitrate', () => {
    const plan = planVideo({ codec: 'H264', width: 1280, height: 720, bitrateBps: 2_000_000 }, request(1280, 720), x264);
    assert.deepEqual(plan.args, { mode: 'copy' });
    assert.match(plan.reason, /^copy: the camera's 1280x720 H\.264 fits/);
  });

  it('transcodes when the camera is larger than the request, and never upscales', () => {
    const down = planVideo({ codec: 'H264', width: 1920, height: 1080 }, request(1280, 720), x264);
    assert.equal(down.args.mode, 'transcode');
    assert.match(down.reason, /larger than the requested 1280x720/);
    const small = planVideo({ codec: 'H265', width: 640, height: 360 }, request(1280, 720), x264);
    assert.equal(small.args.mode === 'transcode' && `${small.args.width}x${small.args.height}`, '640x360');
    assert.match(small.reason, /the camera sends H265/);
  });

  it('transcodes a bitrate far above the request, and when forced', () => {
    assert.equal(planVideo({ codec: 'H264', width: 640, height: 360, bitrateBps: 9_000_000 }, request(640, 360), x264).args.mode, 'transcode');
    assert.equal(planVideo({ codec: 'H264', width: 640, height: 360 }, request(640, 360), { ...x264, forceTranscode: true }).args.mode, 'transcode');
  });

  it('tolerates a camera slightly above the requested size', () => {
    assert.equal(planVideo({ codec: 'H264', width: 1296, height: 972 }, request(1280, 960), x264).args.mode, 'copy');
  });

  it('samePlan tells a real change from a repeated request', () => {
    const a = planVideo({ codec: 'H264', width: 1920, height: 1080 }, request(640, 360, 300), x264).args;
    const b = planVideo({ codec: 'H264', width: 1920, height: 1080 }, request(640, 360, 300), x264).args;
    const c = planVideo({ codec: 'H264', width: 1920, height: 1080 }, request(640, 360, 150), x264).args;
    assert.ok(samePlan(a, b));
    assert.ok(!samePlan(a, c));
  });
});

describe('ffmpeg arguments', () => {
  it('one tee output: video, and audio with onfail=ignore', () => {
    const args = homeKitStreamArgs({
      inputUrl: 'rtsp://127.0.0.1:8554/front',
      video: { mode: 'copy' },
      videoTarget: { port: 5000, payloadType: 99, ssrc: 1234, packetSize: 1368 },
      audio: { codec: 'opus', sampleRate: 16000, bitrateKbps: 24, packetTimeMs: 30, vbr: true, channels: 1, target: { port: 5002, payloadType: 110, ssrc: 5678, packetSize: 1200 } },
    });
    assert.equal(args.filter((a) => a === '-f' ).length, 1, 'a single output format');
    assert.equal(args[args.indexOf('-f') + 1], 'tee');
    assert.equal(args.at(-1), '[select=v:f=rtp:ssrc=1234:payload_type=99]rtp://127.0.0.1:5000?rtcpport=5000&pkt_size=1368|[select=a:f=rtp:ssrc=5678:payload_type=110:onfail=ignore]rtp://127.0.0.1:5002?rtcpport=5002&pkt_size=1200');
    assert.equal(args[args.indexOf('-i') + 1], 'rtsp://127.0.0.1:8554/front');
    assert.equal(args[args.indexOf('-frame_duration') + 1], '20', '30 ms is not an Opus frame size');
    assert.ok(!args.includes('+nobuffer'), 'nobuffer would drop the cached keyframe read while probing');
  });

  it('transcoding: libx264 ultrafast/zerolatency at the negotiated profile, user options last', () => {
    const args = homeKitStreamArgs({
      inputUrl: 'rtsp://x',
      video: { mode: 'transcode', encoder: 'libx264', width: 480, height: 270, fps: 15, bitrateKbps: 300, profile: 'baseline', level: '3.1', extraArgs: ['-crf', '23'] },
      videoTarget: { port: 1, payloadType: 99, ssrc: 1, packetSize: 1368 },
    });
    const text = args.join(' ');
    assert.match(text, /-c:v libx264 -preset ultrafast -tune zerolatency -profile:v baseline -level:v 3\.1/);
    assert.match(text, /-b:v 300k .* -crf 23 -an/);
  });

  it('helpers', () => {
    assert.deepEqual(splitArgs('-crf 23 -x264-params "keyint=50:bframes=0"'), ['-crf', '23', '-x264-params', 'keyint=50:bframes=0']);
    assert.deepEqual(splitArgs(undefined), []);
    assert.equal(opusFrameDuration(20), 20);
    assert.equal(opusFrameDuration(60), 60);
    assert.match(snapshotArgs({ codec: 'h264', width: 640, height: 360 }).join(' '), /-f h264 -i pipe:0 -frames:v 1 -vf scale=640:360:force_original_aspect_ratio=increase,crop=640:360/);
  });
});
