import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeParameterSets, describeTracks, parseFmtp, parseSdp, SdpError } from '../../src/rtsp/sdp.js';

const base = 'rtsp://192.168.1.10:554/Streaming/Channels/101/';

// The shape of a Hikvision answer: H.264 + PCMU, an ONVIF metadata track, relative controls.
const hikvision = [
  'v=0',
  'o=- 1109162014219182 1109162014219192 IN IP4 x.y.z.w',
  's=Media Presentation',
  'e=NONE',
  'b=AS:5050',
  't=0 0',
  'a=control:rtsp://192.168.1.10:554/Streaming/Channels/101/?transportmode=unicast',
  'm=video 0 RTP/AVP 96',
  'c=IN IP4 0.0.0.0',
  'b=AS:5000',
  'a=recvonly',
  'a=x-dimensions:1920,1080',
  'a=control:rtsp://192.168.1.10:554/Streaming/Channels/101/trackID=1?transportmode=unicast',
  'a=rtpmap:96 H264/90000',
  'a=fmtp:96 profile-level-id=420029; packetization-mode=1; sprop-parameter-sets=Z00AKp2oHgCJ+WbgICAgQA==,aO48gA==',
  'm=audio 0 RTP/AVP 0',
  'c=IN IP4 0.0.0.0',
  'b=AS:50',
  'a=sendonly',
  'a=control:rtsp://192.168.1.10:554/Streaming/Channels/101/trackID=2?transportmode=unicast',
  'a=rtpmap:0 PCMU/8000',
  'm=application 0 RTP/AVP 107',
  'a=control:rtsp://192.168.1.10:554/Streaming/Channels/101/trackID=3?transportmode=unicast',
  'a=rtpmap:107 vnd.onvif.metadata/90000',
  '',
].join('\r\n');

describe('parseSdp', () => {
  it('reads session and media sections', () => {
    const sdp = parseSdp(hikvision);
    assert.equal(sdp.sessionName, 'Media Presentation');
    assert.equal(sdp.control, 'rtsp://192.168.1.10:554/Streaming/Channels/101/?transportmode=unicast');
    assert.equal(sdp.media.length, 3);
    const video = sdp.media[0]!;
    assert.equal(video.media, 'video');
    assert.equal(video.proto, 'RTP/AVP');
    assert.deepEqual(video.formats, ['96']);
    assert.deepEqual(video.rtpmaps.get(96), { encoding: 'H264', clockRate: 90000 });
    assert.equal(video.fmtps.get(96)?.['packetization-mode'], '1');
    assert.deepEqual(video.attributes.get('x-dimensions'), ['1920,1080']);
  });

  it('tolerates LF line ends, NULs, spaces around "=" and stray lines', () => {
    const sdp = parseSdp('v=0\ns=x\u0000\nthis is not sdp\nm=audio 0 RTP/AVP 8\na=control:track1\n');
    assert.equal(sdp.media.length, 1);
    assert.equal(sdp.media[0]!.control, 'track1');
  });

  it('throws a clear SdpError for broken SDP', () => {
    assert.throws(() => parseSdp(''), (e: unknown) => e instanceof SdpError && /empty/.test(e.message));
    assert.throws(() => parseSdp('<html><body>Login</body></html>'), /not SDP/);
    assert.throws(() => parseSdp('v=0\r\ns=no media\r\n'), /no media description/);
    assert.throws(() => parseSdp('v=0\r\nm=video\r\n'), /malformed m= line "video"/);
    assert.throws(() => parseSdp('v=0\r\nm=video port RTP/AVP 96\r\n'), /malformed m= line/);
  });
});

describe('parseFmtp', () => {
  it('keeps "=" inside values and lower-cases names', () => {
    assert.deepEqual(parseFmtp('Profile-Level-Id=42e01f; sprop-parameter-sets=Z0I=,aM4=;flag'), {
      'profile-level-id': '42e01f',
      'sprop-parameter-sets': 'Z0I=,aM4=',
      flag: '',
    });
  });
});

describe('decodeParameterSets', () => {
  it('decodes base64 NAL units and drops invalid entries', () => {
    const sets = decodeParameterSets('Z00AKp2oHgCJ+WbgICAgQA==,aO48gA==,!!notbase64,');
    assert.equal(sets.length, 2);
    assert.equal(sets[0]![0]! & 0x1f, 7); // SPS
    assert.equal(sets[1]![0]! & 0x1f, 8); // PPS
    assert.equal(sets[1]!.toString('hex'), '68ee3c80');
  });
});

describe('describeTracks', () => {
  it('turns a Hikvision SDP (video marked recvonly) into H.264 + PCMU and skips the metadata track', () => {
    const { tracks, skipped } = describeTracks(parseSdp(hikvision), base);
    assert.equal(tracks.length, 1 + 1);
    const [video, audio] = tracks;
    assert.equal(video!.codec, 'H264');
    assert.equal(video!.kind, 'video');
    assert.equal(video!.payloadType, 96);
    assert.equal(video!.clockRate, 90000);
    assert.equal(video!.fmtp['profile-level-id'], '420029');
    assert.equal(video!.parameterSets?.length, 2);
    assert.equal(video!.needsTranscoding, undefined);
    assert.equal(video!.controlUrl, 'rtsp://192.168.1.10:554/Streaming/Channels/101/trackID=1?transportmode=unicast');
    assert.equal(audio!.codec, 'PCMU');
    assert.equal(audio!.channels, 1);
    assert.equal(audio!.clockRate, 8000);
    assert.deepEqual(skipped, [
      { mediaIndex: 2, media: 'application', format: 'application/vnd.onvif.metadata', reason: 'not audio or video' },
    ]);
  });

  it('knows static payload types 0 and 8 without rtpmap', () => {
    const { tracks } = describeTracks(parseSdp('v=0\r\nm=audio 0 RTP/AVP 8\r\na=control:trackID=2\r\n'), 'rtsp://cam/live');
    assert.equal(tracks[0]!.codec, 'PCMA');
    assert.equal(tracks[0]!.clockRate, 8000);
    assert.equal(tracks[0]!.controlUrl, 'rtsp://cam/live/trackID=2');
  });

  it('marks H.265 and AAC as needing transcoding, Opus not', () => {
    const text = [
      'v=0',
      'm=video 0 RTP/AVP 98',
      'a=rtpmap:98 H265/90000',
      'a=fmtp:98 sprop-vps=QAEMAf//AWAAAAMAAAMAAAMAAAMAlqwJ; sprop-sps=QgEBAWAAAAMAAAMAAAMAAAMAlqABQCAFodNw; sprop-pps=RAHA8vA8kAA=',
      'a=control:stream=0',
      'm=audio 0 RTP/AVP 97',
      'a=rtpmap:97 MPEG4-GENERIC/16000/1',
      'a=fmtp:97 streamtype=5;profile-level-id=15;mode=AAC-hbr;config=1408;sizelength=13;indexlength=3;indexdeltalength=3',
      'a=control:stream=1',
      'm=audio 0 RTP/AVP 111',
      'a=rtpmap:111 opus/48000/2',
      'a=control:stream=2',
    ].join('\r\n');
    const { tracks } = describeTracks(parseSdp(text), 'rtsp://cam/h265/');
    assert.deepEqual(
      tracks.map((t) => [t.codec, t.needsTranscoding ?? false, t.clockRate, t.channels]),
      [
        ['H265', true, 90000, undefined],
        ['AAC', true, 16000, 1],
        ['OPUS', false, 48000, 2],
      ],
    );
    assert.equal(tracks[0]!.parameterSets?.length, 3);
    assert.equal(tracks[1]!.fmtp['config'], '1408');
    assert.equal(tracks[0]!.controlUrl, 'rtsp://cam/h265/stream=0');
  });

  it('skips unknown codecs, backchannels, missing rtpmaps and SRTP, with a reason each', () => {
    const text = [
      'v=0',
      'm=video 0 RTP/AVP 26',
      'm=audio 0 RTP/AVP 97',
      'a=rtpmap:97 G726-32/8000',
      'm=audio 0 RTP/AVP 0',
      'a=inactive',
      'm=video 0 RTP/AVP 96',
      'm=video 0 RTP/SAVP 96',
      'a=rtpmap:96 H264/90000',
      'm=audio 0 RTP/AVP 14',
      'm=audio 0 RTP/AVP 97',
      'a=rtpmap:97 MPEG4-GENERIC/8000',
      'a=fmtp:97 mode=CELP-cbr',
    ].join('\n');
    const { tracks, skipped } = describeTracks(parseSdp(text), 'rtsp://cam/');
    assert.equal(tracks.length, 0);
    assert.deepEqual(
      skipped.map((s) => `${s.mediaIndex} ${s.format}: ${s.reason}`),
      [
        '0 video/26: static payload type 26 is not supported',
        '1 audio/G726-32: audio codec G726-32 is not supported',
        '2 audio/PCMU: the camera marks it inactive',
        '3 video/96: payload type 96 has no a=rtpmap',
        '4 video/H264: transport profile RTP/SAVP is not supported',
        '5 audio/14: static payload type 14 is not supported',
        '6 audio/MPEG4-GENERIC: MPEG4-GENERIC mode CELP-cbr is not AAC',
      ],
    );
  });

  it('takes the first understood payload type of a section', () => {
    const text = 'v=0\r\nm=audio 0 RTP/AVP 97 0\r\na=rtpmap:97 G726-32/8000\r\n';
    const { tracks } = describeTracks(parseSdp(text), 'rtsp://cam/');
    assert.equal(tracks[0]!.codec, 'PCMU');
    assert.equal(tracks[0]!.payloadType, 0);
  });

  it('uses the base URL itself for "*" or a missing control', () => {
    const text = 'v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:*\r\n';
    assert.equal(describeTracks(parseSdp(text), 'rtsp://cam/one').tracks[0]!.controlUrl, 'rtsp://cam/one');
    const noControl = 'v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n';
    assert.equal(describeTracks(parseSdp(noControl), 'rtsp://cam/two').tracks[0]!.controlUrl, 'rtsp://cam/two');
  });
});
