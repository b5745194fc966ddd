import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildReceiverReport, looksLikeRtcp, parseRtcp, ReceptionStats } from '../../src/rtsp/rtcp.js';
import { parseTransport, tcpTransport, udpTransport } from '../../src/rtsp/transport-header.js';

function senderReport(ssrc: number, wallClockMs: number, rtpTimestamp: number): Buffer {
  const b = Buffer.alloc(28);
  b[0] = 0x80;
  b[1] = 200;
  b.writeUInt16BE(6, 2);
  b.writeUInt32BE(ssrc, 4);
  const secs = Math.floor(wallClockMs / 1000) + 2208988800;
  const frac = Math.round(((wallClockMs % 1000) / 1000) * 0x100000000);
  b.writeUInt32BE(secs, 8);
  b.writeUInt32BE(Math.min(frac, 0xffffffff), 12);
  b.writeUInt32BE(rtpTimestamp, 16);
  b.writeUInt32BE(100, 20);
  b.writeUInt32BE(12345, 24);
  return b;
}

function rtp(seq: number, ts: number, ssrc = 0x1234): Buffer {
  const b = Buffer.alloc(20);
  b[0] = 0x80;
  b[1] = 96;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE(ts >>> 0, 4);
  b.writeUInt32BE(ssrc, 8);
  return b;
}

describe('RTCP', () => {
  it('reads a sender report inside a compound packet and maps NTP to Unix ms', () => {
    const when = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
    const sdes = Buffer.from([0x81, 202, 0, 1, 0, 0, 0, 1]);
    const bye = Buffer.from([0x81, 203, 0, 1, 0, 0, 0x12, 0x34]);
    const s = parseRtcp(Buffer.concat([senderReport(0x1234, when, 90000), sdes, bye]));
    assert.equal(s.senderReports.length, 1);
    const sr = s.senderReports[0]!;
    assert.equal(sr.ssrc, 0x1234);
    assert.ok(Math.abs(sr.wallClockMs - when) < 0.01, `${sr.wallClockMs} vs ${when}`);
    assert.equal(sr.rtpTimestamp, 90000);
    assert.equal(sr.packetCount, 100);
    assert.deepEqual(s.byes, [0x1234]);
  });

  it('stops quietly at malformed parts', () => {
    assert.deepEqual(parseRtcp(Buffer.from([0x80, 200, 0xff, 0xff, 1, 2])), { senderReports: [], byes: [] });
    assert.deepEqual(parseRtcp(Buffer.from([0x00, 200, 0, 0])), { senderReports: [], byes: [] });
  });

  it('tells RTCP from RTP on a muxed channel', () => {
    assert.equal(looksLikeRtcp(senderReport(1, 0, 0)), true);
    assert.equal(looksLikeRtcp(rtp(1, 1)), false);
  });

  it('builds a receiver report with loss, highest sequence, LSR/DLSR and an SDES CNAME', () => {
    const stats = new ReceptionStats(90000);
    // 0..9 with 4 and 5 lost, then a wrap-around from 65535.
    for (const seq of [0, 1, 2, 3, 6, 7, 8, 9]) stats.onRtp(rtp(seq, seq * 3000), seq * 33);
    const sr = parseRtcp(senderReport(0x1234, Date.now(), 0)).senderReports[0]!;
    stats.onSenderReport(sr, 1000);
    const block = stats.reportBlock(1500)!;
    assert.equal(block.readUInt32BE(0), 0x1234);
    assert.equal(block[4], Math.floor((2 * 256) / 10)); // fraction lost
    assert.equal(block.readUIntBE(5, 3), 2); // cumulative lost
    assert.equal(block.readUInt32BE(8), 9); // extended highest sequence
    assert.equal(block.readUInt32BE(16), sr.ntpMiddle);
    assert.equal(block.readUInt32BE(20), 32768); // 0.5 s in 1/65536 s

    const packet = buildReceiverReport(0xdeadbeef, [block], 'homebridge-test');
    assert.equal(packet[0], 0x81);
    assert.equal(packet[1], 201);
    assert.equal((packet.readUInt16BE(2) + 1) * 4, 32);
    assert.equal(packet.readUInt32BE(4), 0xdeadbeef);
    const sdes = packet.subarray(32);
    assert.equal(sdes[1], 202);
    assert.equal(sdes.length % 4, 0);
    assert.equal((sdes.readUInt16BE(2) + 1) * 4, sdes.length);
    assert.equal(sdes.subarray(10, 10 + sdes[9]!).toString(), 'homebridge-test');
  });

  it('counts sequence wrap-around as cycles and a new SSRC as a new source', () => {
    const stats = new ReceptionStats(8000);
    for (let i = 0; i < 10; i++) stats.onRtp(rtp(65530 + i, i * 160), i * 20);
    const block = stats.reportBlock(0)!;
    assert.equal(block.readUInt32BE(8), 65536 + 3);
    assert.equal(block.readUIntBE(5, 3), 0);
    stats.onRtp(rtp(100, 0, 0x9999), 500);
    assert.equal(stats.ssrc, 0x9999);
    assert.equal(stats.packetsReceived, 1);
  });

  it('makes an empty receiver report before any packet arrived', () => {
    const stats = new ReceptionStats(90000);
    assert.equal(stats.reportBlock(0), undefined);
    const p = buildReceiverReport(1, [], 'x');
    assert.equal(p[0], 0x80);
    assert.equal(p.readUInt16BE(2), 1);
  });
});

describe('Transport header', () => {
  it('reads interleaved, ports, source and ssrc', () => {
    const t = parseTransport('RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=5C3A3E2F;mode="PLAY"');
    assert.equal(t.tcp, true);
    assert.deepEqual(t.interleaved, [2, 3]);
    assert.equal(t.ssrc, 0x5c3a3e2f);
    assert.equal(t.mode, 'PLAY');
    const u = parseTransport('RTP/AVP;unicast;client_port=5000-5001;server_port=6970-6971;source=192.168.1.10');
    assert.equal(u.tcp, false);
    assert.deepEqual(u.clientPort, [5000, 5001]);
    assert.deepEqual(u.serverPort, [6970, 6971]);
    assert.equal(u.source, '192.168.1.10');
    assert.deepEqual(parseTransport('RTP/AVP;unicast;server_port=7000').serverPort, [7000, 7001]);
    assert.deepEqual(parseTransport('RTP/AVP;multicast, RTP/AVP/TCP').multicast, true);
    assert.equal(parseTransport('').protocol, '');
  });
  it('writes requests', () => {
    assert.equal(tcpTransport([0, 1]), 'RTP/AVP/TCP;unicast;interleaved=0-1');
    assert.equal(udpTransport([5000, 5001]), 'RTP/AVP;unicast;client_port=5000-5001');
  });
});
