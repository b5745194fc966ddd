// Issue 3, "Done when: Hostile input", through the whole chain: a scripted "camera" on a real socket
// → the real RTSP client → Source → a subscriber. The per-case unit tests live next to the code:
//
// | Case                                   | Unit / integration test                                                   | Here, through the Source          |
// | -------------------------------------- | ------------------------------------------------------------------------- | --------------------------------- |
// | garbage responses                      | test/rtsp/hostile "garbage…", "text garbage…", "an HTTP server…"           | retry loop, clear error, memory   |
// | truncated responses                    | test/rtsp/hostile "a truncated answer…", "a truncated SDP body…"           | retry loop, clear error, memory   |
// | 1 MB header                            | test/rtsp/hostile "a 1 MB header…"; stream-parser "larger than the limit"  | retry loop, clear error, memory   |
// | negative / huge Content-Length         | test/rtsp/hostile "Content-Length: -1/4294967296000/lots"; stream-parser   | retry loop, clear error, memory   |
// | interleaved frame with bad length      | test/rtsp/hostile "…swallows the answer", "…bad length while playing"      | retry loop (opening and playing)  |
// | broken SDP                             | test/rtsp/hostile "a broken SDP…"; sdp.test "throws a clear SdpError"      | retry loop, clear error, memory   |
// | RTP wrong version/padding/ext/CSRC     | test/media/rtp.test (parse and reject), source.test "hostile RTP…"         | valid and invalid ones on the wire|
// | RTP sequence wrap                      | test/media/rtp.test "…survives the wrap"; source.test (scripted camera)    | wrap on the wire, no false loss   |
// | FU-A without start bit                 | test/media/h264.test "FU-A without a start bit…"                           | lost FU-A start on the wire       |
//
// What this file adds is the chain as a whole, with memory measured after a full GC.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { packetizeH264 } from '../../src/media/h264-packetizer.js';
import { Source } from '../../src/media/source.js';
import { rtspUpstream } from '../../src/rtsp/upstream.js';
import { silentLogger } from '../../src/util/logger.js';
import { encodeStream, groupAccessUnits, splitAnnexB } from '../media/helpers/streams.js';
import { cameraHandler, rtpPacket, ScriptedRtspServer, type ServerConnection } from '../rtsp/scripted-server.js';
import { assertContinuous, assertDecodes, liveBytes, mib, RecordingSink, recordStates, sleep, waitFor } from './shared-source-helpers.js';

const SECRET = 'hostile-s3cret';
const TIMEOUTS = { connectMs: 1000, requestMs: 1000, teardownMs: 200, stallMs: 2000, udpFirstPacketMs: 500 };

const servers: ScriptedRtspServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});


interface RtpFields {
  sequence: number;
  timestamp: number;
  marker?: boolean;
  payloadType?: number;
  version?: number;
  csrcs?: number;
  /** Header extension words (RFC 3550 5.3.1). */
  extensionWords?: number;
  /** Padding bytes at the end; `badPadding` makes the count larger than the packet. */
  padding?: number;
  badPadding?: boolean;
}

/** Builds an RTP packet by hand, including the header features a parser must skip or refuse. */
function rtp(fields: RtpFields, payload: Buffer): Buffer {
  const csrcs = fields.csrcs ?? 0;
  const ext = fields.extensionWords;
  const padding = fields.padding ?? 0;
  const header = Buffer.alloc(12 + 4 * csrcs + (ext === undefined ? 0 : 4 + 4 * ext));
  header[0] = ((fields.version ?? 2) << 6) | (padding > 0 ? 0x20 : 0) | (ext === undefined ? 0 : 0x10) | csrcs;
  header[1] = (fields.marker ? 0x80 : 0) | (fields.payloadType ?? 96);
  header.writeUInt16BE(fields.sequence & 0xffff, 2);
  header.writeUInt32BE(fields.timestamp >>> 0, 4);
  header.writeUInt32BE(0x0badcafe, 8);
  for (let i = 0; i < csrcs; i++) header.writeUInt32BE(0x1000 + i, 12 + 4 * i);
  if (ext !== undefined) {
    const at = 12 + 4 * csrcs;
    header.writeUInt16BE(0xbede, at);
    header.writeUInt16BE(ext, at + 2);
  }
  const pad = Buffer.alloc(padding);
  if (padding > 0) pad[padding - 1] = fields.badPadding ? 255 : padding;
  return Buffer.concat([header, payload, pad]);
}

describe('e2e: shared source, hostile input through the whole chain', { timeout: 60_000 }, () => {
  it('e2e: hostile RTP on the wire (bad padding/extension/CSRC, wrong PT, short packets, sequence wrap, lost FU-A start): counted, output decodable, memory bounded', async () => {
    // A real H.264 clip: 2 s at 25 fps, a keyframe every 25 frames; looped 3 times.
    const clip = groupAccessUnits('h264', splitAnnexB(encodeStream({ codec: 'h264', width: 640, height: 360, seconds: 2, gop: 25 })));
    assert.equal(clip.length, 50);
    const sps = clip[0]!.find((n) => (n[0]! & 0x1f) === 7)!;
    const pps = clip[0]!.find((n) => (n[0]! & 0x1f) === 8)!;
    const sdp = [
      'v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=Hostile', 't=0 0', 'a=control:*',
      'm=video 0 RTP/AVP 96', 'a=rtpmap:96 H264/90000',
      `a=fmtp:96 packetization-mode=1;profile-level-id=42c01e;sprop-parameter-sets=${sps.toString('base64')},${pps.toString('base64')}`,
      'a=control:trackID=1', '',
    ].join('\r\n');

    // In the first loop, two P-frames lose the packet carrying their FU-A start: the rest of their
    // fragments arrive "without start bit", and the receiver sees a one-packet gap each.
    const fragmented = clip
      .map((units, index) => ({ index, packets: packetizeH264(units, 1400) }))
      .filter(({ index, packets }) => index % 25 !== 0 && packets.length >= 3 && (packets[0]!.payload[0]! & 0x1f) === 28);
    assert.ok(fragmented.length >= 2, 'the clip has fragmented P-frames');
    const damagedFrames = new Set([fragmented[0]!.index, fragmented.at(-1)!.index]);

    const LOOPS = 3;
    const HOSTILE_PER_FRAME = 100;
    const sent = { good: 0, wrapped: false, timestampWrapped: false, omitted: 0, malformed: 0, dropped: 0, hostileBytes: 0 };
    let streaming: Promise<void> = Promise.resolve();
    const stream = async (conn: ServerConnection): Promise<void> => {
      let sequence = 65_000; // wraps after ~536 packets, inside the first loop
      let timestamp = 0xffff_0000; // and the RTP timestamp wraps after 18 frames
      const junk = Buffer.alloc(1380, 0x5a);
      for (let loop = 0; loop < LOOPS && !conn.socket.destroyed; loop++) {
        for (let index = 0; index < clip.length && !conn.socket.destroyed; index++) {
          const packets = packetizeH264(clip[index]!, 1400);
          packets.forEach((p, i) => {
            const seq = sequence;
            sequence = (sequence + 1) & 0xffff;
            if (seq === 0) sent.wrapped = true;
            if (loop === 0 && damagedFrames.has(index) && i === 0) {
              sent.omitted++; // lost on the way: the FU-A start never arrives
              return;
            }
            // Valid header features a parser must skip: CSRCs, an extension, padding.
            const k = sent.good++;
            conn.frame(0, rtp({ sequence: seq, timestamp, marker: p.marker, csrcs: k % 7 === 0 ? 2 : 0, extensionWords: k % 5 === 0 ? 1 : undefined, padding: k % 3 === 0 ? 4 : 0 }, p.payload));
          });
          // Hostile packets, all with sequence numbers far from the stream's: strays like these must
          // neither be taken for a camera restart (which would hold video back to the next keyframe)
          // nor count as loss.
          for (let h = 0; h < HOSTILE_PER_FRAME; h++) {
            const kind = h % 5;
            const seq = (sequence + 20_000 + h) & 0xffff;
            if (kind === 0) {
              // Shorter than an RTP header (the RTSP client drops it), or on a channel never set up.
              const packet = h % 2 === 0 ? rtp({ sequence: seq, timestamp }, junk).subarray(0, 8) : rtp({ sequence: seq, timestamp }, junk);
              conn.frame(h % 2 === 0 ? 0 : 6, packet);
              sent.dropped++;
              sent.hostileBytes += packet.length;
              continue;
            }
            let packet: Buffer;
            if (kind === 1) {
              packet = rtp({ sequence: seq, timestamp, padding: 4, badPadding: true }, junk.subarray(0, 8)); // padding count 255 in a 12-byte payload
            } else if (kind === 2) {
              packet = rtp({ sequence: seq, timestamp, extensionWords: 1 }, junk);
              packet.writeUInt16BE(2000, 14); // an extension claiming 8000 bytes
            } else if (kind === 3) {
              packet = rtp({ sequence: seq, timestamp }, Buffer.alloc(20, 0x5a));
              packet[0] = 0x8f; // 15 CSRCs announced, 20 bytes present
            } else {
              packet = rtp({ sequence: seq, timestamp, payloadType: 50 }, junk); // a payload type the SDP never announced
            }
            sent.malformed++;
            sent.hostileBytes += packet.length;
            conn.frame(0, packet);
          }
          timestamp = (timestamp + 3600) >>> 0;
          if (timestamp < 3600) sent.timestampWrapped = true;
          await sleep(20); // twice real time: 150 frames in about 3 s
        }
      }
    };
    const server = await ScriptedRtspServer.start(cameraHandler({ sdp, onPlay: (conn) => (streaming = stream(conn)) }));
    servers.push(server);

    const source = new Source({
      id: 'hostile',
      name: 'Hostile',
      upstream: rtspUpstream({ url: server.url('/stream'), username: 'admin', password: SECRET, cameraName: 'Hostile', logger: silentLogger, timeouts: TIMEOUTS }),
      stallTimeoutMs: 5000,
    });
    const states = recordStates(source);
    const before = await liveBytes();
    const sink = new RecordingSink();
    const subscription = source.subscribe(sink);
    await waitFor(() => server.methods().includes('PLAY'), 5000, 'PLAY');
    // Peak memory while the flood goes on (no forced GC: what the process really holds).
    let peak = 0;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.heapUsed + m.arrayBuffers);
    }, 50);
    await streaming;
    clearInterval(sampler);
    // Everything sent has been read once the hostile packets after the last frame are counted too.
    await waitFor(() => (source.stats().video?.packetsMalformed ?? 0) >= sent.malformed, 5000, 'every packet',
      () => `${sink.count('video')} frames; ${JSON.stringify(source.stats().video)}; sent ${JSON.stringify(sent)}`);
    const stats = source.stats();
    const video = sink.of('video').map((r) => r.frame);
    subscription.unsubscribe();
    await source.close();
    states.stop();

    // Nothing crashed or reconnected; the camera was live the whole time.
    assert.deepEqual(states.states.map((s) => s.state.state), ['connecting', 'live', 'stopped']);
    assert.ok(sent.wrapped && sent.timestampWrapped, 'the RTP sequence number and timestamp wrapped');
    // Exactly the invalid packets are counted as malformed (too short or foreign-channel ones never reach the Source),
    // exactly the omitted packets as lost: no false loss of ~65 535 at the wrap.
    const v = stats.video!;
    assert.equal(v.packetsMalformed, sent.malformed);
    assert.equal(v.packetsLost, sent.omitted);
    assert.equal(v.packetsLate, 0);
    assert.equal(v.packetsReceived, sent.good);
    assert.ok(v.depacketizer.fragmentsWithoutStart >= sent.omitted, JSON.stringify(v.depacketizer));
    assert.equal(v.framesDamaged, sent.omitted, 'each lost FU-A start damaged its frame');
    // Every frame reached the subscriber, in one continuous timeline (the damaged ones kept their other
    // slices: x264's zerolatency tuning cuts each picture into several).
    const slicesOf = (index: number): number => clip[index]!.filter((n) => (n[0]! & 0x1f) === 1).length;
    const vanished = [...damagedFrames].filter((index) => slicesOf(index) === 1).length;
    assert.equal(video.length, LOOPS * clip.length - vanished);
    assertContinuous(video, 'video across the wrap');
    // With padding, extensions and CSRCs stripped correctly, the clean loops arrive byte for byte and decode.
    const clean = video.slice(video.length - (LOOPS - 1) * clip.length);
    assert.equal(clean[0]!.keyframe, true);
    assert.equal(clean.length, (LOOPS - 1) * clip.length);
    for (let i = 0; i < clean.length; i++) {
      assert.deepEqual(clean[i]!.units.map((u) => u.toString('hex')), clip[i % clip.length]!.map((u) => u.toString('hex')), `frame ${i} byte for byte`);
    }
    const cleanCount = await assertDecodes(clean, 'the frames after the damage');
    // Memory: the peak stayed within what this test itself holds (the 150 frames it records) plus a
    // little, and once the test lets go of its frames nothing of the flood is left.
    const recorded = video.reduce((sum, f) => sum + (f.byteLength ?? 0), 0);
    const peakGrowth = peak - before;
    assert.ok(peakGrowth - recorded < 32 * 1024 * 1024, `peak heap + buffers +${mib(peakGrowth)} (${mib(recorded)} of it recorded frames) during ${mib(sent.hostileBytes)} of hostile packets`);
    sink.frames.length = 0;
    video.length = 0;
    clean.length = 0;
    // The scripted camera lives in this process and writes without backpressure: close it so that
    // what it still had queued for its socket does not count against the client.
    servers.splice(servers.indexOf(server), 1);
    await server.close();
    const grown = await liveBytes() - before;
    assert.ok(grown < 4 * 1024 * 1024, `live heap + buffers grew ${mib(grown)} after ${mib(sent.hostileBytes)} of hostile packets`);
    console.log(
      `# hostile RTP: ${sent.good} good packets (1/3 padded, 1/5 with extension, 1/7 with CSRCs) across a sequence wrap, ` +
      `${sent.malformed} malformed counted exactly, ${sent.dropped} short/foreign-channel dropped, ${sent.omitted} lost FU-A starts → ` +
      `${v.depacketizer.fragmentsWithoutStart} fragments without start, ${v.framesDamaged} damaged frames, loss ${v.packetsLost}; ` +
      `${cleanCount} clean frames byte-exact and decodable; peak memory +${mib(peakGrowth)} (${mib(recorded)} recorded frames), ` +
      `live memory afterwards ${grown >= 0 ? '+' : ''}${mib(grown)} after ${mib(sent.hostileBytes)} of hostile input`,
    );
  });

  it('e2e: hostile RTSP answers on every retry: the Source stays up, backs off, says what is wrong, memory bounded', async () => {
    const okThenBrokenFrame = cameraHandler({
      onPlay: (conn) => {
        conn.frame(0, rtpPacket(1, 0));
        // A length that swallows part of the next frame: what follows is mid-packet data.
        setTimeout(() => conn.write(Buffer.concat([Buffer.from([0x24, 0, 0, 40]), rtpPacket(2, 0, 96, 1, 28), Buffer.alloc(40, 0x11)])), 50);
      },
    });
    const describeAnswers = (raw: string) => cameraHandler({
      override: (req, conn) => {
        if (req.method !== 'DESCRIBE') return false;
        conn.write(raw.replace('{cseq}', req.cseq));
        return true;
      },
    });
    const html = '<html><body>Please log in</body></html>';
    const cases: Array<{ name: string; expect: RegExp; handle: Parameters<typeof ScriptedRtspServer.start>[0] }> = [
      { name: 'garbage', expect: /not RTSP/, handle: (_req, conn) => conn.write(Buffer.from([0x00, 0x13, 0x37, 0xff, 0xfe, 0x10, 0x20])) },
      {
        name: 'truncated',
        expect: /closed the connection while waiting for the answer to OPTIONS/,
        handle: (req, conn) => {
          conn.write(`RTSP/1.0 200 OK\r\nCSeq: ${req.cseq}\r\nContent-Le`);
          setTimeout(() => conn.socket.end(), 20);
        },
      },
      {
        name: '1 MB header',
        expect: /header section larger than 65536 bytes/,
        handle: async (req, conn) => {
          conn.write(`RTSP/1.0 200 OK\r\nCSeq: ${req.cseq}\r\nX-Junk: `);
          const chunk = Buffer.alloc(64 * 1024, 0x41);
          for (let written = 0; written < 1024 * 1024 && !conn.socket.destroyed; written += chunk.length) {
            conn.write(chunk);
            await sleep(1);
          }
        },
      },
      { name: 'negative Content-Length', expect: /invalid Content-Length "-1"/, handle: describeAnswers('RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Length: -1\r\n\r\nv=0\r\n') },
      { name: 'huge Content-Length', expect: /Content-Length 4294967296000 exceeds the limit/, handle: describeAnswers('RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Length: 4294967296000\r\n\r\nv=0\r\n') },
      {
        name: 'interleaved frame that is an answer',
        expect: /not RTP\/RTCP: the stream is out of sync/,
        handle: (req, conn) => conn.write(Buffer.concat([Buffer.from([0x24, 0, 0, 8]), Buffer.from(`RTSP/1.0 200 OK\r\nCSeq: ${req.cseq}\r\n\r\n`)])),
      },
      {
        name: 'broken SDP',
        expect: /SDP is broken: the DESCRIBE body is not SDP/,
        handle: describeAnswers(`RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Type: text/html\r\nContent-Length: ${html.length}\r\n\r\n${html}`),
      },
      { name: 'bad interleaved length while playing', expect: /out of sync|not RTSP/, handle: okThenBrokenFrame },
      {
        // Over TCP a frame that is not RTP version 2 means the framing can no longer be trusted.
        name: 'RTP version 1 while playing',
        expect: /\(40 bytes\) is not RTP\/RTCP: the stream is out of sync/,
        handle: cameraHandler({ onPlay: (conn) => setTimeout(() => conn.frame(0, rtpPacket(1, 0, 96, 1, 28).fill(0x40, 0, 1)), 30) }),
      },
    ];
    // Each new connection gets the next misbehaviour, round and round.
    const assigned = new WeakMap<ServerConnection, (typeof cases)[number]>();
    let connections = 0;
    const server = await ScriptedRtspServer.start(
      (req, conn) => assigned.get(conn)?.handle(req, conn),
      (conn) => assigned.set(conn, cases[connections++ % cases.length]!),
    );
    servers.push(server);

    const source = new Source({
      id: 'hostile-rtsp',
      name: 'Hostile',
      upstream: rtspUpstream({ url: server.url('/stream'), username: 'admin', password: SECRET, cameraName: 'Hostile', logger: silentLogger, timeouts: TIMEOUTS }),
      backoff: { initialMs: 20, maxMs: 80, jitter: 0 }, // fast, so every case comes round several times
      stableAfterMs: 60_000,
    });
    const states = recordStates(source);
    const before = await liveBytes();
    const subscription = source.subscribe(new RecordingSink());
    await waitFor(() => connections >= 3 * cases.length, 30_000, 'three rounds of hostile answers', () => `${connections} connections`);
    subscription.unsubscribe();
    await source.close();
    const grown = await liveBytes() - before;
    states.stop();

    const errors = states.states.map((s) => s.state.lastError).filter((e): e is string => e !== undefined);
    for (const c of cases) {
      assert.ok(errors.some((e) => c.expect.test(e)), `${c.name}: no error matching ${c.expect} in\n${[...new Set(errors)].join('\n')}`);
    }
    for (const e of errors) {
      assert.match(e, /^Camera "Hostile" \(rtsp:\/\/admin:\*\*\*@127\.0\.0\.1:\d+\/stream\): /, e);
      assert.ok(!e.includes(SECRET), e);
    }
    const retries = states.states.filter((s) => s.state.state === 'retrying').map((s) => s.state.retryInMs ?? 0);
    assert.ok(retries.every((d) => d >= 20 && d <= 80), `backoff between 20 and 80 ms: ${retries.join(',')}`);
    assert.ok(retries.includes(80), 'the backoff reached its cap');
    assert.ok(grown < 8 * 1024 * 1024, `live heap + buffers grew ${mib(grown)}`);
    console.log(`# hostile RTSP answers: ${connections} connections, ${retries.length} retries, ${new Set(errors).size} distinct clear errors; live memory ${grown >= 0 ? '+' : ''}${mib(grown)}`);
  });
});
