/**
 * The talk ffmpeg (src/ffmpeg/talk-args.ts) run for real: Opus in Ogg pages as the plugin writes
 * them in, G.711 out, holding the same tone.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { talkArgs } from '../../src/ffmpeg/talk-args.js';
import { g711ToPcm } from '../../src/media/g711.js';
import { OggOpusWriter, OggReader } from '../../src/media/ogg.js';

test('Opus re-paged by OggOpusWriter comes out as 8 kHz G.711 of the same tone, mu-law and A-law', () => {
  const encoded = spawnSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000:duration=1',
    '-c:a', 'libopus', '-frame_duration', '20', '-f', 'ogg', 'pipe:1',
  ]);
  assert.equal(encoded.status, 0, encoded.stderr.toString());
  const writer = new OggOpusWriter();
  const ogg = Buffer.concat([writer.headers(1), ...new OggReader().push(encoded.stdout).slice(2).map((p) => writer.packet(p.data))]);
  for (const encoding of ['PCMU', 'PCMA'] as const) {
    const args = talkArgs({ encoding });
    assert.ok(args.includes(encoding === 'PCMU' ? 'mulaw' : 'alaw'));
    const run = spawnSync('ffmpeg', args, { input: ogg });
    assert.equal(run.status, 0, run.stderr.toString());
    // One byte per 8 kHz sample: about a second of sound.
    assert.ok(Math.abs(run.stdout.length - 8000) < 400, `${encoding}: ${run.stdout.length} bytes`);
    const bytes = g711ToPcm(encoding, run.stdout);
    const pcm = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
    let crossings = 0;
    for (let i = 2001; i < 6000; i++) if ((pcm[i - 1]! < 0) !== (pcm[i]! < 0)) crossings++;
    assert.ok(Math.abs(crossings - 1000) < 20, `${encoding}: ${crossings} zero crossings in 0.5 s, want 1000 (a 1 kHz tone)`);
  }
});
