/**
 * SrtcpContext against werift's SRTCP, an independent implementation of the same RFCs: what one
 * protects the other opens, for both profiles werift negotiates; tampering, replays and short
 * packets are refused without a throw.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { RtcpReceiverInfo, RtcpRrPacket, type SrtcpSession } from 'werift';
import { srtcpSessions as keyedSrtcpSessions } from '../helpers/srtp-sessions.js';
import { SRTP_PROFILE_AEAD_AES_128_GCM, SRTP_PROFILE_AES128_CM_SHA1_80 } from '../../src/rtp/srtp-writer.js';
import { SrtcpContext } from '../../src/rtp/srtcp.js';
import { buildSenderReport, parseRtcpSenderReport } from '../../src/rtp/rtcp.js';

/** The viewer's side protects what the server's side opens, and the other way round. */
function srtcpSessions(profile: number): { viewer: SrtcpSession; server: SrtcpSession } {
  const { sender, receiver } = keyedSrtcpSessions(profile);
  return { viewer: sender, server: receiver };
}

function receiverReport(ssrc: number, about: number, fractionLost: number): Buffer {
  return new RtcpRrPacket({
    ssrc,
    reports: [new RtcpReceiverInfo({ ssrc: about, fractionLost, packetsLost: 3, highestSequence: 1000, jitter: 1, lsr: 0, dlsr: 0 })],
  }).serialize();
}

for (const profile of [SRTP_PROFILE_AES128_CM_SHA1_80, SRTP_PROFILE_AEAD_AES_128_GCM]) {
  describe(`SRTCP, profile ${profile}`, () => {
    test("opens werift's protected packets byte for byte, in order and out of order", () => {
      const { viewer, server } = srtcpSessions(profile);
      const inbound = new SrtcpContext(server.remoteContext);
      const plain = Array.from({ length: 40 }, (_, i) => receiverReport(0x1234, 0xabcd, i));
      const sealed = plain.map((p) => viewer.encrypt(p));
      // Reordered inside the replay window: all still open.
      const order = [...sealed.keys()];
      [order[3], order[7]] = [order[7]!, order[3]!];
      for (const i of order) assert.deepEqual(inbound.unprotect(sealed[i]!), plain[i], `packet ${i}`);
    });

    test('what it protects, werift opens; the index runs per SSRC', () => {
      const { viewer, server } = srtcpSessions(profile);
      const outbound = new SrtcpContext(server.localContext);
      for (let i = 0; i < 5; i++) {
        for (const ssrc of [111, 222]) {
          const report = buildSenderReport({ ssrc, ntpMs: 1_700_000_000_000 + i, rtpTimestamp: i * 90, packetCount: i, octetCount: i * 100, cname: 'c' });
          const protectedBytes = outbound.protect(report);
          assert.equal(protectedBytes.length, report.length + outbound.overhead);
          const opened = viewer.decrypt(protectedBytes);
          assert.deepEqual(opened, report);
          assert.equal(parseRtcpSenderReport(opened)!.ssrc, ssrc);
          // The index word (E flag set) sits where the profile puts it.
          const indexAt = profile === SRTP_PROFILE_AES128_CM_SHA1_80 ? protectedBytes.length - 14 : protectedBytes.length - 4;
          assert.equal(protectedBytes.readUInt32BE(indexAt), (0x8000_0000 | i) >>> 0);
        }
      }
    });

    test('a flipped bit anywhere, a replay, a packet from other keys and a short one are refused, not thrown', () => {
      const { viewer, server } = srtcpSessions(profile);
      const inbound = new SrtcpContext(server.remoteContext);
      const sealed = viewer.encrypt(receiverReport(1, 2, 3));
      for (let byte = 0; byte < sealed.length; byte += 3) {
        const bad = Buffer.from(sealed);
        bad[byte]! ^= 0x10;
        assert.equal(inbound.unprotect(bad), undefined, `byte ${byte}`);
        assert.ok(inbound.lastRefusal === 'authentication' || inbound.lastRefusal === 'replay', `byte ${byte}: ${inbound.lastRefusal}`);
      }
      assert.ok(inbound.unprotect(sealed), 'the untouched packet still opens after all that');
      assert.equal(inbound.unprotect(sealed), undefined);
      assert.equal(inbound.lastRefusal, 'replay');
      const stranger = srtcpSessions(profile).viewer.encrypt(receiverReport(77, 2, 3));
      assert.equal(inbound.unprotect(stranger), undefined);
      assert.equal(inbound.lastRefusal, 'authentication');
      assert.equal(inbound.unprotect(sealed.subarray(0, 12)), undefined);
      assert.equal(inbound.lastRefusal, 'short');
      for (let i = 0; i < 2000; i++) inbound.unprotect(randomBytes(1 + (i % 80)));
    });

    test('the replay window: 64 back from the highest index is the limit', () => {
      const { viewer, server } = srtcpSessions(profile);
      const inbound = new SrtcpContext(server.remoteContext);
      const sealed = Array.from({ length: 140 }, (_, i) => viewer.encrypt(receiverReport(9, 2, i % 256)));
      assert.ok(inbound.unprotect(sealed[0]!));
      assert.ok(inbound.unprotect(sealed[100]!), 'a jump forward');
      assert.equal(inbound.unprotect(sealed[36]!), undefined, '64 behind: too old');
      assert.equal(inbound.lastRefusal, 'replay');
      assert.ok(inbound.unprotect(sealed[37]!), '63 behind: inside the window');
      assert.ok(inbound.unprotect(sealed[60]!), 'a late one, 40 behind (the upper half of the window)');
      assert.equal(inbound.unprotect(sealed[60]!), undefined, 'but only once');
      assert.ok(inbound.unprotect(sealed[135]!), 'a jump of 35 keeps what was seen');
      assert.equal(inbound.unprotect(sealed[100]!), undefined, '100 was seen, now 35 behind');
      assert.ok(inbound.unprotect(sealed[99]!), '99 was never seen');
    });
  });
}

test('SRTCP, AES-CM: an unencrypted packet (E = 0) is authenticated and opened as it is', () => {
  const { server } = srtcpSessions(SRTP_PROFILE_AES128_CM_SHA1_80);
  const keys = server.remoteContext;
  const inbound = new SrtcpContext(keys);
  const report = receiverReport(5, 6, 7);
  const body = Buffer.concat([report, Buffer.from([0, 0, 0, 9])]);
  const tag = createHmac('sha1', keys.srtcpSessionAuthTag).update(body).digest().subarray(0, 10);
  assert.deepEqual(inbound.unprotect(Buffer.concat([body, tag])), report);
});

test('SRTCP refuses a profile it is not built for', () => {
  assert.throws(() => new SrtcpContext({ profile: 2, srtcpSessionKey: randomBytes(16), srtcpSessionSalt: randomBytes(14), srtcpSessionAuthTag: randomBytes(20) }), /unsupported SRTP profile 2/);
});
