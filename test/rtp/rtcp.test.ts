import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSenderReport, isRtcpPacket, parseRtcpSenderReport, readSenderReport } from '../../src/rtp/rtcp.js';

// Moved from test/media/rtp.test.ts with parseRtcpSenderReport.
test('finds the sender report in a compound RTCP packet', () => {
  const sr = Buffer.alloc(28);
  sr[0] = 0x80;
  sr[1] = 200;
  sr.writeUInt16BE(6, 2);
  sr.writeUInt32BE(0xabcdef01, 4);
  const unixMs = Date.UTC(2024, 0, 1);
  sr.writeUInt32BE(Math.floor(unixMs / 1000) + 2_208_988_800, 8);
  sr.writeUInt32BE(0x80000000, 12); // half a second
  sr.writeUInt32BE(90000, 16);
  sr.writeUInt32BE(10, 20);
  sr.writeUInt32BE(1000, 24);
  const sdes = Buffer.from([0x81, 202, 0x00, 0x01, 0, 0, 0, 0]);
  const report = parseRtcpSenderReport(Buffer.concat([sr, sdes]));
  assert.ok(report);
  assert.equal(report.ssrc, 0xabcdef01);
  assert.equal(report.wallClockMs, unixMs + 500);
  assert.equal(report.rtpTimestamp, 90000);
  assert.equal(report.packetCount, 10);
  assert.equal(parseRtcpSenderReport(sdes), undefined);
  assert.equal(parseRtcpSenderReport(sr.subarray(0, 20)), undefined);
});

describe('isRtcpPacket (RFC 5761 section 4)', () => {
  it('takes every RTCP packet type 192-223, whatever the first byte says about counts', () => {
    for (const type of [192, 200, 201, 202, 203, 204, 205, 206, 207, 223]) {
      assert.equal(isRtcpPacket(Buffer.from([0x80, type, 0, 1])), true, String(type));
      assert.equal(isRtcpPacket(Buffer.from([0x81, type, 0, 1, 0, 0, 0, 0])), true, String(type));
    }
  });

  it('leaves RTP alone: dynamic and static payload types, with and without the marker bit', () => {
    for (const second of [0, 8, 96, 97, 127, 0x80 | 0, 0x80 | 8, 0x80 | 96, 0x80 | 99, 0x80 | 110, 0x80 | 127, 191, 224]) {
      assert.equal(isRtcpPacket(Buffer.from([0x80, second, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1])), false, String(second));
    }
  });

  it('needs a whole RTCP header', () => {
    assert.equal(isRtcpPacket(Buffer.alloc(0)), false);
    assert.equal(isRtcpPacket(Buffer.from([0x80])), false);
    assert.equal(isRtcpPacket(Buffer.from([0x80, 200, 0])), false);
  });
});

describe('sender reports', () => {
  it('round-trips what buildSenderReport writes, with the LSR middle bits and the SDES CNAME after it', () => {
    const ntpMs = Date.UTC(2025, 5, 1, 12, 0, 0, 250);
    const packet = buildSenderReport({ ssrc: 0x01020304, ntpMs, rtpTimestamp: 0xfffffff0, packetCount: 7, octetCount: 7000, cname: 'cam' });
    assert.equal(packet.length % 4, 0);
    assert.equal(packet[29], 202);
    const report = parseRtcpSenderReport(packet)!;
    assert.equal(report.ssrc, 0x01020304);
    assert.ok(Math.abs(report.wallClockMs - ntpMs) < 0.001);
    assert.equal(report.rtpTimestamp, 0xfffffff0);
    assert.equal(report.packetCount, 7);
    assert.equal(report.octetCount, 7000);
    const seconds = packet.readUInt32BE(8);
    const fraction = packet.readUInt32BE(12);
    assert.equal(report.ntpMiddle, (((seconds & 0xffff) << 16) | (fraction >>> 16)) >>> 0);
    assert.deepEqual(readSenderReport(packet, 0), report);
  });

  it('reads NTP seconds past the February 2036 wrap as the next era', () => {
    const sr = Buffer.alloc(28);
    sr[0] = 0x80;
    sr[1] = 200;
    sr.writeUInt16BE(6, 2);
    sr.writeUInt32BE(10, 8); // 10 s into NTP era 1
    const report = parseRtcpSenderReport(sr)!;
    assert.equal(report.wallClockMs, (0x1_0000_0000 + 10 - 2_208_988_800) * 1000);
  });
});
