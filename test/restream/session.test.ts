// RestreamSession in isolation: what goes on the wire for given frames, with fake outputs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRtcpSenderReport } from '../../src/rtp/rtcp.js';
import type { FrameSink, MediaFrame } from '../../src/media/types.js';
import { silentLogger } from '../../src/util/logger.js';
import { RestreamSession, type SessionLimits, type TcpOutput, type UdpOutput } from '../../src/restream/session.js';
import { planTracks, type ParameterSets } from '../../src/restream/sdp.js';

const SPS = Buffer.from([0x67, 0x42, 0xc0, 0x1e, 0xd9]);
const PPS = Buffer.from([0x68, 0xcb, 0x83]);

const plan = planTracks([
  { kind: 'video', codec: 'H264', payloadType: 96, clockRate: 90_000, fmtp: {}, controlUrl: 'x' },
  { kind: 'audio', codec: 'PCMU', payloadType: 0, clockRate: 8000, channels: 1, fmtp: {}, controlUrl: 'y' },
]);

interface Wire {
  channel: number;
  data: Buffer;
}

/** A socket stand-in: records writes; `writableLength` is whatever the test says is still queued. */
class FakeTcp implements TcpOutput {
  writableLength = 0;
  /** When set, written bytes stay queued (a peer that reads nothing). */
  accumulate = false;
  readonly writes: Buffer[] = [];
  write(data: Buffer): void {
    this.writes.push(data);
    if (this.accumulate) this.writableLength += data.length;
  }
  frames(): Wire[] {
    const out: Wire[] = [];
    for (const write of this.writes) {
      for (let at = 0; at < write.length;) {
        assert.equal(write[at], 0x24);
        const length = write.readUInt16BE(at + 2);
        out.push({ channel: write[at + 1]!, data: write.subarray(at + 4, at + 4 + length) });
        at += 4 + length;
      }
    }
    return out;
  }
}

let sequence = 100;
function video(index: number, keyframe: boolean, units?: Buffer[]): MediaFrame {
  const slice = Buffer.alloc(300, keyframe ? 0x65 : 0x41);
  const frameUnits = units ?? (keyframe ? [SPS, PPS, slice] : [slice]);
  const packets = frameUnits.map((payload, i) => ({ payload, marker: i === frameUnits.length - 1 }));
  const frame: MediaFrame = {
    kind: 'video', codec: 'H264', clockRate: 90_000, timestamp: index * 3600, sequenceNumber: sequence,
    keyframe, units: frameUnits, packets, receivedAt: 1000 + index * 40,
  };
  sequence = (sequence + packets.length) & 0xffff;
  return frame;
}

let audioSequence = 7;
function audio(index: number): MediaFrame {
  const payload = Buffer.alloc(160, 0xff);
  return {
    kind: 'audio', codec: 'PCMU', clockRate: 8000, timestamp: index * 160, sequenceNumber: audioSequence++,
    keyframe: true, units: [payload], packets: [{ payload, marker: false }], receivedAt: 1000 + index * 20,
  };
}

function makeSession(options: { limits?: Partial<SessionLimits>; sets?: ParameterSets; udp?: UdpOutput; onEnd?: (r: string) => void } = {}) {
  const tcp = new FakeTcp();
  const session = new RestreamSession('cam', '127.0.0.1:1', options.sets, tcp, options.udp, {
    maxQueuedBytes: 10_000, senderReportIntervalMs: 60_000, burstGraceMs: 60_000, udpBytesPerTick: 1 << 20, ...options.limits,
  }, silentLogger, options.onEnd ?? (() => undefined));
  return { tcp, session };
}

/** A Source stand-in that hands the sink `gop` during subscribe, like the real one. */
function sourceWith(gop: MediaFrame[]) {
  let sink: FrameSink | undefined;
  let kinds: ReadonlyArray<string> | undefined;
  return {
    subscribe(s: FrameSink, options?: { kinds?: ReadonlyArray<'video' | 'audio'> }) {
      sink = s;
      kinds = options?.kinds;
      for (const frame of gop) s.write(frame);
      return { unsubscribe: () => (sink = undefined) };
    },
    get sink() {
      return sink;
    },
    get kinds() {
      return kinds;
    },
  };
}

const rtpSeq = (w: Wire): number => w.data.readUInt16BE(2);
const rtpTs = (w: Wire): number => w.data.readUInt32BE(4);
const rtpSsrc = (w: Wire): number => w.data.readUInt32BE(8);

describe('re-stream session', () => {
  it('holds the GOP burst until the PLAY answer, names its first packet in RTP-Info, then sends it', () => {
    const { tcp, session } = makeSession();
    session.setupTrack(plan[0]!, { type: 'tcp', rtpChannel: 0, rtcpChannel: 1 }, 'rtsp://h/cam/trackID=0');
    session.setupTrack(plan[1]!, { type: 'tcp', rtpChannel: 2, rtcpChannel: 3 }, 'rtsp://h/cam/trackID=1');
    const gop = [video(0, true), audio(0), audio(1), video(1, false)];
    const source = sourceWith(gop);
    const info = session.play(source);
    assert.deepEqual(source.kinds, ['video', 'audio']);
    assert.equal(tcp.writes.length, 0, 'nothing before the PLAY response');
    const match = /^url=rtsp:\/\/h\/cam\/trackID=0;seq=(\d+);rtptime=(\d+),url=rtsp:\/\/h\/cam\/trackID=1;seq=(\d+);rtptime=(\d+)$/.exec(info);
    assert.ok(match, info);
    session.startFlow();

    const wire = tcp.frames();
    const videoRtp = wire.filter((w) => w.channel === 0);
    const audioRtp = wire.filter((w) => w.channel === 2);
    assert.equal(wire[0]!.channel, 1, 'a sender report precedes the first video packet');
    assert.equal(videoRtp.length, 4);
    assert.equal(audioRtp.length, 2);
    assert.equal(rtpSeq(videoRtp[0]!), Number(match[1]));
    assert.equal(rtpTs(videoRtp[0]!), Number(match[2]));
    assert.equal(rtpSeq(audioRtp[0]!), Number(match[3]));
    assert.equal(rtpTs(audioRtp[0]!), Number(match[4]));
    for (let i = 1; i < videoRtp.length; i++) assert.equal(rtpSeq(videoRtp[i]!), (rtpSeq(videoRtp[i - 1]!) + 1) & 0xffff);
    assert.equal((rtpTs(videoRtp[3]!) - rtpTs(videoRtp[0]!)) >>> 0, 3600, 'timestamps keep the Source spacing');
    assert.equal(videoRtp[2]!.data[1], 0x80 | 96, 'marker on the last packet of the frame, PT 96');
    assert.equal(audioRtp[0]!.data[1], 0, 'PCMU payload type 0');
    assert.deepEqual(videoRtp[0]!.data.subarray(12), SPS, 'the Source\'s payloads, unchanged');
    assert.notEqual(rtpSsrc(videoRtp[0]!), rtpSsrc(audioRtp[0]!));
    assert.equal(session.stats().framesSent, 4);
  });

  it('sender reports map each track\'s RTP time to the same wall clock, so audio and video line up', () => {
    const { tcp, session } = makeSession();
    session.setupTrack(plan[0]!, { type: 'tcp', rtpChannel: 0, rtcpChannel: 1 }, 'v');
    session.setupTrack(plan[1]!, { type: 'tcp', rtpChannel: 2, rtcpChannel: 3 }, 'a');
    session.play(sourceWith([]));
    session.startFlow();
    const v = video(10, true);
    const a = audio(23);
    session.write(v);
    session.write(a);
    const wire = tcp.frames();
    const videoSr = parseRtcpSenderReport(wire.find((w) => w.channel === 1)!.data)!;
    const audioSr = parseRtcpSenderReport(wire.find((w) => w.channel === 3)!.data)!;
    assert.equal(videoSr.rtpTimestamp, rtpTs(wire.find((w) => w.channel === 0)!));
    assert.equal(audioSr.rtpTimestamp, rtpTs(wire.find((w) => w.channel === 2)!));
    const measured = audioSr.wallClockMs - videoSr.wallClockMs;
    assert.ok(Math.abs(measured - (a.receivedAt - v.receivedAt)) < 1, `wall clocks ${measured} ms apart`);
    assert.equal(videoSr.ssrc, rtpSsrc(wire.find((w) => w.channel === 0)!));
    session.close();
  });

  it('starts video only at a keyframe and adds SPS/PPS to a keyframe that lacks them', () => {
    const { tcp, session } = makeSession({ sets: { vps: [], sps: [SPS], pps: [PPS] } });
    session.setupTrack(plan[0]!, { type: 'tcp', rtpChannel: 0, rtcpChannel: 1 }, 'v');
    session.play(sourceWith([]));
    session.startFlow();
    assert.equal(session.write(video(0, false)), true, 'not refused: simply not sent');
    assert.equal(tcp.writes.length, 0);
    const idrOnly = video(1, true, [Buffer.alloc(200, 0x65)]);
    session.write(idrOnly);
    const rtp = tcp.frames().filter((w) => w.channel === 0);
    assert.deepEqual(rtp.map((w) => w.data[12]! & 0x1f), [7, 8, 5]);
  });

  it('refuses frames when its queue is over the limit, resumes at a keyframe, and shows the gap as loss', () => {
    const { tcp, session } = makeSession({ limits: { maxQueuedBytes: 5000 } });
    session.setupTrack(plan[0]!, { type: 'tcp', rtpChannel: 0, rtcpChannel: 1 }, 'v');
    session.play(sourceWith([]));
    session.startFlow();
    session.write(video(0, true));
    const lastSent = tcp.frames().filter((w) => w.channel === 0).at(-1)!;
    tcp.writableLength = 6000;
    const skipped = video(1, false);
    assert.equal(session.write(skipped), false, 'congested: the Source is told');
    tcp.writableLength = 0;
    assert.equal(session.write(video(2, false)), true);
    const before = tcp.writes.length;
    assert.equal(tcp.writes.length, before, 'a P frame after a drop is not sent');
    const resumed = video(3, true);
    session.write(resumed);
    const next = tcp.frames().filter((w) => w.channel === 0).find((w) => rtpTs(w) !== rtpTs(lastSent))!;
    // Skipped: frame 1 (1 packet) and frame 2 (1 packet) of the Source's sequence space.
    assert.equal((rtpSeq(next) - rtpSeq(lastSent)) & 0xffff, 1 + 2);
    const stats = session.stats();
    assert.equal(stats.framesDropped, 1);
    assert.equal(stats.framesSent, 2);
  });

  it('lets the PLAY burst exceed the limit only for the grace period', async () => {
    const { tcp, session } = makeSession({ limits: { maxQueuedBytes: 1000, burstGraceMs: 50 } });
    session.setupTrack(plan[0]!, { type: 'tcp', rtpChannel: 0, rtcpChannel: 1 }, 'v');
    const gop = [video(0, true), video(1, false), video(2, false)];
    session.play(sourceWith(gop));
    tcp.accumulate = true;
    session.startFlow();
    assert.equal(tcp.frames().filter((w) => w.channel === 0).length, 5, 'the whole GOP went out');
    assert.ok(tcp.writableLength > 1000, 'more than the limit is queued');
    tcp.accumulate = false;
    tcp.writableLength = 1500; // the burst has not drained yet
    assert.equal(session.write(video(3, false)), true, 'within the burst allowance');
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal(session.write(video(4, false)), false, 'after the grace period the normal limit applies');
  });

  it('paces UDP output and counts the pacing queue against the limit', async () => {
    const sent: Array<{ parts: ReadonlyArray<Buffer>; port: number; rtcp: boolean }> = [];
    const udp: UdpOutput = {
      send(parts, port, _address, rtcp, done) {
        sent.push({ parts, port, rtcp });
        setImmediate(done);
      },
    };
    const { session } = makeSession({ udp, limits: { udpBytesPerTick: 50, maxQueuedBytes: 2000 } });
    session.setupTrack(plan[0]!, { type: 'udp', address: '127.0.0.1', rtpPort: 5000, rtcpPort: 5001 }, 'v');
    session.play(sourceWith([]));
    session.startFlow();
    session.write(video(0, true));
    const firstTick = sent.length;
    assert.ok(firstTick < 4, `only one tick's budget at once (${firstTick})`);
    assert.ok(session.stats().queuedBytes > 0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const rtp = sent.filter((s) => !s.rtcp);
    assert.equal(rtp.length, 3, 'everything went out eventually');
    assert.ok(sent.some((s) => s.rtcp && s.port === 5001), 'sender report on the RTCP port');
    assert.ok(rtp.every((s) => s.port === 5000 && s.parts[0]!.length === 12));
    const results = Array.from({ length: 10 }, (_, i) => session.write(video(1 + i, false)));
    assert.ok(results.includes(false), 'ten P frames queued faster than the pacing sends them: over the limit');
    assert.ok(session.stats().queuedBytes <= 2000 + 400, 'the pacing queue stays bounded');
    session.close();
  });

  it('ends itself when the camera changes codec or the Source stops', () => {
    const reasons: string[] = [];
    const { session } = makeSession({ onEnd: (r) => reasons.push(r) });
    session.setupTrack(plan[0]!, { type: 'tcp', rtpChannel: 0, rtcpChannel: 1 }, 'v');
    const source = sourceWith([]);
    session.play(source);
    session.startFlow();
    session.onTracks([{ kind: 'video', codec: 'H264', payloadType: 96, clockRate: 90_000, fmtp: {}, controlUrl: 'x' }]);
    assert.equal(reasons.length, 0, 'same tracks: nothing happens');
    session.onTracks([{ kind: 'video', codec: 'H265', payloadType: 96, clockRate: 90_000, fmtp: {}, controlUrl: 'x' }]);
    assert.equal(reasons.join('|'), 'the camera changed its tracks');
    assert.equal(source.sink, undefined, 'unsubscribed');
    assert.equal(session.write(video(0, true)), false);

    const second = makeSession({ onEnd: (r) => reasons.push(r) });
    second.session.setupTrack(plan[0]!, { type: 'tcp', rtpChannel: 0, rtcpChannel: 1 }, 'v');
    second.session.play(sourceWith([]));
    second.session.startFlow();
    second.session.onState({ state: 'retrying' });
    second.session.onState({ state: 'stopped' });
    assert.equal(reasons.at(-1), 'the camera source was stopped');
  });

  it('cuts AAC and unpacketised video itself when a frame comes without packets', () => {
    const aacPlan = planTracks([{ kind: 'audio', codec: 'AAC', payloadType: 97, clockRate: 16000, channels: 1, fmtp: { config: '1408' }, controlUrl: 'a' }]);
    const { tcp, session } = makeSession();
    session.setupTrack(aacPlan[0]!, { type: 'tcp', rtpChannel: 0, rtcpChannel: 1 }, 'a');
    session.play(sourceWith([]));
    session.startFlow();
    const au = Buffer.alloc(300, 0x21);
    session.write({ kind: 'audio', codec: 'AAC', clockRate: 16000, timestamp: 0, sequenceNumber: 0, keyframe: true, units: [au], packets: [], receivedAt: 0 });
    const [rtp] = tcp.frames().filter((w) => w.channel === 0);
    assert.deepEqual([...rtp!.data.subarray(12, 16)], [0x00, 0x10, (300 >> 5) & 0xff, (300 << 3) & 0xff]);

    const v = makeSession();
    v.session.setupTrack(plan[0]!, { type: 'tcp', rtpChannel: 0, rtcpChannel: 1 }, 'v');
    v.session.play(sourceWith([]));
    v.session.startFlow();
    const big = Buffer.alloc(3000, 0x65);
    v.session.write({ ...video(0, true, [SPS, PPS, big]), packets: [] });
    const packets = v.tcp.frames().filter((w) => w.channel === 0);
    assert.ok(packets.length >= 4, 'SPS+PPS and an FU-A split');
    assert.ok(packets.every((w) => w.data.length - 12 <= 1200));
  });
});
