// The watch page: a grid of camera tiles (snapshots, or live video) and a large player, each live
// view a LiveSession (live-session.js). Plain modern JavaScript with no framework and no
// inline script, so the server's strict CSP holds. Text from the server only ever goes through
// textContent, never innerHTML.
//
// Why one module of about 800 lines: the tiles, the large player and the doorbell banner share
// page-wide state (the tile map, the open player, the stored settings) that lives in this module's
// scope; the parts with no such state are modules of their own (account.js, ptz.js, events.js, and
// live-session.js, the /signal client and its RTCPeerConnection).

// Sign-in state, sign-out and the administrators' share-link dialog (does nothing without access control).
import './account.js';
import { subscribe } from './events.js';
import { PtzControls } from './ptz.js';
import { LiveSession, summarizeStats, useIceServers } from './live-session.js';

const LIST_REFRESH_MS = 5000;
const SNAPSHOT_REFRESH_MS = 5000;
const SNAPSHOT_WIDTH = 640;
/** Live tiles stop when the page has been in the background this long (battery, data). */
const HIDDEN_STOP_MS = 30000;

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
 * One of the page's fixed elements (index.html): always there, so a missing one is a bug in the page.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @returns {T}
 */
const byId = (id) => /** @type {T} */ (document.getElementById(id));


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
 * @property {import('./live-session.js').SessionStatus | null} sessionStatus
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
  talk: /** @type {HTMLButtonElement} */ (byId('player-talk')),
  talkState: byId('player-talk-state'),
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
    onTalk: showPlayerTalk,
  });
  showPlayerTalk({ available: false, holder: null, you: false });
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

/** @param {import('./live-session.js').SessionStatus} status */
function showPlayerStatus({ phase, text, tone }) {
  setBadge(player.state, phase === 'live' ? 'Live' : shortPhase({ phase }), tone);
  player.message.textContent = text;
  player.message.hidden = phase === 'live';
}

/** @param {import('./live-session.js').ServerInfo} info */
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

/**
 * Press-to-talk: shown only to viewers the server offered a talk section (the talk right, and a
 * camera with a speaker); says who talks when someone else does.
 * @param {import('./live-session.js').TalkStatus} talk
 */
function showPlayerTalk(talk) {
  player.talk.hidden = !talk.available;
  const busy = talk.holder !== null && !talk.you;
  player.talk.disabled = busy;
  player.talk.setAttribute('aria-pressed', String(talk.you));
  player.talk.textContent = talk.you ? 'Talking…' : 'Hold to talk';
  const text = talk.message ?? (busy ? `${talk.holder} is talking` : '');
  player.talkState.textContent = text;
  player.talkState.hidden = text === '' || !talk.available && !talk.message;
}

/** Starts talking while the button is held; a refusal (no microphone, no HTTPS) is shown beside it. */
function pressTalk() {
  const session = player.session;
  if (!session || player.talk.disabled) return;
  session.startTalking().catch((error) => {
    player.talkState.textContent = error?.message ?? String(error);
    player.talkState.hidden = false;
  });
}

function releaseTalk() {
  player.session?.stopTalking();
}

/** @param {import('./live-session.js').PageStats} stats */
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
  // Hold to talk: pointer (mouse, touch, pen) and keyboard (Space or Enter held on the button).
  player.talk.addEventListener('pointerdown', (event) => {
    player.talk.setPointerCapture(event.pointerId);
    pressTalk();
  });
  for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) player.talk.addEventListener(type, releaseTalk);
  player.talk.addEventListener('keydown', (event) => {
    if ((event.key === ' ' || event.key === 'Enter') && !event.repeat) {
      event.preventDefault();
      pressTalk();
    }
  });
  player.talk.addEventListener('keyup', (event) => {
    if (event.key === ' ' || event.key === 'Enter') releaseTalk();
  });
  player.talk.addEventListener('contextmenu', (event) => event.preventDefault());
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
    if (Array.isArray(config.iceServers)) useIceServers(config.iceServers);
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
