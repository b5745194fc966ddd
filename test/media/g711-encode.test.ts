import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { g711ToPcm, type G711Codec } from '../../src/media/g711.js';
import { pcmToG711 } from '../helpers/g711-encode.js';

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const LAWS: G711Codec[] = ['PCMU', 'PCMA'];

function decodedValues(codec: G711Codec): Int16Array {
  const pcm = g711ToPcm(codec, ALL_BYTES);
  return new Int16Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.length));
}

function sine(frequency: number, amplitude: number, samples: number): Int16Array {
  return Int16Array.from({ length: samples }, (_, i) => Math.round(amplitude * Math.sin((2 * Math.PI * frequency * i) / 8000)));
}

test('G.711 encode: every code decodes and encodes back to itself (µ-law negative zero 0x7f becomes 0xff)', () => {
  for (const codec of LAWS) {
    const again = pcmToG711(codec, decodedValues(codec));
    for (let code = 0; code < 256; code++) {
      const expected = codec === 'PCMU' && code === 0x7f ? 0xff : code;
      assert.equal(again[code], expected, `${codec} code 0x${code.toString(16)}`);
    }
  }
});

test('G.711 encode: every 16-bit sample lands on a level next to it (error within one step), and order is kept', () => {
  for (const codec of LAWS) {
    const levels = [...decodedValues(codec)].sort((a, b) => a - b);
    const all = Int16Array.from({ length: 65536 }, (_, i) => i - 32768);
    const back = g711ToPcm(codec, pcmToG711(codec, all));
    let previous = -Infinity;
    for (let i = 0; i < all.length; i++) {
      const x = all[i]!;
      const y = back.readInt16LE(i * 2);
      assert.ok(y >= previous, `${codec}: not monotonic at ${x}`);
      previous = y;
      // The step around x: the gap between the two levels that enclose it (the outermost levels clip).
      const above = levels.find((l) => l >= x) ?? levels[levels.length - 1]!;
      const below = [...levels].reverse().find((l) => l <= x) ?? levels[0]!;
      const step = Math.max(above - below, 16);
      const clipped = x > levels[levels.length - 1]! || x < levels[0]!;
      if (!clipped) assert.ok(Math.abs(y - x) <= step, `${codec}: ${x} -> ${y} (step ${step})`);
    }
  }
});

test('G.711 encode: a 1 kHz tone encoded here and decoded by ffmpeg keeps a G.711 signal-to-noise ratio (> 30 dB)', () => {
  for (const [codec, format] of [['PCMU', 'mulaw'], ['PCMA', 'alaw']] as const) {
    const tone = sine(1000, 12000, 8000);
    const decoded = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', format, '-ar', '8000', '-ac', '1', '-i', 'pipe:0', '-f', 's16le', 'pipe:1'], {
      input: pcmToG711(codec, tone),
    });
    assert.equal(decoded.status, 0, decoded.stderr.toString());
    assert.equal(decoded.stdout.length, tone.length * 2);
    let signal = 0;
    let noise = 0;
    for (let i = 0; i < tone.length; i++) {
      const d = decoded.stdout.readInt16LE(i * 2) - tone[i]!;
      signal += tone[i]! ** 2;
      noise += d ** 2;
    }
    const snr = 10 * Math.log10(signal / noise);
    assert.ok(snr > 30, `${codec}: SNR ${snr.toFixed(1)} dB`);
  }
});

test('G.711 encode: silence is the law\'s quiet code, full scale clips to the loudest', () => {
  assert.deepEqual([...pcmToG711('PCMU', Int16Array.from([0, 32767, -32768]))], [0xff, 0x80, 0x00]);
  assert.deepEqual([...pcmToG711('PCMA', Int16Array.from([0, 32767, -32768]))], [0xd5, 0xaa, 0x2a]);
});
