import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { packetizeH264 } from '../../src/media/h264-packetizer.js';
import { packetizeH265 } from '../../src/media/h265-packetizer.js';
import { DEFAULT_MAX_PAYLOAD } from '../../src/media/nal-packetizer.js';

// The shared algorithm seen through both codecs: what differs is only the header size.
describe('NAL packetizer (H.264 and H.265 through one algorithm)', () => {
  const h264Idr = (size: number): Buffer => Buffer.concat([Buffer.from([0x65]), Buffer.alloc(size - 1, 0xab)]);
  const h265Idr = (size: number): Buffer => Buffer.concat([Buffer.from([0x26, 0x01]), Buffer.alloc(size - 2, 0xcd)]);

  it('fragments with near-equal sizes and reassembles to the original unit, for both header sizes', () => {
    for (const [nal, packetize, h] of [[h264Idr(5000), packetizeH264, 1], [h265Idr(5000), packetizeH265, 2]] as const) {
      const packets = packetize([nal], 1000);
      const sizes = packets.map((p) => p.payload.length);
      assert.ok(Math.max(...sizes) <= 1000, `${sizes}`);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${sizes}`);
      assert.deepEqual(packets.map((p) => p.marker), packets.map((_, i) => i === packets.length - 1));
      const body = Buffer.concat(packets.map((p) => p.payload.subarray(h + 1)));
      assert.deepEqual(body, nal.subarray(h));
      const first = packets[0]!.payload[h]!;
      const last = packets.at(-1)!.payload[h]!;
      assert.equal(first & 0xc0, 0x80, 'start bit on the first');
      assert.equal(last & 0xc0, 0x40, 'end bit on the last');
    }
  });

  it('skips units too short for a NAL header, also inside an aggregate', () => {
    const sps = Buffer.from([0x67, 1, 2, 3]);
    const pps = Buffer.from([0x68, 4]);
    const stap = packetizeH264([sps, Buffer.alloc(0), pps]);
    assert.equal(stap.length, 1);
    assert.equal(stap[0]!.payload[0]! & 0x1f, 24);
    assert.equal(stap[0]!.payload.length, 1 + 2 + sps.length + 2 + pps.length);

    const vps = Buffer.from([0x40, 0x01, 9]);
    const hsps = Buffer.from([0x42, 0x01, 8, 7]);
    const ap = packetizeH265([vps, Buffer.from([0x44]), hsps]);
    assert.equal(ap.length, 1);
    assert.equal((ap[0]!.payload[0]! >> 1) & 0x3f, 48);
    assert.equal(ap[0]!.payload.length, 2 + 2 + vps.length + 2 + hsps.length);
    assert.deepEqual(packetizeH265([Buffer.from([0x26])]), []);
  });

  it('one real unit and a too-short one: a single NAL unit packet, never an aggregate of one', () => {
    const sps = Buffer.from([0x67, 1, 2, 3]);
    const h264 = packetizeH264([sps, Buffer.alloc(0)]);
    assert.equal(h264.length, 1);
    assert.deepEqual(h264[0]!.payload, sps, 'the unit itself, not a STAP-A');
    assert.equal(h264[0]!.marker, true);
    const vps = Buffer.from([0x40, 0x01, 9]);
    for (const short of [Buffer.alloc(0), Buffer.from([0x44])]) {
      const packets = packetizeH265([vps, short]);
      assert.equal(packets.length, 1);
      assert.deepEqual(packets[0]!.payload, vps, 'the unit itself, not an AP');
      assert.equal(packets[0]!.marker, true);
    }
    // A short unit first, then one real unit: the same.
    assert.deepEqual(packetizeH264([Buffer.alloc(0), sps]).map((p) => p.payload), [sps]);
  });

  it('refuses a maxPayload that cannot hold a fragment header and one byte', () => {
    assert.throws(() => packetizeH264([h264Idr(10)], 2), /FU-A header/);
    assert.doesNotThrow(() => packetizeH264([h264Idr(10)], 3));
    assert.throws(() => packetizeH265([h265Idr(10)], 3), /FU header/);
    assert.doesNotThrow(() => packetizeH265([h265Idr(10)], 4));
    assert.equal(DEFAULT_MAX_PAYLOAD, 1200);
  });

  it('counts without cutting exactly the payloads it cuts, for random unit lists and payload sizes', () => {
    // A Source numbers a frame's packets by the count and cuts later: a disagreement would reuse or
    // skip sequence numbers. Units span empty, too short for a header, tiny (aggregated), exactly
    // the payload size, and several payloads long; payload sizes span the smallest allowed.
    let seed = 12345;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const sizes = (max: number): number => [0, 1, 2, 3, 20, max - 1, max, max + 1, 2 * max + 7, 7000][random(10)]!;
    for (const [packetize, h, name] of [[packetizeH264, 1, 'H.264'], [packetizeH265, 2, 'H.265']] as const) {
      let cases = 0;
      for (let round = 0; round < 2000; round++) {
        const maxPayload = [h + 2, h + 3, 40, 300, DEFAULT_MAX_PAYLOAD][random(5)]!;
        const units = Array.from({ length: random(12) }, () => {
          const unit = Buffer.alloc(sizes(maxPayload), 0x11);
          if (unit.length > 0) unit[0] = h === 1 ? 0x41 : 0x02;
          return unit;
        });
        const cut = packetize(units, maxPayload);
        assert.equal(packetize.count(units, maxPayload), cut.length, `${name}: units ${units.map((u) => u.length)} at ${maxPayload}`);
        if (cut.length > 1) cases++;
      }
      assert.ok(cases > 500, `${name}: ${cases} lists made several packets`);
    }
    assert.equal(packetizeH264.count([h264Idr(5000)]), packetizeH264([h264Idr(5000)]).length, 'the default payload size too');
    assert.throws(() => packetizeH264.count([h264Idr(10)], 2), /FU-A header/, 'the same refusal as the cut');
  });
});
