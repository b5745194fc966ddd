// One live view of one camera on one <video>: the client side of the /signal protocol
// (docs/design.md) and its RTCPeerConnection, with the watch-dog and backoff that make it reconnect
// by itself. It keeps no page state of its own beyond the STUN/TURN list the page hands it once
// (useIceServers), so the tiles and the large player in app.js each hold their own sessions.

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const TOO_MANY_VIEWERS_RETRY_MS = 30000;
/** No new frame for this long while the camera is live means the path is broken: reconnect. */
const STALL_MS = 8000;
/** A connection that has shown no frame after this long is retried from scratch. */
const FIRST_FRAME_DEADLINE_MS = 20000;
/** Backoff starts again from 1 s only after a connection has stayed live this long (no hammering). */
const STABLE_MS = 10000;
/** Close code the server uses when access was revoked: retrying cannot help. */
const CLOSE_ACCESS_REVOKED = 4001;

/**
 * What a LiveSession reports to whoever shows it.
 * @typedef {{ phase: string, text: string, tone: string }} SessionStatus
 * @typedef {object} SessionHandlers
 * @property {(status: SessionStatus) => void} [onStatus]
 * @property {(info: ServerInfo) => void} [onInfo]
 * @property {(stats: PageStats) => void} [onStats]
 * @property {(talk: TalkStatus) => void} [onTalk] the viewer may talk: who talks now, or why not
 */

/**
 * Press-to-talk as the page shows it. `holder`: who talks (null: nobody); `you`: this page does.
 * @typedef {{ available: boolean, holder: string | null, you: boolean, message?: string }} TalkStatus
 */

/**
 * The server's `info` signalling message: what it sends of this camera's stream.
 * @typedef {object} ServerInfo
 * @property {number} [width]
 * @property {number} [height]
 * @property {unknown} [codec]
 * @property {string | null} [audio]
 * @property {unknown} [message]
 */

/**
 * From /api/config: STUN/TURN servers for viewers outside the LAN (none on a LAN).
 * @type {RTCIceServer[]}
 */
let iceServers = [];

/**
 * The page sets these once /api/config has answered; sessions started later use them.
 * @param {RTCIceServer[]} servers
 */
export function useIceServers(servers) {
  iceServers = servers;
}

/**
 * The video codecs this browser can receive ("H264", "VP8"...), so the server can send a browser
 * without H.264 (Firefox without OpenH264) the camera's VP8 variant instead of an offer it must refuse.
 */
function receivableVideoCodecs() {
  const codecs = (typeof RTCRtpReceiver !== 'undefined' && RTCRtpReceiver.getCapabilities?.('video')?.codecs) || [];
  const names = codecs.map((codec) => String(codec.mimeType || '').replace(/^video\//i, '').toUpperCase());
  return [...new Set(names.filter((name) => /^[A-Z0-9-]{1,16}$/.test(name)))].slice(0, 32);
}

/* --------------------------------------------------------------- signalling -------------------- */

function signalUrl() {
  const url = new URL('/signal', window.location.href);
  url.protocol = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  return url.href;
}

/** @param {number} attempt */
function backoffDelay(attempt) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.max(0, attempt - 1));
  // Jitter so that every open page does not reconnect in the same instant after a server restart.
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/**
 * One live view of one camera on one <video>. It speaks the signalling protocol (the server offers,
 * we answer, trickle ICE both ways), watches that frames keep coming, and reconnects by itself with
 * exponential backoff after a network drop, a stall or a server restart.
 *
 * handlers: onStatus({phase, text, tone}), onInfo(info), onStats(stats)
 * phases: connecting, live, offline, reconnecting, waiting, failed
 */
export class LiveSession {
  /**
   * @param {string} cameraId
   * @param {HTMLVideoElement} video
   * @param {SessionHandlers} [handlers]
   */
  constructor(cameraId, video, handlers = {}) {
    this.cameraId = cameraId;
    this.video = video;
    this.handlers = handlers;
    this.attempt = 0;
    this.stopped = true;
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** @type {MediaStream | null} */
    this.stream = null;
    /** The sender for the microphone, when the server offered a talk section. @type {RTCRtpSender | null} */
    this.talkSender = null;
    /** The microphone, asked for at the first press and kept until the session stops. @type {MediaStream | null} */
    this.microphone = null;
    this.talking = false;
    this.retryTimer = 0;
    this.statsTimer = 0;
    /**
     * Candidates that arrived before the offer; null is "end of candidates".
     * @type {Array<RTCIceCandidateInit | null>}
     */
    this.pendingCandidates = [];
    /** @type {Promise<void>} */
    this.messages = Promise.resolve();
    this.serverState = 'connecting';
    this.phase = '';
    /** @type {PageStats | null} */
    this.previousStats = null;
    // Set again by every connect(); poll() runs only after one.
    this.connectedAt = 0;
    this.lastProgressAt = 0;
    this.liveSince = 0;
    this.progress = 0;
    this.onOnline = () => {
      // The network is back: do not sit out the rest of a long backoff.
      if (this.retryTimer && !this.stopped) {
        clearTimeout(this.retryTimer);
        this.retryTimer = 0;
        this.connect();
      }
    };
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener('online', this.onOnline);
    this.connect();
  }

  stop() {
    if (this.stopped) return;
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    this.teardown(true);
    this.video.srcObject = null;
  }

  /**
   * @param {string} phase
   * @param {string} text
   * @param {string} tone
   */
  status(phase, text, tone) {
    this.phase = phase;
    this.handlers.onStatus?.({ phase, text, tone });
  }

  /** @param {object} message */
  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  connect() {
    this.teardown(false);
    if (this.stopped) return;
    this.status('connecting', 'Connecting', 'warn');
    this.serverState = 'connecting';
    this.connectedAt = performance.now();
    this.lastProgressAt = 0;
    this.liveSince = 0;
    this.progress = 0; // decoded frames (or audio packets for a camera without video)
    const ws = new WebSocket(signalUrl());
    this.ws = ws;
    ws.addEventListener('open', () => this.send({ type: 'watch', camera: this.cameraId, videoCodecs: receivableVideoCodecs() }));
    ws.addEventListener('message', (event) => {
      if (this.ws !== ws) return;
      // Handle messages strictly in order: a candidate must not overtake the offer it belongs to.
      this.messages = this.messages
        .then(() => this.onMessage(event.data))
        .catch((error) => this.retry(`Connection failed (${error?.message ?? error})`));
    });
    ws.addEventListener('close', (event) => {
      if (this.ws !== ws || this.stopped) return;
      this.ws = null;
      if (event.code === CLOSE_ACCESS_REVOKED) {
        this.fail('Your access to this camera has ended. Reload the page to sign in again.');
      } else if (this.phase !== 'failed' && this.phase !== 'waiting') {
        // The server drops viewers of a camera that stays down; say so rather than blame the network.
        if (this.cameraDown()) this.retry('Camera offline', undefined, 'offline');
        else this.retry('Connection lost');
      }
    });
    this.statsTimer = setInterval(() => this.poll(), 1000);
  }

  /** @param {string} data */
  async onMessage(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return; // not ours to crash on; the server never sends this
    }
    if (!message || typeof message.type !== 'string') return;
    switch (message.type) {
      case 'offer':
        if (typeof message.sdp === 'string') await this.onOffer(message.sdp, typeof message.talk?.mid === 'string' ? message.talk.mid : null);
        break;
      case 'talk':
        this.handlers.onTalk?.({
          available: this.talkSender !== null,
          holder: typeof message.holder === 'string' ? message.holder : null,
          you: message.you === true,
          ...(typeof message.message === 'string' ? { message: message.message } : {}),
        });
        if (message.you !== true && this.talking) this.silenceMicrophone();
        break;
      case 'candidate':
        await this.onRemoteCandidate(message.candidate ?? null);
        break;
      case 'state':
        this.onServerState(message.state, message.message);
        break;
      case 'info':
        this.handlers.onInfo?.(message);
        break;
      case 'error':
        this.onServerError(message.code, message.message);
        break;
      default:
        break;
    }
  }

  createPeer() {
    const pc = new RTCPeerConnection({ iceServers });
    // While `pc` is the current peer, `stream` is the current stream too (both are replaced together).
    const stream = new MediaStream();
    this.stream = stream;
    pc.addEventListener('track', (event) => {
      if (this.pc !== pc) return;
      stream.addTrack(event.track);
      if (this.video.srcObject !== stream) this.video.srcObject = stream;
      // Muted autoplay is always allowed; if the browser still refuses, the tile shows the reason.
      this.video.play().catch(() => undefined);
    });
    pc.addEventListener('icecandidate', (event) => {
      this.send({ type: 'candidate', candidate: event.candidate ? event.candidate.toJSON() : null });
    });
    pc.addEventListener('connectionstatechange', () => {
      if (this.pc !== pc) return;
      if (pc.connectionState === 'failed') this.retry('Connection lost');
      // 'disconnected' often heals by itself within seconds; the stall watchdog decides.
    });
    return pc;
  }

  /**
   * @param {string} sdp
   * @param {string | null} talkMid the section for this viewer's microphone, when it may talk
   */
  async onOffer(sdp, talkMid) {
    // A second offer on a live peer is a renegotiation (the camera's tracks changed): answer it on
    // the same connection so the picture continues.
    if (!this.pc || this.pc.signalingState === 'closed') this.pc = this.createPeer();
    const pc = this.pc;
    await pc.setRemoteDescription({ type: 'offer', sdp });
    // The talk section sends, without a track until the first press: no microphone is opened (and
    // no permission asked) for a viewer who never talks.
    const talk = talkMid === null ? undefined : pc.getTransceivers().find((t) => t.mid === talkMid);
    if (talk) {
      talk.direction = 'sendonly';
      this.talkSender = talk.sender;
      if (this.talking && this.microphone) await talk.sender.replaceTrack(this.microphone.getAudioTracks()[0] ?? null);
    }
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    // Set by setLocalDescription just above.
    this.send({ type: 'answer', sdp: /** @type {RTCSessionDescription} */ (pc.localDescription).sdp });
    const queued = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const candidate of queued) await this.addCandidate(candidate);
  }

  /**
   * Press-to-talk, pressed: asks for the floor and opens the microphone (asking permission the
   * first time). Throws a plain message when the browser gives no microphone.
   */
  async startTalking() {
    if (!this.talkSender || this.talking) return;
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new Error('This browser gives web pages a microphone only over HTTPS.');
    }
    this.talking = true;
    this.send({ type: 'talk', action: 'start' });
    try {
      this.microphone ??= await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (error) {
      this.stopTalking();
      throw new Error(`No microphone: ${error instanceof Error ? error.message : String(error)}`);
    }
    // Released while permission was being asked: stay silent.
    if (!this.talking || !this.talkSender) return;
    await this.talkSender.replaceTrack(this.microphone.getAudioTracks()[0] ?? null);
  }

  /** Press-to-talk, released. */
  stopTalking() {
    if (!this.talking) return;
    this.send({ type: 'talk', action: 'stop' });
    this.silenceMicrophone();
  }

  silenceMicrophone() {
    this.talking = false;
    this.talkSender?.replaceTrack(null).catch(() => undefined);
  }

  /** @param {RTCIceCandidateInit | null} candidate */
  async onRemoteCandidate(candidate) {
    if (!this.pc || !this.pc.remoteDescription) {
      this.pendingCandidates.push(candidate);
      return;
    }
    await this.addCandidate(candidate);
  }

  /** @param {RTCIceCandidateInit | null} candidate */
  async addCandidate(candidate) {
    try {
      // null is "end of candidates". A peer torn down meanwhile throws here, and is caught like a bad candidate.
      await /** @type {RTCPeerConnection} */ (this.pc).addIceCandidate(candidate === null ? undefined : candidate);
    } catch {
      // One unusable candidate (e.g. an address family this device lacks) is not fatal.
    }
  }

  /**
   * @param {string} state
   * @param {string} [message]
   */
  onServerState(state, message) {
    this.serverState = state;
    if (state === 'live') {
      // The camera is (back) up: give frames a fresh window before the stall watchdog judges.
      this.lastProgressAt = performance.now();
      if (this.progress > 0) this.status('live', 'Live', 'live');
      else this.status('connecting', 'Starting video', 'warn');
    } else if (state === 'offline' || state === 'retrying') {
      this.liveSince = 0;
      this.status('offline', message ? `Camera offline, retrying (${message})` : 'Camera offline, retrying', 'bad');
    } else if (state === 'connecting') {
      this.status('connecting', 'Connecting to the camera', 'warn');
    }
  }

  /**
   * @param {unknown} code
   * @param {string} [message]
   */
  onServerError(code, message) {
    switch (code) {
      case 'unsupported-codec':
        this.fail(message || "This browser cannot play this camera's video format.");
        break;
      case 'too-many-viewers':
        this.wait(message || 'Too many people are watching this camera right now.', TOO_MANY_VIEWERS_RETRY_MS);
        break;
      case 'not-found':
        this.fail(message || 'This camera does not exist.');
        break;
      case 'forbidden':
        this.fail(message || 'You may not watch this camera.');
        break;
      default:
        this.retry(message || 'The server refused the request');
        break;
    }
  }

  cameraDown() {
    return this.serverState === 'offline' || this.serverState === 'retrying';
  }

  /** @param {string} text */
  fail(text) {
    this.teardown(true);
    this.status('failed', text, 'bad');
  }

  /**
   * @param {string} text
   * @param {number} delay
   */
  wait(text, delay) {
    this.retry(text, delay, 'waiting');
  }

  /**
   * @param {string} reason
   * @param {number} [delay]
   * @param {string} [phase]
   */
  retry(reason, delay, phase = 'reconnecting') {
    if (this.stopped) return;
    this.teardown(true);
    this.attempt += 1;
    const wait = delay ?? backoffDelay(this.attempt);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = 0;
      this.connect();
    }, wait);
    this.status(phase, `${reason}. Trying again in ${Math.ceil(wait / 1000)} s`, 'bad');
  }

  /** @param {boolean} sayStop */
  teardown(sayStop) {
    clearInterval(this.statsTimer);
    this.statsTimer = 0;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      if (sayStop && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'stop' }));
      ws.close(1000);
    }
    if (this.pc) {
      this.pc.close();
      this.pc = null;
    }
    this.pendingCandidates = [];
    this.messages = Promise.resolve();
    this.previousStats = null;
    // The server ends a turn with its viewer; a press still held talks again on the next offer.
    if (this.talkSender) this.handlers.onTalk?.({ available: false, holder: null, you: false });
    this.talkSender = null;
    if (sayStop) {
      // The session is over: the microphone (and the browser's "in use" light) goes off.
      this.talking = false;
      for (const track of this.microphone?.getTracks() ?? []) track.stop();
      this.microphone = null;
    }
  }

  /** Once a second: progress (frames decoded), the stall watchdog, and the figures for the overlay. */
  async poll() {
    const pc = this.pc;
    const now = performance.now();
    if (!pc) {
      // Waiting for the offer; while the camera is down the server keeps us posted and decides.
      if (!this.cameraDown() && now - this.connectedAt > FIRST_FRAME_DEADLINE_MS) this.retry('No answer from the server');
      return;
    }
    let report;
    try {
      report = await pc.getStats();
    } catch {
      return;
    }
    if (pc !== this.pc) return;
    const stats = summarizeStats(report, this.previousStats, now);
    this.previousStats = stats;
    // Progress is decoded video frames; for a camera without video, received audio packets.
    const progress = this.stream?.getVideoTracks().length ? stats.framesDecoded : stats.audioPackets;
    if (progress > this.progress) {
      this.progress = progress;
      this.lastProgressAt = now;
      if (this.phase !== 'live' && !this.cameraDown()) {
        this.status('live', 'Live', 'live');
        this.liveSince = now;
      }
      if (this.liveSince && now - this.liveSince > STABLE_MS) this.attempt = 0;
    }
    this.handlers.onStats?.(stats);
    if (this.cameraDown()) return; // the server is already retrying the camera; nothing to fix here
    if (this.progress === 0 && now - this.connectedAt > FIRST_FRAME_DEADLINE_MS) {
      this.retry('No video arrived');
    } else if (this.progress > 0 && now - this.lastProgressAt > STALL_MS) {
      this.retry('The picture stopped');
    }
  }
}

/**
 * What the player's statistics overlay shows; null where the browser does not (yet) know.
 * @typedef {object} PageStats
 * @property {number} at
 * @property {number} framesDecoded
 * @property {number} width
 * @property {number} height
 * @property {string | null} codec
 * @property {number} bytes
 * @property {number} packetsLost
 * @property {number} audioPackets
 * @property {number} freezes
 * @property {number} jitterBufferDelay
 * @property {number} jitterBufferEmitted
 * @property {number} totalDecodeTime
 * @property {number | null} rttMs
 * @property {number | null} fps
 * @property {number | null} kbps
 * @property {number | null} jitterBufferMs
 * @property {number | null} decodeMs
 * @property {number | null} latencyMs
 */

/**
 * Turns a getStats() report into the few figures people understand. The latency is an estimate of
 * what this side adds: half the round trip, the jitter buffer and decoding. It does not include
 * the camera's own encoding delay, which the browser cannot see.
 * @param {RTCStatsReport} report
 * @param {PageStats | null} previous
 * @param {number} now
 * @returns {PageStats}
 */
export function summarizeStats(report, previous, now) {
  // Typed by the cast, not the initializer: the forEach callbacks below assign them.
  let video = /** @type {RTCInboundRtpStreamStats | null} */ (null);
  let audio = /** @type {RTCInboundRtpStreamStats | null} */ (null);
  let pair = /** @type {RTCIceCandidatePairStats | null} */ (null);
  let transport = /** @type {RTCTransportStats | null} */ (null);
  report.forEach((entry) => {
    if (entry.type === 'inbound-rtp' && entry.kind === 'video') video = entry;
    else if (entry.type === 'inbound-rtp' && entry.kind === 'audio') audio = entry;
    else if (entry.type === 'transport') transport = entry;
  });
  if (transport?.selectedCandidatePairId) pair = report.get(transport.selectedCandidatePairId) ?? null;
  if (!pair) {
    report.forEach((entry) => {
      if (entry.type === 'candidate-pair' && entry.nominated && entry.state === 'succeeded') pair = entry;
    });
  }
  const codec = video?.codecId ? report.get(video.codecId) : null;
  /** @type {PageStats} */
  const stats = {
    at: now,
    framesDecoded: video?.framesDecoded ?? 0,
    width: video?.frameWidth ?? 0,
    height: video?.frameHeight ?? 0,
    codec: codec?.mimeType?.replace(/^video\//, '') ?? null,
    bytes: (video?.bytesReceived ?? 0) + (audio?.bytesReceived ?? 0),
    packetsLost: Math.max(0, (video?.packetsLost ?? 0) + (audio?.packetsLost ?? 0)),
    audioPackets: audio?.packetsReceived ?? 0,
    freezes: video?.freezeCount ?? 0,
    jitterBufferDelay: video?.jitterBufferDelay ?? 0,
    jitterBufferEmitted: video?.jitterBufferEmittedCount ?? 0,
    totalDecodeTime: video?.totalDecodeTime ?? 0,
    rttMs: typeof pair?.currentRoundTripTime === 'number' ? pair.currentRoundTripTime * 1000 : null,
    fps: video?.framesPerSecond ?? null,
    kbps: null,
    jitterBufferMs: null,
    decodeMs: null,
    latencyMs: null,
  };
  if (previous) {
    const seconds = (now - previous.at) / 1000;
    if (seconds > 0) {
      stats.kbps = Math.max(0, ((stats.bytes - previous.bytes) * 8) / seconds / 1000);
      if (stats.fps === null) stats.fps = (stats.framesDecoded - previous.framesDecoded) / seconds;
    }
    const emitted = stats.jitterBufferEmitted - previous.jitterBufferEmitted;
    if (emitted > 0) stats.jitterBufferMs = ((stats.jitterBufferDelay - previous.jitterBufferDelay) / emitted) * 1000;
    const decoded = stats.framesDecoded - previous.framesDecoded;
    if (decoded > 0) stats.decodeMs = ((stats.totalDecodeTime - previous.totalDecodeTime) / decoded) * 1000;
  }
  if (stats.jitterBufferMs !== null) {
    stats.latencyMs = stats.jitterBufferMs + (stats.decodeMs ?? 0) + (stats.rttMs === null ? 0 : stats.rttMs / 2);
  }
  return stats;
}
