// Pan/tilt/zoom on a camera tile (issue 17), for cameras the server lists with a `ptz` entry: it
// lists one only to viewers with the PTZ right, so the rest of the page never needs to know who may.
// A "Move" toggle lays a pad over the picture: drag (mouse or touch, pointer events) moves while held
// and stops on release, cancel or leave; the wheel zooms; arrow keys and +/- do the same while the pad
// has focus. Preset and Home buttons send the camera's own tokens. The page sends numbers in [-1, 1]
// and tokens, never addresses; the server holds the one-mover lease and the rate limit.
// While someone else holds the lease the pad is greyed and takes no input, and the panel says who
// (or "someone else"): the server's `ptz` events (the page's one event stream, events.js) say so the
// moment they take control and when it is free again; the camera list refresh backs them up.

import { subscribe } from './events.js';

/** How often a held move is repeated (the server stops the camera after 1 s without one). */
const KEEPALIVE_MS = 300;
/** A wheel turn zooms this long after its last notch. */
const WHEEL_MS = 400;
/** How long "someone else is moving this camera" stays after a refusal no event explained. */
const BUSY_MS = 4000;
/**
 * A camera list answer may have been made before the last live event it contradicts (the list is
 * refreshed every 5 s): for this long after a live event, the list's mover is not believed.
 */
const LIVE_TRUST_MS = 6000;

/**
 * The `ptz` entry of a camera in /api/cameras (src/web/ptz-types.ts `PtzView`).
 * @typedef {object} PtzView
 * @property {boolean} continuous
 * @property {boolean} zoom
 * @property {boolean} home
 * @property {Array<{ token: string, name: string }>} presets
 * @property {'you' | 'other' | null} mover
 * @property {boolean} moving
 */

/** @typedef {{ pan: number, tilt: number, zoom: number }} Vector */

/** @type {Promise<string | null> | null} */
let csrfToken = null;

/**
 * The session's CSRF token (null without access control, where none is needed). Kept for the page's
 * life only when /api/session answered: a failed ask (a server restart, a network blip) is asked
 * again next time instead of leaving every later command without a token until a reload.
 * @returns {Promise<string | null>}
 */
export function csrf() {
  if (csrfToken) return csrfToken;
  const asked = fetch('/api/session', { cache: 'no-store', credentials: 'same-origin', headers: { Accept: 'application/json' } })
    .then(async (response) => (response.ok ? /** @type {{ csrfToken?: string | null }} */ (await response.json()).csrfToken ?? null : undefined))
    .catch(() => undefined);
  const token = asked.then((value) => {
    if (value === undefined && csrfToken === token) csrfToken = null;
    return value ?? null;
  });
  csrfToken = token;
  return token;
}

/**
 * POSTs JSON with the session's CSRF token. A 403 whose code says the token was wrong (the session
 * was renewed, the server restarted) forgets the token and tries once more with a fresh one.
 * @param {string} url
 * @param {object} body
 * @returns {Promise<Response>}
 */
export async function postWithCsrf(url, body) {
  for (let attempt = 0; ; attempt++) {
    const token = await csrf();
    /** @type {Record<string, string>} */
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    if (token) headers['X-CSRF-Token'] = token;
    const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), credentials: 'same-origin', cache: 'no-store' });
    if (response.status !== 403 || attempt > 0 || !(await isCsrfRefusal(response))) return response;
    csrfToken = null;
  }
}

/** @param {Response} response */
async function isCsrfRefusal(response) {
  try {
    return /** @type {{ error?: string }} */ (await response.clone().json()).error === 'csrf';
  } catch {
    return false;
  }
}

/**
 * @param {number} value
 * @returns {number} in [-1, 1], in tenths (fewer distinct moves, fewer requests)
 */
function axis(value) {
  return Math.round(Math.max(-1, Math.min(1, value)) * 10) / 10;
}

/** @param {Vector} v */
function isZero(v) {
  return v.pan === 0 && v.tilt === 0 && v.zoom === 0;
}

/**
 * A new element with a class and text.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} className
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
function make(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The PTZ controls of one tile. */
export class PtzControls {
  /**
   * @param {HTMLElement} tileElement the tile's <li>; the controls go inside it, after its button
   * @param {string} cameraId
   */
  constructor(tileElement, cameraId) {
    this.cameraId = cameraId;
    this.name = cameraId;
    this.root = make('div', 'ptz');
    this.root.setAttribute('role', 'group');
    this.toggle = make('button', 'button ptz-toggle', 'Move');
    this.toggle.type = 'button';
    this.toggle.setAttribute('aria-pressed', 'false');
    this.pad = make('div', 'ptz-pad');
    this.pad.tabIndex = 0;
    this.pad.setAttribute('role', 'application');
    this.pad.hidden = true;
    this.busy = make('p', 'ptz-busy', 'Someone else is moving this camera');
    this.busy.setAttribute('role', 'status');
    this.busy.hidden = true;
    this.buttons = make('div', 'ptz-buttons');
    this.buttons.hidden = true;
    this.root.append(this.toggle, this.buttons, this.busy);
    tileElement.append(this.pad, this.root);
    /** @type {Vector} what the camera was last told */
    this.sent = { pan: 0, tilt: 0, zoom: 0 };
    /** @type {Vector} what the viewer holds now */
    this.held = { pan: 0, tilt: 0, zoom: 0 };
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.keepAlive = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.wheelTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.busyTimer = undefined;
    /** @type {{ id: number, x: number, y: number } | null} */
    this.drag = null;
    this.presetKey = '';
    /** When the last live `ptz` event for this camera came (performance.now()). */
    this.liveAt = Number.NEGATIVE_INFINITY;
    this.wire();
    this.unsubscribe = subscribe('ptz', ({ camera, mover, name }) => {
      if (camera !== this.cameraId) return;
      this.liveAt = performance.now();
      this.setMover(mover === 'other' ? 'other' : null, typeof name === 'string' ? name : null);
    });
  }

  /**
   * Shows or hides the controls as the camera list says.
   * @param {string} name the camera's display name
   * @param {PtzView | undefined} view
   */
  update(name, view) {
    this.name = name;
    this.root.hidden = !view;
    if (!view) {
      this.setOpen(false);
      return;
    }
    this.root.setAttribute('aria-label', `Pan, tilt and zoom: ${name}`);
    this.toggle.setAttribute('aria-label', `Move ${name}`);
    this.pad.setAttribute('aria-label', `Move ${name}: drag, or arrow keys; wheel or + and - to zoom`);
    if (performance.now() - this.liveAt > LIVE_TRUST_MS) this.setMover(view.mover === 'other' ? 'other' : null, null);
    const key = JSON.stringify([view.home, view.presets]);
    if (key !== this.presetKey) {
      this.presetKey = key;
      const buttons = [];
      if (view.home) buttons.push(this.commandButton('Home', `Send ${name} to its home position`, 'home', {}));
      for (const preset of view.presets) {
        buttons.push(this.commandButton(preset.name || preset.token, `Send ${name} to preset ${preset.name || preset.token}`, 'preset', { token: preset.token }));
      }
      this.buttons.replaceChildren(...buttons);
    }
  }

  /**
   * @param {string} text
   * @param {string} label
   * @param {'home' | 'preset'} action
   * @param {Record<string, string>} body
   */
  commandButton(text, label, action, body) {
    const button = make('button', 'button ptz-preset', text);
    button.type = 'button';
    button.setAttribute('aria-label', label);
    button.addEventListener('click', () => void this.post(action, body));
    return button;
  }

  /** @param {boolean} open */
  setOpen(open) {
    this.toggle.setAttribute('aria-pressed', String(open));
    this.pad.hidden = !open;
    this.buttons.hidden = !open;
    if (!open) this.release();
  }

  wire() {
    this.toggle.addEventListener('click', () => {
      const open = this.pad.hidden;
      this.setOpen(open);
      if (open) this.pad.focus();
    });
    const pad = this.pad;
    pad.addEventListener('pointerdown', (event) => {
      event.preventDefault();
      if (this.drag || this.isBusy()) return;
      pad.setPointerCapture(event.pointerId);
      this.drag = { id: event.pointerId, x: event.clientX, y: event.clientY };
    });
    pad.addEventListener('pointermove', (event) => {
      if (!this.drag || event.pointerId !== this.drag.id) return;
      const box = pad.getBoundingClientRect();
      // A joystick: how far from where the finger went down, against half the pad; up is tilt up.
      this.hold({
        pan: axis((event.clientX - this.drag.x) / Math.max(1, box.width / 2)),
        tilt: axis(-(event.clientY - this.drag.y) / Math.max(1, box.height / 2)),
        zoom: 0,
      });
    });
    /** @param {PointerEvent} event */
    const end = (event) => {
      if (!this.drag || event.pointerId !== this.drag.id) return;
      this.drag = null;
      this.release();
    };
    for (const type of /** @type {const} */ (['pointerup', 'pointercancel', 'lostpointercapture', 'pointerleave'])) pad.addEventListener(type, end);
    pad.addEventListener('wheel', (event) => {
      event.preventDefault();
      this.hold({ pan: 0, tilt: 0, zoom: event.deltaY < 0 ? 0.5 : -0.5 });
      clearTimeout(this.wheelTimer);
      this.wheelTimer = setTimeout(() => this.release(), WHEEL_MS);
    }, { passive: false });
    pad.addEventListener('keydown', (event) => {
      /** @type {Record<string, Vector>} */
      const keys = {
        ArrowLeft: { pan: -0.5, tilt: 0, zoom: 0 },
        ArrowRight: { pan: 0.5, tilt: 0, zoom: 0 },
        ArrowUp: { pan: 0, tilt: 0.5, zoom: 0 },
        ArrowDown: { pan: 0, tilt: -0.5, zoom: 0 },
        '+': { pan: 0, tilt: 0, zoom: 0.5 },
        '=': { pan: 0, tilt: 0, zoom: 0.5 },
        '-': { pan: 0, tilt: 0, zoom: -0.5 },
      };
      const vector = keys[event.key];
      if (event.key === 'Escape') this.setOpen(false);
      if (!vector) return;
      event.preventDefault();
      this.hold(vector);
    });
    pad.addEventListener('keyup', () => this.release());
    pad.addEventListener('blur', () => this.release());
  }

  /**
   * The viewer holds this move: sent now when it changed, repeated while held.
   * @param {Vector} vector
   */
  hold(vector) {
    if (this.isBusy()) return;
    this.held = vector;
    if (isZero(vector)) return;
    if (!this.keepAlive) {
      this.sendHeld();
      this.keepAlive = setInterval(() => this.sendHeld(), KEEPALIVE_MS);
    }
  }

  sendHeld() {
    const vector = this.held;
    if (isZero(vector)) return;
    // Sent every tick: the same move is a keep-alive the server does not rate-limit, a changed one
    // is at least KEEPALIVE_MS after the last (above the server's 250 ms between commands).
    this.sent = vector;
    void this.post('move', vector);
  }

  /** Lets go: no more keep-alives, and a Stop when anything was sent. */
  release() {
    clearInterval(this.keepAlive);
    this.keepAlive = undefined;
    clearTimeout(this.wheelTimer);
    this.held = { pan: 0, tilt: 0, zoom: 0 };
    if (!isZero(this.sent)) {
      this.sent = { pan: 0, tilt: 0, zoom: 0 };
      void this.post('stop', {});
    }
  }

  isBusy() {
    return this.root.dataset.busy === 'true';
  }

  /**
   * Who holds control as the server said it (a live event, or the camera list): while someone else
   * does, the panel names them (or says "someone else") and the pad is greyed and takes no input.
   * @param {'other' | null} mover null: nobody else (free, or this viewer)
   * @param {string | null} name
   */
  setMover(mover, name) {
    clearTimeout(this.busyTimer);
    this.busyTimer = undefined;
    if (mover !== 'other') {
      this.busy.hidden = true;
      delete this.root.dataset.busy;
      this.pad.removeAttribute('aria-disabled');
      return;
    }
    this.busy.textContent = name ? `${name} is moving this camera` : 'Someone else is moving this camera';
    this.busy.hidden = false;
    this.root.dataset.busy = 'true';
    this.pad.setAttribute('aria-disabled', 'true');
    this.drag = null;
    this.release();
  }

  /** A command was refused as busy with no event saying so (the stream is down): busy for a while. */
  showBusy() {
    if (this.isBusy()) return;
    this.setMover('other', null);
    this.busyTimer = setTimeout(() => this.setMover(null, null), BUSY_MS);
  }

  /**
   * @param {'move' | 'stop' | 'preset' | 'home'} action
   * @param {object} body
   */
  async post(action, body) {
    try {
      const response = await postWithCsrf(`/api/cameras/${encodeURIComponent(this.cameraId)}/ptz/${action}`, body);
      if (response.status === 409) {
        this.showBusy();
        this.release();
      }
      // 429 (a change too soon after the last command): the next keep-alive carries the move.
    } catch {
      // The list refresh reports a lost server; a missed move is stopped by the server's dead-man timer.
    }
  }

  /** The tile is going away. */
  remove() {
    this.release();
    this.unsubscribe();
    clearTimeout(this.busyTimer);
    this.root.remove();
    this.pad.remove();
  }
}
