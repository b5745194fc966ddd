import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CodecName, TrackDescription } from '../../src/media/types.js';
import { parseSdp, describeTracks } from '../../src/rtsp/sdp.js';
import {
  audioSpecificConfig, buildSdp, parameterSetsFromTrack, parameterSetsFromUnits, planTracks,
} from '../../src/restream/sdp.js';

// Baseline 640x360 SPS/PPS as x264 writes them (profile_idc 66, constraint flags 0xc0, level 30).
const SPS = Buffer.from('Z0LAHtkAoC/5ZYQAAAMABAAAAwDIPFi5IA==', 'base64');
const PPS = Buffer.from('aMuDyyA=', 'base64');
const SPS2 = Buffer.from([0x67, 0x64, 0x00, 0x28, 0xac, 0xd9]);
const VPS = Buffer.from([0x40, 0x01, 0x0c, 0x01]);
const HSPS = Buffer.from([0x42, 0x01, 0x01, 0x01]);
const HPPS = Buffer.from([0x44, 0x01, 0xc1, 0x72]);

function track(codec: CodecName, extra: Partial<TrackDescription> = {}): TrackDescription {
  const video = codec === 'H264' || codec === 'H265';
  return {
    kind: video ? 'video' : 'audio',
    codec,
    payloadType: 96,
    clockRate: video ? 90_000 : 8000,
    fmtp: {},
    controlUrl: 'rtsp://camera/x',
    ...extra,
  };
}

describe('re-stream SDP', () => {
  it('describes H.264 + PCMU with profile-level-id and sprop-parameter-sets from the parameter sets', () => {
    const plan = planTracks([track('H264', { parameterSets: [SPS, PPS] }), track('PCMU', { channels: 1 })]);
    const sdp = buildSdp({ sessionId: '1', name: 'cam', address: '127.0.0.1', tracks: plan });
    assert.match(sdp, /^v=0\r\no=- 1 1 IN IP4 127\.0\.0\.1\r\ns=cam\r\nc=IN IP4 0\.0\.0\.0\r\nt=0 0\r\n/);
    assert.ok(sdp.includes(`a=fmtp:96 packetization-mode=1;profile-level-id=42c01e;sprop-parameter-sets=${SPS.toString('base64')},${PPS.toString('base64')}\r\n`));
    assert.ok(sdp.includes('m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=control:trackID=1\r\n'));
    assert.ok(sdp.endsWith('\r\n'));

    // Our own SDP parser (the RTSP client's) reads it back the way a camera's SDP is read.
    const tracks = describeTracks(parseSdp(sdp), 'rtsp://127.0.0.1:1/cam/').tracks;
    assert.deepEqual(tracks.map((t) => [t.codec, t.clockRate, t.controlUrl]), [
      ['H264', 90_000, 'rtsp://127.0.0.1:1/cam/trackID=0'],
      ['PCMU', 8000, 'rtsp://127.0.0.1:1/cam/trackID=1'],
    ]);
  });

  it('prefers the newest keyframe\'s parameter sets over the camera\'s SDP', () => {
    const fromKeyframe = parameterSetsFromUnits('H264', [SPS2, PPS, Buffer.from([0x65, 0x88])]);
    assert.ok(fromKeyframe);
    const plan = planTracks([track('H264', { parameterSets: [SPS, PPS] })], fromKeyframe);
    assert.match(plan[0]!.fmtp, /profile-level-id=640028;sprop-parameter-sets=Z2QAKKzZ,/);
    assert.equal(parameterSetsFromUnits('H264', [Buffer.from([0x65, 0x88])]), undefined);
  });

  it('falls back to the raw fmtp sprop-parameter-sets and to profile-level-id alone', () => {
    const raw = track('H264', { fmtp: { 'sprop-parameter-sets': `${SPS.toString('base64')},${PPS.toString('base64')}` } });
    assert.deepEqual(parameterSetsFromTrack(raw)?.sps, [SPS]);
    const bare = planTracks([track('H264', { fmtp: { 'profile-level-id': '4d001f' } })]);
    assert.equal(bare[0]!.fmtp, 'packetization-mode=1;profile-level-id=4d001f');
  });

  it('describes H.265 with sprop-vps/sps/pps', () => {
    const plan = planTracks([track('H265', { parameterSets: [VPS, HSPS, HPPS] })]);
    const sdp = buildSdp({ sessionId: '1', name: 'cam', address: '127.0.0.1', tracks: plan });
    assert.ok(sdp.includes('a=rtpmap:96 H265/90000\r\n'));
    assert.ok(sdp.includes(`a=fmtp:96 sprop-vps=${VPS.toString('base64')};sprop-sps=${HSPS.toString('base64')};sprop-pps=${HPPS.toString('base64')}\r\n`));
    const fromFmtp = track('H265', { fmtp: { 'sprop-vps': VPS.toString('base64'), 'sprop-sps': HSPS.toString('base64'), 'sprop-pps': HPPS.toString('base64') } });
    assert.deepEqual(parameterSetsFromTrack(fromFmtp)?.vps, [VPS]);
  });

  it('describes AAC as mpeg4-generic AAC-hbr with the camera\'s config, or one derived', () => {
    const aac = planTracks([track('AAC', { clockRate: 16000, channels: 1, fmtp: { config: '1408' } })]);
    const sdp = buildSdp({ sessionId: '1', name: 'cam', address: '127.0.0.1', tracks: aac });
    assert.ok(sdp.includes('a=rtpmap:96 MPEG4-GENERIC/16000/1\r\n'));
    assert.ok(sdp.includes('a=fmtp:96 streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1408\r\n'));
    assert.equal(audioSpecificConfig(16000, 1), '1408');
    assert.equal(audioSpecificConfig(48000, 2), '1190');
    assert.equal(audioSpecificConfig(44100, 2), '1210');
    const derived = planTracks([track('AAC', { clockRate: 48000, channels: 2 })]);
    assert.match(derived[0]!.fmtp, /config=1190$/);
  });

  it('uses static payload types only for 8 kHz mono G.711; Opus is always opus/48000/2', () => {
    const plan = planTracks([
      track('H264'),
      track('PCMA', { clockRate: 16000 }),
    ]);
    assert.deepEqual(plan.map((t) => t.payloadType), [96, 97]);
    assert.equal(planTracks([track('PCMA', { channels: 1 })])[0]!.payloadType, 8);
    const opus = planTracks([track('OPUS', { clockRate: 48000, channels: 2 })]);
    const sdp = buildSdp({ sessionId: '1', name: 'cam', address: '127.0.0.1', tracks: opus });
    assert.ok(sdp.includes('a=rtpmap:96 opus/48000/2\r\na=fmtp:96 sprop-stereo=1\r\n'));
  });

  it('skips unknown codecs and second tracks of a kind, keeping trackIDs stable', () => {
    const unknown = { ...track('PCMU'), codec: 'G726' } as unknown as TrackDescription;
    const plan = planTracks([unknown, track('H264'), track('H265'), track('PCMU', { channels: 1 })]);
    assert.deepEqual(plan.map((t) => [t.codec, t.trackId]), [['H264', 1], ['PCMU', 3]]);
  });

  it('keeps the session name printable and handles IPv6', () => {
    const sdp = buildSdp({ sessionId: '9', name: 'caméra\r\nx', address: '::1', tracks: [] });
    assert.match(sdp, /o=- 9 1 IN IP6 ::1\r\ns=cam_ra__x\r\nc=IN IP6 ::\r\n/);
  });
});
