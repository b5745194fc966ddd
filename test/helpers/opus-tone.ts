// Opus packets of a steady tone from the real libopus, as a talker's microphone would send them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { OggReader } from '../../src/media/ogg.js';

/** 20 ms Opus packets (mono) of a `hz` tone lasting `seconds`, encoded from `sampleRate` Hz sound. */
export function opusTone(hz: number, seconds: number, sampleRate = 48_000): Buffer[] {
  const encoded = spawnSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `sine=frequency=${hz}:sample_rate=${sampleRate}:duration=${seconds}`,
    '-c:a', 'libopus', '-frame_duration', '20', '-f', 'ogg', 'pipe:1',
  ]);
  assert.equal(encoded.status, 0, encoded.stderr.toString());
  // The first two pages are the Opus headers.
  return new OggReader().push(encoded.stdout).slice(2).map((p) => p.data);
}

/** Sends `packets` in real time (20 ms apart) with RTP timestamps from `start`. */
export async function speak(voice: (payload: Buffer, timestamp: number) => void, packets: Buffer[], start = 12345): Promise<void> {
  const began = Date.now();
  for (let i = 0; i < packets.length; i++) {
    voice(packets[i]!, (start + i * 960) >>> 0);
    const wait = began + (i + 1) * 20 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}
