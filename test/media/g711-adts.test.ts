import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { adtsHeader, AdtsReader, audioSpecificConfig, parseAudioSpecificConfig } from '../../src/media/adts.js';
import { g711ToPcm } from '../../src/media/g711.js';

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

/** ffmpeg's own decoder (pcm_mulaw / pcm_alaw) for the same bytes, as s16le. */
function ffmpegDecode(format: 'mulaw' | 'alaw', input: Buffer): Buffer {
  const result = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', format, '-ar', '8000', '-ac', '1', '-i', 'pipe:0', '-f', 's16le', 'pipe:1'], { input });
  assert.equal(result.status, 0, result.stderr.toString());
  return result.stdout;
}

test('G.711 µ-law and A-law decode to the same 16-bit samples as ffmpeg, for all 256 codes', () => {
  assert.deepEqual(g711ToPcm('PCMU', ALL_BYTES), ffmpegDecode('mulaw', ALL_BYTES));
  assert.deepEqual(g711ToPcm('PCMA', ALL_BYTES), ffmpegDecode('alaw', ALL_BYTES));
  // The silence codes: 0xff (µ-law) and 0xd5 (A-law) are the smallest magnitudes.
  assert.equal(g711ToPcm('PCMU', Buffer.from([0xff])).readInt16LE(0), 0);
  assert.equal(Math.abs(g711ToPcm('PCMA', Buffer.from([0xd5])).readInt16LE(0)), 8);
});

test('ADTS from ffmpeg, fed a byte at a time or whole, gives the same access units; the AudioSpecificConfig matches ffmpeg\'s', () => {
  const encoded = spawnSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=16000:duration=1',
    '-c:a', 'aac', '-b:a', '32k', '-f', 'adts', 'pipe:1',
  ]);
  assert.equal(encoded.status, 0, encoded.stderr.toString());
  const adts = encoded.stdout;
  const whole = new AdtsReader().push(adts);
  // 1 s at 16 kHz is 15.6 frames of 1024 samples, plus the encoder's priming and tail.
  assert.ok(whole.length >= 16 && whole.length <= 18, `${whole.length} frames`);
  assert.ok(whole.every((f) => f.objectType === 2 && f.sampleRate === 16000 && f.channelConfiguration === 1));
  const reader = new AdtsReader();
  const bytewise = [...adts].flatMap((byte) => reader.push(Buffer.from([byte])));
  assert.deepEqual(bytewise.map((f) => f.data), whole.map((f) => f.data));
  assert.equal(reader.pendingBytes, 0);
  assert.throws(() => new AdtsReader().push(Buffer.from('not adts at all')), /sync word/);

  // 14496-3's layout; 1408 is also what the synthetic AAC camera's SDP config (read from ffmpeg's ADTS) says.
  assert.equal(audioSpecificConfig(2, 16000, 1).toString('hex'), '1408');
  assert.equal(audioSpecificConfig(2, 24000, 1).toString('hex'), '1308');
  assert.equal(audioSpecificConfig(2, 32000, 2).toString('hex'), '1290');
  assert.throws(() => audioSpecificConfig(2, 22000, 1), /no sampling frequency index/);
});

test('adtsHeader rebuilds ffmpeg\'s own ADTS byte for byte from the AudioSpecificConfig, and refuses what ADTS cannot carry', () => {
  const encoded = spawnSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100:duration=0.5',
    '-ac', '2', '-c:a', 'aac', '-b:a', '64k', '-f', 'adts', 'pipe:1',
  ]);
  assert.equal(encoded.status, 0, encoded.stderr.toString());
  const frames = new AdtsReader().push(encoded.stdout);
  const config = parseAudioSpecificConfig(audioSpecificConfig(2, 44100, 2).toString('hex'));
  assert.deepEqual([config.objectType, config.sampleRate, config.sampleRateIndex, config.channelConfiguration, config.frameSamples, config.sbr], [2, 44100, 4, 2, 1024, false]);
  const rebuilt = Buffer.concat(frames.map((f) => Buffer.concat([adtsHeader(config, f.data.length), f.data])));
  // ffmpeg writes buffer fullness 0x7FF too, so the rebuilt stream is the same bytes.
  assert.deepEqual(rebuilt, encoded.stdout);
  // Explicit SBR (HE-AAC) is written as its AAC-LC core; its frames are 2048 samples at the RTP clock.
  const he = parseAudioSpecificConfig('2B0A0800');
  assert.deepEqual([he.objectType, he.sbr, he.frameSamples, he.sampleRate], [2, true, 2048, 24000]);
  assert.throws(() => adtsHeader(parseAudioSpecificConfig('F8F0212C00BC00'), 10), /object type 39 cannot be carried in ADTS/);
  assert.throws(() => parseAudioSpecificConfig('14'), /not hex of at least 2 bytes/);
  assert.throws(() => parseAudioSpecificConfig(Buffer.from([0x14])), /too short/);
});
