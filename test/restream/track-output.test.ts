import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MediaFrame } from '../../src/media/types.js';
import { parseRtcpSenderReport } from '../../src/rtp/rtcp.js';
import { anchorClock, senderReportFor, UdpPacer, withParameterSets, type TrackOutput, type UdpOutput } from '../../src/restream/track-output.js';

function output(): TrackOutput {
  return {
    served: { trackId: 0, sourceIndex: 0, kind: 'video', codec: 'H264', payloadType: 96, clockRate: 90000 } as TrackOutput['served'],
    transport: { type: 'tcp', rtpChannel: 0, rtcpChannel: 1 },
    controlUrl: 'rtsp://127.0.0.1/cam/trackID=0',
    ssrc: 0x1234,
    seq: 0,
    tsOffset: 1000,
    packets: 10,
    octets: 5000,
  };
}

function frame(timestamp: number, wallMs: number, units: Buffer[] = [Buffer.from([0x65, 1])]): MediaFrame {
  return { kind: 'video', codec: 'H264', timestamp, captureTime: wallMs, receivedAt: 0, keyframe: true, units, packets: [], sequenceNumber: 0 } as unknown as MediaFrame;
}

describe('re-stream track output', () => {
  it('keeps the RTP-to-wall-clock anchor while the clocks agree, and re-anchors after a jump', () => {
    const o = output();
    anchorClock(o, frame(90000, 1_000_000));
    assert.deepEqual(o.clock, { timestamp: 90000, wallMs: 1_000_000 });
    anchorClock(o, frame(180000, 1_001_000.5)); // 1 s later by both clocks (0.5 ms jitter): kept
    assert.deepEqual(o.clock, { timestamp: 90000, wallMs: 1_000_000 });
    anchorClock(o, frame(270000, 1_010_000)); // the wall clock jumped 8 s ahead of RTP: re-anchored
    assert.deepEqual(o.clock, { timestamp: 270000, wallMs: 1_010_000 });
  });

  it('reports the last frame\'s RTP time (with the client offset) at its wall-clock time', () => {
    const o = output();
    assert.equal(senderReportFor(o, 'c'), undefined, 'nothing before the first frame');
    anchorClock(o, frame(90000, Date.UTC(2025, 0, 1)));
    o.lastTimestamp = 90000 + 45000;
    const sr = parseRtcpSenderReport(senderReportFor(o, 'cname')!)!;
    assert.equal(sr.ssrc, 0x1234);
    assert.equal(sr.rtpTimestamp, 90000 + 45000 + 1000);
    assert.equal(sr.wallClockMs, Date.UTC(2025, 0, 1) + 500);
    assert.equal(sr.packetCount, 10);
    assert.equal(sr.octetCount, 5000);
  });

  it('puts parameter sets in front of a keyframe only when it lacks them', () => {
    const sets = { vps: [], sps: [Buffer.from([0x67, 1])], pps: [Buffer.from([0x68, 2])] };
    const payloads = [{ payload: Buffer.from([0x65, 9]), marker: true }];
    assert.deepEqual(withParameterSets(frame(0, 0), payloads, sets).map((p) => p.payload[0]), [0x67, 0x68, 0x65]);
    assert.equal(withParameterSets(frame(0, 0, [Buffer.from([0x67, 1]), Buffer.from([0x65, 1])]), payloads, sets), payloads);
    assert.equal(withParameterSets(frame(0, 0), payloads, undefined), payloads);
  });
});

describe('UDP pacer', () => {
  it('sends up to the budget at once, the rest on later ticks, in order; clear() drops the rest', async () => {
    const sent: number[] = [];
    const udp: UdpOutput = { send: (parts) => sent.push(parts[0]![0]!) };
    const pacer = new UdpPacer(udp, 2500);
    for (let i = 0; i < 6; i++) pacer.push({ parts: [Buffer.from([i])], bytes: 1000, port: 5000, address: '127.0.0.1', rtcp: false });
    assert.deepEqual(sent, [0, 1, 2], 'a 2500-byte budget lets three 1000-byte datagrams out');
    assert.equal(pacer.queuedBytes, 3000);
    // The pacer runs on real 1 ms ticks: wait for them, however loaded the machine is.
    for (const deadline = Date.now() + 5000; sent.length < 6 && Date.now() < deadline;) await new Promise((resolve) => setTimeout(resolve, 1));
    assert.deepEqual(sent, [0, 1, 2, 3, 4, 5]);
    assert.equal(pacer.queuedBytes, 0);

    const cleared = new UdpPacer(udp, 1000);
    for (let i = 10; i < 13; i++) cleared.push({ parts: [Buffer.from([i])], bytes: 1000, port: 5000, address: '127.0.0.1', rtcp: false });
    cleared.clear();
    cleared.push({ parts: [Buffer.from([99])], bytes: 10, port: 5000, address: '127.0.0.1', rtcp: false });
    // Nothing may follow: the cleared pacer holds no timer (a few ticks would have sent the rest).
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(sent.slice(6), [10]);
    assert.equal(cleared.queuedBytes, 0);
  });
});
