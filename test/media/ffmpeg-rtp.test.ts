import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { writeFileSync } from 'node:fs';
import { H264Depacketizer } from '../../src/media/h264-depacketizer.js';
import { H265Depacketizer } from '../../src/media/h265-depacketizer.js';
import type { AccessUnit } from '../../src/media/nal-assembler.js';
import { parseRtp, seqDelta } from '../../src/media/rtp.js';
import { encodeStream, groupAccessUnits, splitAnnexB } from './helpers/streams.js';
import { captureFfmpegRtp } from './helpers/ffmpeg-rtp.js';

/**
 * ffmpeg's raw-stream parsers leave the extra zero of a 4-byte start code at the end of the previous
 * NAL (a legal trailing_zero_8bits), so trailing zeros are not compared.
 */
const hex = (units: Buffer[]): string[] => units.map((u) => u.toString('hex').replace(/(00)+$/, ''));

async function depacketizeFfmpeg(codec: 'h264' | 'h265', stream: Buffer, mode0 = false): Promise<{ got: AccessUnit[]; lost: number; types: Set<number> }> {
  const file = join(tmpdir(), `ffmpeg-rtp-${process.pid}-${codec}-${mode0 ? 0 : 1}.${codec}`);
  writeFileSync(file, stream);
  const packets = await captureFfmpegRtp(file, codec === 'h264' ? 'h264' : 'hevc', { mode0 });
  const got: AccessUnit[] = [];
  const depacketizer = codec === 'h264' ? new H264Depacketizer((au) => got.push(au)) : new H265Depacketizer((au) => got.push(au));
  let expected = -1;
  let lost = 0;
  const types = new Set<number>();
  for (const raw of packets) {
    const rtp = parseRtp(raw);
    assert.ok(typeof rtp !== 'string', `ffmpeg packet parses (${String(rtp)})`);
    types.add(codec === 'h264' ? rtp.payload[0]! & 0x1f : (rtp.payload[0]! >> 1) & 0x3f);
    const gap = expected < 0 ? 0 : seqDelta(expected, rtp.sequenceNumber);
    lost += gap;
    depacketizer.push(rtp, gap !== 0);
    expected = (rtp.sequenceNumber + 1) & 0xffff;
    assert.ok(rtp.payload.length <= 1188);
  }
  depacketizer.flush();
  return { got, lost, types };
}

for (const mode0 of [false, true]) {
  test(`H.264 from ffmpeg's RTP muxer${mode0 ? ' (packetization-mode 0)' : ''} depacketizes to the encoder's access units`, async () => {
    // Several slices per frame so mode 0 has NAL units that fit single packets, and mode 1 has aggregates.
    const stream = encodeStream({ codec: 'h264', width: 640, height: 360, seconds: 1, params: mode0 ? 'slice-max-size=1100' : 'slices=2' });
    const expected = groupAccessUnits('h264', splitAnnexB(stream));
    const { got, lost, types } = await depacketizeFfmpeg('h264', stream, mode0);
    assert.equal(lost, 0, 'no UDP loss on loopback');
    if (mode0) assert.ok(!types.has(24) && !types.has(28), 'mode 0 has single NAL units only');
    else assert.ok(types.has(24) && types.has(28), `ffmpeg sent STAP-A and FU-A (${[...types].join(',')})`);
    assert.equal(got.length, expected.length);
    // ffmpeg's muxer drops AUDs and may keep SEI; compare the slices and parameter sets.
    const keep = (units: Buffer[]): string[] => hex(units.filter((u) => [1, 5, 7, 8].includes(u[0]! & 0x1f)));
    for (let i = 0; i < got.length; i++) assert.deepEqual(keep(got[i]!.units), keep(expected[i]!));
  });
}

test("H.265 from ffmpeg's RTP muxer (AP and FU) depacketizes to the encoder's access units", async () => {
  const stream = encodeStream({ codec: 'h265', width: 640, height: 360, seconds: 1 });
  const expected = groupAccessUnits('h265', splitAnnexB(stream));
  const { got, lost, types } = await depacketizeFfmpeg('h265', stream);
  assert.equal(lost, 0);
  assert.ok(types.has(48) && types.has(49), `ffmpeg sent AP and FU (${[...types].join(',')})`);
  assert.equal(got.length, expected.length);
  const keep = (units: Buffer[]): string[] => hex(units.filter((u) => ((u[0]! >> 1) & 0x3f) !== 35));
  for (let i = 0; i < got.length; i++) {
    const a = keep(got[i]!.units);
    const b = keep(expected[i]!);
    assert.equal(a.length, b.length);
    for (let j = 0; j < a.length; j++) if (a[j] !== b[j]) assert.fail(`AU ${i} NAL ${j}: ${a[j]!.length} vs ${b[j]!.length}, ends ${a[j]!.slice(-8)} vs ${b[j]!.slice(-8)}`);
  }
});
