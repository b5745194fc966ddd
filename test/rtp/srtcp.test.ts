/**
 * SrtcpContext against werift's SRTCP, an independent implementation of the same RFCs: what one
 * protects the other opens, for both profiles werift negotiates; tampering, replays and short
 * packets are refused without a throw. Every case runs twice: with the JavaScript cryptography and
 * with the native addon's (native/srtcp.c), which must load on the machines the suite runs on.
 */
import assert from 'node:assert/strict';
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { RtcpReceiverInfo, RtcpRrPacket, type SrtcpSession } from 'werift';
import { srtcpSessions as keyedSrtcpSessions } from '../helpers/srtp-sessions.js';
import { SRTP_PROFILE_AEAD_AES_128_GCM, SRTP_PROFILE_AES128_CM_SHA1_80 } from '../../src/rtp/srtp-writer.js';
import { nativeSrtcp, nativeSrtcpSelfTestError, srtcpBackendReason, SrtcpContext, type SrtcpKeyMaterial } from '../../src/rtp/srtcp.js';
import type { NativeFanout } from '../../src/rtp/native-fanout.js';
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

const BACKENDS = ['javascript', 'native'] as const;
type Backend = (typeof BACKENDS)[number];

/** The addon's SRTCP; a failure (not a skip) where it did not load or failed its check. */
function requiredNative(): NativeFanout {
  const fanout = nativeSrtcp();
  if (!fanout) throw new Error(`the addon's SRTCP is not in use here: ${srtcpBackendReason()}`);
  return fanout;
}

function contextFor(backend: Backend, keys: SrtcpKeyMaterial): SrtcpContext {
  const context = new SrtcpContext(keys, backend === 'native' ? requiredNative() : null);
  assert.equal(context.backend, backend);
  return context;
}

for (const backend of BACKENDS)
for (const profile of [SRTP_PROFILE_AES128_CM_SHA1_80, SRTP_PROFILE_AEAD_AES_128_GCM]) {
  describe(`SRTCP, ${backend}, profile ${profile}`, () => {
    test("opens werift's protected packets byte for byte, in order and out of order", () => {
      const { viewer, server } = srtcpSessions(profile);
      const inbound = contextFor(backend, server.remoteContext);
      const plain = Array.from({ length: 40 }, (_, i) => receiverReport(0x1234, 0xabcd, i));
      const sealed = plain.map((p) => viewer.encrypt(p));
      // Reordered inside the replay window: all still open.
      const order = [...sealed.keys()];
      [order[3], order[7]] = [order[7]!, order[3]!];
      for (const i of order) assert.deepEqual(inbound.unprotect(sealed[i]!), plain[i], `packet ${i}`);
    });

    test('what it protects, werift opens; the index runs per SSRC', () => {
      const { viewer, server } = srtcpSessions(profile);
      const outbound = contextFor(backend, server.localContext);
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
      const inbound = contextFor(backend, server.remoteContext);
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
      const inbound = contextFor(backend, server.remoteContext);
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

for (const backend of BACKENDS) {
  test(`SRTCP, ${backend}, AES-CM: an unencrypted packet (E = 0) is authenticated and opened as it is`, () => {
    const { server } = srtcpSessions(SRTP_PROFILE_AES128_CM_SHA1_80);
    const keys = server.remoteContext;
    const inbound = contextFor(backend, keys);
    const report = receiverReport(5, 6, 7);
    const body = Buffer.concat([report, Buffer.from([0, 0, 0, 9])]);
    const tag = createHmac('sha1', keys.srtcpSessionAuthTag).update(body).digest().subarray(0, 10);
    assert.deepEqual(inbound.unprotect(Buffer.concat([body, tag])), report);
    const forged = Buffer.concat([body, tag]);
    forged[9]! ^= 4;
    const fresh = contextFor(backend, keys);
    assert.equal(fresh.unprotect(forged), undefined);
    assert.equal(fresh.lastRefusal, 'authentication');
  });

  test(`SRTCP, ${backend}, GCM: an unencrypted packet (E = 0) is authenticated whole (RFC 7714 §17)`, () => {
    const { server } = srtcpSessions(SRTP_PROFILE_AEAD_AES_128_GCM);
    const keys = server.remoteContext;
    const inbound = contextFor(backend, keys);
    const report = receiverReport(5, 6, 7);
    const word = Buffer.from([0, 0, 0, 9]);
    // IV: (00 00 || SSRC || 00 00 || index) XOR salt; everything but the tag is associated data.
    const iv = Buffer.alloc(12);
    iv.writeUInt32BE(report.readUInt32BE(4), 2);
    iv.writeUInt32BE(9, 8);
    for (let i = 0; i < 12; i++) iv[i]! ^= keys.srtcpSessionSalt[i]!;
    const cipher = createCipheriv('aes-128-gcm', keys.srtcpSessionKey, iv);
    cipher.setAAD(Buffer.concat([report, word]));
    cipher.final();
    const packet = Buffer.concat([report, cipher.getAuthTag(), word]);
    assert.deepEqual(inbound.unprotect(packet), report);
    const forged = Buffer.from(packet);
    forged[12]! ^= 1;
    assert.equal(contextFor(backend, keys).unprotect(forged), undefined);
  });

  test(`SRTCP, ${backend}: a profile it is not built for is refused`, () => {
    assert.throws(() => contextFor(backend, { profile: 2, srtcpSessionKey: randomBytes(16), srtcpSessionSalt: randomBytes(14), srtcpSessionAuthTag: randomBytes(20) }), /unsupported SRTP profile 2/);
  });
}

for (const profile of [SRTP_PROFILE_AES128_CM_SHA1_80, SRTP_PROFILE_AEAD_AES_128_GCM]) {
  test(`SRTCP, profile ${profile}: the addon protects byte for byte as the JavaScript does, and each opens the other's`, () => {
    const { server } = srtcpSessions(profile);
    const [javascript, native] = [contextFor('javascript', server.localContext), contextFor('native', server.localContext)];
    const [javascriptIn, nativeIn] = [contextFor('javascript', server.localContext), contextFor('native', server.localContext)];
    for (let i = 0; i < 50; i++) {
      const report = receiverReport(100 + (i % 3), 2, i);
      const bytes = native.protect(report);
      assert.deepEqual(bytes, javascript.protect(report), `packet ${i}`);
      assert.deepEqual(javascriptIn.unprotect(bytes), report);
      assert.deepEqual(nativeIn.unprotect(bytes), report);
    }
  });
}

test("the addon's SRTCP: what it opens is good until the next packet; bad arguments throw, and nothing is written out of bounds", () => {
  const fanout = requiredNative();
  const { viewer, server } = srtcpSessions(SRTP_PROFILE_AEAD_AES_128_GCM);
  const inbound = contextFor('native', server.remoteContext);
  const first = inbound.unprotect(viewer.encrypt(receiverReport(1, 2, 3)))!;
  const kept = Buffer.from(first);
  inbound.unprotect(viewer.encrypt(receiverReport(1, 2, 99)));
  assert.notDeepEqual(first, kept, 'the next packet is opened into the same memory');
  const context = fanout.createSrtcp(SRTP_PROFILE_AEAD_AES_128_GCM, randomBytes(16), randomBytes(12), Buffer.alloc(0));
  const report = receiverReport(1, 2, 3);
  const out = Buffer.alloc(report.length + 20 + 8, 0xee);
  assert.equal(fanout.srtcpProtect(context, report, 5, out.subarray(0, report.length + 20)), report.length + 20);
  assert.deepEqual(out.subarray(report.length + 20), Buffer.alloc(8, 0xee), 'nothing past the packet');
  assert.throws(() => fanout.srtcpProtect(context, report, 5, Buffer.alloc(report.length + 19)), /out is too small/);
  assert.throws(() => fanout.srtcpProtect(context, report, 0x8000_0000, out), /31 bits/);
  assert.throws(() => fanout.srtcpProtect(context, report.subarray(0, 7), 1, out), /at least 8 bytes/);
  assert.throws(() => fanout.srtcpProtect(context, report, 1, report), /overlaps|too small/);
  assert.throws(() => fanout.srtcpUnprotect(context, out, out), /overlaps/);
  assert.throws(() => fanout.srtcpUnprotect(fanout.createDestination('127.0.0.1', 9) as never, out, Buffer.alloc(100)), /bad arguments/);
  assert.equal(fanout.srtcpUnprotect(context, Buffer.alloc(27), Buffer.alloc(100)), -2, 'too short for GCM');
  assert.equal(fanout.srtcpUnprotect(context, Buffer.alloc(60), Buffer.alloc(100)), -1, 'zeros are not authentic');
  assert.throws(() => fanout.createSrtcp(3, randomBytes(16), randomBytes(14), randomBytes(20)), /unsupported SRTP profile/);
  assert.throws(() => fanout.createSrtcp(1, randomBytes(15), randomBytes(14), randomBytes(20)), /16 bytes/);
});

test("a binary whose SRTCP differs from the JavaScript's fails the check, so the plugin keeps to JavaScript", () => {
  const fanout = requiredNative();
  assert.equal(nativeSrtcpSelfTestError(fanout), undefined);
  // The addon's functions are read-only and not enumerable: the stand-ins inherit them and shadow one.
  const withOne = (override: Partial<NativeFanout>): NativeFanout =>
    Object.create(fanout, Object.fromEntries(Object.entries(override).map(([name, value]) => [name, { value }]))) as NativeFanout;
  const flipped = withOne({
    srtcpProtect: (context, rtcp, index, out) => {
      const length = fanout.srtcpProtect(context, rtcp, index, out);
      out[length - 1]! ^= 1;
      return length;
    },
  });
  assert.match(nativeSrtcpSelfTestError(flipped) ?? '', /differ from the JavaScript's/);
  const opensAnything = withOne({ srtcpUnprotect: (_context, packet, out) => packet.copy(out, 0, 0, packet.length - 20) });
  assert.match(nativeSrtcpSelfTestError(opensAnything) ?? '', /opened a tampered packet|did not open/);
});
