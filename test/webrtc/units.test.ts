// Unit tests of the pieces under the viewer: SRTP protection (checked by werift's own decryptor),
// the per-viewer timeline, ICE settings and candidate announcing, codec planning, SDP clean-up,
// viewer admission and message validation.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { RtpPacket } from 'werift';
import type { MediaFrame, TrackDescription } from '../../src/media/types.js';
import { h265Fmtp, planMedia, UnsupportedCodecError } from '../../src/webrtc/codecs.js';
import {
  announceCandidates,
  announceInSdp,
  icePeerConfig,
  STUN_GATHER_TIMEOUT_S,
  resolveAnnouncedAddresses,
  validateIceSettings,
} from '../../src/webrtc/ice-config.js';
import { OutboundStream } from '../../src/webrtc/outbound-stream.js';
import { parseRtcpSenderReport } from '../../src/rtp/rtcp.js';
import { answerAcceptsVideo, filterOfferForH264, filterOfferForH265, h264ProfileRank, offeredVideoCodecs } from '../../src/webrtc/sdp-filter.js';
import { ReplayPacer } from '../../src/webrtc/replay-pacer.js';
import { parseClientMessage, protocolState } from '../../src/webrtc/signalling.js';
import { SRTP_PROFILE_AEAD_AES_128_GCM, SRTP_PROFILE_AES128_CM_SHA1_80, SrtpStreamWriter } from '../../src/rtp/srtp-writer.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import { srtpSessions } from '../helpers/srtp-sessions.js';


describe('SRTP writer', () => {
  for (const profile of [SRTP_PROFILE_AES128_CM_SHA1_80, SRTP_PROFILE_AEAD_AES_128_GCM]) {
    test(`profile ${profile}: werift decrypts what it protects, across a sequence rollover, and retransmissions are identical`, () => {
      const { sender, receiver } = srtpSessions(profile);
      const writer = new SrtpStreamWriter(sender.localContext, 0xdeadbeef);
      // The scatter/gather form the fan-out uses must give the same bytes.
      const partsWriter = new SrtpStreamWriter(sender.localContext, 0xdeadbeef);
      const sent = new Map<number, Buffer>();
      let seq = 65530;
      for (let i = 0; i < 12; i++) {
        const payload = randomBytes(100 + i * 97);
        const packet = writer.protect(102, i % 3 === 0, seq, 1000 + i * 3600, payload);
        assert.equal(packet.length, 12 + payload.length + writer.trailerBytes);
        assert.ok(Buffer.concat(partsWriter.protectParts(102, i % 3 === 0, seq, 1000 + i * 3600, payload)).equals(packet));
        const plain = RtpPacket.deSerialize(receiver.decrypt(packet));
        assert.equal(plain.header.ssrc, 0xdeadbeef);
        assert.equal(plain.header.sequenceNumber, seq);
        assert.equal(plain.header.timestamp, 1000 + i * 3600);
        assert.equal(plain.header.payloadType, 102);
        assert.equal(plain.header.marker, i % 3 === 0);
        assert.ok(plain.payload.equals(payload));
        sent.set(seq, packet);
        if (i % 4 === 1) {
          // A NACK answer: the same index protects to the same bytes.
          assert.ok(writer.reprotect(102, i % 3 === 0, seq, 1000 + i * 3600, payload).equals(packet));
          assert.ok(Buffer.concat(partsWriter.reprotectParts(102, i % 3 === 0, seq, 1000 + i * 3600, payload)).equals(packet));
        }
        seq = (seq + 1) & 0xffff;
      }
      // A packet from just before the rollover, retransmitted after it, still matches.
      const before = sent.get(65534)!;
      const rtp = RtpPacket.deSerialize(receiver.decrypt(before));
      assert.ok(writer.reprotect(102, rtp.header.marker, 65534, rtp.header.timestamp, rtp.payload).equals(before));
    });
  }

  test('an unknown profile is refused', () => {
    assert.throws(() => new SrtpStreamWriter({ profile: 99, srtpSessionKey: randomBytes(16), srtpSessionSalt: randomBytes(14), srtpSessionAuthTag: randomBytes(20) }, 1));
  });
});

function frame(kind: 'video' | 'audio', timestamp: number, receivedAt: number, keyframe = false): MediaFrame {
  return {
    kind,
    codec: kind === 'video' ? 'H264' : 'PCMU',
    clockRate: kind === 'video' ? 90000 : 8000,
    timestamp,
    sequenceNumber: 0,
    keyframe,
    units: [],
    packets: [],
    receivedAt,
  };
}

describe('outbound stream timeline', () => {
  test('live frames keep their spacing; a replayed GOP is squeezed into the present; time never goes back', () => {
    const out = new OutboundStream({ kind: 'video', ssrc: 1, payloadType: 102, clockRate: 90000, historySize: 0 });
    const now = 100_000;
    // A 2 s old GOP replay (50 frames), then live frames.
    const replay = Array.from({ length: 50 }, (_, i) => out.timestampFor(frame('video', 900_000 + i * 3600, now - 2000 + i * 40), 2000 - i * 40, 300));
    for (let i = 1; i < replay.length; i++) assert.ok(((replay[i]! - replay[i - 1]!) | 0) > 0);
    const span = (replay.at(-1)! - replay[0]!) | 0;
    assert.ok(span < 3600 * 10, `the 2 s GOP spans ${span} ticks once squeezed`);
    const live1 = out.timestampFor(frame('video', 900_000 + 50 * 3600, now), 1, 300);
    const live2 = out.timestampFor(frame('video', 900_000 + 51 * 3600, now + 40), 1, 300);
    const live3 = out.timestampFor(frame('video', 900_000 + 52 * 3600, now + 80), 1, 300);
    assert.ok(((live1 - replay.at(-1)!) | 0) > 0);
    // The first live frame may sit a little closer to the squeezed replay; after it, real spacing.
    assert.ok(((live2 - live1) | 0) > 0 && ((live2 - live1) | 0) <= 3600);
    assert.equal((live3 - live2) | 0, 3600);
    // A later keyframe replay (PLI) of older frames stays after what was sent.
    const again = out.timestampFor(frame('video', 900_000 + 10 * 3600, now - 1600), 1640, 300);
    assert.ok(((again - live3) | 0) > 0);
  });

  test('sequence numbers are a plain counter and sender reports map RTP time to NTP', () => {
    const out = new OutboundStream({ kind: 'audio', ssrc: 7, payloadType: 0, clockRate: 8000, historySize: 0 });
    const first = out.sequenceNumber;
    assert.ok(first < 0x8000);
    out.nextSequence(160);
    out.nextSequence(160);
    assert.equal(out.sequenceNumber, (first + 2) & 0xffff);
    assert.equal(out.senderReport(Date.now(), 'cn'), undefined, 'no report before anything went out live');
    out.noteLive(5000, 1_700_000_000_000);
    const bytes = out.senderReport(1_700_000_000_500, 'viewer-cname')!;
    const sr = parseRtcpSenderReport(bytes)!;
    assert.equal(sr.ssrc, 7);
    assert.equal(sr.rtpTimestamp, 5000 + 4000);
    assert.equal(sr.packetCount, 2);
    assert.equal(sr.octetCount, 320);
    assert.ok(Math.abs(sr.wallClockMs - 1_700_000_000_500) < 0.001);
    // RFC 3550 6.1: the compound carries SDES with the CNAME werift put in the SDP.
    assert.equal(bytes[29], 202);
    assert.equal(bytes.subarray(38, 38 + bytes[37]!).toString(), 'viewer-cname');
  });
});

describe('ICE settings', () => {
  test('LAN default has no STUN; settings map onto werift', () => {
    assert.deepEqual(icePeerConfig({}).iceServers, []);
    const config = icePeerConfig({
      iceServers: [{ urls: 'turn:turn.example:3478', username: 'u', credential: 'c' }],
      portRange: [40000, 40100],
      additionalHostAddresses: ['10.8.0.1'],
      useTcp: true,
      useIpv6: false,
      relayOnly: true,
    });
    assert.deepEqual(config.icePortRange, [40000, 40100]);
    assert.deepEqual(config.iceAdditionalHostAddresses, ['10.8.0.1']);
    assert.equal(config.iceUseTcp, true);
    assert.equal(config.iceUseIpv6, false);
    assert.equal(config.iceTransportPolicy, 'relay');
    assert.deepEqual(config.iceServers, [{ urls: 'turn:turn.example:3478', username: 'u', credential: 'c' }]);
  });

  test('STUN gathering is bounded below the 5 s werift default and within the 3 s WHEP gathering budget', () => {
    const config = icePeerConfig({ iceServers: [{ urls: 'stun:stun.example:3478' }] });
    assert.equal(config.iceStunGatherTimeout, STUN_GATHER_TIMEOUT_S);
    assert.ok(STUN_GATHER_TIMEOUT_S > 0 && STUN_GATHER_TIMEOUT_S * 1000 < 3_000);
    assert.equal(icePeerConfig({}).iceStunGatherTimeout, STUN_GATHER_TIMEOUT_S);
  });

  test('validation names problems without echoing credentials', () => {
    const problems = validateIceSettings({
      iceServers: [{ urls: 'http://x' }, { urls: 'turn:t', username: 'u' }],
      portRange: [5000, 5000],
      announcedAddresses: ['::1', 'my.dyndns.example', '203.0.113.7'],
      relayOnly: true,
    });
    assert.equal(problems.length, 4, problems.join('\n'));
    assert.ok(!problems.join(' ').includes('credential:'));
    assert.deepEqual(validateIceSettings({ iceServers: [{ urls: ['stun:s:3478'] }], portRange: [40000, 40100] }), []);
  });

  test('announced addresses copy IPv4 host candidates (same port, lower priority), in trickle and in SDP', () => {
    const host = 'candidate:abc 1 udp 2130706431 192.168.1.20 40002 typ host generation 0';
    const [copy] = announceCandidates(host, ['203.0.113.7']);
    assert.equal(copy, 'candidate:abcn0 1 udp 2130706430 203.0.113.7 40002 typ host generation 0');
    assert.deepEqual(announceCandidates('candidate:x 1 udp 1 10.0.0.1 5 typ srflx raddr 0.0.0.0 rport 0', ['203.0.113.7']), []);
    assert.deepEqual(announceCandidates('candidate:x 1 udp 1 127.0.0.1 5 typ host', ['203.0.113.7']), []);
    const sdp = `v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=${host}\r\na=end-of-candidates\r\n`;
    const out = announceInSdp(sdp, ['203.0.113.7']);
    assert.match(out, /a=candidate:abcn0 1 udp 2130706430 203\.0\.113\.7 40002 typ host/);
    assert.ok(out.endsWith('\r\n'));
  });

  test('announced host names resolve to IPv4; unresolvable ones are reported and skipped', async () => {
    const problems: string[] = [];
    const addresses = await resolveAnnouncedAddresses(['localhost', '203.0.113.9', 'no-such-host.invalid'], (p) => problems.push(p));
    assert.ok(addresses.includes('127.0.0.1'));
    assert.ok(addresses.includes('203.0.113.9'));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /no-such-host\.invalid/);
  });
});

const video: TrackDescription = { kind: 'video', codec: 'H264', payloadType: 96, clockRate: 90000, fmtp: {}, controlUrl: 'v' };
const audio = (codec: TrackDescription['codec']): TrackDescription => ({ kind: 'audio', codec, payloadType: 97, clockRate: 8000, fmtp: {}, controlUrl: 'a' });

describe('codec planning', () => {
  test('H.264 and G.711 pass through; AAC is dropped with a plain note; H.265 is refused', () => {
    assert.equal(planMedia([video, audio('PCMA')]).audio?.payloadType, 8);
    assert.equal(planMedia([video, audio('PCMU')]).audio?.codec, 'PCMU');
    assert.equal(planMedia([video, audio('OPUS')]).audio?.mimeType, 'audio/opus');
    const aac = planMedia([video, audio('AAC')]);
    assert.equal(aac.audio, undefined);
    assert.match(aac.notes[0]!, /AAC/);
    assert.throws(() => planMedia([{ ...video, codec: 'H265' }, audio('PCMU')]), (e: unknown) => e instanceof UnsupportedCodecError && /H\.265/.test(e.message));
    assert.equal(planMedia([audio('PCMU')]).video, undefined, 'an audio-only camera is still playable');
    assert.throws(() => planMedia([audio('AAC')]), UnsupportedCodecError);
  });
  test('H.265 passes through to a viewer that decodes it, described with the camera\'s own profile, tier and level', () => {
    const hevc: TrackDescription = { ...video, codec: 'H265', fmtp: { 'profile-id': '1', 'level-id': '120', 'tier-flag': '0' } };
    const plan = planMedia([hevc, audio('PCMU')], { h265: true });
    assert.equal(plan.video?.codec, 'H265');
    assert.equal(plan.audio?.codec, 'PCMU');
    assert.throws(() => planMedia([hevc], { h265: false }), UnsupportedCodecError);
    assert.equal(planMedia([video], { h265: true }).video?.codec, 'H264', 'an H.264 camera stays H.264');
    assert.equal(h265Fmtp(hevc), 'level-id=120;profile-id=1;tier-flag=0;tx-mode=SRST');
    assert.equal(h265Fmtp({ fmtp: {} }), 'level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST', 'Main, Main tier, level 3.1 when the camera names none');
    assert.equal(h265Fmtp({ fmtp: { 'profile-id': '1;x=y' } }), 'level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST', 'a malformed value is not copied into SDP');
  });
});

describe('SDP clean-up', () => {
  test('profile ranking prefers what browsers take best', () => {
    const ranked = ['640c1f', '4d001f', '42001f', '42e01f'].sort((a, b) => h264ProfileRank(a) - h264ProfileRank(b));
    assert.deepEqual(ranked, ['42e01f', '42001f', '4d001f', '640c1f']);
  });

  test('an offer with only packetization-mode=0 H.264 has no usable choice; answers are checked', () => {
    const offer = 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=0;profile-level-id=42e01f\r\n';
    assert.equal(filterOfferForH264(offer).h264, undefined);
    assert.equal(answerAcceptsVideo('v=0\r\nm=video 0 UDP/TLS/RTP/SAVPF 102\r\n'), false);
    assert.equal(answerAcceptsVideo('v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\n'), true);
  });

  test('an H.265 offer: the client\'s Main-profile H.265 is kept and nothing else; offeredVideoCodecs names it', () => {
    const offer = [
      'v=0', 'm=video 9 UDP/TLS/RTP/SAVPF 96 104 106 108',
      'a=rtpmap:96 VP8/90000',
      'a=rtpmap:104 H265/90000', 'a=fmtp:104 level-id=93;profile-id=2;tier-flag=0;tx-mode=SRST',
      'a=rtpmap:106 H265/90000', 'a=fmtp:106 level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST', 'a=rtcp-fb:106 nack pli',
      'a=rtpmap:108 H264/90000', 'a=fmtp:108 packetization-mode=1;profile-level-id=42e01f',
      'm=audio 9 UDP/TLS/RTP/SAVPF 0', 'a=rtpmap:0 PCMU/8000', '',
    ].join('\r\n');
    const filtered = filterOfferForH265(offer);
    assert.equal(filtered.h264?.payloadType, 106, 'Main (profile-id 1) before Main 10');
    assert.match(filtered.sdp, /m=video 9 UDP\/TLS\/RTP\/SAVPF 106\r\n/);
    assert.ok(!/a=rtpmap:(96|104|108) /.test(filtered.sdp));
    assert.ok(filtered.sdp.includes('a=rtcp-fb:106 nack pli'));
    assert.equal(filtered.hasAudio, true);
    assert.deepEqual(offeredVideoCodecs(offer).sort(), ['H264', 'H265', 'VP8']);
    assert.equal(filterOfferForH265(offer.replace(/a=rtpmap:10[46] H265/g, 'a=rtpmap:110 X')).h264, undefined, 'no H.265 offered');
  });
});

describe('viewer admission', () => {
  test('per-camera and total limits, idempotent release', () => {
    const limits = new ViewerLimiter({ maxViewersPerCamera: 2, perCamera: { big: 3 }, maxViewersTotal: 4 });
    const a1 = limits.tryAcquire('a')!;
    const a2 = limits.tryAcquire('a')!;
    assert.equal(limits.tryAcquire('a'), undefined);
    assert.ok(limits.tryAcquire('big'));
    assert.ok(limits.tryAcquire('big'));
    assert.equal(limits.tryAcquire('big'), undefined, 'the total limit applies');
    a1();
    a1();
    assert.equal(limits.count('a'), 1);
    assert.equal(limits.totalCount, 3);
    a2();
    assert.equal(limits.count('a'), 0);
  });
});

describe('signalling messages', () => {
  test('valid messages parse; state mapping hides credentials', () => {
    assert.deepEqual(parseClientMessage({ type: 'watch', camera: 'front-door' }, 1000), { type: 'watch', camera: 'front-door' });
    // The codecs a browser can receive decide between the camera and its VP8 variant.
    assert.deepEqual(parseClientMessage({ type: 'watch', camera: 'porch', videoCodecs: ['vp8', 'VP9', 'AV1', 'red'] }, 1000), {
      type: 'watch', camera: 'porch', videoCodecs: ['VP8', 'VP9', 'AV1', 'RED'],
    });
    for (const videoCodecs of ['H264', [1], ['H264', 'x'.repeat(17)], ['video/VP8'], Array.from({ length: 33 }, () => 'VP8'), null]) {
      assert.throws(() => parseClientMessage({ type: 'watch', camera: 'porch', videoCodecs }, 1000), /videoCodecs/, JSON.stringify(videoCodecs));
    }
    assert.deepEqual(parseClientMessage({ type: 'candidate', candidate: null }, 1000), { type: 'candidate', candidate: null });
    assert.deepEqual(parseClientMessage({ type: 'candidate', candidate: { candidate: '', sdpMid: '0' } }, 1000), {
      type: 'candidate',
      candidate: { candidate: '', sdpMid: '0', sdpMLineIndex: null },
    });
    assert.throws(() => parseClientMessage({ type: 'answer', sdp: 'v=0' + 'x'.repeat(2000) }, 1000));
    // Press-to-talk: start or stop, nothing else.
    assert.deepEqual(parseClientMessage({ type: 'talk', action: 'start' }, 1000), { type: 'talk', action: 'start' });
    assert.deepEqual(parseClientMessage({ type: 'talk', action: 'stop' }, 1000), { type: 'talk', action: 'stop' });
    for (const action of [undefined, 'shout', 1, null]) {
      assert.throws(() => parseClientMessage({ type: 'talk', action }, 1000), /talk.action/, String(action));
    }
    assert.deepEqual(protocolState({ state: 'live' }, true), { type: 'state', state: 'live' });
    assert.deepEqual(protocolState({ state: 'live' }, false), { type: 'state', state: 'connecting' });
    assert.deepEqual(protocolState({ state: 'idle' }, false), { type: 'state', state: 'connecting' });
    const retrying = protocolState({ state: 'retrying', lastError: 'rtsp://admin:hunter2@cam/ refused', retryInMs: 4000 }, false);
    assert.equal(retrying.state, 'retrying');
    assert.ok(!retrying.message!.includes('hunter2'));
    assert.match(retrying.message!, /next attempt in 4 s/);
    assert.equal(protocolState({ state: 'stopped' }, false).state, 'offline');
  });
});

describe('replay pacer', () => {
  test('sends a burst at once, the rest at the set rate, in order; clear() drops the rest', async () => {
    const sent: number[] = [];
    // 10 kB/ms with a 5 kB burst: 100 packets of 1 kB take about 10 ms.
    const pacer = new ReplayPacer((parts) => sent.push(parts[0]!.readUInt16BE(0)), 10_000, 5_000);
    const started = performance.now();
    for (let i = 0; i < 100; i++) {
      const part = Buffer.alloc(1000);
      part.writeUInt16BE(i, 0);
      pacer.push([part], 1000);
    }
    assert.ok(sent.length >= 5 && sent.length < 20, `sent at once: ${sent.length}`);
    assert.ok(pacer.active);
    while (pacer.active) await new Promise((r) => setTimeout(r, 1));
    const elapsed = performance.now() - started;
    assert.deepEqual(sent, Array.from({ length: 100 }, (_, i) => i));
    assert.ok(elapsed >= 8, `drained in ${elapsed.toFixed(1)} ms`);
    assert.equal(pacer.queuedBytes, 0);
    for (let i = 0; i < 50; i++) pacer.push([Buffer.alloc(1000)], 1000);
    pacer.clear();
    const count = sent.length;
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(sent.length, count);
    assert.equal(pacer.active, false);
  });
});
