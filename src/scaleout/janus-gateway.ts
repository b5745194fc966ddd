/**
 * One Janus gateway in the scale-out: its session, a mountpoint and one forwarded copy per camera,
 * and its health.
 *
 * While the gateway answers, each published camera has a mountpoint there and one `RtpForwarder`
 * on the camera's shared Source. When the gateway stops answering (its long poll fails twice, or it
 * says the session is gone after a restart) the forwarders stop at once, new viewers go to the
 * other gateways, and the gateway is tried again with a growing pause (1 s doubling to 15 s); when it
 * is back, every mountpoint is made again. One camera that cannot be published (no tracks yet, a
 * codec Janus cannot relay) never holds up the others.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { AudioCodecName, BroadcastSource, TrackDescription } from '../media/types.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { JanusError, JanusSession, printableJanusUrl, type JanusEndpoint, type JanusHandle } from './janus-api.js';
import { createMountpoint, destroyMountpoint, janusAudioFormat, janusCarriesVideo, JANUS_VIDEO_PAYLOAD_TYPE, STREAMING_PLUGIN, type MountpointPorts } from './janus-mountpoint.js';
import { JanusViewer } from './janus-viewer.js';
import { RtpForwarder, type ForwarderStats } from './rtp-forwarder.js';

export interface JanusGatewayOptions extends JanusEndpoint {
  /** Janus's streaming `admin_key`, when it is set. */
  adminKey?: string;
  /** Keys mountpoint ids and secrets to this plugin (see janus-mountpoint.ts). */
  instanceKey: string;
  logger?: Logger;
  /** SRTP to the mountpoint (default: unless the gateway is on this machine). */
  srtp?: boolean;
  /** First pause before trying a gateway again; doubles up to `maxRetryMs`. */
  retryMs?: number;
  maxRetryMs?: number;
}

export type GatewayState = 'connecting' | 'up' | 'down' | 'stopped';

export interface PublishedCamera {
  id: string;
  name: string;
  /** The camera's shared Source. */
  source: BroadcastSource;
  /**
   * Given the camera's tracks, the variant to forward instead (an H.265 camera's H.264, an AAC
   * camera's Opus sound), or undefined for the camera's own.
   */
  feed?: (tracks: ReadonlyArray<TrackDescription>) => BroadcastSource | undefined;
}

interface Mount {
  camera: PublishedCamera;
  /** The variant fed to the gateway instead of the camera's own Source, when there is one. */
  feed?: BroadcastSource;
  /** Mount and re-mount calls, one at a time. */
  queue: Promise<void>;
  /** What the mountpoint carries ("H264/PCMU"), once made. */
  codecs?: string;
  ports?: MountpointPorts;
  forwarder?: RtpForwarder;
  unsubscribe?: () => void;
  /** Why it is not published, when it is not. */
  problem?: string;
  onTracks: () => void;
}

export interface GatewayStats {
  url: string;
  state: GatewayState;
  viewers: number;
  cameras: Record<string, { published: boolean; viewers: number; problem?: string; forwarded?: ForwarderStats }>;
}

export interface JanusGatewayEvents {
  state: [state: GatewayState];
}

/** The tracks a mountpoint can carry: video Janus relays as it is, and G.711 or Opus sound. */
function relayable(tracks: ReadonlyArray<TrackDescription>): { video?: TrackDescription; audio?: TrackDescription } {
  const video = tracks.find((t) => t.kind === 'video' && (t.codec === 'H264' || t.codec === 'H265' || t.codec === 'VP8') && janusCarriesVideo(t.codec));
  const audio = tracks.find((t) => t.kind === 'audio' && (t.codec === 'PCMU' || t.codec === 'PCMA' || t.codec === 'OPUS') && janusAudioFormat(t.codec) !== undefined);
  return { ...(video ? { video } : {}), ...(audio ? { audio } : {}) };
}

export class JanusGateway extends EventEmitter<JanusGatewayEvents> {
  readonly name: string;
  private readonly log: Logger;
  private readonly mounts = new Map<string, Mount>();
  private session: JanusSession | undefined;
  private admin: JanusHandle | undefined;
  private current: GatewayState = 'connecting';
  private retryTimer: NodeJS.Timeout | undefined;
  private nextRetryMs: number;
  private viewerCount = 0;
  private readonly viewersByCamera = new Map<string, number>();
  /** SRTP to a gateway on another machine; plain RTP on loopback. */
  private readonly secureMedia: boolean;
  private readonly host: string;

  constructor(private readonly options: JanusGatewayOptions) {
    super();
    this.log = options.logger ?? silentLogger;
    this.name = printableJanusUrl(options.url);
    this.nextRetryMs = options.retryMs ?? 1000;
    this.host = new URL(options.url).hostname;
    this.secureMedia = options.srtp ?? !['127.0.0.1', 'localhost', '[::1]', '::1'].includes(this.host);
  }

  get state(): GatewayState {
    return this.current;
  }

  get viewers(): number {
    return this.viewerCount;
  }

  start(): void {
    void this.connect();
  }

  /** Publishes a camera on this gateway (now if it is up, else when it comes up). */
  publish(camera: PublishedCamera): void {
    if (this.mounts.has(camera.id)) return;
    const mount: Mount = {
      camera,
      queue: Promise.resolve(),
      onTracks: () => {
        // A camera that came up, or came back with other codecs: its mountpoint follows. Back with
        // the same ones, the forwarder simply carries on (the Source's timeline is continuous), and
        // the gateway's viewers never notice.
        if (this.current !== 'up') return;
        if (mount.ports && mount.codecs === this.codecsOf(mount)) return;
        void this.remount(mount);
      },
    };
    camera.source.on('tracks', mount.onTracks);
    this.mounts.set(camera.id, mount);
    if (this.current === 'up') void this.mount(mount);
  }

  /** Takes a camera off this gateway (its mountpoint too, when the gateway is up). */
  async unpublish(cameraId: string): Promise<void> {
    const mount = this.mounts.get(cameraId);
    if (!mount) return;
    this.mounts.delete(cameraId);
    await this.release(mount, this.current === 'up' ? this.admin : undefined);
  }

  /** Stops following and forwarding a camera; with `admin`, its mountpoint goes too. */
  private async release(mount: Mount, admin: JanusHandle | undefined): Promise<void> {
    mount.camera.source.off('tracks', mount.onTracks);
    mount.feed?.off('tracks', mount.onTracks);
    this.unmountLocal(mount);
    if (mount.ports && admin) await destroyMountpoint(admin, this.mountRequest(mount.camera)).catch(() => undefined);
    mount.ports = undefined;
  }

  /** Whether a viewer of this camera can be served here now. */
  serves(cameraId: string): boolean {
    return this.current === 'up' && this.mounts.get(cameraId)?.ports !== undefined;
  }

  /** A viewer of `cameraId` on this gateway: Janus's offer, and the handle to answer it. */
  async watch(cameraId: string): Promise<JanusViewer> {
    const mount = this.mounts.get(cameraId);
    const session = this.session;
    if (this.current !== 'up' || !session || !mount?.ports) throw new JanusError(`${this.name} does not serve camera ${cameraId} now`);
    // Counted from the request on, so that a burst of viewers spreads over the gateways.
    const count = (delta: number): void => {
      this.viewerCount += delta;
      this.viewersByCamera.set(cameraId, (this.viewersByCamera.get(cameraId) ?? 0) + delta);
    };
    count(1);
    let viewer: JanusViewer;
    try {
      viewer = await JanusViewer.watch(session, mount.ports.id, this.name);
    } catch (error) {
      count(-1);
      throw error;
    }
    viewer.once('closed', () => count(-1));
    return viewer;
  }

  stats(): GatewayStats {
    const cameras: GatewayStats['cameras'] = {};
    for (const id of this.mounts.keys()) cameras[id] = this.cameraStats(id)!;
    return { url: this.name, state: this.current, viewers: this.viewerCount, cameras };
  }

  /** One camera's part of `stats()`, or undefined when it is not published here. */
  cameraStats(id: string): GatewayStats['cameras'][string] | undefined {
    const mount = this.mounts.get(id);
    if (!mount) return undefined;
    return { published: mount.forwarder !== undefined, viewers: this.viewersByCamera.get(id) ?? 0, ...(mount.problem ? { problem: mount.problem } : {}), ...(mount.forwarder ? { forwarded: { ...mount.forwarder.counters } } : {}) };
  }

  /** Takes the mountpoints down and ends the session. */
  async stop(): Promise<void> {
    if (this.current === 'stopped') return;
    clearTimeout(this.retryTimer);
    const admin = this.admin;
    const wasUp = this.current === 'up';
    this.setState('stopped');
    for (const mount of this.mounts.values()) await this.release(mount, wasUp ? admin : undefined);
    await this.session?.destroy();
    this.session = undefined;
  }

  /** (A method, so that TypeScript does not narrow `current` across an await.) */
  private stopped(): boolean {
    return this.current === 'stopped';
  }

  private setState(state: GatewayState): void {
    if (this.current === state) return;
    this.current = state;
    this.emit('state', state);
  }

  private async connect(): Promise<void> {
    if (this.current === 'stopped') return;
    try {
      const session = await JanusSession.create(this.options);
      if (this.stopped()) {
        await session.destroy();
        return;
      }
      const admin = await session.attach(STREAMING_PLUGIN);
      this.session = session;
      this.admin = admin;
      session.once('lost', (error) => this.onLost(error));
      this.nextRetryMs = this.options.retryMs ?? 1000;
      this.setState('up');
      this.log.info(`Scale-out: ${this.name} is up; publishing ${this.mounts.size} camera(s)`);
      for (const mount of this.mounts.values()) await this.mount(mount);
    } catch (error) {
      this.onLost(error instanceof JanusError ? error : new JanusError(String(error)));
    }
  }

  private onLost(error: JanusError): void {
    if (this.current === 'stopped') return;
    const wasUp = this.current === 'up';
    this.session = undefined;
    this.admin = undefined;
    for (const mount of this.mounts.values()) {
      this.unmountLocal(mount);
      mount.ports = undefined;
    }
    this.setState('down');
    if (wasUp || this.nextRetryMs === (this.options.retryMs ?? 1000)) this.log.warn(`Scale-out: ${this.name} is down (${error.message}); new viewers go elsewhere, trying it again`);
    const delay = this.nextRetryMs;
    this.nextRetryMs = Math.min(this.nextRetryMs * 2, this.options.maxRetryMs ?? 15_000);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
    this.retryTimer.unref();
  }

  private mountRequest(camera: PublishedCamera, tracks: { video?: TrackDescription; audio?: TrackDescription } = {}, srtpKey?: string) {
    return {
      cameraId: camera.id,
      description: camera.name,
      instanceKey: this.options.instanceKey,
      ...(tracks.video ? { video: tracks.video.codec as 'H264' | 'VP8' } : {}),
      ...(tracks.audio ? { audio: tracks.audio.codec as 'PCMU' | 'PCMA' | 'OPUS' } : {}),
      ...(this.options.adminKey ? { adminKey: this.options.adminKey } : {}),
      ...(srtpKey ? { srtpKey } : {}),
    };
  }

  /** What the mountpoint would carry now, e.g. "H264/PCMU". */
  private codecsOf(mount: Mount): string {
    const main = mount.camera.source;
    const feed = main.tracks.length > 0 ? (mount.camera.feed?.(main.tracks) ?? main) : main;
    const tracks = relayable(feed.tracks);
    return `${tracks.video?.codec ?? '-'}/${tracks.audio?.codec ?? '-'}`;
  }

  /** Mounts (or re-mounts) one camera; calls for one camera run one after the other. */
  private mount(mount: Mount, again = false): Promise<void> {
    mount.queue = mount.queue.then(async () => {
      if (again) {
        this.unmountLocal(mount);
        mount.ports = undefined;
      }
      await this.mountNow(mount);
    }).catch((error: unknown) => {
      this.log.warn(`Scale-out: camera ${mount.camera.id} on ${this.name}: ${error instanceof Error ? error.message : String(error)}`);
    });
    return mount.queue;
  }

  private remount(mount: Mount): Promise<void> {
    return this.mount(mount, true);
  }

  /** Keeps `source` pulled with a sink that keeps nothing, until its tracks are known (then onTracks). */
  private hold(mount: Mount, source: BroadcastSource, problem: string): void {
    mount.problem = problem;
    if (mount.unsubscribe) return;
    const subscription = source.subscribe({ write: () => true }, { fromKeyframe: false });
    mount.unsubscribe = () => subscription.unsubscribe();
  }

  private async mountNow(mount: Mount): Promise<void> {
    const admin = this.admin;
    if (!admin || mount.ports || this.current !== 'up') return;
    const main = mount.camera.source;
    // Cameras are pulled on demand: until the camera has connected, hold it.
    if (main.tracks.length === 0) {
      this.hold(mount, main, 'waiting for the camera');
      return;
    }
    // What goes to the gateway: the camera itself, or the variant a browser can play (an H.265
    // camera's H.264, an AAC camera's Opus sound), which is then held until its encoder runs.
    const feed = mount.camera.feed?.(main.tracks) ?? main;
    this.follow(mount, feed);
    if (feed.tracks.length === 0) {
      this.hold(mount, feed, 'waiting for its encoder');
      return;
    }
    const tracks = relayable(feed.tracks);
    const video = feed.tracks.find((t) => t.kind === 'video');
    if (video && !tracks.video) {
      // Never a mountpoint with the sound alone: its viewers would get no picture. The plugin serves them.
      const problem = `${video.codec} video is served by the plugin`;
      if (mount.problem !== problem) this.log.warn(`Scale-out: camera ${mount.camera.id} sends ${video.codec} video, which Janus cannot relay as it is; the plugin serves its viewers itself`);
      mount.problem = problem;
      this.unmountLocal(mount);
      return;
    }
    if (!tracks.video && !tracks.audio) {
      mount.problem = 'nothing Janus can relay as it is';
      this.unmountLocal(mount);
      return;
    }
    const srtp = this.secureMedia ? randomBytes(30) : undefined;
    try {
      const ports = await createMountpoint(admin, this.mountRequest(mount.camera, tracks, srtp?.toString('base64')));
      if (this.admin !== admin || this.current !== 'up') return;
      const forwarder = await RtpForwarder.open({
        host: this.host,
        ...(tracks.video && ports.video ? { video: { ...ports.video, payloadType: JANUS_VIDEO_PAYLOAD_TYPE, clockRate: tracks.video.clockRate } } : {}),
        ...(tracks.audio && ports.audio ? { audio: { port: ports.audio.port, payloadType: janusAudioFormat(tracks.audio.codec as AudioCodecName)?.payloadType ?? 0, clockRate: tracks.audio.clockRate } } : {}),
        ...(srtp ? { srtpKey: srtp } : {}),
      });
      mount.ports = ports;
      mount.forwarder = forwarder;
      mount.codecs = `${tracks.video?.codec ?? '-'}/${tracks.audio?.codec ?? '-'}`;
      mount.problem = undefined;
      mount.unsubscribe?.();
      const subscription = feed.subscribe(forwarder, { fromKeyframe: true });
      mount.unsubscribe = () => subscription.unsubscribe();
      const what = feed === main ? '' : ` (${[tracks.video?.codec, tracks.audio?.codec].filter(Boolean).join(' and ')} from the plugin's encoder)`;
      this.log.info(`Scale-out: camera ${mount.camera.id} published on ${this.name}${what}${srtp ? ' (SRTP)' : ''}`);
    } catch (error) {
      mount.problem = error instanceof Error ? error.message : String(error);
      this.log.warn(`Scale-out: camera ${mount.camera.id} cannot be published on ${this.name}: ${mount.problem}`);
    }
  }

  /** Re-mounts when the fed variant's tracks change too (its encoder started, or restarted). */
  private follow(mount: Mount, feed: BroadcastSource): void {
    if (mount.feed === feed) return;
    mount.feed?.off('tracks', mount.onTracks);
    mount.feed = feed === mount.camera.source ? undefined : feed;
    mount.feed?.on('tracks', mount.onTracks);
  }

  private unmountLocal(mount: Mount): void {
    mount.unsubscribe?.();
    mount.unsubscribe = undefined;
    mount.forwarder?.close();
    mount.forwarder = undefined;
  }
}
