/**
 * readRtcpFeedback against werift's RTCP serialisers (what werift and browsers send), and against
 * broken framing: it tells what it can and never throws.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  GenericNack,
  PictureLossIndication,
  RtcpPayloadSpecificFeedback,
  RtcpReceiverInfo,
  RtcpRrPacket,
  RtcpSenderInfo,
  RtcpSourceDescriptionPacket,
  RtcpSrPacket,
  RtcpTransportLayerFeedback,
  SourceDescriptionChunk,
  SourceDescriptionItem,
} from 'werift';
import { readRtcpFeedback, type RtcpFeedbackVisitor } from '../../src/rtp/rtcp-feedback.js';

interface Heard {
  reports: Array<[number, number]>;
  nacks: Array<[number, number[]]>;
  keyframes: Array<[number, string]>;
}

function listen(): { heard: Heard; visitor: RtcpFeedbackVisitor } {
  const heard: Heard = { reports: [], nacks: [], keyframes: [] };
  return {
    heard,
    visitor: {
      onReportBlock: (ssrc, fraction) => heard.reports.push([ssrc, fraction]),
      onNack: (ssrc, lost) => heard.nacks.push([ssrc, lost]),
      onKeyframeRequest: (ssrc, kind) => heard.keyframes.push([ssrc, kind]),
    },
  };
}

const info = (ssrc: number, fractionLost: number): RtcpReceiverInfo =>
  new RtcpReceiverInfo({ ssrc, fractionLost, packetsLost: 1, highestSequence: 10, jitter: 0, lsr: 0, dlsr: 0 });

function fir(senderSsrc: number, targets: number[]): Buffer {
  // RFC 5104 4.3.1 (werift does not export its FIR writer): header, sender, unused media SSRC, entries.
  const out = Buffer.alloc(12 + 8 * targets.length);
  out[0] = 0x80 | 4;
  out[1] = 206;
  out.writeUInt16BE(out.length / 4 - 1, 2);
  out.writeUInt32BE(senderSsrc, 4);
  targets.forEach((ssrc, i) => {
    out.writeUInt32BE(ssrc, 12 + 8 * i);
    out[16 + 8 * i] = i;
  });
  return out;
}

test('a browser-like compound: RR + SDES, then NACK, PLI and FIR, each told once', () => {
  const compound = Buffer.concat([
    new RtcpRrPacket({ ssrc: 1, reports: [info(0xaaaa, 64), info(0xbbbb, 0)] }).serialize(),
    new RtcpSourceDescriptionPacket({ chunks: [new SourceDescriptionChunk({ source: 1, items: [new SourceDescriptionItem({ type: 1, text: 'x' })] })] }).serialize(),
    new RtcpTransportLayerFeedback({ feedback: new GenericNack({ senderSsrc: 1, mediaSourceSsrc: 0xaaaa, lost: [100, 101, 105, 116, 117, 140] }) }).serialize(),
    new RtcpPayloadSpecificFeedback({ feedback: new PictureLossIndication({ senderSsrc: 1, mediaSsrc: 0xaaaa }) }).serialize(),
    fir(1, [0xaaaa, 0xcccc]),
  ]);
  const { heard, visitor } = listen();
  assert.deepEqual(readRtcpFeedback(compound, visitor), { wellFormed: true, hadSenderReport: false });
  assert.deepEqual(heard.reports, [[0xaaaa, 0.25], [0xbbbb, 0]]);
  assert.equal(heard.nacks.length, 1);
  assert.equal(heard.nacks[0]![0], 0xaaaa);
  assert.deepEqual([...heard.nacks[0]![1]].sort((a, b) => a - b), [100, 101, 105, 116, 117, 140]);
  assert.deepEqual(heard.keyframes, [[0xaaaa, 'PLI'], [0xaaaa, 'FIR'], [0xcccc, 'FIR']]);
});

test("a sender report's blocks are read, and the SR is flagged (a talking viewer)", () => {
  const sr = new RtcpSrPacket({
    ssrc: 7,
    senderInfo: new RtcpSenderInfo({ ntpTimestamp: 1n << 40n, rtpTimestamp: 5, packetCount: 1, octetCount: 2 }),
    reports: [info(0xaaaa, 128)],
  }).serialize();
  const { heard, visitor } = listen();
  assert.deepEqual(readRtcpFeedback(sr, visitor), { wellFormed: true, hadSenderReport: true });
  assert.deepEqual(heard.reports, [[0xaaaa, 0.5]]);
});

test('a NACK across the sequence wrap names the wrapped numbers', () => {
  const nack = new RtcpTransportLayerFeedback({ feedback: new GenericNack({ senderSsrc: 1, mediaSourceSsrc: 2, lost: [65534, 65535, 0, 3] }) }).serialize();
  const { heard, visitor } = listen();
  readRtcpFeedback(nack, visitor);
  assert.deepEqual([...heard.nacks[0]![1]].sort((a, b) => a - b), [0, 3, 65534, 65535]);
});

test('broken framing: what came before is read, the rest is flagged, nothing throws', () => {
  const rr = new RtcpRrPacket({ ssrc: 1, reports: [info(0xaaaa, 32)] }).serialize();
  const { heard, visitor } = listen();
  // A length that runs past the end, after a good RR.
  const overrun = Buffer.concat([rr, Buffer.from([0x81, 206, 0x00, 0x09, 0, 0, 0, 1])]);
  assert.deepEqual(readRtcpFeedback(overrun, visitor), { wellFormed: false, hadSenderReport: false });
  assert.deepEqual(heard.reports, [[0xaaaa, 0.125]]);
  // Version 0, trailing bytes, an RR claiming more blocks than it holds, a PLI too short to name an SSRC.
  assert.equal(readRtcpFeedback(Buffer.from([0x00, 201, 0, 1, 0, 0, 0, 1]), visitor).wellFormed, false);
  assert.equal(readRtcpFeedback(Buffer.concat([rr, Buffer.from([1, 2])]), visitor).wellFormed, false);
  const lying = Buffer.from(rr);
  lying[0] = 0x80 | 5;
  readRtcpFeedback(lying, visitor);
  readRtcpFeedback(Buffer.from([0x81, 206, 0, 1, 0, 0, 0, 1]), visitor);
  assert.equal(heard.reports.length, 3, 'one block each from the overrun, the trailing-bytes and the lying RR');
  assert.equal(heard.keyframes.length, 0, 'a PLI without a media SSRC is no request');
  for (let i = 0; i < 5000; i++) {
    const junk = randomBytes(4 + (i % 120));
    junk[0] = 0x80 | (junk[0]! & 0x3f);
    readRtcpFeedback(junk, visitor);
  }
});
