/**
 * The AAC → Opus sound upstream (src/transcode/opus-audio.ts): its timing arithmetic on its own, then
 * with the real ffmpeg and libopus. The real run feeds AAC made by ffmpeg from a signal whose truth
 * is known (silence with a 1 kHz burst at the start of each second) and finds the bursts again in the
 * Opus packets (a silent Opus packet is a few bytes, a tone is over a hundred), so "the sound keeps
 * its place" is checked on the encoded sound, not on the arithmetic's own word.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runningFfmpegCount } from '../../src/ffmpeg/ffmpeg-process.js';
import { adtsHeader, audioSpecificConfig, parseAudioSpecificConfig } from '../../src/media/adts.js';
import { parseRtp } from '../../src/media/rtp.js';
import type { FrameSink, MediaFrame, TrackDescription } from '../../src/media/types.js';
import { aacInputConfig, opusAudioUpstream, OpusTimeline } from '../../src/transcode/opus-audio.js';
import type { VariantInput } from '../../src/transcode/variant-upstream.js';
import { splitAdts } from '../helpers/adts.js';
import { oggOpusFile } from '../helpers/ogg.js';
import { recordingLogger } from '../helpers/onvif-log.js';

const RATE = 16_000;

describe('OpusTimeline: which camera sample each Opus packet starts at', () => {
  it('maps packets through the pre-skip to the camera clock at 48 kHz, with the capture time of the frame they came from', () => {
    const timeline = new OpusTimeline(RATE, 1024);
    assert.equal(timeline.nextPacket(960), undefined, 'nothing before the OpusHead and the first frame');
    const fresh = new OpusTimeline(RATE, 1024);
    for (let k = 0; k < 10; k++) fresh.fedFrame(1000 + 1024 * k, 5000 + 64 * k);
    fresh.setPreSkip(120);
    const first = fresh.nextPacket(960)!;
    // Output sample 0 is input sample -40 (the pre-skip, 120 at 48 kHz): 2.5 ms before frame 0.
    assert.equal(first.timestamp, (1000 - 40) * 3);
    assert.equal(first.captureMs, 5000 - 2.5);
    const second = fresh.nextPacket(960)!;
    assert.equal(second.timestamp - first.timestamp, 960);
    assert.equal(second.captureMs, 5000 + 280 / 16);
    // Packet 5 starts at output sample 3840 - 120 = input sample 1240: inside frame 1.
    fresh.nextPacket(960);
    fresh.nextPacket(960);
    const fifth = fresh.nextPacket(960)!;
    assert.equal(fifth.timestamp, (1000 + 1240) * 3);
    assert.equal(fifth.captureMs, 5064 + (1240 - 1024) / 16);
  });

  it('a gap in the camera timestamps is the same gap in the Opus timestamps (the sound does not slide earlier)', () => {
    const timeline = new OpusTimeline(RATE, 1024);
    timeline.setPreSkip(0);
    for (let k = 0; k < 3; k++) timeline.fedFrame(1024 * k, 64 * k);
    // Frames 3-7 were lost on the way from the camera.
    for (let k = 8; k < 11; k++) timeline.fedFrame(1024 * k, 64 * k);
    const timestamps: number[] = [];
    for (let i = 0; i < 18; i++) timestamps.push(timeline.nextPacket(960)!.timestamp);
    const steps = timestamps.slice(1).map((t, i) => t - timestamps[i]!);
    // Input sample 3072 (the first after the gap) is output packet 9.6: packet 10 is past the gap.
    assert.deepEqual(steps.filter((s) => s !== 960), [960 + 5 * 1024 * 3]);
    assert.equal(timestamps[10], (8 * 1024 + (10 * 320 - 3 * 1024)) * 3);
  });

  it('keeps counting across the 32-bit wrap of the camera clock', () => {
    const timeline = new OpusTimeline(48_000, 1024);
    timeline.setPreSkip(0);
    const start = 0xffffffff - 1500;
    for (let k = 0; k < 4; k++) timeline.fedFrame((start + 1024 * k) >>> 0, k);
    const a = timeline.nextPacket(960)!.timestamp;
    const b = timeline.nextPacket(960)!.timestamp;
    const c = timeline.nextPacket(960)!.timestamp;
    assert.equal(a, start);
    assert.equal(b, (start + 960) >>> 0);
    assert.equal(c, (start + 1920) >>> 0);
    assert.ok(c < a, 'wrapped');
  });
});

describe('aacInputConfig: which AAC the upstream can read', () => {
  const track = (config?: string): TrackDescription => ({ kind: 'audio', codec: 'AAC', payloadType: 97, clockRate: RATE, fmtp: config ? { config } : {}, controlUrl: 'x' });
  it('AAC-LC reads; AAC-ELD and a missing config say why not', () => {
    assert.equal(aacInputConfig(track('1408')).sampleRate, 16_000);
    assert.throws(() => aacInputConfig(track()), /no AudioSpecificConfig/);
    assert.throws(() => aacInputConfig(track('F8F0212C00BC00')), /object type 39 cannot be carried in ADTS/);
    assert.throws(() => aacInputConfig(track('zz')), /unreadable AudioSpecificConfig/);
  });
});

/** AAC-LC 16 kHz mono ADTS of `seconds`: silence, with a 1 kHz tone for the first 0.2 s of each second from 1 s on. */
function burstAdts(seconds: number): Buffer {
  const result = spawnSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error',
    '-f', 'lavfi', '-i', `aevalsrc='if(gte(t,1)*lt(mod(t,1),0.2),0.5*sin(2*PI*1000*t),0)':s=${RATE}:d=${seconds}`,
    '-c:a', 'aac', '-b:a', '32k', '-f', 'adts', 'pipe:1',
  ], { maxBuffer: 16 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`ffmpeg: ${result.stderr.toString()}`);
  return result.stdout;
}

/** A camera Source that has described an AAC track and lets the test push its frames. */
function aacCamera(config: Buffer): VariantInput & { push(frame: MediaFrame): void; subscribers: number } {
  const sinks = new Set<FrameSink>();
  return {
    tracks: [{ kind: 'audio', codec: 'AAC', payloadType: 97, clockRate: RATE, channels: 1, fmtp: { config: config.toString('hex') }, controlUrl: 'rtsp://camera/audio' }],
    subscribe(sink) {
      sinks.add(sink);
      return { unsubscribe: () => sinks.delete(sink) };
    },
    on: () => undefined,
    off: () => undefined,
    push(frame) {
      for (const sink of sinks) sink.write(frame);
    },
    get subscribers() {
      return sinks.size;
    },
  };
}

/** 16-bit mono PCM at `rate` that ffmpeg decodes from `input`, a file in `format`. */
function decodePcm(format: string, rate: number, input: Buffer): Int16Array {
  const result = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', format, '-i', 'pipe:0', '-ac', '1', '-ar', String(rate), '-f', 's16le', 'pipe:1'], { input, maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`ffmpeg decode: ${result.stderr.toString()}`);
  const bytes = result.stdout;
  return new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length >> 1);
}

/** The first sample in [from, to) louder than a tenth of full scale. */
function firstLoud(pcm: Int16Array, from: number, to: number): number {
  for (let i = Math.max(0, from); i < Math.min(pcm.length, to); i++) if (Math.abs(pcm[i]!) > 3277) return i;
  throw new Error(`no sound between samples ${from} and ${to}`);
}

function withAdtsHeader(unit: Buffer, config: Buffer): Buffer {
  return Buffer.concat([adtsHeader(parseAudioSpecificConfig(config), unit.length), unit]);
}

function aacFrame(unit: Buffer, timestamp: number, captureTime: number): MediaFrame {
  return { kind: 'audio', codec: 'AAC', clockRate: RATE, timestamp, sequenceNumber: 0, keyframe: true, units: [unit], packets: [], byteLength: unit.length, receivedAt: performance.now(), captureTime };
}

describe('opusAudioUpstream with the real ffmpeg (libopus)', { timeout: 60_000 }, () => {
  it('turns AAC into 20 ms Opus packets whose timestamps and capture times put each burst where the camera had it, across a gap', async (t) => {
    const adts = splitAdts(burstAdts(6));
    const camera = aacCamera(adts.audioSpecificConfig);
    const packets: Array<{ timestamp: number; data: Buffer; captureMs: number }> = [];
    let report: { timestamp: number; wallClockMs: number } | undefined;
    const closes: Array<Error | undefined> = [];
    const log = recordingLogger();
    const before = runningFfmpegCount();
    const session = await opusAudioUpstream({ ffmpeg: { path: 'ffmpeg' }, input: camera, log })({
      onRtp: (track, packet) => {
        assert.equal(track, 0);
        const rtp = parseRtp(packet);
        assert.ok(typeof rtp !== 'string', `RTP: ${String(rtp)}`);
        assert.equal(rtp.payloadType, 111);
        // Each packet is preceded by its own sender report: that is the packet's capture time.
        assert.equal(report?.timestamp, rtp.timestamp);
        packets.push({ timestamp: rtp.timestamp, data: Buffer.from(rtp.payload), captureMs: report.wallClockMs });
      },
      onSenderReport: (_track, timestamp, wallClockMs) => {
        report = { timestamp, wallClockMs };
      },
      onClose: (error) => closes.push(error),
    }, new AbortController().signal);
    assert.deepEqual(session.tracks.map((t) => [t.codec, t.clockRate, t.payloadType]), [['OPUS', 48_000, 111]]);
    assert.equal(runningFfmpegCount(), before + 1, 'one ffmpeg');
    assert.equal(camera.subscribers, 1);

    // The camera's clock starts at 90000; capture times at 1 000 000 ms. Frames 40-44 (2.56-2.88 s)
    // never arrive, as if lost on the way: the 3 s burst must still come out at 3 s.
    const TS0 = 90_000;
    const CAPTURE0 = 1_000_000;
    const lost = new Set([40, 41, 42, 43, 44]);
    for (let k = 0; k < adts.frames.length; k++) {
      if (!lost.has(k)) camera.push(aacFrame(adts.frames[k]!, TS0 + 1024 * k, CAPTURE0 + (1024 * k * 1000) / RATE));
      if (k % 8 === 7) await sleep(5);
    }
    const expected = adts.frames.length - lost.size;
    const deadline = Date.now() + 20_000;
    // All but what the encoder holds until more comes (its look-ahead and last partial packet).
    while (packets.length < (expected * 1024 * 3) / 960 - 4 && Date.now() < deadline) await sleep(20);
    await session.close();
    assert.deepEqual(closes, [undefined], 'closing says nothing went wrong');
    assert.equal(camera.subscribers, 0, 'close lets go of the camera');
    assert.equal(runningFfmpegCount(), before, 'close ends ffmpeg');
    assert.ok(packets.length >= (expected * 1024 * 3) / 960 - 4, `${packets.length} Opus packets for ${expected} AAC frames`);

    const steps = packets.slice(1).map((p, i) => p.timestamp - packets[i]!.timestamp);
    assert.deepEqual(steps.filter((s) => s !== 960), [960 + 5 * 1024 * 3], 'every packet 20 ms after the last, but one jump over the 5 lost frames');
    // The truth: where each burst starts in the camera's own sound, decoded from all its frames
    // (camera sample n is timestamp TS0 + n; the AAC encoder's priming and pre-echo are in both).
    const reference = decodePcm('aac', RATE, Buffer.concat(adts.frames.map((f) => withAdtsHeader(f, adts.audioSpecificConfig))));
    // What a browser hears: the Opus packets decoded in order, sample i being packet i/960.
    const opus = decodePcm('ogg', 48_000, oggOpusFile(packets.map((p) => p.data), 960));
    const timestampOf = (i: number): number => packets[Math.floor(i / 960)]!.timestamp + (i % 960);
    for (const second of [1, 2, 3, 4, 5]) {
      const truth = TS0 + firstLoud(reference, second * RATE - 2000, second * RATE + 4000);
      // Where the Opus stream should have it, and then where it does.
      const k = packets.findIndex((p) => p.timestamp / 3 + 320 > truth);
      const expectedAt = 960 * k + Math.round(truth * 3 - packets[k]!.timestamp);
      const heard = firstLoud(opus, expectedAt - 4800, expectedAt + 4800);
      const errorMs = (timestampOf(heard) / 3 - truth) / 16;
      t.diagnostic(`burst at ${second} s: Opus timestamp ${errorMs.toFixed(2)} ms from the camera's`);
      assert.ok(Math.abs(errorMs) <= 1, `burst ${second}: ${errorMs.toFixed(2)} ms off`);
      const at = packets[Math.floor(heard / 960)]!;
      const captureError = at.captureMs - (CAPTURE0 + ((at.timestamp / 3 - TS0) * 1000) / RATE);
      assert.ok(Math.abs(captureError) < 0.01, `burst ${second}'s capture time is its camera time (${captureError} ms off)`);
    }
  });

  it('says clearly when ffmpeg cannot be started, and lets go of the camera', async () => {
    const camera = aacCamera(audioSpecificConfig(2, RATE, 1));
    const closes: Array<Error | undefined> = [];
    const session = await opusAudioUpstream({ ffmpeg: { path: '/nonexistent/ffmpeg' }, input: camera, log: recordingLogger() })({
      onRtp: () => undefined,
      onClose: (error) => closes.push(error),
    }, new AbortController().signal);
    const deadline = Date.now() + 5000;
    while (closes.length === 0 && Date.now() < deadline) await sleep(10);
    assert.match(String(closes[0]?.message), /^the Opus audio encoder stopped: /);
    assert.equal(camera.subscribers, 0);
    await session.close();
    assert.equal(closes.length, 1, 'one close, however it ends');
  });

  it('refuses a camera without AAC with the reason, before starting anything', async () => {
    const before = runningFfmpegCount();
    const pcmu: VariantInput = {
      tracks: [{ kind: 'audio', codec: 'PCMU', payloadType: 0, clockRate: 8000, fmtp: {}, controlUrl: 'x' }],
      subscribe: () => ({ unsubscribe: () => undefined }),
      on: () => undefined,
      off: () => undefined,
    };
    await assert.rejects(
      opusAudioUpstream({ ffmpeg: { path: 'ffmpeg' }, input: pcmu, log: recordingLogger() })({ onRtp: () => undefined, onClose: () => undefined }, new AbortController().signal),
      /the camera sends no AAC sound to turn into Opus/,
    );
    assert.equal(runningFfmpegCount(), before);
  });
});
