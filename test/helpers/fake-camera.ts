// TypeScript handle on test/helpers/fake-camera.py, the GStreamer RTSP fake IP camera.
// The camera runs as a tracked child process (see processes.ts) and is controlled through
// JSON lines on its stdin/stdout.
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { getFreePort, LOOPBACK } from './ports.js';
import { printLogsOnFailure } from './print-on-failure.js';
import { registerCleanup, spawnTracked, type TrackedProcess } from './processes.js';

export const FAKE_CAMERA_SCRIPT = fileURLToPath(new URL('./fake-camera.py', import.meta.url));
/** The distribution's Python: it has `gi` (a pyenv python3 first on PATH usually has not). */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export interface FakeCameraOptions {
  /** Default: a free ephemeral port. */
  port?: number;
  /** Default '/live1.sdp' (the DCS-7010L's path). */
  path?: string;
  codec?: 'h264' | 'h265';
  /** H.264 only; H.265 is always Main. Default 'baseline'. */
  profile?: 'baseline' | 'main' | 'high';
  width?: number;
  height?: number;
  fps?: number;
  /** Frames between keyframes. Default 50 (2 s at 25 fps). */
  keyframeIntervalFrames?: number;
  /** Default 'pcmu'. */
  audio?: 'pcmu' | 'pcma' | 'aac' | 'none';
  auth?: { method: 'basic' | 'digest'; user: string; password: string };
  /** Lower transports the camera accepts. Default 'both'. */
  transports?: 'tcp' | 'udp' | 'both';
  /** true (default): SPS/PPS before every IDR; false: only in the SDP's sprop-parameter-sets. */
  parameterSetsInBand?: boolean;
  /** Video bitrate in kbit/s. Default 1024. */
  bitrateKbps?: number;
  /** RTSP session timeout the camera announces, in seconds. Default 60. */
  sessionTimeoutSec?: number;
  /**
   * Force an IDR when a client sends PLAY, as many cameras do (default true). With false a
   * new viewer waits for the next regular keyframe (up to keyframeIntervalFrames).
   */
  keyframeOnPlay?: boolean;
  /** Digest/Basic realm. Default 'DCS-7010L'. */
  realm?: string;
  /**
   * ONVIF audio back-channel (two-way audio) in this G.711 law: the camera becomes an ONVIF RTSP
   * server, and a client that DESCRIBEs with `Require: www.onvif.org/ver20/backchannel` gets a
   * sendonly audio section to talk into. What arrives is decoded and reported (`talkReports()`).
   * Default 'none': a plain server, which answers that Require with 551 Option not supported.
   */
  backchannel?: 'none' | 'pcmu' | 'pcma';
  /** How long to wait for the camera to listen. Default 15000 ms. */
  startTimeoutMs?: number;
}

export interface RtspRequestRecord {
  method: string;
  cseq: number | null;
  uri: string | null;
  /** false when the camera answered 401 (or 403). */
  authorized: boolean;
}

/** What the camera heard on its back-channel: one report per 0.5 s of decoded audio. */
export interface TalkReport {
  /** The strongest tone between 100 and 3900 Hz; 0 when the audio is silent. */
  frequency: number;
  /** Root mean square level, 0..1 of full scale. */
  rms: number;
  /** RTP packets that reached this back-channel media so far. */
  packets: number;
}

type Reply = Record<string, unknown>;

interface TalkWaiter {
  predicate: (report: TalkReport) => boolean;
  resolve: (report: TalkReport) => void;
}

interface Pending {
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseRequestRecord(v: unknown): RtspRequestRecord {
  if (!isRecord(v)) throw new Error('fake camera: malformed request record');
  return {
    method: typeof v.method === 'string' ? v.method : '?',
    cseq: typeof v.cseq === 'number' ? v.cseq : null,
    uri: typeof v.uri === 'string' ? v.uri : null,
    authorized: v.authorized !== false,
  };
}

/** Every camera of this test file: a failed test prints what each one logged during it. */
const everyCamera = new Set<FakeCamera>();
const FAILURE_LOG_CHARS = 20_000;

printLogsOnFailure(everyCamera, {
  logged: (camera) => camera.stderr().length,
  report: (camera, since, testName) => {
    const text = camera.stderr().slice(since);
    if (!text.trim()) return undefined;
    const shown = text.length > FAILURE_LOG_CHARS ? `…${text.slice(-FAILURE_LOG_CHARS)}` : text;
    return `----- fake camera :${camera.port} log during the failed test "${testName}" -----\n${shown.trimEnd()}\n----- end of fake camera log -----`;
  },
});

export class FakeCamera {
  readonly port: number;
  readonly path: string;
  readonly options: Readonly<FakeCameraOptions>;
  private proc: TrackedProcess | undefined;
  private pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly talk: TalkReport[] = [];
  private talkWaiters = new Set<TalkWaiter>();
  private readonly unregister: () => void;

  private constructor(options: FakeCameraOptions, port: number) {
    this.options = options;
    this.port = port;
    const path = options.path ?? '/live1.sdp';
    this.path = path.startsWith('/') ? path : `/${path}`;
    this.unregister = registerCleanup(() => this.close());
    everyCamera.add(this);
  }

  /** Starts a camera and waits until it listens. */
  static async start(options: FakeCameraOptions = {}): Promise<FakeCamera> {
    // A port picked here can be taken by someone else before Python binds it; when the port
    // was ours to choose, pick another and try again.
    const attempts = options.port === undefined ? 3 : 1;
    let lastError: unknown;
    for (let i = 0; i < attempts; i++) {
      const cam = new FakeCamera(options, options.port ?? (await getFreePort()));
      try {
        await cam.launch();
        return cam;
      } catch (err) {
        lastError = err;
        await cam.close();
        if (!(err instanceof Error) || !err.message.includes('cannot listen')) break;
      }
    }
    throw lastError;
  }

  /** rtsp://127.0.0.1:port/path, without credentials. */
  get url(): string {
    return `rtsp://${LOOPBACK}:${this.port}${this.path}`;
  }

  /** A log-in as the RTSP client takes it, beside the bare `url` (defaults: the camera's own credentials). */
  credentials(user?: string, password?: string): { username: string; password: string } {
    return { username: user ?? this.options.auth?.user ?? 'admin', password: password ?? this.options.auth?.password ?? '' };
  }

  /** The URL with user:password (defaults: the camera's own credentials), percent-encoded: for ffmpeg and ffprobe. */
  urlWithCredentials(user?: string, password?: string): string {
    const u = user ?? this.options.auth?.user ?? 'admin';
    const p = password ?? this.options.auth?.password ?? '';
    return `rtsp://${encodeURIComponent(u)}:${encodeURIComponent(p)}@${LOOPBACK}:${this.port}${this.path}`;
  }

  /** True while the camera process runs. */
  get running(): boolean {
    return this.proc !== undefined && this.proc.exitInfo() === undefined;
  }

  /** The camera process id while it runs (e.g. to read its CPU time). */
  get pid(): number | undefined {
    return this.running ? this.proc?.pid : undefined;
  }

  /** The camera's stderr so far (its RTSP request log and GStreamer warnings). */
  stderr(): string {
    return this.proc?.stderrText() ?? '';
  }

  /** Active RTSP sessions (SETUP done, not yet torn down, timed out or disconnected). */
  async sessionCount(): Promise<number> {
    const r = await this.command('sessions');
    if (typeof r.sessions !== 'number') throw new Error('fake camera: bad sessions reply');
    return r.sessions;
  }

  /** Connected RTSP control connections. */
  async clientCount(): Promise<number> {
    const r = await this.command('clients');
    if (typeof r.clients !== 'number') throw new Error('fake camera: bad clients reply');
    return r.clients;
  }

  /** Every RTSP request received since start (method, CSeq, URI, authorised or not). */
  async requests(): Promise<RtspRequestRecord[]> {
    const r = await this.command('requests');
    if (!Array.isArray(r.requests)) throw new Error('fake camera: bad requests reply');
    return r.requests.map(parseRequestRecord);
  }

  /** Asks the encoder for an IDR now; false before the first client started the encoder. */
  async requestKeyframe(): Promise<boolean> {
    const r = await this.command('keyframe');
    return r.requested === true;
  }

  /**
   * Whether the scene moves: the test pattern scrolls (the default), or stands still, as a camera
   * looking at an empty room. False before the first client started the pipeline.
   */
  async setMoving(moving: boolean): Promise<boolean> {
    const r = await this.command('scene', 5000, { moving });
    return r.applied === true;
  }

  /** Closes every client connection without stopping the camera (a network drop). */
  async dropClients(): Promise<number> {
    const r = await this.command('drop');
    return typeof r.dropped === 'number' ? r.dropped : 0;
  }

  /**
   * Stops the shared media's raw video for good while its sound flows on, as gst-rtsp-server's
   * shared media has done on its own: the camera's stall watch then repairs it as a reboot would
   * (drops the media and its clients within about 4 s; the next client gets a new media).
   */
  async stallVideo(): Promise<boolean> {
    const r = await this.command('stall-video');
    return r.stalled === true;
  }

  /** Sessions that use the ONVIF back-channel (a client talking, or set up to). */
  async talkSessionCount(): Promise<number> {
    const r = await this.command('talk-sessions');
    if (typeof r.sessions !== 'number') throw new Error('fake camera: bad talk-sessions reply');
    return r.sessions;
  }

  /** Polls until the back-channel session count equals `n`; throws with the last value on timeout. */
  async waitForTalkSessionCount(n: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    while (Date.now() < deadline) {
      last = await this.talkSessionCount();
      if (last === n) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`fake camera: expected ${n} back-channel session(s), still ${last} after ${timeoutMs} ms`);
  }

  /** Every back-channel report since start (or since `clearTalkReports()`), oldest first. */
  talkReports(): TalkReport[] {
    return [...this.talk];
  }

  /** Forgets the reports so far, e.g. between two talk sessions of one test. */
  clearTalkReports(): void {
    this.talk.length = 0;
  }

  /**
   * The first report, among those kept so far and those still to come, that satisfies `predicate`.
   * Rejects after `timeoutMs` with the last few reports in the message.
   */
  waitForTalk(predicate: (report: TalkReport) => boolean, timeoutMs = 10_000): Promise<TalkReport> {
    const found = this.talk.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter: TalkWaiter = {
        predicate,
        resolve: (report) => {
          clearTimeout(timer);
          this.talkWaiters.delete(waiter);
          resolve(report);
        },
      };
      const timer = setTimeout(() => {
        this.talkWaiters.delete(waiter);
        const last = this.talk.slice(-5).map((r) => JSON.stringify(r)).join(', ') || 'none';
        reject(new Error(`fake camera: no matching talk report within ${timeoutMs} ms (${this.talk.length} reports; last: ${last})`));
      }, timeoutMs);
      this.talkWaiters.add(waiter);
    });
  }

  /** Polls until the session count equals `n`; throws with the last value on timeout. */
  async waitForSessionCount(n: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    while (Date.now() < deadline) {
      last = await this.sessionCount();
      if (last === n) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`fake camera: expected ${n} session(s), still ${last} after ${timeoutMs} ms`);
  }

  /** Stops the camera process (a camera switched off). The port is released. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.proc = undefined;
    await proc.kill(3000);
    this.rejectPending(new Error('fake camera stopped'));
  }

  /** Stops (if running) and starts again on the same port, like a camera rebooting. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Stops the camera for good. */
  async close(): Promise<void> {
    this.unregister();
    await this.stop();
  }

  /** The python command line, for debugging. */
  commandLine(): string[] {
    return [SYSTEM_PYTHON, FAKE_CAMERA_SCRIPT, ...this.args()];
  }

  private args(): string[] {
    const o = this.options;
    const args = ['--port', String(this.port), '--path', this.path];
    const opt = (flag: string, v: string | number | undefined): void => {
      if (v !== undefined) args.push(flag, String(v));
    };
    opt('--codec', o.codec);
    opt('--profile', o.profile);
    opt('--width', o.width);
    opt('--height', o.height);
    opt('--fps', o.fps);
    opt('--keyint', o.keyframeIntervalFrames);
    opt('--audio', o.audio);
    opt('--transports', o.transports);
    opt('--bitrate', o.bitrateKbps);
    opt('--session-timeout', o.sessionTimeoutSec);
    opt('--realm', o.realm);
    if (o.auth) args.push('--auth', o.auth.method, '--user', o.auth.user, '--password', o.auth.password);
    if (o.parameterSetsInBand === false) args.push('--sps-sdp-only');
    if (o.keyframeOnPlay === false) args.push('--no-keyframe-on-play');
    opt('--backchannel', o.backchannel);
    return args;
  }

  private async launch(): Promise<void> {
    const timeoutMs = this.options.startTimeoutMs ?? 15_000;
    const proc = spawnTracked(SYSTEM_PYTHON, [FAKE_CAMERA_SCRIPT, ...this.args()], {
      name: `fake-camera:${this.port}`,
      // Unbuffered so every log line reaches stderr at once.
      // GStreamer's warnings too: they name the element when a pipeline stalls.
      env: { ...process.env, PYTHONUNBUFFERED: '1', GST_DEBUG_NO_COLOR: '1', GST_DEBUG: process.env['GST_DEBUG'] ?? '2' },
    });
    this.proc = proc;
    const lines = createInterface({ input: proc.child.stdout! });
    const ready = new Promise<void>((resolve, reject) => {
      lines.on('line', (line) => {
        let msg: unknown;
        try {
          msg = JSON.parse(line);
        } catch {
          return; // not ours (GStreamer sometimes prints to stdout)
        }
        if (!isRecord(msg)) return;
        // Events carry no id: they are never a command's reply.
        if (msg.event === 'talk') this.onTalk(msg);
        else if (msg.ready === true) resolve();
        else if (msg.ready === false) reject(new Error(String(msg.error ?? 'not ready')));
        else if (typeof msg.id === 'number') this.settle(msg.id, msg);
      });
    });
    const died = proc.exited.then((info) => {
      throw new Error(`exited (code ${info.code}, signal ${info.signal}) before it was ready`);
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`not ready after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([ready, died, timeout]);
    } catch (err) {
      await proc.kill(1000);
      const why = err instanceof Error ? err.message : String(err);
      throw new Error(`fake camera on port ${this.port}: ${why}\n--- stderr ---\n${proc.stderrText()}`);
    } finally {
      clearTimeout(timer);
    }
    void proc.exited.then(() => this.rejectPending(new Error(`fake camera on port ${this.port} exited`)));
  }

  private onTalk(msg: Reply): void {
    const { frequency, rms, packets } = msg;
    if (typeof frequency !== 'number' || typeof rms !== 'number' || typeof packets !== 'number') return;
    const report: TalkReport = { frequency, rms, packets };
    this.talk.push(report);
    if (this.talk.length > 10_000) this.talk.splice(0, 5000);
    for (const waiter of [...this.talkWaiters]) if (waiter.predicate(report)) waiter.resolve(report);
  }

  private settle(id: number, msg: Reply): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (msg.ok === false) p.reject(new Error(`fake camera: ${String(msg.error)}`));
    else p.resolve(msg);
  }

  private rejectPending(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private async command(cmd: string, timeoutMs = 5000, args: Record<string, unknown> = {}): Promise<Reply> {
    const proc = this.proc;
    if (!proc || proc.exitInfo()) throw new Error(`fake camera on port ${this.port} is not running`);
    const id = this.nextId++;
    const reply = new Promise<Reply>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    const stdin = proc.child.stdin!;
    if (!stdin.write(`${JSON.stringify({ ...args, id, cmd })}\n`)) await once(stdin, 'drain');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`fake camera: no answer to ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([reply, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
