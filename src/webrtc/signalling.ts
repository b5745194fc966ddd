/**
 * Server side of the WebSocket signalling protocol (docs/design.md): one socket, at most one
 * viewer session at a time. The server makes the offer; ICE candidates trickle both ways.
 *
 * Everything that arrives is untrusted: a frame is size-checked before it is parsed, must be a JSON
 * object whose `type` we know and whose fields have the right types (signalling-messages.ts), and
 * anything else is answered with `{"type":"error","code":"bad-request"}`; nothing a client sends
 * can throw out of here.
 *
 * Messages are handled strictly in order (an answer must not overtake the offer being made), except
 * `stop`, which acts at once so that a viewer waiting for a slow camera can leave immediately.
 */
import type { RawData, WebSocket } from 'ws';
import { canTalk, canWatch, type CallerContext } from '../access/principal.js';
import { publicErrorText } from '../access/public-error.js';
import type { BroadcastSource, SourceState } from '../media/types.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { refusalLog } from '../util/summary-log.js';
import { UnsupportedCodecError } from './codecs.js';
import { DEFAULT_ICE_SETTINGS, type IceSettings } from './ice-config.js';
import type { CameraRegistry, IceCandidateJson, Principal, RelayedViewer, SignallingHandler, StreamInfo, TalkChannel, TalkHolder, TalkTurn, ViewerErrorCode, ViewerRelays } from './types.js';
import { ViewerLimiter, type ViewerSlot } from './viewer-limits.js';
import { DEFAULT_TRACKS_TIMEOUT_MS, ViewerPeer, warmUpWebRtc, type ViewerCloseReason, type ViewerPeerOptions } from './viewer-peer.js';

// Checking what clients send is in signalling-messages.ts; `parseClientMessage` is re-exported for its importers.
import { BadRequest, decodeClientMessage, type ClientMessage } from './signalling-messages.js';
export { parseClientMessage } from './signalling-messages.js';

export interface SignallingContext {
  registry: CameraRegistry;
  principal: Principal;
  ice?: IceSettings;
  logger?: Logger;
  /** Shared with the WHEP handler so that a camera's limit counts every viewer. */
  limits: ViewerLimiter;
  /** The caller's address: with the principal, whose budget of unconnected viewers this uses. */
  remoteAddress?: string;
  /** Largest accepted text frame, in bytes (default 64 KiB; an SDP answer is a few KiB). */
  maxMessageBytes?: number;
  /** How long a viewer waits for a camera that has not connected yet (default 15 s). */
  tracksTimeoutMs?: number;
  /** Passed to every ViewerPeer (timeouts, queue limits...). */
  viewerOptions?: Omit<ViewerPeerOptions, 'source' | 'ice' | 'logger'>;
  /** Called with each viewer created (stats, tests). */
  onViewer?: (viewer: ViewerPeer) => void;
  /** Scale-out: a gateway that serves viewers of some cameras instead of this process. */
  relays?: ViewerRelays;
}

export type ServerMessage =
  /** `talk`: the viewer may talk; `mid` is the section its microphone goes out on. */
  | { type: 'offer'; sdp: string; talk?: { mid: string } }
  /** Who talks through the camera (`holder`, null: nobody), `you` when it is this viewer. */
  | { type: 'talk'; holder: string | null; you: boolean; message?: string }
  | { type: 'candidate'; candidate: IceCandidateJson | null }
  | { type: 'state'; state: 'connecting' | 'live' | 'offline' | 'retrying'; message?: string }
  | ({ type: 'info' } & StreamInfo)
  | { type: 'error'; code: ViewerErrorCode; message: string };

export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;
/** A close code in the application range: "the viewer ended on the server; reconnect if you like". */
export const CLOSE_VIEWER_ENDED = 4002;
const MAX_CANDIDATES_PER_VIEWER = 256;
/**
 * The protocol's state for a Source state; `live` only once this viewer's media flows. Error texts
 * go through the same filter as the camera API's: any viewer (a share link's too) may read them, so
 * the camera's URL (its LAN host, port and path) is replaced, not only its password.
 */
export function protocolState(state: SourceState, viewerConnected: boolean): Extract<ServerMessage, { type: 'state' }> {
  switch (state.state) {
    case 'live':
      return { type: 'state', state: viewerConnected ? 'live' : 'connecting' };
    case 'retrying': {
      const parts: string[] = [];
      const error = publicErrorText(state.lastError);
      if (error) parts.push(error);
      if (state.retryInMs !== undefined) parts.push(`next attempt in ${Math.max(1, Math.round(state.retryInMs / 1000))} s`);
      return parts.length > 0 ? { type: 'state', state: 'retrying', message: parts.join('; ') } : { type: 'state', state: 'retrying' };
    }
    case 'stopped': {
      const error = publicErrorText(state.lastError);
      return error ? { type: 'state', state: 'offline', message: error } : { type: 'state', state: 'offline' };
    }
    default:
      return { type: 'state', state: 'connecting' };
  }
}

const END_MESSAGES: Partial<Record<ViewerCloseReason, string>> = {
  'connect-timeout': 'The connection could not be set up in time',
  'ice-failed': 'The network path to the camera server failed',
  disconnected: 'The connection was lost',
  'tracks-changed': 'The camera changed its settings',
  error: 'The server ended the stream',
};

/** Takes over one WebSocket for the life of the socket. Never throws. */
export function handleSignallingSocket(ws: WebSocket, ctx: SignallingContext): void {
  new SignallingSession(ws, ctx).start();
}

/** The `SignallingHandler` the web server plugs in (src/web/types.ts). */
export function createSignallingHandler(
  deps: Omit<SignallingContext, 'principal' | 'logger'> & { logger?: Logger },
): SignallingHandler {
  void warmUpWebRtc();
  return (ws: WebSocket, caller: CallerContext) =>
    handleSignallingSocket(ws, { ...deps, principal: caller.principal, remoteAddress: caller.remoteAddress, logger: deps.logger ?? caller.log });
}

class SignallingSession {
  private readonly log: Logger;
  private readonly maxBytes: number;
  private viewer: ViewerPeer | undefined;
  /** A viewer a scale-out gateway serves (then `viewer` is undefined). */
  private relayed: RelayedViewer | undefined;
  private source: BroadcastSource | undefined;
  private queue: Promise<void> = Promise.resolve();
  private lastState = '';
  private candidates = 0;
  private closed = false;
  /** The camera's talk channel, when this viewer may talk; its turn while it holds the floor. */
  private talkChannel: TalkChannel | undefined;
  private talkTurn: TalkTurn | undefined;
  private unwatchTalk: (() => void) | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly ctx: SignallingContext,
  ) {
    this.log = ctx.logger ?? silentLogger;
    this.maxBytes = ctx.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  start(): void {
    this.ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    this.ws.on('close', () => this.onClose());
    this.ws.on('error', (error) => this.log.debug(`Signalling socket error: ${error.message}`));
  }

  private send(message: ServerMessage): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(JSON.stringify(message));
  }

  private error(code: ViewerErrorCode, message: string): void {
    this.send({ type: 'error', code, message });
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    let message: ClientMessage;
    try {
      message = decodeClientMessage(data, isBinary, this.maxBytes);
    } catch (error) {
      this.error('bad-request', error instanceof BadRequest ? error.message : 'malformed message');
      return;
    }
    if (message.type === 'stop') {
      this.endViewer();
      return;
    }
    if (message.type === 'talk') {
      // At once, like stop: a press must not wait behind a viewer still being set up.
      this.talk(message.action);
      return;
    }
    this.queue = this.queue
      .then(() => this.dispatch(message))
      .catch((error: unknown) => {
        // dispatch() handles its own errors; this is the last line of defence.
        this.log.error(`Signalling: unexpected error: ${error instanceof Error ? error.message : String(error)}`);
      });
  }

  private async dispatch(message: ClientMessage): Promise<void> {
    if (this.closed) return;
    switch (message.type) {
      case 'watch':
        await this.watch(message.camera, message.videoCodecs);
        return;
      case 'answer':
        await this.answer(message.sdp);
        return;
      case 'candidate':
        await this.candidate(message.candidate);
        return;
      default:
        return;
    }
  }

  /**
   * Starts a viewer of `cameraId`. A browser that says it cannot receive H.264 (`videoCodecs`) gets
   * the camera's VP8 variant, when there is one. An H.265 camera goes as it is to a browser that
   * says it decodes H.265; to another (found when the offer is made) it sends its H.264 variant when
   * the browser takes H.264, else its VP8 one (`variantCodec` is then the one chosen).
   */
  private async watch(cameraId: string, videoCodecs?: ReadonlyArray<string>, variantCodec?: 'VP8' | 'H264'): Promise<void> {
    this.endViewer();
    const { registry, principal, limits } = this.ctx;
    if (!canWatch(principal, cameraId)) {
      this.error('forbidden', 'You may not watch this camera.');
      return;
    }
    const main = registry.get(cameraId);
    if (!main) {
      this.error('not-found', 'There is no camera with this id.');
      return;
    }
    const takesH264 = videoCodecs === undefined || videoCodecs.includes('H264');
    const acceptsVp8 = videoCodecs === undefined || videoCodecs.includes('VP8');
    const codec = variantCodec ?? (!takesH264 && acceptsVp8 ? 'VP8' : undefined);
    const variant = codec ? registry.transcoded?.(cameraId, codec) : undefined;
    // The camera's own video; its AAC sound (if that is what it sends) as Opus.
    const source = variant ?? registry.withOpusSound?.(cameraId) ?? main;
    const owner = this.ctx.remoteAddress !== undefined ? { principal: this.ctx.principal.name, address: this.ctx.remoteAddress } : undefined;
    const admission = limits.admit(cameraId, owner);
    if ('refused' in admission && admission.refused === 'too-many-pending') {
      refusalLog(this.log).note('info', 'Viewers refused: too many still connecting from one user or address', `Camera ${cameraId}: viewer refused, '${this.ctx.principal.name}' or its address has ${limits.pendingLimit} viewers still connecting (web.maxConnectingViews)`);
      this.error('too-many-viewers', 'Several of your camera views are still connecting. Wait a few seconds and try again.');
      return;
    }
    const talkChannel = canTalk(principal, cameraId) ? registry.talk?.(cameraId) : undefined;
    const release = 'slot' in admission ? admission.slot : undefined;
    if (!release) {
      refusalLog(this.log).note('info', `Camera ${cameraId}: viewers refused at the viewer limit`, `Camera ${cameraId}: viewer refused, ${limits.count(cameraId)} already watching (limit ${limits.limitFor(cameraId)})`);
      this.error('too-many-viewers', `Too many people are watching this camera right now (limit ${limits.limitFor(cameraId)}). Try again later.`);
      return;
    }
    // Scale-out: a gateway serves the camera's own H.264 (not a variant; no talking through it).
    const relay = !variantCodec && takesH264 && !videoCodecs?.includes('H265') ? this.ctx.relays?.relay(cameraId) : undefined;
    if (relay && (await this.watchRelayed(cameraId, relay, release, source))) return;
    if (this.closed) {
      release();
      return;
    }
    let viewer: ViewerPeer;
    try {
      viewer = new ViewerPeer({
        ...this.ctx.viewerOptions,
        source,
        ice: this.ctx.ice ?? DEFAULT_ICE_SETTINGS,
        logger: this.log,
        ...(talkChannel ? { talk: true } : {}),
        // An H.265 camera's own video, untranscoded, to a browser that decodes H.265.
        ...(videoCodecs?.includes('H265') ? { receivesH265: true } : {}),
        ...(this.ctx.remoteAddress !== undefined ? { remoteAddress: this.ctx.remoteAddress } : {}),
      });
    } catch (error) {
      release();
      this.log.error(`Camera ${cameraId}: cannot start a viewer: ${error instanceof Error ? error.message : String(error)}`);
      this.error('bad-request', 'The server could not start the stream.');
      return;
    }
    this.viewer = viewer;
    this.source = source;
    this.candidates = 0;
    this.lastState = '';
    // State comes through the viewer's own sink (no listener on the shared Source per socket).
    viewer.on('sourceState', () => {
      if (this.viewer === viewer) this.sendState();
    });
    // werift gathers while the offer is being made; candidates wait until the offer is out so that
    // no client has to buffer candidates for a description it does not have yet.
    const early: Array<IceCandidateJson | null> = [];
    let offerSent = false;
    viewer.on('candidate', (candidate) => {
      if (this.viewer !== viewer) return;
      if (offerSent) this.send({ type: 'candidate', candidate });
      else early.push(candidate);
    });
    viewer.on('connected', () => {
      release.connected();
      if (this.viewer === viewer) this.sendState();
    });
    viewer.on('info', (info) => {
      if (this.viewer === viewer) this.send({ type: 'info', ...info });
    });
    viewer.once('closed', (reason, detail) => {
      release();
      if (this.viewer !== viewer) return;
      this.leaveTalk();
      this.viewer = undefined;
      this.source = undefined;
      this.onViewerEnded(reason, detail);
    });
    viewer.on('talkVoice', (payload, timestamp) => {
      if (this.viewer === viewer) this.talkTurn?.voice(payload, timestamp);
    });
    this.ctx.onViewer?.(viewer);
    this.sendState();

    try {
      await viewer.waitForTracks(this.ctx.tracksTimeoutMs ?? DEFAULT_TRACKS_TIMEOUT_MS);
    } catch {
      if (viewer.closed) return;
      this.send(protocolState(source.state.state === 'live' ? { state: 'retrying' } : source.state, false));
      await viewer.close('error', 'the camera did not connect in time');
      return;
    }
    let offer: string;
    try {
      offer = await viewer.createOffer();
    } catch (error) {
      if (viewer.closed) return;
      if (error instanceof UnsupportedCodecError) {
        // An H.265 camera, say: the viewer gets the H.264 variant if it takes H.264, else VP8.
        const fallback = variantCodec ? undefined : takesH264 && registry.transcoded?.(cameraId, 'H264') ? 'H264' : acceptsVp8 && registry.transcoded?.(cameraId, 'VP8') ? 'VP8' : undefined;
        if (fallback) {
          // Detached first, so that its closing says nothing to the page, which simply receives the
          // variant's offer.
          this.log.info(`Camera ${cameraId}: ${error.reason}; sending this viewer the ${fallback === 'H264' ? 'H.264' : 'VP8'} variant`);
          this.viewer = undefined;
          this.source = undefined;
          await viewer.close('unsupported-codec', error.reason);
          if (!this.closed) await this.watch(cameraId, videoCodecs, fallback);
          return;
        }
        refusalLog(this.log).note('warn', `Camera ${cameraId}: cannot stream to a viewer: ${error.reason}`, `Camera ${cameraId}: cannot stream to this viewer: ${error.reason}`);
        this.error('unsupported-codec', error.message);
        await viewer.close('unsupported-codec', error.reason);
        return;
      }
      this.log.error(`Camera ${cameraId}: offer failed: ${error instanceof Error ? error.message : String(error)}`);
      await viewer.close('error', 'offer failed');
      return;
    }
    if (this.viewer !== viewer) return;
    const talkMid = talkChannel ? viewer.talkMid : undefined;
    this.send(talkMid !== undefined ? { type: 'offer', sdp: offer, talk: { mid: talkMid } } : { type: 'offer', sdp: offer });
    offerSent = true;
    if (talkChannel && talkMid !== undefined) this.followTalk(talkChannel);
    for (const candidate of early.splice(0)) this.send({ type: 'candidate', candidate });
    const info = viewer.streamInfo();
    if (info) {
      viewer.markInfoSent(info);
      this.send({ type: 'info', ...info });
    }
  }

  /**
   * Hands the viewer to a scale-out gateway: its offer goes to the page, the page's answer and
   * candidates go back to it, and its media never passes through this process. Resolves false when
   * the gateway could not take the viewer, which the plugin then serves itself.
   */
  private async watchRelayed(cameraId: string, pending: Promise<RelayedViewer>, release: ViewerSlot, source: BroadcastSource): Promise<boolean> {
    this.source = source;
    this.lastState = '';
    this.send({ type: 'state', state: 'connecting' });
    let relayed: RelayedViewer;
    try {
      relayed = await pending;
    } catch (error) {
      this.source = undefined;
      this.log.debug(`Camera ${cameraId}: the scale-out gateway could not take a viewer (${error instanceof Error ? error.message : String(error)}); serving it here`);
      return false;
    }
    if (this.closed) {
      void relayed.close();
      release();
      return true;
    }
    this.relayed = relayed;
    this.candidates = 0;
    relayed.on('connected', () => {
      release.connected();
      if (this.relayed === relayed) this.send({ type: 'state', state: 'live' });
    });
    relayed.once('closed', (reason) => {
      release();
      if (this.relayed !== relayed) return;
      this.relayed = undefined;
      this.source = undefined;
      this.log.debug(`Camera ${cameraId}: the gateway's viewer ended (${reason})`);
      this.onViewerEnded('disconnected', reason);
    });
    this.send({ type: 'offer', sdp: relayed.offer });
    // The gateway's candidates are in its offer.
    this.send({ type: 'candidate', candidate: null });
    return true;
  }

  private async answer(sdp: string): Promise<void> {
    const relayed = this.relayed;
    if (relayed) {
      try {
        await relayed.answer(sdp);
      } catch (error) {
        this.log.debug(`Signalling: the gateway refused the answer: ${error instanceof Error ? error.message : String(error)}`);
        this.error('bad-request', 'The answer could not be applied.');
      }
      return;
    }
    const viewer = this.viewer;
    if (!viewer || viewer.peerConnection?.signalingState !== 'have-local-offer') {
      this.error('bad-request', 'There is no offer waiting for an answer.');
      return;
    }
    try {
      await viewer.applyAnswer(sdp);
    } catch (error) {
      if (viewer.closed) return;
      if (error instanceof UnsupportedCodecError) {
        refusalLog(this.log).note('warn', `Camera ${viewer.source.id}: cannot stream to a viewer: ${error.reason}`, `Camera ${viewer.source.id}: cannot stream to this viewer: ${error.reason}`);
        this.error('unsupported-codec', error.message);
        await viewer.close('unsupported-codec', error.reason);
        return;
      }
      this.log.debug(`Camera ${viewer.source.id}: bad answer: ${error instanceof Error ? error.message : String(error)}`);
      this.error('bad-request', 'The answer could not be applied.');
    }
  }

  private async candidate(candidate: IceCandidateJson | null): Promise<void> {
    const relayed = this.relayed;
    if (relayed) {
      if (!this.withinCandidateBudget()) return;
      await relayed.candidate(candidate).catch((error: unknown) => {
        this.log.debug(`Signalling: the gateway refused a candidate: ${error instanceof Error ? error.message : String(error)}`);
      });
      return;
    }
    const viewer = this.viewer;
    // Late candidates after a stop are normal; they are dropped quietly.
    if (!viewer) return;
    if (!this.withinCandidateBudget()) return;
    try {
      await viewer.addRemoteCandidate(candidate);
    } catch (error) {
      this.log.debug(`Camera ${viewer.source.id}: candidate refused: ${error instanceof Error ? error.message : String(error)}`);
      this.error('bad-request', 'The ICE candidate could not be used.');
    }
  }

  /** Counts one more candidate from the page; false (and the page told) past the budget. */
  private withinCandidateBudget(): boolean {
    if (++this.candidates <= MAX_CANDIDATES_PER_VIEWER) return true;
    this.error('bad-request', 'Too many ICE candidates.');
    return false;
  }

  /** Tells the page who talks, now and on every change, for as long as this viewer lasts. */
  private followTalk(channel: TalkChannel): void {
    this.talkChannel = channel;
    const tell = (holder: TalkHolder | undefined): void => {
      this.send({ type: 'talk', holder: holder?.name ?? null, you: holder !== undefined && holder.id === this.viewer?.id });
    };
    this.unwatchTalk = channel.watch(tell);
    tell(channel.holder);
  }

  /** Press-to-talk: take the floor or let go. */
  private talk(action: 'start' | 'stop'): void {
    const viewer = this.viewer;
    const channel = this.talkChannel;
    if (action === 'stop') {
      this.endTalk();
      return;
    }
    if (!viewer || !channel) {
      this.error('forbidden', 'You may not talk through this camera.');
      return;
    }
    if (this.talkTurn) return;
    const result = channel.take({ id: viewer.id, name: this.ctx.principal.name }, (message) => {
      if (this.talkTurn !== turn) return;
      this.talkTurn = undefined;
      this.send({ type: 'talk', holder: channel.holder?.name ?? null, you: false, message });
    });
    if ('busy' in result) {
      this.send({ type: 'talk', holder: result.busy, you: false, message: `${result.busy} is talking.` });
      return;
    }
    const turn = result;
    this.talkTurn = turn;
    this.log.info(`Camera ${viewer.source.id}: ${this.ctx.principal.name} is talking`);
  }

  private endTalk(): void {
    const turn = this.talkTurn;
    this.talkTurn = undefined;
    turn?.release();
  }

  private sendState(): void {
    const source = this.source;
    if (!source) return;
    const message = protocolState(source.state, this.viewer?.phase === 'connected');
    const key = `${message.state}|${message.message ?? ''}`;
    if (key === this.lastState) return;
    this.lastState = key;
    this.send(message);
  }

  private onViewerEnded(reason: ViewerCloseReason, detail: string | undefined): void {
    const text = END_MESSAGES[reason];
    if (!text || this.closed) return;
    this.log.debug(`Signalling: viewer ended (${reason}${detail ? `: ${detail}` : ''})`);
    this.send({ type: 'state', state: 'retrying', message: text });
    // The page reconnects on close, which renegotiates from scratch.
    this.ws.close(CLOSE_VIEWER_ENDED, reason);
  }

  /** The viewer is gone: its turn ends and it stops following who talks. */
  private leaveTalk(): void {
    this.endTalk();
    this.unwatchTalk?.();
    this.unwatchTalk = undefined;
    this.talkChannel = undefined;
  }

  private endViewer(): void {
    this.leaveTalk();
    const relayed = this.relayed;
    if (relayed) {
      this.relayed = undefined;
      this.source = undefined;
      void relayed.close();
    }
    const viewer = this.viewer;
    if (!viewer) return;
    this.viewer = undefined;
    this.source = undefined;
    void viewer.close('closed');
  }

  private onClose(): void {
    if (this.closed) return;
    this.endViewer();
    this.closed = true;
  }
}
