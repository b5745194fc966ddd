import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frameRatePassthrough, variantArgs, variantAudioArgs, variantBitrateKbps } from '../../src/ffmpeg/transcode-args.js';

describe('VP8 variant ffmpeg arguments', () => {
  it('reads only the picture of the re-stream over TCP and writes VP8 RTP to its loopback port, RTCP to the same port; the sound is a second ffmpeg', () => {
    const args = variantArgs('VP8', { inputUrl: 'rtsp://127.0.0.1:8554/porch', videoPort: 40000, maxWidth: 1280, maxHeight: 720, videoBitrateKbps: 900 });
    const after = (flag: string, from = 0): string => args[args.indexOf(flag, from) + 1]!;
    assert.equal(after('-i'), 'rtsp://127.0.0.1:8554/porch');
    assert.equal(after('-rtsp_transport'), 'tcp');
    assert.equal(after('-allowed_media_types'), 'video');
    assert.equal(after('-c:v'), 'libvpx');
    assert.equal(after('-deadline'), 'realtime');
    assert.equal(after('-lag-in-frames'), '0', 'no frame waits for analysis');
    assert.equal(after('-threads', args.indexOf('-i')), '1', 'one encoder thread: libvpx\'s VP8 threads spin while they wait, eating a busy machine\'s CPU');
    assert.equal(after('-fps_mode'), 'passthrough', 'no duplicated frames to fill a reconnect gap');
    assert.equal(after('-b:v'), '900k');
    assert.ok(!args.includes('libopus') && !args.includes('0:a:0'), 'no sound in the picture\'s process');
    assert.deepEqual(args.filter((a) => a.startsWith('rtp://')), ['rtp://127.0.0.1:40000?rtcpport=40000&pkt_size=1200']);
    assert.ok(!args.some((a) => /0\.0\.0\.0|@/.test(a)), 'nothing but loopback, no credentials');

    const sound = variantAudioArgs({ inputUrl: 'rtsp://127.0.0.1:8554/porch', audioPort: 40002 });
    const soundAfter = (flag: string): string => sound[sound.indexOf(flag) + 1]!;
    assert.equal(soundAfter('-i'), 'rtsp://127.0.0.1:8554/porch');
    assert.equal(soundAfter('-allowed_media_types'), 'audio', 'the sound alone: no picture to decode');
    assert.ok(sound.indexOf('-allowed_media_types') < sound.indexOf('-i'), 'an input option');
    assert.equal(soundAfter('-map'), '0:a:0');
    assert.equal(soundAfter('-c:a'), 'libopus');
    assert.equal(soundAfter('-ar'), '48000');
    assert.equal(soundAfter('-payload_type'), '111');
    assert.deepEqual(sound.filter((a) => a.startsWith('rtp://')), ['rtp://127.0.0.1:40002?rtcpport=40002&pkt_size=1200']);
    assert.ok(!sound.some((a) => /libvpx|libx264|-vf/.test(a)));
  });

  it('names frame-rate passthrough as the ffmpeg at hand spells it', () => {
    assert.deepEqual(frameRatePassthrough('5.1.6-0+deb12u1'), ['-fps_mode', 'passthrough']);
    assert.deepEqual(frameRatePassthrough('7.1'), ['-fps_mode', 'passthrough']);
    assert.deepEqual(frameRatePassthrough('N-112345-gabcdef'), ['-fps_mode', 'passthrough'], 'git build: new');
    assert.deepEqual(frameRatePassthrough(undefined), ['-fps_mode', 'passthrough']);
    assert.deepEqual(frameRatePassthrough('5.0.3'), ['-vsync', 'passthrough']);
    assert.deepEqual(frameRatePassthrough('4.3.6-0+deb11u1'), ['-vsync', 'passthrough']);
    const old = variantArgs('VP8', { inputUrl: 'rtsp://127.0.0.1:8554/porch', videoPort: 40000, maxWidth: 1280, maxHeight: 720, videoBitrateKbps: 900, ffmpegVersion: '4.4.2' });
    assert.ok(old.includes('-vsync') && !old.includes('-fps_mode'));
  });

  it('stepped down: the camera is decoded without deblocking and with the fast flags (input options), and scaled bilinear; not before', () => {
    const base = { inputUrl: 'rtsp://127.0.0.1:8554/porch', videoPort: 40000, maxWidth: 960, maxHeight: 540, videoBitrateKbps: 900 };
    const full = variantArgs('VP8', base);
    assert.ok(!full.includes('-skip_loop_filter') && !full.includes('-flags2'));
    assert.ok(!full[full.indexOf('-vf') + 1]!.includes('bilinear'), 'bicubic (the default) at the first step');
    const fast = variantArgs('VP8', { ...base, fastDecode: true });
    const after = (flag: string): string => fast[fast.indexOf(flag) + 1]!;
    assert.equal(after('-skip_loop_filter'), 'all');
    assert.equal(after('-flags2'), '+fast');
    assert.ok(fast.indexOf('-skip_loop_filter') < fast.indexOf('-i') && fast.indexOf('-flags2') < fast.indexOf('-i'), 'decoder options go before -i');
    assert.match(after('-vf'), /force_original_aspect_ratio=decrease:flags=bilinear,scale=trunc/);
  });

  it('probes the re-stream 0.1 s by default and up to 1 s with the thorough probe, before -i', () => {
    const base = { inputUrl: 'rtsp://127.0.0.1:8554/porch', videoPort: 40000, maxWidth: 1280, maxHeight: 720, videoBitrateKbps: 900 };
    for (const [probe, probesize, analyzeduration] of [[undefined, '32768', '100000'], ['fast', '32768', '100000'], ['thorough', '1000000', '1000000']] as const) {
      const args = variantArgs('VP8', { ...base, ...(probe ? { probe } : {}) });
      const after = (flag: string): string => args[args.indexOf(flag) + 1]!;
      assert.equal(after('-probesize'), probesize, String(probe));
      assert.equal(after('-analyzeduration'), analyzeduration, String(probe));
      assert.equal(args.filter((a) => a === '-analyzeduration').length, 1);
      assert.ok(args.indexOf('-analyzeduration') < args.indexOf('-i'), 'an input option');
    }
  });

  it('the H.264 variant: Constrained Baseline from libx264 with nothing held back, payload type 102, the same input and keyframes', () => {
    const args = variantArgs('H264', { inputUrl: 'rtsp://127.0.0.1:8554/porch', videoPort: 40000, maxWidth: 1280, maxHeight: 720, videoBitrateKbps: 900 });
    const after = (flag: string, from = 0): string => args[args.indexOf(flag, from) + 1]!;
    assert.equal(after('-c:v'), 'libx264');
    assert.equal(after('-tune'), 'zerolatency', 'no B-frames, no look-ahead');
    assert.equal(after('-profile:v'), 'baseline', 'what the plugin offers browsers (42e01f)');
    assert.equal(after('-b:v'), '900k');
    assert.ok(!args.includes('libvpx') && !args.includes('-deadline'));
    assert.equal(after('-force_key_frames'), 'expr:gte(t,n_forced*2)');
    assert.equal(after('-payload_type'), '102');
    assert.equal(after('-i'), 'rtsp://127.0.0.1:8554/porch');
    // Apart from the encoder, the command line is the VP8 one.
    const vp8 = variantArgs('VP8', { inputUrl: 'rtsp://127.0.0.1:8554/porch', videoPort: 40000, maxWidth: 1280, maxHeight: 720, videoBitrateKbps: 900 });
    assert.deepEqual(args.slice(0, args.indexOf('-c:v')), vp8.slice(0, vp8.indexOf('-c:v')));
    assert.deepEqual(args.slice(args.indexOf('-force_key_frames')).filter((a) => a !== '102'), vp8.slice(vp8.indexOf('-force_key_frames')).filter((a) => a !== '96'));
  });

  it('sizes the bitrate to the picture: about 0.08 bit per pixel and frame, 300 kbit/s to 2 Mbit/s', () => {
    assert.equal(variantBitrateKbps({ width: 640, height: 360, fps: 25 }), 461);
    assert.equal(variantBitrateKbps({ width: 1280, height: 720, fps: 25 }), 1843);
    assert.equal(variantBitrateKbps({ width: 1920, height: 1080, fps: 25 }), 1843, 'fitted into 1280x720 first');
    assert.equal(variantBitrateKbps({ width: 2560, height: 1440, fps: 30 }), 2000, 'the ceiling');
    assert.equal(variantBitrateKbps({ width: 320, height: 240, fps: 10 }), 300, 'the floor');
    assert.equal(variantBitrateKbps({}), 1843, 'unknown: as 1280x720 at 25 fps');
    assert.equal(variantBitrateKbps({ width: 640, height: 360, fps: 120 }), 553, 'frame rate capped at 30');
  });
});
