// The loopback re-stream against real ffmpeg/ffprobe as independent RTSP clients. The camera side
// is a synthetic Source: frames cut from a real ffmpeg-encoded H.264 + PCMU clip, replayed in real
// time (or faster), with a GOP cache and the keyframe cut-back policy of the real Source.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packetizeH264 } from '../../src/media/h264-packetizer.js';
import type { FrameSink, MediaFrame, TrackDescription } from '../../src/media/types.js';
import type { Logger } from '../../src/util/logger.js';
import { createRestreamServer, type RestreamServer, type RestreamServerOptions, type RestreamSource } from '../../src/restream/server.js';
import { probe, readFrames, runFfmpeg, type RunResult } from '../helpers/ffprobe.js';
import { captureRtp, h264NalTypes, RtspWireReader, type RtspResponse } from '../helpers/rtsp-client.js';

// ---------------------------------------------------------------------------------------------
// A synthetic camera Source
// ---------------------------------------------------------------------------------------------

interface Clip {
  video: Array<{ units: Buffer[]; keyframe: boolean }>;
  /** G.711 µ-law bytes, a multiple of 160 (20 ms frames). */
  audio: Buffer;
  sps: Buffer;
  pps: Buffer;
}

function splitAnnexB(data: Buffer): Buffer[] {
  const units: Buffer[] = [];
  let start = -1;
  for (let i = 0; i + 2 < data.length; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      if (start >= 0) {
        let end = i;
        while (end > start && data[end - 1] === 0) end--;
        units.push(data.subarray(start, end));
      }
      start = i + 3;
      i += 2;
    }
  }
  if (start >= 0) units.push(data.subarray(start));
  return units.filter((u) => u.length > 0);
}

/** Groups NAL units into access units: a new one starts at a non-VCL unit or a first slice after a VCL. */
function accessUnits(units: Buffer[]): Array<{ units: Buffer[]; keyframe: boolean }> {
  const out: Array<{ units: Buffer[]; keyframe: boolean }> = [];
  let current: Buffer[] = [];
  let hasVcl = false;
  const flush = (): void => {
    if (current.length > 0) out.push({ units: current, keyframe: current.some((u) => (u[0]! & 0x1f) === 5) });
    current = [];
    hasVcl = false;
  };
  for (const unit of units) {
    const type = unit[0]! & 0x1f;
    if (type === 9) continue;
    const vcl = type === 1 || type === 5;
    if (hasVcl && (!vcl || (unit[1]! & 0x80) !== 0)) flush();
    current.push(unit);
    if (vcl) hasVcl = true;
  }
  flush();
  return out;
}

async function encodeClip(dir: string): Promise<Clip> {
  const h264 = join(dir, 'clip.h264');
  const ulaw = join(dir, 'clip.ul');
  const r = await runFfmpeg([
    '-hide_banner', '-v', 'error', '-y',
    '-f', 'lavfi', '-t', '4', '-i', 'testsrc2=size=640x360:rate=25',
    '-f', 'lavfi', '-t', '4', '-i', 'sine=frequency=440:sample_rate=8000',
    '-map', '0:v', '-c:v', 'libx264', '-preset', 'ultrafast', '-profile:v', 'baseline', '-g', '25', '-keyint_min', '25',
    '-sc_threshold', '0', '-bf', '0', '-pix_fmt', 'yuv420p', '-f', 'h264', h264,
    '-map', '1:a', '-c:a', 'pcm_mulaw', '-f', 'mulaw', ulaw,
  ], 60_000);
  assert.equal(r.code, 0, `clip encoding failed: ${r.stderr}`);
  const units = splitAnnexB(await readFile(h264));
  const video = accessUnits(units);
  const sps = units.find((u) => (u[0]! & 0x1f) === 7)!;
  const pps = units.find((u) => (u[0]! & 0x1f) === 8)!;
  assert.ok(video[0]!.keyframe && video.length >= 90, 'clip has frames and starts with an IDR');
  const audio = await readFile(ulaw);
  return { video, audio: audio.subarray(0, audio.length - (audio.length % 160)), sps, pps };
}

interface Subscriber {
  sink: FrameSink;
  kinds: Set<string>;
  needKeyframe: boolean;
  refused: number;
}

class SyntheticSource implements RestreamSource {
  tracks: TrackDescription[] = [];
  readonly subscribers = new Set<Subscriber>();
  private gop: MediaFrame[] = [];
  private timer: NodeJS.Timeout | undefined;
  private connecting = false;
  private startedAt = 0;
  private videoIndex = 0;
  private audioIndex = 0;
  private videoSeq = 1000;
  private audioSeq = 50_000;
  maxFrameBytes = 0;
  gopBytes = 0;

  constructor(
    readonly id: string,
    private readonly clip: Clip,
    private readonly options: { connectDelayMs?: number; speed?: number; neverConnect?: boolean; audio?: boolean } = {},
  ) {}

  subscribe(sink: FrameSink, options?: { kinds?: Array<'video' | 'audio'> }): { unsubscribe(): void } {
    const sub: Subscriber = { sink, kinds: new Set(options?.kinds ?? ['video', 'audio']), needKeyframe: true, refused: 0 };
    this.subscribers.add(sub);
    if (this.tracks.length > 0) {
      for (const frame of this.gop) this.deliver(sub, frame);
    } else {
      this.connect();
    }
    return { unsubscribe: () => this.subscribers.delete(sub) };
  }

  refusedWrites(): number {
    let total = 0;
    for (const sub of this.subscribers) total += sub.refused;
    return total;
  }

  /** Replaces the tracks, as a camera restart with new parameters would. */
  changeTracks(tracks: TrackDescription[]): void {
    this.tracks = tracks;
    for (const sub of [...this.subscribers]) sub.sink.onTracks?.(tracks);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private connect(): void {
    if (this.connecting || this.options.neverConnect) return;
    this.connecting = true;
    setTimeout(() => {
      this.tracks = [
        {
          kind: 'video', codec: 'H264', payloadType: 96, clockRate: 90_000,
          fmtp: { 'packetization-mode': '1' }, controlUrl: 'rtsp://camera/track1', parameterSets: [this.clip.sps, this.clip.pps],
        },
      ];
      if (this.options.audio !== false) {
        this.tracks.push({ kind: 'audio', codec: 'PCMU', payloadType: 0, clockRate: 8000, channels: 1, fmtp: {}, controlUrl: 'rtsp://camera/track2' });
      }
      for (const sub of [...this.subscribers]) sub.sink.onTracks?.(this.tracks);
      this.startedAt = performance.now();
      this.timer = setInterval(() => this.produce(), 5);
    }, this.options.connectDelayMs ?? 0);
  }

  private produce(): void {
    const elapsed = (performance.now() - this.startedAt) * (this.options.speed ?? 1);
    while (this.videoIndex * 40 <= elapsed) this.emitVideo();
    while (this.options.audio !== false && this.audioIndex * 20 <= elapsed) this.emitAudio();
  }

  private emitVideo(): void {
    const source = this.clip.video[this.videoIndex % this.clip.video.length]!;
    const packets = packetizeH264(source.units);
    const frame: MediaFrame = {
      kind: 'video', codec: 'H264', clockRate: 90_000,
      timestamp: (this.videoIndex * 3600) >>> 0, sequenceNumber: this.videoSeq,
      keyframe: source.keyframe, units: source.units, packets, receivedAt: performance.now(),
    };
    this.videoSeq = (this.videoSeq + packets.length) & 0xffff;
    this.videoIndex++;
    const bytes = source.units.reduce((n, u) => n + u.length, 0);
    this.maxFrameBytes = Math.max(this.maxFrameBytes, bytes);
    this.publish(frame);
  }

  private emitAudio(): void {
    const frames = this.clip.audio.length / 160;
    const offset = (this.audioIndex % frames) * 160;
    const payload = this.clip.audio.subarray(offset, offset + 160);
    const frame: MediaFrame = {
      kind: 'audio', codec: 'PCMU', clockRate: 8000,
      timestamp: (this.audioIndex * 160) >>> 0, sequenceNumber: this.audioSeq,
      keyframe: true, units: [payload], packets: [{ payload, marker: false }], receivedAt: performance.now(),
    };
    this.audioSeq = (this.audioSeq + 1) & 0xffff;
    this.audioIndex++;
    this.publish(frame);
  }

  private publish(frame: MediaFrame): void {
    if (frame.kind === 'video' && frame.keyframe) {
      this.gop = [frame];
      this.gopBytes = 0;
    } else if (this.gop.length > 0) {
      this.gop.push(frame);
    }
    this.gopBytes += frame.units.reduce((n, u) => n + u.length, 0);
    for (const sub of [...this.subscribers]) this.deliver(sub, frame);
  }

  private deliver(sub: Subscriber, frame: MediaFrame): void {
    if (!sub.kinds.has(frame.kind)) return;
    if (frame.kind === 'video' && sub.needKeyframe && !frame.keyframe) return;
    if (sub.sink.write(frame)) {
      if (frame.kind === 'video') sub.needKeyframe = false;
    } else {
      sub.refused++;
      if (frame.kind === 'video') sub.needKeyframe = true;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// A raw RTSP connection, for what ffmpeg will not do (malformed input, a client that stops reading)
// ---------------------------------------------------------------------------------------------

class RawClient {
  private readonly reader = new RtspWireReader(
    {
      onInterleaved: (channel, data) => {
        if (channel === 0) this.rtpSeqs.push(data.readUInt16BE(2));
      },
      onResponse: (response) => {
        const waiter = this.waiters.shift();
        if (waiter) waiter(response);
        else this.unclaimed.push(response);
      },
    },
    // WWW-Authenticate comes twice (Digest, then Basic): the tests see both.
    'join',
  );
  private waiters: Array<(r: RtspResponse) => void> = [];
  /** Responses that arrived before anyone asked (e.g. a 503 sent right on connect). */
  private unclaimed: RtspResponse[] = [];
  readonly closed: Promise<void>;
  readonly rtpSeqs: number[] = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.reader.push(chunk));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async open(port: number): Promise<RawClient> {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  sendRaw(data: string | Buffer): void {
    this.socket.write(data);
  }

  next(timeoutMs = 5000): Promise<RtspResponse> {
    const early = this.unclaimed.shift();
    if (early) return Promise.resolve(early);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no RTSP response')), timeoutMs);
      this.waiters.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  }

  request(method: string, uri: string, cseq: number, headers: Record<string, string> = {}): Promise<RtspResponse> {
    const lines = [`${method} ${uri} RTSP/1.0`, `CSeq: ${cseq}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    const response = this.next();
    this.sendRaw(`${lines.join('\r\n')}\r\n\r\n`);
    return response;
  }

  close(): void {
    this.socket.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// ffmpeg helpers
// ---------------------------------------------------------------------------------------------

/** Lines of ffmpeg's stderr that mean it could not decode the start of the stream. */
const START_ERRORS = /non-existing PPS|no frame!|decode_slice_header|missing picture|error while decoding|concealing|Invalid data|sps_id/i;

async function decode(url: string, transport: 'tcp' | 'udp' | 'default', frames = 60): Promise<{ run: RunResult; frames: number }> {
  const args = ['-hide_banner', '-nostdin', '-v', 'error', '-nostats', '-progress', 'pipe:1'];
  if (transport !== 'default') args.push('-rtsp_transport', transport);
  args.push('-i', url, '-map', '0:v:0', '-frames:v', String(frames), '-f', 'null', '-');
  const run = await runFfmpeg(args, 30_000);
  const counts = [...run.stdout.matchAll(/^frame=(\d+)$/gm)].map((m) => Number(m[1]));
  return { run, frames: counts.at(-1) ?? 0 };
}

function assertCleanDecode(result: { run: RunResult; frames: number }, label: string): void {
  assert.equal(result.run.code, 0, `${label}: ffmpeg failed: ${result.run.stderr}`);
  assert.ok(result.frames >= 50, `${label}: decoded only ${result.frames} frames: ${result.run.stderr}`);
  assert.doesNotMatch(result.run.stderr, START_ERRORS, `${label}: decode errors: ${result.run.stderr}`);
}

function capturingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const add = (level: string) => (message: string): void => {
    lines.push(`${level} ${message}`);
  };
  return { lines, info: add('info'), warn: add('warn'), error: add('error'), debug: add('debug') };
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------

describe('loopback re-stream (rtsp server)', () => {
  let dir: string;
  let clip: Clip;
  const sources = new Map<string, SyntheticSource>();
  const servers: RestreamServer[] = [];
  let server: RestreamServer;
  let log: ReturnType<typeof capturingLogger>;

  async function startServer(options: Partial<RestreamServerOptions> = {}): Promise<RestreamServer> {
    const s = await createRestreamServer({ getSource: (id) => sources.get(id), log, ...options });
    servers.push(s);
    return s;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'restream-test-'));
    clip = await encodeClip(dir);
    sources.set('cam', new SyntheticSource('cam', clip));
    log = capturingLogger();
    server = await startServer();
  });

  after(async () => {
    for (const s of servers) await s.close();
    for (const source of sources.values()) source.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('ffmpeg over TCP decodes >= 50 frames, starting cleanly at a keyframe', async () => {
    const result = await decode(server.url('cam'), 'tcp');
    assertCleanDecode(result, 'tcp');
    // ffmpeg's exit and the server seeing its connection close are two events: wait for the second.
    const deadline = Date.now() + 10_000;
    while (server.stats().sessions.length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(server.stats().sessions.length, 0, 'the session ends when ffmpeg leaves');
  });

  it('the first decoded video frame is a keyframe (GOP cache start)', async () => {
    // Let the source run past its first keyframe so the cache holds a GOP with P frames after it.
    await delay(500);
    const frames = await readFrames(server.url('cam'), { transport: 'tcp', seconds: 1 });
    assert.ok(frames.video.length > 0, frames.stderr);
    assert.equal(frames.video[0]!.keyFrame, true);
    assert.equal(frames.video[0]!.pictType, 'I');
    assert.ok(frames.audio.length > 0, 'audio decoded too');
  });

  it('audio and video timestamps line up for ffmpeg (RTCP sender reports) and move forward', async () => {
    const frames = await readFrames(server.url('cam'), { transport: 'tcp', seconds: 3 });
    // ffmpeg's H.264 parser gives the very first frame of an RTP stream no pts (a camera read
    // directly shows the same); every later frame must have one.
    assert.ok(frames.video.slice(1).every((f) => f.time !== undefined) && frames.audio.every((f) => f.time !== undefined));
    const v = frames.video.slice(1).map((f) => f.time!);
    const a = frames.audio.map((f) => f.time!);
    assert.ok(v.length > 50 && a.length > 50, frames.stderr);
    for (let i = 1; i < v.length; i++) assert.ok(v[i]! > v[i - 1]!, `video time moves forward at ${i}`);
    for (let i = 1; i < a.length; i++) assert.ok(a[i]! > a[i - 1]!, `audio time moves forward at ${i}`);
    assert.ok(Math.abs(a[0]! - v[0]!) < 0.1, `first audio ${a[0]} vs first video ${v[0]}`);
    assert.ok(Math.abs(a.at(-1)! - v.at(-1)!) < 0.2, `last audio ${a.at(-1)} vs last video ${v.at(-1)}`);
  });

  it('ffmpeg keeps its session alive past the session timeout (TCP and UDP)', async () => {
    const short = await startServer({ limits: { sessionTimeoutMs: 3000 } });
    const run = (transport: 'tcp' | 'udp') => runFfmpeg([
      '-hide_banner', '-nostdin', '-v', 'error', '-nostats', '-progress', 'pipe:1', '-rtsp_transport', transport,
      '-i', short.url('cam'), '-map', '0:v:0', '-t', '7', '-f', 'null', '-',
    ], 30_000);
    const results = await Promise.all([run('tcp'), run('udp')]);
    for (const r of results) {
      const frames = Number([...r.stdout.matchAll(/^frame=(\d+)$/gm)].at(-1)?.[1] ?? 0);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(frames >= 170, `decoded ${frames} frames in 7 s: ${r.stderr}`);
    }
    assert.ok(!log.lines.some((l) => /timed out/.test(l)), 'no session was reaped');
  });

  it('ffprobe sees H.264 640x360 and PCMU 8 kHz', async () => {
    const result = await probe(server.url('cam'), { transport: 'tcp' });
    assert.equal(result.video?.codecName, 'h264');
    assert.equal(result.video?.width, 640);
    assert.equal(result.video?.height, 360);
    assert.equal(result.audio?.codecName, 'pcm_mulaw');
    assert.equal(result.audio?.sampleRate, 8000);
  });

  it('ffmpeg with no -rtsp_transport flag connects (UDP) and decodes', async () => {
    const before = log.lines.length;
    const result = await decode(server.url('cam'), 'default');
    assertCleanDecode(result, 'default transport');
    assert.ok(log.lines.slice(before).some((l) => /playing cam over UDP/.test(l)), 'it used UDP');
  });

  it('ffmpeg over UDP when UDP is switched off falls back to TCP after 461', async () => {
    const tcpOnly = await startServer({ udp: false });
    const before = log.lines.length;
    const result = await decode(tcpOnly.url('cam'), 'default');
    assertCleanDecode(result, 'tcp fallback');
    assert.ok(log.lines.slice(before).some((l) => /playing cam over TCP/.test(l)));
  });

  it('two ffmpeg clients at once both decode', async () => {
    const [a, b] = await Promise.all([decode(server.url('cam'), 'tcp'), decode(server.url('cam'), 'udp')]);
    assertCleanDecode(a, 'client A');
    assertCleanDecode(b, 'client B');
  });

  it('serves DESCRIBE with H.264 fmtp from the parameter sets, PCMU, controls and Content-Base', async () => {
    const client = await RawClient.open(server.port);
    try {
      const url = server.url('cam');
      const res = await client.request('DESCRIBE', url, 1, { Accept: 'application/sdp' });
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-base'], `${url}/`);
      assert.equal(res.headers['content-type'], 'application/sdp');
      const spsB64 = clip.sps.toString('base64');
      assert.match(res.body, /m=video 0 RTP\/AVP 96/);
      assert.match(res.body, /a=rtpmap:96 H264\/90000/);
      assert.match(res.body, new RegExp(`a=fmtp:96 packetization-mode=1;profile-level-id=${clip.sps.subarray(1, 4).toString('hex')};sprop-parameter-sets=${spsB64.replace(/[+/]/g, '\\$&')},`));
      assert.match(res.body, /a=control:trackID=0/);
      assert.match(res.body, /m=audio 0 RTP\/AVP 0\r\na=rtpmap:0 PCMU\/8000\r\na=control:trackID=1/);
    } finally {
      client.close();
    }
  });

  it('an in-process RTP capture sees each client start at an IDR with SPS/PPS and continuous sequence numbers', async () => {
    const capture = await captureRtp(server.url('cam'), 1500);
    const video = capture.packets.filter((p) => p.channel === 0);
    const audio = capture.packets.filter((p) => p.channel === 2);
    assert.ok(video.length > 20 && audio.length > 20);
    const firstTypes = video.slice(0, 3).flatMap((p) => h264NalTypes(p.payload));
    assert.deepEqual(firstTypes.slice(0, 3), [7, 8, 5]);
    for (let i = 1; i < video.length; i++) assert.equal(video[i]!.sequence, (video[i - 1]!.sequence + 1) & 0xffff);
    assert.equal(new Set(video.map((p) => p.ssrc)).size, 1);
    assert.notEqual(video[0]!.ssrc, audio[0]!.ssrc);
  });

  it('an unknown camera id gets 404, from a raw client and from ffmpeg', async () => {
    const client = await RawClient.open(server.port);
    const res = await client.request('DESCRIBE', server.url('nope'), 1);
    assert.equal(res.status, 404);
    client.close();
    const result = await decode(server.url('nope'), 'tcp', 5);
    assert.notEqual(result.run.code, 0);
    assert.match(result.run.stderr, /404 Not Found/);
  });

  it('answers malformed requests with 400 (or 413/505/501) and keeps serving', async () => {
    const cases: Array<{ input: string | Buffer; status: number }> = [
      { input: 'GARBAGE\r\n\r\n', status: 400 },
      { input: 'DESCRIBE rtsp://127.0.0.1/cam RTSP/1.0\r\n\r\n', status: 400 }, // no CSeq
      { input: 'OPTIONS * RTSP/1.0\r\nCSeq: abc\r\n\r\n', status: 400 },
      { input: 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: -5\r\n\r\n', status: 400 },
      { input: 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 99999999999\r\n\r\n', status: 400 },
      { input: 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 9999999\r\n\r\n', status: 413 },
      { input: 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nthis line has no colon\r\n\r\n', status: 400 },
      { input: `OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Big: ${'a'.repeat(1024 * 1024)}\r\n\r\n`, status: 400 },
      { input: 'OPTIONS * RTSP/2.0\r\nCSeq: 1\r\n\r\n', status: 505 },
      { input: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', status: 400 },
      { input: Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a]), status: 400 },
      { input: 'BREW rtsp://127.0.0.1/cam RTSP/1.0\r\nCSeq: 7\r\n\r\n', status: 501 },
      { input: 'DESCRIBE rtsp://127.0.0.1/%E0%A4%A RTSP/1.0\r\nCSeq: 2\r\n\r\n', status: 400 },
      { input: 'DESCRIBE relative/path RTSP/1.0\r\nCSeq: 2\r\n\r\n', status: 400 },
      { input: 'PLAY rtsp://127.0.0.1/cam RTSP/1.0\r\nCSeq: 3\r\nSession: deadbeef\r\n\r\n', status: 454 },
      { input: 'SETUP rtsp://127.0.0.1/cam/trackID=9 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n', status: 404 },
      { input: 'SETUP rtsp://127.0.0.1/cam/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP;multicast\r\n\r\n', status: 461 },
    ];
    for (const { input, status } of cases) {
      const client = await RawClient.open(server.port);
      const response = client.next();
      client.sendRaw(input);
      const res = await response;
      assert.equal(res.status, status, `input ${JSON.stringify(input.toString().slice(0, 80))}`);
      client.close();
    }
    // Split across reads, with a continuation line and stray CRLFs, still fine.
    const client = await RawClient.open(server.port);
    const response = client.next();
    client.sendRaw('\r\nOPTIONS * RTSP/1.0\r\nCSe');
    await delay(20);
    client.sendRaw('q: 5\r\nUser-Agent: a\r\n  continued\r\n\r\n');
    const ok = await response;
    assert.equal(ok.status, 200);
    assert.match(ok.headers['public'] ?? '', /DESCRIBE/);
    client.close();
    assertCleanDecode(await decode(server.url('cam'), 'tcp'), 'after malformed input');
  });

  it('closes a connection whose request never completes (408) and idle connections', async () => {
    const s = await startServer({ limits: { requestTimeoutMs: 300, idleConnectionTimeoutMs: 600 } });
    const slow = await RawClient.open(s.port);
    const response = slow.next();
    slow.sendRaw('OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n');
    assert.equal((await response).status, 408);
    await slow.closed;
    const idle = await RawClient.open(s.port);
    const started = Date.now();
    await idle.closed;
    assert.ok(Date.now() - started >= 500);
  });

  it('refuses connections beyond maxConnections with 503', async () => {
    const s = await startServer({ limits: { maxConnections: 2 } });
    const a = await RawClient.open(s.port);
    const b = await RawClient.open(s.port);
    const c = await RawClient.open(s.port);
    const res = await c.next();
    assert.equal(res.status, 503);
    await c.closed;
    assert.equal((await a.request('OPTIONS', '*', 1)).status, 200);
    a.close();
    b.close();
  });

  it('waits for a cold source to connect, and answers 503 when it never does', async () => {
    sources.set('cold', new SyntheticSource('cold', clip, { connectDelayMs: 400 }));
    sources.set('dead', new SyntheticSource('dead', clip, { neverConnect: true }));
    const s = await startServer({ limits: { readyTimeoutMs: 800 } });
    assertCleanDecode(await decode(s.url('cold'), 'tcp'), 'cold source');
    const client = await RawClient.open(s.port);
    const res = await client.request('DESCRIBE', s.url('dead'), 1);
    assert.equal(res.status, 503);
    assert.equal(sources.get('dead')!.subscribers.size, 0, 'the failed DESCRIBE unsubscribed');
    client.close();
  });

  it('keeps a session alive with GET_PARAMETER, reaps a silent one, and TEARDOWN ends it', async () => {
    const s = await startServer({ limits: { sessionTimeoutMs: 700 } });
    const source = sources.get('cam')!;
    const subscribersBefore = source.subscribers.size;
    const client = await RawClient.open(s.port);
    const url = s.url('cam');
    assert.equal((await client.request('DESCRIBE', url, 1)).status, 200);
    const setup = await client.request('SETUP', `${url}/trackID=0`, 2, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
    assert.equal(setup.status, 200);
    assert.match(setup.headers['transport'] ?? '', /^RTP\/AVP\/TCP;unicast;interleaved=0-1;ssrc=[0-9A-F]{8}$/);
    const session = (setup.headers['session'] ?? '').split(';')[0]!;
    assert.match(setup.headers['session'] ?? '', /;timeout=1$/);
    const play = await client.request('PLAY', `${url}/`, 3, { Session: session });
    assert.equal(play.status, 200);
    assert.match(play.headers['rtp-info'] ?? '', /url=.*trackID=0;seq=\d+;rtptime=\d+/);
    for (let i = 0; i < 4; i++) {
      await delay(300);
      assert.equal((await client.request('GET_PARAMETER', `${url}/`, 4 + i, { Session: session })).status, 200);
    }
    assert.equal(s.stats().sessions.length, 1, 'keep-alives kept it');
    assert.ok(client.rtpSeqs.length > 20, 'media flowed');
    const teardown = await client.request('TEARDOWN', `${url}/`, 10, { Session: session });
    assert.equal(teardown.status, 200);
    assert.equal(s.stats().sessions.length, 0);
    assert.equal(source.subscribers.size, subscribersBefore, 'TEARDOWN unsubscribed from the Source');
    client.close();

    // A client that plays and then says nothing at all (not even RTCP) is reaped.
    const silent = await RawClient.open(s.port);
    await silent.request('DESCRIBE', url, 1);
    const setup2 = await silent.request('SETUP', `${url}/trackID=0`, 2, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
    await silent.request('PLAY', `${url}/`, 3, { Session: (setup2.headers['session'] ?? '').split(';')[0]! });
    await silent.closed;
    assert.equal(s.stats().sessions.length, 0);
    assert.equal(source.subscribers.size, subscribersBefore);
  });

  it('cuts back a client that stops reading, keeps its memory bounded, and the others lose nothing', async () => {
    // 10x real time: about 2.5 MB/s of video, so the stalled socket fills its kernel buffers quickly.
    const fast = new SyntheticSource('fast', clip, { speed: 10 });
    sources.set('fast', fast);
    const maxQueuedBytes = 256 * 1024;
    const s = await startServer({ limits: { maxQueuedBytes, burstGraceMs: 1000 } });
    const url = s.url('fast');

    const stalled = await RawClient.open(s.port);
    await stalled.request('DESCRIBE', url, 1);
    const setup = await stalled.request('SETUP', `${url}/trackID=0`, 2, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
    const session = (setup.headers['session'] ?? '').split(';')[0]!;
    const playing = stalled.request('PLAY', `${url}/`, 3, { Session: session });
    const play = await playing;
    assert.equal(play.status, 200);
    stalled.socket.pause(); // stop reading: the server's writes now pile up

    // The kernel's socket buffers absorb a few MB first (how much depends on the machine): wait
    // until the server's own queue has filled and the first cut-back happened.
    const statOf = () => s.stats().sessions.find((x) => x.id === session);
    const deadline = Date.now() + 30_000;
    while ((statOf()?.framesDropped ?? 0) === 0 && Date.now() < deadline) await delay(50);
    assert.ok((statOf()?.framesDropped ?? 0) > 0, 'the stalled client was cut back');
    await delay(1000); // past the PLAY burst grace: from here on only the steady-state bound applies
    const droppedBefore = statOf()!.framesDropped;

    const rssBefore = process.memoryUsage().rss;
    let maxQueued = 0;
    const sampler = setInterval(() => {
      maxQueued = Math.max(maxQueued, statOf()?.queuedBytes ?? 0);
    }, 20);
    const capture = await captureRtp(url, 3000); // a well-behaved client, meanwhile
    clearInterval(sampler);
    const rssAfter = process.memoryUsage().rss;

    const stat = statOf()!;
    if (process.env.RESTREAM_DEBUG) console.log({ stat, maxQueued, refused: fast.refusedWrites(), maxFrame: fast.maxFrameBytes, rss: rssAfter - rssBefore });
    assert.ok(stat.framesDropped > droppedBefore, 'the cut-back goes on while it does not read');
    assert.ok(fast.refusedWrites() > 0, 'the Source was told (write returned false)');
    assert.ok(maxQueued <= maxQueuedBytes + fast.maxFrameBytes + 64 * 1024, `queued ${maxQueued} bytes`);
    assert.ok(rssAfter - rssBefore < 64 * 1024 * 1024, `RSS grew by ${rssAfter - rssBefore}`);

    const video = capture.packets.filter((p) => p.channel === 0);
    assert.ok(video.length > 1000, `the reading client got ${video.length} packets`);
    let gaps = 0;
    for (let i = 1; i < video.length; i++) if (video[i]!.sequence !== ((video[i - 1]!.sequence + 1) & 0xffff)) gaps++;
    assert.equal(gaps, 0, 'the reading client lost nothing');
    stalled.close();
  });

  it('ends the session when the camera changes codec, so the consumer reconnects', async () => {
    const changing = new SyntheticSource('changing', clip);
    sources.set('changing', changing);
    const client = await RawClient.open(server.port);
    const url = server.url('changing');
    await client.request('DESCRIBE', url, 1);
    const setup = await client.request('SETUP', `${url}/trackID=0`, 2, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
    await client.request('PLAY', `${url}/`, 3, { Session: (setup.headers['session'] ?? '').split(';')[0]! });
    await delay(200);
    changing.changeTracks([{ ...changing.tracks[0]!, codec: 'H265' }]);
    await client.closed;
    assert.equal(changing.subscribers.size, 0);
    changing.stop();
  });

  describe('LAN access with credentials', () => {
    let lan: RestreamServer;
    before(async () => {
      lan = await startServer({
        lanAccess: true,
        credentials: { username: 'nvr', password: 's3cret pass' },
        requireAuthOnLoopback: true,
      });
    });

    it('refuses to start without credentials or on a LAN host without lanAccess', async () => {
      await assert.rejects(createRestreamServer({ getSource: () => undefined, lanAccess: true }), /requires credentials/);
      await assert.rejects(createRestreamServer({ getSource: () => undefined, host: '0.0.0.0' }), /not a loopback address/);
    });

    it('challenges with Digest (Basic only on loopback) and answers a wrong password with 401', async () => {
      const client = await RawClient.open(lan.port);
      const url = lan.url('cam');
      const res = await client.request('DESCRIBE', url, 1);
      assert.equal(res.status, 401);
      // Digest first; Basic is offered (and accepted) only because this client is on loopback.
      assert.match(res.headers['www-authenticate'] ?? '', /^Digest realm="[^"]+", nonce="[^"]+", algorithm=MD5, qop="auth"\nBasic realm=/);
      const basic = await client.request('DESCRIBE', url, 2, { Authorization: `Basic ${Buffer.from('nvr:s3cret pass').toString('base64')}` });
      assert.equal(basic.status, 200, 'Basic is fine from loopback');
      client.close();
      const wrong = await decode(lan.url('cam').replace('rtsp://', 'rtsp://nvr:wrong@'), 'tcp', 5);
      assert.notEqual(wrong.run.code, 0);
      assert.match(wrong.run.stderr, /401 Unauthorized/);
    });

    it('lets ffmpeg in with the right password (Digest)', async () => {
      const url = lan.url('cam', { withCredentials: true });
      assert.match(url, /^rtsp:\/\/nvr:s3cret%20pass@127\.0\.0\.1:\d+\/cam$/);
      assertCleanDecode(await decode(url, 'tcp'), 'digest');
      assert.ok(log.lines.some((l) => /gave wrong credentials/.test(l)));
      assert.ok(!log.lines.some((l) => l.includes('s3cret')), 'the password never reaches the log');
    });
  });
});
