// The WebRTC Cameras page inside the Homebridge UI. `homebridge` (plugin-ui-utils) is injected by
// the UI: requests go to our UI server, the plugin config is read and saved through the UI. Every
// text from a camera or the network goes in with textContent (a discovered camera names itself).
//
// Why one module of about 600 lines: its tabs (cameras, discovered, share links, viewers) share the
// loaded platform block, the tab loaders and the DOM helper h(), and the config is saved through one
// path (saveBlock) so a save always writes the whole platform block; qr.js, which shares none of
// that, is its own module.
import { qrSvg } from './qr.js';

const hb = window.homebridge;
const PLATFORM = 'WebRTCCameras';
const $ = (selector, root = document) => root.querySelector(selector);

/** A DOM element: h('li', { class: 'x', onclick }, 'text', child). Strings become text nodes. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) if (child !== undefined && child !== null && child !== false) el.append(child instanceof Node ? child : String(child));
  return el;
}

const state = { web: undefined, cameras: [], running: false, previews: new Map(), triggers: new Map() };

function errorText(error) {
  if (!error) return 'Unknown error';
  if (typeof error === 'string') return error;
  return error.message || error.error || JSON.stringify(error);
}

function banner(text) {
  const el = $('#wrc-banner');
  el.hidden = !text;
  el.textContent = text || '';
}

/* ------------------------------------------------------------------ plugin config (config.json) */

async function configBlock() {
  const blocks = await hb.getPluginConfig();
  const block = blocks[0] ?? { platform: PLATFORM };
  return { blocks, block };
}

async function saveBlock(blocks, block) {
  await hb.updatePluginConfig([block, ...blocks.slice(1)]);
  await hb.savePluginConfig();
  unsavedBlock = false;
}

/* ------------------------------------------------------------------------------------- tabs */

let formShown = false;
/** True while the platform block exists only in the UI's memory (a fresh install). */
let unsavedBlock = false;
/**
 * Settles once 'ready' has put a fresh install's block in the UI's memory. The settings form must
 * not open before: the UI redraws an open form when the page updates the config, and that redraw
 * dropped whatever the user had ticked meanwhile. Until then the button is disabled.
 */
let markBlockReady;
const blockReady = new Promise((resolve) => { markBlockReady = resolve; });
$('#wrc-form-toggle').addEventListener('click', async () => {
  await blockReady;
  formShown = !formShown;
  if (formShown) {
    // The UI (5.28) draws its settings form only for a block it has saved: save the new, empty
    // block first (the plugin then runs its demo camera until a camera is added).
    if (unsavedBlock) {
      unsavedBlock = false;
      await hb.savePluginConfig().catch((error) => hb.toast.error(errorText(error)));
    }
    hb.showSchemaForm();
  } else {
    hb.hideSchemaForm();
  }
  $('#wrc-form-toggle').textContent = formShown ? 'Hide all settings' : 'All settings';
});

const loaders = { cameras: loadCameras, discovered: () => loadDiscovered(), share: loadShare, viewers: loadViewers };
function showTab(name) {
  for (const tab of document.querySelectorAll('.wrc-tabs button')) tab.setAttribute('aria-selected', String(tab.dataset.tab === name));
  for (const panel of document.querySelectorAll('[data-panel]')) panel.hidden = panel.dataset.panel !== name;
  loaders[name]().catch((error) => hb.toast.error(errorText(error)));
}
for (const tab of document.querySelectorAll('.wrc-tabs button')) tab.addEventListener('click', () => showTab(tab.dataset.tab));

/* ------------------------------------------------------------------------------------ cameras */

const STATE_WORDS = { live: 'Live', idle: 'Idle', connecting: 'Connecting', retrying: 'Retrying', offline: 'Offline' };

function pageBase() {
  const web = state.web;
  return web ? `${web.tls ? 'https' : 'http'}://${location.hostname}:${web.port}` : '';
}

function facts(camera) {
  const list = [];
  if (camera.codec) list.push(camera.codec === 'H264' ? 'H.264' : camera.codec === 'H265' ? 'H.265' : camera.codec);
  if (camera.width && camera.height) list.push(`${camera.width}x${camera.height}`);
  if (camera.fps) list.push(`${Math.round(camera.fps)} fps`);
  list.push(camera.audio ? `audio ${camera.audio}` : 'no audio');
  list.push(`${camera.viewers} viewer${camera.viewers === 1 ? '' : 's'}`);
  list.push(`${camera.homekitStreams} HomeKit stream${camera.homekitStreams === 1 ? '' : 's'}`);
  if (camera.scaleOut) {
    list.push(camera.scaleOut.gateways > 0
      ? `served by ${camera.scaleOut.gateways} scale-out gateway${camera.scaleOut.gateways === 1 ? '' : 's'}: ${camera.scaleOut.viewers} viewer${camera.scaleOut.viewers === 1 ? '' : 's'} there`
      : 'no scale-out gateway up: viewers are served here');
  }
  for (const t of camera.transcoders ?? []) {
    const codec = t.codec === 'H264' ? 'H.264' : t.codec;
    list.push(t.stepsDown > 0
      ? `${codec} copy at ${t.picture}: ${t.stepsDown} step${t.stepsDown === 1 ? '' : 's'} down, the machine is too busy for more`
      : `${codec} copy at ${t.picture}`);
  }
  return h('ul', { class: 'wrc-facts' }, list.map((f) => h('li', { dataset: { fact: '' } }, f)));
}

const GATEWAY_WORDS = { up: 'up', down: 'down, trying again', connecting: 'connecting', stopped: 'stopped' };

/** The scale-out gateways, a line each (hidden without scale-out): up or down, viewers, cameras, and why a camera is not there. */
function showGateways(gateways) {
  const list = $('#wrc-gateways');
  list.hidden = !gateways?.length;
  list.replaceChildren(...(gateways ?? []).map((g) => {
    const problems = Object.entries(g.problems ?? {}).map(([id, why]) => `${id}: ${why}`);
    return h('li', { dataset: { gateway: g.url, state: g.state } },
      `Scale-out gateway ${g.url}: ${GATEWAY_WORDS[g.state] ?? g.state}; ${g.viewers} viewer${g.viewers === 1 ? '' : 's'}, ` +
        `${g.cameras} camera${g.cameras === 1 ? '' : 's'}${problems.length ? ` (not there: ${problems.join('; ')})` : ''}`);
  }));
}

async function loadCameras() {
  const status = await hb.request('/status');
  showGateways(status.gateways);
  state.running = status.running;
  state.web = status.web;
  state.cameras = status.cameras;
  // Web trigger paths (secrets), per camera and kind: shown on a card only when its button is pressed.
  const { triggers } = status.running ? await hb.request('/triggers').catch(() => ({ triggers: [] })) : { triggers: [] };
  state.triggers = new Map();
  for (const t of triggers) state.triggers.set(t.camera, [...(state.triggers.get(t.camera) ?? []), t]);
  banner(status.running ? '' : status.message);
  const list = $('#cameras-list');
  for (const preview of state.previews.values()) preview.stop();
  state.previews.clear();
  list.replaceChildren();
  if (status.running && status.cameras.length === 0) list.append(h('p', { class: 'wrc-muted' }, 'No camera yet: add one from the Discovered tab or by its RTSP address below.'));
  for (const camera of status.cameras) list.append(cameraCard(camera));
}

/** Every 5 s while the Cameras tab shows: states, reasons and figures change in place (the picture stays). */
async function refreshCameras() {
  if ($('[data-panel="cameras"]').hidden || document.hidden) return;
  const status = await hb.request('/status');
  banner(status.running ? '' : status.message);
  showGateways(status.gateways);
  const cards = new Map([...document.querySelectorAll('#cameras-list article[data-camera]')].map((el) => [el.dataset.camera, el]));
  const ids = status.cameras.map((c) => c.id);
  // A different set of cameras (a restart with a new config): draw the list again.
  if (ids.length !== cards.size || ids.some((id) => !cards.has(id))) return loadCameras();
  for (const camera of status.cameras) {
    const card = cards.get(camera.id);
    const badge = $('.wrc-state', card);
    badge.className = `wrc-state wrc-state-${camera.state}`;
    badge.dataset.state = camera.state;
    badge.textContent = STATE_WORDS[camera.state] ?? camera.state;
    $('.wrc-facts', card).replaceWith(facts(camera));
    const reason = $('.wrc-reason', card);
    const text = reasonText(camera);
    if (text && reason) reason.textContent = text;
    else if (text) $('.wrc-facts', card).before(h('p', { class: 'wrc-reason' }, text));
    else reason?.remove();
    const line = recordingLine(camera);
    const shown = $('.wrc-recording', card);
    if (shown && line) shown.replaceWith(line);
    else if (line) $('.wrc-facts', card).after(line);
    else shown?.remove();
  }
  state.cameras = status.cameras;
}
setInterval(() => { refreshCameras().catch(() => undefined); }, 5000);

/* ----------------------------------------------------------------- HomeKit Secure Video */

const RECORDING_WORDS = {
  off: 'HomeKit Secure Video offered: turn on recording for this camera in the Home app',
  buffering: 'HomeKit Secure Video on: waiting for motion',
  recording: 'HomeKit Secure Video: recording now',
  unavailable: 'HomeKit Secure Video unavailable',
};

/** One line on a camera card: what the hub has on, the pre-buffer held, recordings so far, and the newest problem by name. */
function recordingLine(camera) {
  const rec = camera.recording;
  if (!rec) return null;
  const parts = [RECORDING_WORDS[rec.state] ?? rec.state];
  if (rec.state === 'buffering' || rec.state === 'recording') parts.push(`${rec.bufferedSeconds.toFixed(1)} s of pre-buffer held (${(rec.bufferedBytes / 1e6).toFixed(1)} MB)`);
  if (rec.recordings > 0) parts.push(`${rec.recordings} recording${rec.recordings === 1 ? '' : 's'}, the last at ${new Date(rec.lastRecordingAt).toLocaleTimeString()}`);
  return h('div', { class: 'wrc-recording', dataset: { recording: rec.state } },
    h('span', {}, parts.join(' · ')),
    rec.problem ? h('p', { class: 'wrc-reason', dataset: { recordingProblem: '' } }, `Recording: ${rec.problem}.`) : null);
}

/** The camera's own entry in the saved list (found by its place, checked by name: a list edited since Homebridge started is not guessed at). */
function savedEntry(block, camera) {
  const cameras = Array.isArray(block.cameras) ? [...block.cameras] : [];
  const entry = cameras[camera.configIndex];
  if (!entry || String(entry.name ?? '').trim() !== camera.name) {
    throw new Error('The saved cameras differ from the running ones: restart Homebridge first, or use All settings.');
  }
  return { cameras, entry, kept: entry.recording && typeof entry.recording === 'object' ? entry.recording : {} };
}

/** What starts a clip, in words; '' leaves the plugin's default (the camera's ONVIF motion when it has ONVIF). */
const MOTION_SOURCES = [
  ['', 'Automatic: the camera\'s ONVIF motion when it has ONVIF'],
  ['onvif', 'The camera\'s ONVIF motion events'],
  ['http', 'Calls of the camera\'s motion web address'],
  ['video', 'Motion the plugin sees in the picture (for cameras without motion events)'],
  ['none', 'Nothing but doorbell presses'],
];

/** The two recording choices (seconds before the motion, what starts a clip), then Save turns recording on with them. */
async function showRecordingForm(camera, button, result) {
  const { block } = await configBlock();
  const { kept } = savedEntry(block, camera);
  const seconds = Number.isInteger(kept.prebufferSeconds) ? kept.prebufferSeconds : 4;
  const form = h('form', { class: 'wrc-recording-form', dataset: { recordingForm: camera.id } },
    h('label', {}, 'Seconds before the motion in each clip ',
      h('select', { name: 'prebufferSeconds' }, [4, 5, 6, 7, 8].map((n) => h('option', { value: String(n), selected: n === seconds }, String(n))))),
    h('label', {}, 'What starts a clip ',
      h('select', { name: 'motionSource' }, MOTION_SOURCES.map(([value, words]) => h('option', { value, selected: (kept.motionSource ?? '') === value }, words)))),
    h('button', { type: 'submit', class: 'wrc-btn wrc-btn-primary', dataset: { action: 'recording-save' } }, camera.recording ? 'Save' : 'Save and turn on'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const motionSource = form.elements.namedItem('motionSource').value;
    setRecording(camera, { enabled: true, prebufferSeconds: Number(form.elements.namedItem('prebufferSeconds').value), motionSource: motionSource || undefined }, button, result)
      .catch((error) => hb.toast.error(errorText(error), camera.name));
  });
  result.replaceChildren(form);
}

/**
 * Writes the camera's `recording` setting into its own config entry. Turning off keeps the entry's
 * other recording choices, so turning on again restores them; a choice left automatic is removed.
 */
async function setRecording(camera, choices, button, result) {
  button.disabled = true;
  try {
    const { blocks, block } = await configBlock();
    const { cameras, entry, kept } = savedEntry(block, camera);
    const recording = { ...kept, ...choices };
    if ('motionSource' in choices && choices.motionSource === undefined) delete recording.motionSource;
    cameras[camera.configIndex] = { ...entry, recording };
    await saveBlock(blocks, { ...block, cameras });
    result.replaceChildren(h('p', { dataset: { recordingSaved: String(choices.enabled) } }, choices.enabled
      ? 'Saved: HomeKit Secure Video is on for this camera. Restart Homebridge (or this plugin\'s child bridge), then turn on recording for it in the Home app (camera settings, Recording & notifications).'
      : 'Saved: HomeKit Secure Video is off for this camera. Restart Homebridge (or this plugin\'s child bridge) to apply.'));
  } finally {
    button.disabled = false;
  }
}

function reasonText(camera) {
  if (!camera.lastError) return '';
  return camera.state === 'retrying' && camera.retryInMs ? `${camera.lastError} (next try in ${Math.ceil(camera.retryInMs / 1000)} s)` : camera.lastError;
}

/** What each web trigger's button is called and says next to its address. */
const TRIGGER_WORDS = {
  doorbell: { button: 'Doorbell address', text: 'Let the doorbell POST to this address when pressed (keep it secret: it rings the doorbell): ' },
  motion: {
    button: 'Motion address',
    text: 'Let the camera POST (or GET) this address on motion (keep it secret: it sets off the motion sensor); the sensor turns off by itself after the motion reset time, or at once with ?state=off added: ',
  },
};

function cameraCard(camera) {
  const media = h('div', { class: 'wrc-media' }, h('span', { class: 'wrc-placeholder' }, 'Loading snapshot…'));
  const result = h('div', { class: 'wrc-result' });
  const previewButton = h('button', { type: 'button', class: 'wrc-btn wrc-btn-primary', dataset: { action: 'preview' } }, 'Live preview');
  const card = h('article', { class: 'wrc-card', dataset: { camera: camera.id } },
    h('h3', {}, camera.name, h('span', { class: `wrc-state wrc-state-${camera.state}`, dataset: { state: camera.state } }, STATE_WORDS[camera.state] ?? camera.state)),
    camera.source ? h('div', { class: 'wrc-muted' }, camera.source) : null,
    camera.lastError ? h('p', { class: 'wrc-reason' }, reasonText(camera)) : null,
    facts(camera),
    recordingLine(camera),
    media,
    h('div', { class: 'wrc-actions' },
      previewButton,
      h('button', { type: 'button', class: 'wrc-btn', dataset: { action: 'test' }, onclick: () => runTest({ kind: 'camera', id: camera.id }, result) }, 'Test'),
      h('a', { class: 'wrc-btn wrc-btn-quiet', href: `${pageBase()}/#camera=${encodeURIComponent(camera.id)}`, target: '_blank', rel: 'noopener' }, 'Watch page ↗'),
      ...(state.triggers.get(camera.id) ?? []).map((trigger) => {
        const words = TRIGGER_WORDS[trigger.kind];
        return words ? h('button', { type: 'button', class: 'wrc-btn wrc-btn-quiet', dataset: { action: trigger.kind }, onclick: () => {
          result.replaceChildren(h('p', {}, words.text, h('code', {}, `${pageBase()}${trigger.path}`)));
        } }, words.button) : null;
      }),
      // The demo camera has no entry to edit (configIndex -1). Turning recording on (or changing it)
      // asks its two choices first; turning it off is one press.
      camera.configIndex >= 0
        ? h('button', { type: 'button', class: 'wrc-btn wrc-btn-quiet', dataset: { action: 'recording' }, onclick: (event) => {
          const button = event.currentTarget;
          const done = camera.recording ? setRecording(camera, { enabled: false }, button, result) : showRecordingForm(camera, button, result);
          done.catch((error) => hb.toast.error(errorText(error), camera.name));
        } }, camera.recording ? 'Stop HomeKit recording' : 'Record to HomeKit')
        : null,
      camera.configIndex >= 0 && camera.recording
        ? h('button', { type: 'button', class: 'wrc-btn wrc-btn-quiet', dataset: { action: 'recording-settings' }, onclick: (event) => {
          showRecordingForm(camera, event.currentTarget, result).catch((error) => hb.toast.error(errorText(error), camera.name));
        } }, 'Recording settings')
        : null,
    ),
    result,
  );
  previewButton.addEventListener('click', async () => {
    const running = state.previews.get(camera.id);
    if (running) {
      running.stop();
      state.previews.delete(camera.id);
      previewButton.textContent = 'Live preview';
      loadSnapshot(camera.id, media);
      return;
    }
    previewButton.disabled = true;
    try {
      const preview = await startPreview(camera.id, media);
      state.previews.set(camera.id, preview);
      previewButton.textContent = 'Stop preview';
    } catch (error) {
      hb.toast.error(errorText(error), camera.name);
    } finally {
      previewButton.disabled = false;
    }
  });
  loadSnapshot(camera.id, media);
  return card;
}

async function loadSnapshot(id, media) {
  try {
    const { image } = await hb.request('/snapshot', { camera: id });
    if (state.previews.has(id)) return;
    media.replaceChildren(image ? h('img', { src: image, alt: 'Snapshot' }) : h('span', { class: 'wrc-placeholder' }, 'No picture yet'));
  } catch (error) {
    media.replaceChildren(h('span', { class: 'wrc-placeholder' }, errorText(error)));
  }
}

/** WHEP to the plugin's web server with a preview token (one camera, a few minutes). */
async function startPreview(id, media) {
  // Our origin: the plugin lets it use WHEP with the preview token (and only while the token lives).
  const preview = await hb.request('/preview', { camera: id, origin: location.origin });
  const base = `${preview.tls ? 'https' : 'http'}://${location.hostname}:${preview.port}`;
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const stream = new MediaStream();
  const video = h('video', { autoplay: true, playsinline: true, muted: true, dataset: { preview: id } });
  video.muted = true;
  video.srcObject = stream;
  pc.addEventListener('track', (event) => stream.addTrack(event.track));
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const timer = setTimeout(resolve, 2000);
    pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); } });
  });
  const auth = { Authorization: `Bearer ${preview.token}` };
  const res = await fetch(`${base}${preview.whepPath}`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  if (res.status !== 201) {
    pc.close();
    throw new Error((await res.text()) || `The plugin answered ${res.status}`);
  }
  const session = res.headers.get('Location');
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  media.replaceChildren(video);
  video.play().catch(() => undefined);
  return {
    stop() {
      pc.close();
      if (session) fetch(new URL(session, base), { method: 'DELETE', headers: auth }).catch(() => undefined);
    },
  };
}

/* ------------------------------------------------------------------------------ test and save */

function showResult(target, result) {
  target.replaceChildren(
    h('ul', {}, result.steps.map((s) => h('li', { class: s.ok ? 'wrc-ok' : 'wrc-fail', dataset: { step: s.step } }, s.text))),
    result.snapshot ? h('img', { src: `data:image/jpeg;base64,${result.snapshot}`, alt: 'Snapshot from the test', dataset: { testSnapshot: '' } }) : null,
  );
}

async function runTest(request, target) {
  target.replaceChildren(h('p', { class: 'wrc-muted' }, 'Testing… (up to 20 s)'));
  hb.showSpinner();
  try {
    const result = await hb.request('/test', request);
    showResult(target, result);
    return result;
  } catch (error) {
    target.replaceChildren(h('ul', {}, h('li', { class: 'wrc-fail' }, errorText(error))));
    return undefined;
  } finally {
    hb.hideSpinner();
  }
}

async function addCamera(entry) {
  const { blocks, block } = await configBlock();
  const cameras = Array.isArray(block.cameras) ? [...block.cameras] : [];
  if (cameras.some((c) => String(c.name ?? '').trim().toLowerCase() === entry.name.trim().toLowerCase())) {
    throw new Error(`There is already a camera called "${entry.name}"`);
  }
  cameras.push(entry);
  await saveBlock(blocks, { ...block, cameras });
  hb.toast.success(`${entry.name} is saved. Restart Homebridge (or the plugin's child bridge) to start it.`, 'Camera saved');
}

/** Wires a Test / Save form; `build(form)` gives { test, entry } from its fields. */
function wireAddForm(form, build) {
  const result = $('[data-result]', form);
  const save = $('[data-action="save"]', form);
  let tested;
  form.addEventListener('input', () => { save.disabled = true; tested = undefined; });
  $('[data-action="test"]', form).addEventListener('click', async () => {
    if (!form.reportValidity()) return;
    const { test } = build(form);
    const outcome = await runTest(test, result);
    tested = outcome?.ok ? build(form).entry : undefined;
    save.disabled = !tested;
  });
  save.addEventListener('click', async () => {
    if (!tested) return;
    save.disabled = true;
    try {
      await addCamera(tested);
      form.reset();
      result.replaceChildren(h('p', { class: 'wrc-ok' }, `Saved. Restart Homebridge to start ${tested.name}.`));
      tested = undefined;
    } catch (error) {
      hb.toast.error(errorText(error));
      save.disabled = false;
    }
  });
}

wireAddForm($('[data-form="rtsp"]'), (form) => {
  const f = Object.fromEntries(new FormData(form));
  const credentials = { ...(f.username ? { username: f.username } : {}), ...(f.password ? { password: f.password } : {}) };
  return {
    test: { kind: 'rtsp', url: f.url.trim(), ...credentials },
    entry: { name: f.name.trim(), rtspUrl: f.url.trim(), ...credentials },
  };
});

/* --------------------------------------------------------------------------------- discovered */

async function loadDiscovered(found) {
  const list = $('#discovered-list');
  found ??= await hb.request('/discovered');
  list.replaceChildren();
  if (found.length === 0) list.append(h('p', { class: 'wrc-muted' }, 'No unconfigured ONVIF camera found (yet).'));
  for (const camera of found) list.append(discoveredCard(camera));
}

$('#discover-again').addEventListener('click', async () => {
  const button = $('#discover-again');
  button.disabled = true;
  button.textContent = 'Searching…';
  try {
    await loadDiscovered(await hb.request('/discover'));
  } catch (error) {
    hb.toast.error(errorText(error));
  } finally {
    button.disabled = false;
    button.textContent = 'Search again';
  }
});

function discoveredCard(camera) {
  const title = [camera.name, camera.hardware].filter(Boolean).join(' ') || 'ONVIF camera';
  const form = h('form', { class: 'wrc-form', hidden: true, autocomplete: 'off', dataset: { form: 'onvif' } },
    h('label', {}, 'Name', h('input', { name: 'name', required: true, maxlength: 60, value: camera.hardware || camera.name || camera.host })),
    h('label', {}, 'User', h('input', { name: 'username', required: true, spellcheck: 'false' })),
    h('label', {}, 'Password', h('input', { name: 'password', type: 'password', autocomplete: 'new-password' })),
    h('div', { class: 'wrc-actions wrc-wide' },
      h('button', { type: 'button', class: 'wrc-btn', dataset: { action: 'test' } }, 'Test'),
      h('button', { type: 'button', class: 'wrc-btn wrc-btn-primary', dataset: { action: 'save' }, disabled: true }, 'Save')),
    h('div', { class: 'wrc-result wrc-wide', dataset: { result: '' } }),
  );
  wireAddForm(form, (f) => {
    const v = Object.fromEntries(new FormData(f));
    const onvif = { host: camera.host, port: camera.port ?? 80, username: v.username, password: v.password };
    return { test: { kind: 'onvif', ...onvif }, entry: { name: v.name.trim(), onvif } };
  });
  return h('article', { class: 'wrc-card', dataset: { discovered: camera.host } },
    h('div', { class: 'wrc-row' },
      h('div', { class: 'wrc-who' }, h('strong', {}, title), h('div', { class: 'wrc-muted' }, `${camera.host}${camera.port && camera.port !== 80 ? `:${camera.port}` : ''}`)),
      h('button', { type: 'button', class: 'wrc-btn wrc-btn-primary', dataset: { action: 'add' }, onclick: () => { form.hidden = !form.hidden; } }, 'Add')),
    form,
  );
}

/* -------------------------------------------------------------------------------- share links */

function cameraChecks(container, name, checked = []) {
  container.replaceChildren(...state.cameras.map((c) => h('label', {}, h('input', { type: 'checkbox', name, value: c.id, checked: checked.includes(c.id) }), c.name)));
  if (state.cameras.length === 0) container.append(h('span', { class: 'wrc-muted' }, 'No camera is running.'));
}

async function ensureCameras() {
  if (state.cameras.length === 0) {
    const status = await hb.request('/status');
    state.cameras = status.cameras;
    state.web = status.web;
    banner(status.running ? '' : status.message);
  }
}

function linkUrl(link) {
  return link.url ?? `${pageBase()}${link.path}`;
}

async function loadShare() {
  await ensureCameras();
  cameraChecks($('#share-cameras'), 'cameras');
  const links = await hb.request('/share-links/list');
  const names = new Map(state.cameras.map((c) => [c.id, c.name]));
  $('#share-list').replaceChildren(...links.map((link) => h('article', { class: 'wrc-card wrc-row', dataset: { link: link.id, state: link.state } },
    h('div', { class: 'wrc-who' },
      h('strong', {}, link.label || 'Share link'), ' ', h('span', { class: 'wrc-tag' }, link.state),
      h('div', { class: 'wrc-muted' }, `${link.cameras === 'all' ? 'All cameras' : link.cameras.map((c) => names.get(c) ?? c).join(', ')} · ${link.expiresAt ? `until ${new Date(link.expiresAt).toLocaleString()}` : 'never expires'}`)),
    link.state === 'active' ? h('button', { type: 'button', class: 'wrc-btn wrc-btn-danger', dataset: { action: 'revoke' }, onclick: () => revokeLink(link) }, 'Revoke') : null,
  )));
}

async function revokeLink(link) {
  try {
    await hb.request('/share-links/revoke', { id: link.id });
    hb.toast.success('Anyone watching through it is disconnected.', 'Link revoked');
    await loadShare();
  } catch (error) {
    hb.toast.error(errorText(error));
  }
}

async function copy(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    hb.toast.success('Link copied');
  } catch {
    // The clipboard needs HTTPS (or localhost) and permission: select it for Ctrl+C instead.
    input.select();
    hb.toast.info('Press Ctrl+C (or long-press) to copy the selected link');
  }
}

$('#share-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const picked = [...form.querySelectorAll('input[name="cameras"]:checked')].map((i) => i.value);
  const data = new FormData(form);
  try {
    const link = await hb.request('/share-links/create', {
      // The ticked cameras exactly: "all" would also open cameras added later.
      cameras: picked.length === 0 ? 'all' : picked,
      expiresIn: data.get('expiresIn'),
      label: String(data.get('label') ?? '').trim(),
    });
    const url = linkUrl(link);
    const input = h('input', { class: 'wrc-url', readonly: true, value: url, dataset: { shareUrl: '' } });
    const qr = h('div', { class: 'wrc-qr', title: 'Scan with a phone' });
    qr.innerHTML = qrSvg(url, 4); // our own SVG from our own encoder; the URL is data in it, not markup
    $('#share-created').hidden = false;
    $('#share-created').replaceChildren(
      h('p', {}, h('strong', {}, 'New link: '), 'send it to the person who should watch. It is shown only now.'),
      input,
      h('div', { class: 'wrc-actions' }, h('button', { type: 'button', class: 'wrc-btn', onclick: () => copy(url, input) }, 'Copy'),
        h('a', { class: 'wrc-btn wrc-btn-quiet', href: url, target: '_blank', rel: 'noopener' }, 'Open ↗')),
      qr,
    );
    await loadShare();
  } catch (error) {
    hb.toast.error(errorText(error));
  }
});

/* ------------------------------------------------------------------------------------ viewers */

let editing;
async function loadViewers() {
  await ensureCameras();
  const { block } = await configBlock();
  const viewers = Array.isArray(block.viewers) ? block.viewers : [];
  const names = new Map(state.cameras.map((c) => [c.id, c.name]));
  $('#viewers-list').replaceChildren(
    ...(viewers.length === 0 ? [h('p', { class: 'wrc-muted' }, 'No viewer yet: nobody can sign in to the watch page. Add one below.')] : []),
    ...viewers.map((viewer) => h('article', { class: 'wrc-card wrc-row', dataset: { viewer: viewer.username } },
      h('div', { class: 'wrc-who' }, h('strong', {}, viewer.username), viewer.admin ? h('span', { class: 'wrc-tag' }, 'administrator') : null,
        h('div', { class: 'wrc-muted' }, !viewer.cameras || viewer.cameras.length === 0 ? 'All cameras' : viewer.cameras.map((c) => names.get(c) ?? c).join(', '))),
      h('div', { class: 'wrc-actions' },
        h('button', { type: 'button', class: 'wrc-btn', onclick: () => editViewer(viewer) }, 'Edit / reset password'),
        h('button', { type: 'button', class: 'wrc-btn wrc-btn-danger', onclick: () => removeViewer(viewer.username) }, 'Remove')),
    )));
  if (!editing) cameraChecks($('#viewer-cameras'), 'cameras');
}

function editViewer(viewer) {
  editing = viewer.username;
  const form = $('#viewer-form');
  form.username.value = viewer.username;
  form.password.value = '';
  form.password.placeholder = 'saved (leave empty to keep it)';
  form.admin.checked = !!viewer.admin;
  cameraChecks($('#viewer-cameras'), 'cameras', viewer.cameras ?? []);
  $('#viewer-form-title').textContent = `Edit ${viewer.username}`;
  $('#viewer-cancel').hidden = false;
  form.scrollIntoView({ behavior: 'smooth' });
}

function resetViewerForm() {
  editing = undefined;
  const form = $('#viewer-form');
  form.reset();
  form.password.placeholder = '8 characters or more';
  $('#viewer-form-title').textContent = 'Add a viewer';
  $('#viewer-cancel').hidden = true;
  cameraChecks($('#viewer-cameras'), 'cameras');
}
$('#viewer-cancel').addEventListener('click', resetViewerForm);

async function removeViewer(username) {
  const { blocks, block } = await configBlock();
  await saveBlock(blocks, { ...block, viewers: (block.viewers ?? []).filter((v) => v.username !== username) });
  hb.toast.success(`${username} removed. Restart Homebridge to apply.`);
  if (editing === username) resetViewerForm();
  await loadViewers();
}

$('#viewer-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const username = form.username.value.trim();
  const password = form.password.value;
  const cameras = [...form.querySelectorAll('input[name="cameras"]:checked')].map((i) => i.value);
  try {
    const { blocks, block } = await configBlock();
    const viewers = Array.isArray(block.viewers) ? [...block.viewers] : [];
    const existing = viewers.findIndex((v) => v.username === (editing ?? username));
    if (editing === undefined && existing !== -1) throw new Error(`There is already a viewer called "${username}"`);
    if (existing === -1 && !password) throw new Error('Give the new viewer a password');
    // Stored hashed: the password itself never reaches config.json.
    const hash = password ? (await hb.request('/hash-password', { password })).hash : viewers[existing].password;
    const viewer = { username, password: hash, cameras, admin: form.admin.checked };
    if (existing === -1) viewers.push(viewer); else viewers[existing] = viewer;
    await saveBlock(blocks, { ...block, viewers });
    hb.toast.success(`${username} saved. Restart Homebridge to apply.`);
    resetViewerForm();
    await loadViewers();
  } catch (error) {
    hb.toast.error(errorText(error));
  }
});

hb.addEventListener('ready', async () => {
  // A fresh install has no platform block yet, and the UI shows its settings form (All settings)
  // only for an existing block: start one in memory (saved only when the user saves).
  try {
    if ((await hb.getPluginConfig()).length === 0) {
      await hb.updatePluginConfig([{ platform: PLATFORM }]);
      unsavedBlock = true;
    }
  } catch (error) {
    hb.toast.error(errorText(error));
  }
  markBlockReady();
  $('#wrc-form-toggle').disabled = false;
  showTab('cameras');
});
