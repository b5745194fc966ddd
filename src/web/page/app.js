// The watch page: a grid of camera tiles (snapshots, or live video), a large player, and the client
// side of the /signal protocol (docs/design.md). Plain modern JavaScript with no framework and no
// inline script, so the server's strict CSP holds. Text from the server only ever goes through
// textContent, never innerHTML.
//
// Why one module of about 1,300 lines: the tiles, the large player, the doorbell banner and the
// live sessions share page-wide state (the tile map, the open player, the stored settings) that
// lives in this module's scope; the parts with no such state are already modules of their own
// (account.js, ptz.js). LiveSession (the /signal client and its RTCPeerConnection) is the next to
// move out, once it takes its settings as arguments instead of reading this module's constants.

// Sign-in state, sign-out and the administrators' share-link dialog (does nothing without access control).
import './account.js';
import { subscribe } from './events.js';
import { PtzControls } from './ptz.js';

const LIST_REFRESH_MS = 5000;
const SNAPSHOT_REFRESH_MS = 5000;
const SNAPSHOT_WIDTH = 640;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const TOO_MANY_VIEWERS_RETRY_MS = 30000;
/** No new frame for this long while the camera is live means the path is broken: reconnect. */
const STALL_MS = 8000;
/** A connection that has shown no frame after this long is retried from scratch. */
const FIRST_FRAME_DEADLINE_MS = 20000;
/** Backoff starts again from 1 s only after a connection has stayed live this long (no hammering). */
const STABLE_MS = 10000;
/** Live tiles stop when the page has been in the background this long (battery, data). */
const HIDDEN_STOP_MS = 30000;
/** Close code the server uses when access was revoked: retrying cannot help. */
const CLOSE_ACCESS_REVOKED = 4001;

/**
 * A camera as /api/cameras lists it (src/web/camera-status.ts); null where the server does not know.
 * @typedef {object} Camera
 * @property {string} id
 * @property {string} name
 * @property {string} state
 * @property {string | null} lastError
 * @property {string | null} codec
 * @property {number | null} width
 * @property {number | null} height
 * @property {number | null} fps
 * @property {number | null} bitrateKbps
 * @property {string | null} audio
 * @property {number} viewers
 * @property {import('./ptz.js').PtzView} [ptz] only for viewers who may move this camera
 */

/**
 * What a LiveSession reports to whoever shows it.
 * @typedef {{ phase: string, text: string, tone: string }} SessionStatus
 * @typedef {object} SessionHandlers
 * @property {(status: SessionStatus) => void} [onStatus]
 * @property {(info: ServerInfo) => void} [onInfo]
 * @property {(stats: PageStats) => void} [onStats]
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
 * One of the page's fixed elements (index.html): always there, so a missing one is a bug in the page.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @returns {T}
 */
const byId = (id) => /** @type {T} */ (document.getElementById(id));

/**
 * From /api/config: STUN/TURN servers for viewers outside the LAN (none on a LAN).
 * @type {RTCIceServer[]}
 */
let iceServers = [];

/** @param {string} key */
function readSetting(key) {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null; // storage can be disabled (private browsing); settings then last one visit
  }
}

/**
 * @param {string} key
 * @param {string} value
 */
function writeSetting(key, value) {
  try {
    window.localStorage.setItem(key, value);
  } catch {
    // ignored, see readSetting
  }
}

/* ------------------------------------------------------------------ words ---------------------- */

/**
 * Camera states from the API and the signalling `state` message, in words, with a badge tone.
 * @type {Record<string, [string, string]>}
 */
const STATE_WORDS = {
  // Idle: nobody is watching, so the camera is not being pulled; it starts on the first viewer.
  idle: ['Standby', ''],
  connecting: ['Connecting', 'warn'],
  live: ['Live', 'live'],
  retrying: ['Camera offline, retrying', 'bad'],
  offline: ['Camera offline, retrying', 'bad'],
  stopped: ['Stopped', 'bad'],
};

/**
 * @param {string} state
 * @returns {[string, string]}
 */
function stateWords(state) {
  return STATE_WORDS[state] ?? [String(state ?? 'Unknown'), ''];
}

/** @param {unknown} kbps */
function formatBitrate(kbps) {
  if (typeof kbps !== 'number' || !Number.isFinite(kbps)) return null;
  return kbps >= 1000 ? `${(kbps / 1000).toFixed(1)} Mbit/s` : `${Math.round(kbps)} kbit/s`;
}

/**
 * @param {number | null | undefined} width
 * @param {number | null | undefined} height
 */
function formatResolution(width, height) {
  // (null and undefined are not > 0: written out so the type checker sees it.)
  return width != null && height != null && width > 0 && height > 0 ? `${width}\u00d7${height}` : null;
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

/**
 * One line under a tile: resolution, frame rate, bitrate, codec, viewers; whatever is known.
 * @param {Camera} camera
 */
function describeCamera(camera) {
  const parts = [
    formatResolution(camera.width, camera.height),
    camera.fps != null && camera.fps > 0 ? `${Math.round(camera.fps)} fps` : null,
    formatBitrate(camera.bitrateKbps),
    camera.codec,
    camera.viewers > 0 ? `${camera.viewers} watching` : null,
  ].filter(Boolean);
  if (camera.state !== 'live' && camera.lastError) parts.push(camera.lastError);
  return parts.join(' \u00b7 ');
}

/**
 * @param {HTMLElement} element
 * @param {string} text
 * @param {string} [tone]
 */
function setBadge(element, text, tone) {
  element.textContent = text;
  if (tone) element.dataset.tone = tone;
  else delete element.dataset.tone;
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
class LiveSession {
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
        if (typeof message.sdp === 'string') await this.onOffer(message.sdp);
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

  /** @param {string} sdp */
  async onOffer(sdp) {
    // A second offer on a live peer is a renegotiation (the camera's tracks changed): answer it on
    // the same connection so the picture continues.
    if (!this.pc || this.pc.signalingState === 'closed') this.pc = this.createPeer();
    const pc = this.pc;
    await pc.setRemoteDescription({ type: 'offer', sdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    // Set by setLocalDescription just above.
    this.send({ type: 'answer', sdp: /** @type {RTCSessionDescription} */ (pc.localDescription).sdp });
    const queued = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const candidate of queued) await this.addCandidate(candidate);
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
function summarizeStats(report, previous, now) {
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

/* -------------------------------------------------------------------- tiles -------------------- */

const grid = byId('grid');
const notice = byId('notice');
const tileTemplate = /** @type {HTMLTemplateElement} */ (byId('tile-template'));
const liveTilesButton = byId('live-tiles');

/** @type {Map<string, Tile>} */
const tiles = new Map();
/** @type {Camera[]} */
let cameras = [];
let liveTiles = readSetting('liveTiles') === '1';
let hiddenTimer = 0;
let pageHidden = document.hidden;
let listTimer = 0;

const visibility = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    // Every observed element is a tile, stamped with its camera id by createTile.
    const tile = tiles.get(/** @type {string} */ (/** @type {HTMLElement} */ (entry.target).dataset.camera));
    if (!tile) continue;
    tile.visible = entry.isIntersecting;
    if (tile.visible && !liveTiles) refreshSnapshot(tile);
  }
});

/** @param {string} [text] */
function showNotice(text) {
  notice.textContent = text ?? '';
  notice.hidden = !text;
}

/**
 * One camera's tile in the grid: its elements (from the template in index.html) and its state.
 * @typedef {object} Tile
 * @property {string} id
 * @property {HTMLElement} element
 * @property {HTMLButtonElement} button
 * @property {HTMLImageElement} img
 * @property {HTMLVideoElement} video
 * @property {HTMLElement} placeholder
 * @property {HTMLElement} name
 * @property {HTMLElement} badge
 * @property {HTMLElement} meta
 * @property {HTMLElement} age
 * @property {Camera} camera
 * @property {LiveSession | null} session
 * @property {SessionStatus | null} sessionStatus
 * @property {string | null} snapshotUrl
 * @property {boolean} snapshotBusy
 * @property {number | null} savedAt set while the tile shows the saved picture: when it was taken, in this browser's clock
 * @property {boolean} savedAsked
 * @property {boolean} visible
 * @property {PtzControls | null} ptz pan/tilt/zoom controls, once the list offers them
 */

/**
 * A part of a tile: the template always has it.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {HTMLElement} element
 * @param {string} selector
 * @returns {T}
 */
const tilePart = (element, selector) => /** @type {T} */ (element.querySelector(selector));

/**
 * @returns {Tile}
 * @param {Camera} camera
 */
function createTile(camera) {
  const element = /** @type {HTMLElement} */ (/** @type {Element} */ (tileTemplate.content.firstElementChild).cloneNode(true));
  element.dataset.camera = camera.id;
  /** @type {Tile} */
  const tile = {
    id: camera.id,
    element,
    button: tilePart(element, '.tile-open'),
    img: tilePart(element, '.tile-snapshot'),
    video: tilePart(element, '.tile-video'),
    placeholder: tilePart(element, '.placeholder'),
    name: tilePart(element, '.tile-name'),
    badge: tilePart(element, '.tile-state'),
    meta: tilePart(element, '.tile-meta'),
    age: tilePart(element, '.tile-age'),
    camera,
    session: null,
    sessionStatus: null,
    snapshotUrl: null,
    snapshotBusy: false,
    savedAt: null,
    savedAsked: false,
    visible: false,
    ptz: null,
  };
  tile.button.addEventListener('click', () => openPlayer(tile.id));
  visibility.observe(element);
  return tile;
}

/**
 * @param {Tile} tile
 * @param {Camera} camera
 */
function updateTile(tile, camera) {
  tile.camera = camera;
  tile.name.textContent = camera.name;
  tile.button.setAttribute('aria-label', `Open ${camera.name} in the large player`);
  if (tile.session && tile.sessionStatus) {
    setBadge(tile.badge, tile.sessionStatus.phase === 'live' ? 'Live' : shortPhase(tile.sessionStatus), tile.sessionStatus.tone);
  } else {
    const [text, tone] = stateWords(camera.state);
    setBadge(tile.badge, text, tone);
  }
  tile.element.dataset.state = camera.state;
  tile.meta.textContent = describeCamera(camera);
  if (camera.ptz && !tile.ptz) tile.ptz = new PtzControls(tile.element, tile.id);
  tile.ptz?.update(camera.name, camera.ptz);
}

/** @param {{ phase: string }} status */
function shortPhase(status) {
  if (status.phase === 'offline') return 'Camera offline, retrying';
  if (status.phase === 'reconnecting') return 'Reconnecting';
  if (status.phase === 'waiting') return 'Too many viewers';
  if (status.phase === 'failed') return 'Cannot play';
  return 'Connecting';
}

/** @param {Tile} tile */
function removeTile(tile) {
  stopTileLive(tile);
  tile.ptz?.remove();
  visibility.unobserve(tile.element);
  if (tile.snapshotUrl) URL.revokeObjectURL(tile.snapshotUrl);
  tile.element.remove();
  tiles.delete(tile.id);
}

/** @param {Camera[]} list */
function renderCameras(list) {
  cameras = list;
  grid.setAttribute('aria-busy', 'false');
  const seen = new Set();
  for (const camera of list) {
    seen.add(camera.id);
    let tile = tiles.get(camera.id);
    if (!tile) {
      tile = createTile(camera);
      tiles.set(camera.id, tile);
    }
    updateTile(tile, camera);
    grid.append(tile.element); // append moves: keeps the server's order
    if (liveTiles && !pageHidden && !tile.session && player.cameraId !== camera.id) startTileLive(tile);
  }
  for (const tile of [...tiles.values()]) if (!seen.has(tile.id)) removeTile(tile);
  keepRingingTileFirst();
  if (list.length === 0) showNotice('No cameras are configured yet.');
  else if (notice.dataset.kind !== 'error') showNotice('');
  if (player.cameraId) {
    const camera = list.find((c) => c.id === player.cameraId);
    if (camera) byId('player-title').textContent = camera.name;
  }
}

/**
 * "just now", "40 s ago", "5 min ago", "2 h ago", "3 days ago".
 * @param {number} ms
 */
function formatAge(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 10) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} days ago`;
}

/**
 * @param {Tile} tile
 * @param {Blob} blob
 * @param {string} alt
 */
function showPicture(tile, blob, alt) {
  const url = URL.createObjectURL(blob);
  const previous = tile.snapshotUrl;
  tile.img.addEventListener('load', () => previous && URL.revokeObjectURL(previous), { once: true });
  tile.img.src = url;
  tile.img.alt = alt;
  tile.snapshotUrl = url;
  tile.img.hidden = Boolean(tile.session);
  tile.placeholder.hidden = true;
}

/** @param {Tile} tile */
function updateAgeLabel(tile) {
  tile.age.hidden = tile.savedAt === null || Boolean(tile.session);
  if (tile.savedAt !== null) tile.age.textContent = `Saved picture, ${formatAge(Date.now() - tile.savedAt)}`;
}

/**
 * The last good picture the server kept (across restarts too), answered at once: shown, with its
 * age, until the live snapshot arrives, so an idle camera's tile is not empty while it wakes up.
 * @param {Tile} tile
 */
async function showSavedSnapshot(tile) {
  try {
    const response = await fetch(`/api/cameras/${encodeURIComponent(tile.id)}/last-snapshot.jpg`, {
      cache: 'no-store',
      credentials: 'same-origin',
    });
    if (response.status !== 200) return;
    const age = Number(response.headers.get('X-Snapshot-Age-Seconds'));
    const blob = await response.blob();
    // A live picture that came first wins.
    if (!tiles.has(tile.id) || blob.size === 0 || tile.snapshotUrl) return;
    tile.savedAt = Date.now() - (Number.isFinite(age) && age >= 0 ? age * 1000 : 0);
    showPicture(tile, blob, `Saved picture from ${tile.camera.name}, ${formatAge(Date.now() - tile.savedAt)}`);
    updateAgeLabel(tile);
  } catch {
    // Only a head start: the live snapshot follows anyway.
  }
}

/** @param {Tile} tile */
async function refreshSnapshot(tile) {
  if (tile.savedAt !== null) updateAgeLabel(tile);
  if (tile.snapshotBusy || tile.session || pageHidden) return;
  if (!tile.savedAsked && !tile.snapshotUrl) {
    tile.savedAsked = true;
    showSavedSnapshot(tile);
  }
  tile.snapshotBusy = true;
  try {
    const response = await fetch(
      `/api/cameras/${encodeURIComponent(tile.id)}/snapshot.jpg?width=${SNAPSHOT_WIDTH}`,
      { cache: 'no-store', credentials: 'same-origin' },
    );
    // 204: no picture yet; keep the placeholder (or the previous picture).
    if (response.status !== 200) return;
    const blob = await response.blob();
    if (!tiles.has(tile.id) || blob.size === 0) return;
    showPicture(tile, blob, `Latest picture from ${tile.camera.name}`);
    tile.savedAt = null;
    updateAgeLabel(tile);
  } catch {
    // The list refresh reports connectivity problems; a missed snapshot is not worth a message.
  } finally {
    tile.snapshotBusy = false;
  }
}

function refreshVisibleSnapshots() {
  if (liveTiles || pageHidden) return;
  for (const tile of tiles.values()) if (tile.visible) refreshSnapshot(tile);
}

/** @param {Tile} tile */
function startTileLive(tile) {
  if (tile.session) return;
  tile.video.hidden = false;
  tile.img.hidden = true;
  tile.placeholder.hidden = true;
  tile.age.hidden = true;
  tile.session = new LiveSession(tile.id, tile.video, {
    onStatus(status) {
      tile.sessionStatus = status;
      updateTile(tile, tile.camera);
    },
  });
  tile.session.start();
}

/** @param {Tile} tile */
function stopTileLive(tile) {
  if (!tile.session) return;
  tile.session.stop();
  tile.session = null;
  tile.sessionStatus = null;
  tile.video.hidden = true;
  tile.img.hidden = !tile.snapshotUrl;
  tile.placeholder.hidden = Boolean(tile.snapshotUrl);
  updateAgeLabel(tile);
  updateTile(tile, tile.camera);
}

/** @param {boolean} on */
function setLiveTiles(on) {
  liveTiles = on;
  writeSetting('liveTiles', on ? '1' : '0');
  liveTilesButton.setAttribute('aria-pressed', String(on));
  for (const tile of tiles.values()) {
    if (on && !pageHidden && player.cameraId !== tile.id) startTileLive(tile);
    else stopTileLive(tile);
  }
  if (!on) refreshVisibleSnapshots();
}

async function refreshList() {
  clearTimeout(listTimer);
  try {
    const response = await fetch('/api/cameras', {
      cache: 'no-store',
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
    });
    if (response.status === 401) {
      notice.dataset.kind = 'error';
      showNotice('Your session has ended. Reload the page to sign in again.');
    } else if (!response.ok) {
      notice.dataset.kind = 'error';
      showNotice(`The server answered ${response.status}. Retrying.`);
    } else {
      delete notice.dataset.kind;
      renderCameras(await response.json());
    }
  } catch {
    notice.dataset.kind = 'error';
    showNotice('Cannot reach the server. Retrying.');
  } finally {
    listTimer = setTimeout(refreshList, LIST_REFRESH_MS);
  }
}

/* ------------------------------------------------------------------- player -------------------- */

const player = {
  dialog: /** @type {HTMLDialogElement} */ (byId('player')),
  stage: byId('player-stage'),
  /** webkitEnterFullscreen: iPhone Safari's only way to fullscreen; absent elsewhere. */
  video: /** @type {HTMLVideoElement & { webkitEnterFullscreen?: () => void }} */ (byId('player-video')),
  title: byId('player-title'),
  state: byId('player-state'),
  message: byId('player-message'),
  info: byId('player-info'),
  stats: byId('player-stats'),
  mute: /** @type {HTMLButtonElement} */ (byId('player-mute')),
  fullscreen: byId('player-fullscreen'),
  pip: byId('player-pip'),
  statsToggle: byId('player-stats-toggle'),
  close: byId('player-close'),
  cameraId: /** @type {string | null} */ (null),
  session: /** @type {LiveSession | null} */ (null),
  hasAudio: true,
};

/** @param {string} cameraId */
function openPlayer(cameraId) {
  const camera = cameras.find((c) => c.id === cameraId);
  if (!camera) return;
  if (player.session) stopPlayerSession();
  player.cameraId = cameraId;
  player.title.textContent = camera.name;
  player.info.textContent = describeCamera(camera);
  player.message.hidden = true;
  player.stats.replaceChildren();
  setMuted(true); // autoplay rules: sound only after a tap
  setAudioAvailable(camera.audio !== null);
  // One viewer per camera per page: the tile's own live view pauses while the player shows it.
  const tile = tiles.get(cameraId);
  if (tile) stopTileLive(tile);
  const session = new LiveSession(cameraId, player.video, {
    onStatus: showPlayerStatus,
    onInfo: showPlayerInfo,
    onStats: showPlayerStats,
  });
  player.session = session;
  session.start();
  if (!player.dialog.open) player.dialog.showModal();
  history.replaceState(null, '', `#camera=${encodeURIComponent(cameraId)}`);
}

function stopPlayerSession() {
  player.session?.stop();
  player.session = null;
  const tile = player.cameraId ? tiles.get(player.cameraId) : null;
  player.cameraId = null;
  if (tile && liveTiles && !pageHidden) startTileLive(tile);
}

function onPlayerClosed() {
  history.replaceState(null, '', window.location.pathname + window.location.search);
  // Picture-in-picture outlives the dialog: keep the stream until the little window closes.
  if (document.pictureInPictureElement === player.video) return;
  stopPlayerSession();
}

/** @param {SessionStatus} status */
function showPlayerStatus({ phase, text, tone }) {
  setBadge(player.state, phase === 'live' ? 'Live' : shortPhase({ phase }), tone);
  player.message.textContent = text;
  player.message.hidden = phase === 'live';
}

/** @param {ServerInfo} info */
function showPlayerInfo(info) {
  const parts = [
    formatResolution(info.width, info.height),
    typeof info.codec === 'string' ? info.codec : null,
    info.audio ? `audio ${info.audio}` : 'no audio',
    typeof info.message === 'string' ? info.message : null,
  ].filter(Boolean);
  player.info.textContent = parts.join(' \u00b7 ');
  setAudioAvailable(Boolean(info.audio));
}

/** @param {PageStats} stats */
function showPlayerStats(stats) {
  if (player.stats.hidden) return;
  const rows = [
    ['Resolution', formatResolution(stats.width, stats.height) ?? '\u2013'],
    ['Frame rate', stats.fps === null ? '\u2013' : `${stats.fps.toFixed(1)} fps`],
    ['Bitrate', formatBitrate(stats.kbps) ?? '\u2013'],
    ['Latency (est.)', stats.latencyMs === null ? '\u2013' : `${Math.round(stats.latencyMs)} ms`],
    ['Jitter buffer', stats.jitterBufferMs === null ? '\u2013' : `${Math.round(stats.jitterBufferMs)} ms`],
    ['Round trip', stats.rttMs === null ? '\u2013' : `${Math.round(stats.rttMs)} ms`],
    ['Packets lost', String(stats.packetsLost)],
    ['Freezes', String(stats.freezes)],
    ['Codec', stats.codec ?? '\u2013'],
  ];
  const children = [];
  for (const [label, value] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.textContent = value;
    children.push(dt, dd);
  }
  player.stats.replaceChildren(...children);
}

/** @param {boolean} muted */
function setMuted(muted) {
  player.video.muted = muted;
  player.mute.setAttribute('aria-pressed', String(!muted));
  player.mute.textContent = muted ? 'Unmute' : 'Mute';
  player.mute.setAttribute('aria-label', muted ? 'Unmute' : 'Mute');
}

/** @param {boolean} available */
function setAudioAvailable(available) {
  player.hasAudio = available;
  player.mute.disabled = !available;
  if (!available) {
    setMuted(true);
    player.mute.textContent = 'No audio';
    player.mute.setAttribute('aria-label', 'This camera has no audio');
  }
}

/** @param {boolean} visible */
function setStatsVisible(visible) {
  player.stats.hidden = !visible;
  player.statsToggle.setAttribute('aria-pressed', String(visible));
  player.statsToggle.setAttribute('aria-label', visible ? 'Hide statistics' : 'Show statistics');
  writeSetting('stats', visible ? '1' : '0');
}

function wirePlayer() {
  player.close.addEventListener('click', () => player.dialog.close());
  player.dialog.addEventListener('close', onPlayerClosed);
  player.mute.addEventListener('click', () => {
    setMuted(!player.video.muted);
    player.video.play().catch(() => undefined);
  });
  player.statsToggle.addEventListener('click', () => setStatsVisible(player.stats.hidden));
  setStatsVisible(readSetting('stats') === '1');

  const canFullscreen = Boolean(player.stage.requestFullscreen || player.video.webkitEnterFullscreen);
  player.fullscreen.hidden = !canFullscreen;
  player.fullscreen.addEventListener('click', () => {
    if (document.fullscreenElement) {
      document.exitFullscreen().catch(() => undefined);
    } else if (player.stage.requestFullscreen) {
      player.stage.requestFullscreen().catch(() => undefined);
    } else {
      // iPhone Safari: only the video element can go fullscreen (the button is hidden where neither API exists).
      player.video.webkitEnterFullscreen?.();
    }
  });
  document.addEventListener('fullscreenchange', () => {
    const on = document.fullscreenElement === player.stage;
    player.fullscreen.textContent = on ? 'Exit fullscreen' : 'Fullscreen';
    player.fullscreen.setAttribute('aria-label', on ? 'Exit fullscreen' : 'Fullscreen');
  });

  player.pip.hidden = !document.pictureInPictureEnabled;
  player.pip.addEventListener('click', () => {
    if (document.pictureInPictureElement) document.exitPictureInPicture().catch(() => undefined);
    else player.video.requestPictureInPicture().catch(() => undefined);
  });
  player.video.addEventListener('leavepictureinpicture', () => {
    if (!player.dialog.open) stopPlayerSession();
  });
}

/* --------------------------------------------------------- doorbell alerts -------------------- */

// Opt-in per browser (localStorage): a viewer who turned alerts on gets the server's doorbell
// events over GET /api/events (server-sent events, signed-in viewers only, only the cameras they
// may watch; the page's one stream, events.js, shared with the PTZ controls), and sees a banner with
// the ringing camera's tile brought to the front and played live.
const doorbellButton = byId('doorbell-alerts');
const doorbellBanner = byId('doorbell-banner');
const BANNER_MS = 60_000;
let doorbellAlerts = readSetting('doorbellAlerts') === '1';
/** @type {(() => void) | null} ends the doorbell subscription */
let doorbellEvents = null;
let bannerTimer = 0;

/** @param {boolean} on */
function setDoorbellAlerts(on) {
  doorbellAlerts = on;
  writeSetting('doorbellAlerts', on ? '1' : '0');
  doorbellButton.setAttribute('aria-pressed', String(on));
  if (on && !doorbellEvents) {
    doorbellEvents = subscribe('doorbell', onDoorbellEvent);
  } else if (!on && doorbellEvents) {
    doorbellEvents();
    doorbellEvents = null;
    hideDoorbellBanner();
  }
}

/** @param {Record<string, unknown>} data */
function onDoorbellEvent({ camera, name }) {
  if (typeof camera !== 'string') return;
  showDoorbell(camera, typeof name === 'string' ? name : camera);
}

/**
 * @param {string} cameraId
 * @param {string} name
 */
function showDoorbell(cameraId, name) {
  const previous = doorbellBanner.dataset.camera;
  if (previous && previous !== cameraId) tiles.get(previous)?.element.classList.remove('ringing');
  byId('doorbell-text').textContent = `Someone is at the door: ${name}`;
  doorbellBanner.dataset.camera = cameraId;
  doorbellBanner.hidden = false;
  const tile = tiles.get(cameraId);
  if (tile) {
    tile.element.classList.add('ringing');
    keepRingingTileFirst();
    if (!pageHidden && player.cameraId !== cameraId) startTileLive(tile);
    tile.element.scrollIntoView({ block: 'nearest' });
  }
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(hideDoorbellBanner, BANNER_MS);
}

/** The ringing camera's tile stays first, also when the list is refreshed (which keeps the server's order). */
function keepRingingTileFirst() {
  const id = doorbellBanner.hidden ? undefined : doorbellBanner.dataset.camera;
  const tile = id ? tiles.get(id) : undefined;
  if (tile) grid.prepend(tile.element);
}

function hideDoorbellBanner() {
  clearTimeout(bannerTimer);
  const id = doorbellBanner.dataset.camera;
  doorbellBanner.hidden = true;
  delete doorbellBanner.dataset.camera;
  const tile = id ? tiles.get(id) : undefined;
  if (!tile) return;
  tile.element.classList.remove('ringing');
  if (!liveTiles) stopTileLive(tile);
}

function wireDoorbell() {
  doorbellButton.addEventListener('click', () => setDoorbellAlerts(!doorbellAlerts));
  byId('doorbell-open').addEventListener('click', () => {
    const id = doorbellBanner.dataset.camera;
    hideDoorbellBanner();
    if (id) openPlayer(id);
  });
  byId('doorbell-dismiss').addEventListener('click', hideDoorbellBanner);
  setDoorbellAlerts(doorbellAlerts);
}

/* -------------------------------------------------------------------- start -------------------- */

function onVisibilityChange() {
  pageHidden = document.hidden;
  clearTimeout(hiddenTimer);
  if (pageHidden) {
    hiddenTimer = setTimeout(() => {
      for (const tile of tiles.values()) stopTileLive(tile);
    }, HIDDEN_STOP_MS);
    return;
  }
  refreshList();
  if (liveTiles) setLiveTiles(true);
  else refreshVisibleSnapshots();
}

function cameraFromHash() {
  const match = /^#camera=([^&]+)$/.exec(window.location.hash);
  if (!match) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return null;
  }
}

async function loadConfig() {
  try {
    const response = await fetch('/api/config', { cache: 'no-store', credentials: 'same-origin' });
    if (!response.ok) return;
    const config = await response.json();
    if (Array.isArray(config.iceServers)) iceServers = config.iceServers;
  } catch {
    // Without it the page still works on the LAN; refreshList reports an unreachable server.
  }
}

async function main() {
  liveTilesButton.setAttribute('aria-pressed', String(liveTiles));
  liveTilesButton.addEventListener('click', () => setLiveTiles(!liveTiles));
  wirePlayer();
  wireDoorbell();
  document.addEventListener('visibilitychange', onVisibilityChange);
  window.addEventListener('online', () => refreshList());
  await Promise.all([loadConfig(), refreshList()]);
  const wanted = cameraFromHash();
  if (wanted) openPlayer(wanted);
  setInterval(refreshVisibleSnapshots, SNAPSHOT_REFRESH_MS);
}

main();

// Exposed for tests and for the curious in the console; nothing in the page depends on it.
/** @type {Window & { watchPage?: object }} */ (window).watchPage = { tiles, player, openPlayer, setLiveTiles, setDoorbellAlerts, summarizeStats };
