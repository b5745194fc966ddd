/**
 * PTZ (pan/tilt/zoom) for ONVIF cameras: what a camera can do (`discoverPtz`: the PTZ service from
 * GetServices/GetCapabilities, a PTZ-capable profile, the node's and the configuration's velocity and
 * translation ranges), the SOAP calls (ContinuousMove/Stop, RelativeMove where continuous moves are
 * absent, GetPresets, GotoPreset, GotoHomePosition), and `PtzController`, the per-camera gatekeeper a
 * web page talks to: one mover at a time with a lease that expires, a rate limit on moves, velocities
 * clamped to the camera's ranges, and a Stop that is always sent after a continuous move, even when
 * the client vanishes (a dead-man timer).
 *
 * Viewers never pass URLs or raw SOAP: a move is three numbers in [-1, 1], a preset is a token the
 * camera itself listed.
 */
import { EventEmitter } from 'node:events';

import type { Logger } from '../util/logger.js';
import type { OnvifDevice } from './device.js';
import { OnvifError } from './errors.js';
import { NS } from './soap.js';
import { attr, child, childrenNamed, escapeXml, path, textAt, type XmlElement } from './xml.js';

export interface PtzRange {
  min: number;
  max: number;
}

export interface PtzSpace {
  /** Pan (x) and tilt (y), when the camera pans/tilts in this mode. */
  panTilt: { x: PtzRange; y: PtzRange } | undefined;
  /** Zoom (x), when the camera zooms in this mode. */
  zoom: PtzRange | undefined;
}

export interface PtzCapabilities {
  /** PTZ service address (rewritten to the address reached). */
  serviceUrl: string;
  /** The media profile PTZ commands name. */
  profileToken: string;
  nodeToken: string | undefined;
  /** Velocity ranges for ContinuousMove; undefined when the camera has none. */
  continuous: PtzSpace | undefined;
  /** Translation ranges for RelativeMove; undefined when the camera has none. */
  relative: PtzSpace | undefined;
  home: boolean;
}

export interface PtzPreset {
  token: string;
  name: string;
}

/** A move request from a viewer: each axis in [-1, 1] (fraction of the camera's fastest or largest step). */
export interface PtzVector {
  pan: number;
  tilt: number;
  zoom: number;
}

// ---------------------------------------------------------------------------------------------------
// Parsing (exported for tests)

function numberOf(text: string | undefined): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

function rangeOf(element: XmlElement | undefined): PtzRange | undefined {
  const min = numberOf(textAt(element, 'Min'));
  const max = numberOf(textAt(element, 'Max'));
  if (min === undefined || max === undefined || min > max) return undefined;
  return { min, max };
}

/** Reads `<PanTiltSpace>`/`<ZoomSpace>` pairs (Node SupportedPTZSpaces or ConfigurationOptions Spaces). */
export function parsePtzSpace(spaces: XmlElement | undefined, panTiltName: string, zoomName: string): PtzSpace | undefined {
  // A camera may list several spaces of a kind (generic and degrees): the generic one is what we send.
  const pick = (name: string): XmlElement | undefined => {
    const all = childrenNamed(spaces, name);
    return all.find((s) => /GenericSpace|Generic/i.test(textAt(s, 'URI') ?? '')) ?? all[0];
  };
  const pt = pick(panTiltName);
  const zm = pick(zoomName);
  const x = rangeOf(child(pt, 'XRange'));
  const y = rangeOf(child(pt, 'YRange'));
  const zoom = rangeOf(child(zm, 'XRange'));
  const panTilt = x && y ? { x, y } : undefined;
  if (!panTilt && !zoom) return undefined;
  return { panTilt, zoom };
}

export function parsePresets(response: XmlElement): PtzPreset[] {
  const presets: PtzPreset[] = [];
  for (const preset of childrenNamed(response, 'Preset')) {
    const token = attr(preset, 'token');
    if (!token) continue;
    presets.push({ token, name: (textAt(preset, 'Name') ?? '').trim() || token });
  }
  return presets;
}

/** Maps a viewer's [-1, 1] value onto a camera range, clamped to it; non-finite input counts as 0. */
export function scaleToRange(value: number, range: PtzRange): number {
  const v = Number.isFinite(value) ? Math.max(-1, Math.min(1, value)) : 0;
  const scaled = v >= 0 ? v * Math.max(0, range.max) : -v * Math.min(0, range.min);
  const clamped = Math.max(range.min, Math.min(range.max, scaled));
  // Fixed decimals: some firmwares reject exponent notation such as 1e-7.
  return Number(clamped.toFixed(4));
}

function fmt(n: number): string {
  return n.toFixed(4).replace(/\.?0+$/, '') || '0';
}

function vectorXml(space: PtzSpace, vector: PtzVector): string {
  let xml = '';
  if (space.panTilt && (vector.pan !== 0 || vector.tilt !== 0 || !space.zoom)) {
    xml += `<tt:PanTilt x="${fmt(scaleToRange(vector.pan, space.panTilt.x))}" y="${fmt(scaleToRange(vector.tilt, space.panTilt.y))}"/>`;
  }
  if (space.zoom && (vector.zoom !== 0 || !space.panTilt)) xml += `<tt:Zoom x="${fmt(scaleToRange(vector.zoom, space.zoom))}"/>`;
  return xml;
}

// ---------------------------------------------------------------------------------------------------
// The SOAP client

/** The PTZ operations `PtzController` needs (an interface so the controller can be tested alone). */
export interface PtzClient {
  readonly capabilities: PtzCapabilities;
  continuousMove(vector: PtzVector, timeoutMs: number): Promise<void>;
  relativeMove(vector: PtzVector): Promise<void>;
  stop(): Promise<void>;
  getPresets(): Promise<PtzPreset[]>;
  gotoPreset(token: string): Promise<void>;
  gotoHome(): Promise<void>;
}

const PTZ_ACTION = (name: string): string => `${NS.tptz}/${name}`;

/**
 * The camera's PTZ as it reports it. Throws `NO_PTZ` ("this camera has no PTZ") when no PTZ service is
 * listed, no profile or node can be found, or the camera refuses the PTZ calls as not supported.
 */
export async function discoverPtz(device: OnvifDevice): Promise<OnvifPtz> {
  const noPtz = (detail: string): OnvifError => new OnvifError({ code: 'NO_PTZ', camera: device.name, action: 'PTZ', detail });
  const serviceUrl = device.services.ptz;
  if (!serviceUrl) throw noPtz('no PTZ service in GetServices/GetCapabilities');
  const call = (action: string, body: string): Promise<XmlElement> =>
    device.soap.call({ url: serviceUrl, action, soapAction: PTZ_ACTION(action), body }).catch((error: unknown) => {
      if (error instanceof OnvifError && error.code === 'ACTION_NOT_SUPPORTED') throw noPtz(`${action} not supported${error.detail ? `: ${error.detail}` : ''}`);
      throw error;
    });

  const { profileToken, configurationToken, nodeToken: profileNode } = await ptzProfile(device);
  if (!profileToken) throw noPtz('no media profile to move');

  const nodes = childrenNamed(await call('GetNodes', '<tptz:GetNodes/>'), 'PTZNode');
  const node = nodes.find((n) => attr(n, 'token') === profileNode) ?? nodes[0];
  if (!node) throw noPtz('GetNodes lists no PTZ node');
  const nodeSpaces = child(node, 'SupportedPTZSpaces');
  let continuous = parsePtzSpace(nodeSpaces, 'ContinuousPanTiltVelocitySpace', 'ContinuousZoomVelocitySpace');
  let relative = parsePtzSpace(nodeSpaces, 'RelativePanTiltTranslationSpace', 'RelativeZoomTranslationSpace');

  // The configuration's options may be narrower than the node's (a profile limited to slow moves).
  if (configurationToken) {
    try {
      const options = await device.soap.call({
        url: serviceUrl,
        action: 'GetConfigurationOptions',
        soapAction: PTZ_ACTION('GetConfigurationOptions'),
        body: `<tptz:GetConfigurationOptions><tptz:ConfigurationToken>${escapeXml(configurationToken)}</tptz:ConfigurationToken></tptz:GetConfigurationOptions>`,
      });
      const spaces = path(options, 'PTZConfigurationOptions', 'Spaces');
      if (spaces) {
        continuous = parsePtzSpace(spaces, 'ContinuousPanTiltVelocitySpace', 'ContinuousZoomVelocitySpace');
        relative = parsePtzSpace(spaces, 'RelativePanTiltTranslationSpace', 'RelativeZoomTranslationSpace');
      }
    } catch (error) {
      if (!(error instanceof OnvifError) || ['TIMEOUT', 'UNREACHABLE', 'NOT_AUTHORIZED', 'ABORTED'].includes(error.code)) throw error;
      device.log.debug(`PTZ configuration options unavailable (${error.code}); using the node's ranges`);
    }
  }
  if (!continuous && !relative) throw noPtz('the PTZ node offers neither continuous nor relative moves');
  const home = textAt(node, 'HomeSupported')?.trim() !== 'false';
  const capabilities: PtzCapabilities = { serviceUrl, profileToken, nodeToken: attr(node, 'token'), continuous, relative, home };
  device.log.debug(
    `PTZ: profile ${profileToken}, ${continuous ? 'continuous' : 'relative-only'} moves` +
      `${continuous?.zoom || relative?.zoom ? ', zoom' : ''}${home ? ', home' : ''}`,
  );
  return new OnvifPtz(device, capabilities);
}

/** The first media profile with a PTZ configuration (Media1, else Media2), or the first profile at all. */
async function ptzProfile(device: OnvifDevice): Promise<{ profileToken: string | undefined; configurationToken: string | undefined; nodeToken: string | undefined }> {
  const tries: Array<{ url: string | undefined; soapAction: string; body: string; ptz: (p: XmlElement) => XmlElement | undefined }> = [
    { url: device.services.media, soapAction: `${NS.trt}/GetProfiles`, body: '<trt:GetProfiles/>', ptz: (p) => child(p, 'PTZConfiguration') },
    {
      url: device.services.media2,
      soapAction: `${NS.tr2}/GetProfiles`,
      body: '<tr2:GetProfiles><tr2:Type>PTZ</tr2:Type></tr2:GetProfiles>',
      ptz: (p) => path(p, 'Configurations', 'PTZ'),
    },
  ];
  let fallback: string | undefined;
  for (const attempt of tries) {
    if (!attempt.url) continue;
    let response: XmlElement;
    try {
      response = await device.soap.call({ url: attempt.url, action: 'GetProfiles', soapAction: attempt.soapAction, body: attempt.body });
    } catch (error) {
      if (!(error instanceof OnvifError) || ['TIMEOUT', 'UNREACHABLE', 'NOT_AUTHORIZED', 'ABORTED'].includes(error.code)) throw error;
      continue;
    }
    const profiles = childrenNamed(response, 'Profiles');
    fallback ??= profiles.map((p) => attr(p, 'token')).find(Boolean);
    for (const profile of profiles) {
      const configuration = attempt.ptz(profile);
      const token = attr(profile, 'token');
      if (configuration && token) {
        return { profileToken: token, configurationToken: attr(configuration, 'token'), nodeToken: textAt(configuration, 'NodeToken') };
      }
    }
  }
  return { profileToken: fallback, configurationToken: undefined, nodeToken: undefined };
}

export class OnvifPtz implements PtzClient {
  constructor(
    private readonly device: OnvifDevice,
    readonly capabilities: PtzCapabilities,
  ) {}

  private async call(action: string, inner: string): Promise<XmlElement> {
    const token = `<tptz:ProfileToken>${escapeXml(this.capabilities.profileToken)}</tptz:ProfileToken>`;
    return this.device.soap.call({
      url: this.capabilities.serviceUrl,
      action,
      soapAction: PTZ_ACTION(action),
      body: `<tptz:${action}>${token}${inner}</tptz:${action}>`,
    });
  }

  async continuousMove(vector: PtzVector, timeoutMs: number): Promise<void> {
    const space = this.capabilities.continuous;
    if (!space) throw new OnvifError({ code: 'ACTION_NOT_SUPPORTED', camera: this.device.name, action: 'ContinuousMove', detail: 'no velocity space' });
    // The camera's own timeout is a second safety net behind our Stop: it ends the move if both we and the network fail.
    const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
    await this.call('ContinuousMove', `<tptz:Velocity>${vectorXml(space, vector)}</tptz:Velocity><tptz:Timeout>PT${seconds}S</tptz:Timeout>`);
  }

  async relativeMove(vector: PtzVector): Promise<void> {
    const space = this.capabilities.relative;
    if (!space) throw new OnvifError({ code: 'ACTION_NOT_SUPPORTED', camera: this.device.name, action: 'RelativeMove', detail: 'no translation space' });
    await this.call('RelativeMove', `<tptz:Translation>${vectorXml(space, vector)}</tptz:Translation>`);
  }

  async stop(): Promise<void> {
    await this.call('Stop', '<tptz:PanTilt>true</tptz:PanTilt><tptz:Zoom>true</tptz:Zoom>');
  }

  async getPresets(): Promise<PtzPreset[]> {
    return parsePresets(await this.call('GetPresets', ''));
  }

  async gotoPreset(token: string): Promise<void> {
    await this.call('GotoPreset', `<tptz:PresetToken>${escapeXml(token)}</tptz:PresetToken>`);
  }

  async gotoHome(): Promise<void> {
    await this.call('GotoHomePosition', '');
  }
}

// ---------------------------------------------------------------------------------------------------
// The per-camera controller

/** Who asks; `ptz` is the viewer's PTZ right (admins have it). */
export interface PtzViewer {
  id: string;
  ptz: boolean;
}

export type PtzRefusalReason = 'forbidden' | 'busy' | 'rate-limited' | 'invalid' | 'unsupported';

/** A request the controller refused before it reached the camera; `message` is for the viewer. */
export class PtzRefusedError extends Error {
  constructor(
    readonly reason: PtzRefusalReason,
    message: string,
  ) {
    super(message);
    this.name = 'PtzRefusedError';
  }
}

export interface PtzState {
  /** Viewer holding control, if the lease is current. */
  mover: string | undefined;
  moving: boolean;
  /** What the camera was last told: 'move', 'stop', 'preset', 'home'. */
  last: 'move' | 'stop' | 'preset' | 'home' | undefined;
}

export interface PtzControllerEvents {
  /** Every change, for the other viewers to see the camera being moved (and by whom). */
  state: [PtzState];
}

/** Timers, replaceable in tests. */
export interface PtzClock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const REAL_CLOCK: PtzClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => {
    const timer = setTimeout(callback, ms);
    timer.unref?.();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface PtzControllerOptions {
  ptz: PtzClient;
  /** Camera name for log lines. */
  camera: string;
  log: Logger;
  /** How long control stays with a viewer after their last command. Default 5000 ms. */
  leaseMs?: number;
  /** Least time between two commands that reach the camera (stops excepted). Default 250 ms. */
  minIntervalMs?: number;
  /** A continuous move stops this long after the last move or keep-alive. Default 1000 ms. */
  deadManMs?: number;
  /** RelativeMove step, as a fraction of the translation range, for cameras without continuous moves. Default 0.1. */
  relativeStep?: number;
  clock?: PtzClock;
}

/**
 * One per camera. A viewer's page sends `move` while a button is held (repeating it as a keep-alive)
 * and `stop` on release; `release` when the viewer disconnects. Commands go to the camera one at a
 * time, in order, so a Stop can never overtake the move it ends.
 */
export class PtzController extends EventEmitter<PtzControllerEvents> {
  private readonly clock: PtzClock;
  private mover: string | undefined;
  private leaseUntil = 0;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private moving: { vector: PtzVector } | undefined;
  private deadMan: unknown;
  private last: PtzState['last'];
  private queue: Promise<unknown> = Promise.resolve();
  private presets: PtzPreset[] | undefined;
  private disposed = false;
  /** Set when the camera refused ContinuousMove as not supported although its node lists velocities. */
  private continuousRefused = false;

  constructor(private readonly options: PtzControllerOptions) {
    super();
    this.clock = options.clock ?? REAL_CLOCK;
  }

  get state(): PtzState {
    return { mover: this.currentMover(), moving: this.moving !== undefined, last: this.last };
  }

  /** Starts (or changes, or keeps alive) a move. Continuous when the camera can, else one relative step. */
  async move(viewer: PtzViewer, vector: PtzVector): Promise<void> {
    const clean = this.checkVector(vector);
    this.admit(viewer);
    const caps = this.options.ptz.capabilities;
    if (caps.continuous && !this.continuousRefused) {
      if (this.moving && sameVector(this.moving.vector, clean)) {
        // A keep-alive for the move already running: no camera round trip, so no rate limit.
        this.touch(viewer);
        this.armDeadMan();
        return;
      }
      if (isZero(clean)) return this.stop(viewer);
      this.rateLimit();
      this.touch(viewer);
      this.moving = { vector: clean };
      this.last = 'move';
      this.armDeadMan();
      this.emitState();
      try {
        return await this.enqueue(() => this.options.ptz.continuousMove(clean, (this.options.deadManMs ?? 1000) * 2));
      } catch (error) {
        // Some firmwares list velocity spaces yet refuse ContinuousMove: step with RelativeMove from now on.
        if (!(error instanceof OnvifError) || error.code !== 'ACTION_NOT_SUPPORTED' || !caps.relative) throw error;
        this.continuousRefused = true;
        this.options.log.debug(`[${this.options.camera}] ContinuousMove refused; using RelativeMove steps`);
        // Stop now rather than at the dead-man delay: the state must not say "moving", and a Stop after a
        // failed move is the rule (harmless if nothing moved).
        await this.sendStop('continuous move refused');
        return this.relativeStep(clean);
      }
    }
    if (!caps.relative) throw new PtzRefusedError('unsupported', 'this camera cannot be moved');
    if (isZero(clean)) return;
    this.rateLimit();
    this.touch(viewer);
    return this.relativeStep(clean);
  }

  private relativeStep(clean: PtzVector): Promise<void> {
    this.last = 'move';
    this.emitState();
    const step = this.options.relativeStep ?? 0.1;
    return this.enqueue(() => this.options.ptz.relativeMove({ pan: clean.pan * step, tilt: clean.tilt * step, zoom: clean.zoom * step }));
  }

  /** Ends a move. Refused to viewers without the right or the lease; rate-limited only when nothing is moving. */
  async stop(viewer: PtzViewer): Promise<void> {
    this.admit(viewer);
    // A stop that ends a move always goes out; one with nothing moving (a preset's travel, a double
    // click) counts against the rate limit like any other command, so stops cannot flood the camera.
    if (!this.moving) this.rateLimit();
    this.touch(viewer);
    await this.sendStop('requested');
  }

  async listPresets(): Promise<PtzPreset[]> {
    this.presets = await this.enqueue(() => this.options.ptz.getPresets());
    return this.presets;
  }

  /** Goes to a preset the camera listed; anything else is refused without reaching the camera. */
  async gotoPreset(viewer: PtzViewer, token: string): Promise<void> {
    this.admit(viewer);
    const presets = this.presets ?? (await this.listPresets());
    if (!presets.some((p) => p.token === token)) throw new PtzRefusedError('invalid', 'this camera has no such preset');
    this.rateLimit();
    this.touch(viewer);
    if (this.moving) await this.sendStop('preset');
    this.last = 'preset';
    this.emitState();
    return this.enqueue(() => this.options.ptz.gotoPreset(token));
  }

  async gotoHome(viewer: PtzViewer): Promise<void> {
    this.admit(viewer);
    if (!this.options.ptz.capabilities.home) throw new PtzRefusedError('unsupported', 'this camera has no home position');
    this.rateLimit();
    this.touch(viewer);
    if (this.moving) await this.sendStop('home');
    this.last = 'home';
    this.emitState();
    return this.enqueue(() => this.options.ptz.gotoHome());
  }

  /** The viewer went away (page closed, connection lost): stop their move and free control at once. */
  async release(viewerId: string): Promise<void> {
    if (this.mover !== viewerId) return;
    this.mover = undefined;
    this.leaseUntil = 0;
    if (this.moving) await this.sendStop('viewer left');
    else this.emitState();
  }

  /** Resolves once every command handed to the camera so far has been answered (or has failed). */
  async idle(): Promise<void> {
    await this.queue;
  }

  /** Stops any move and refuses further commands (camera removed, plugin shutting down). */
  async dispose(): Promise<void> {
    if (this.moving) await this.sendStop('shutdown');
    this.disposed = true;
    this.removeAllListeners();
  }

  // --- internals --------------------------------------------------------------------------------------

  private currentMover(): string | undefined {
    if (this.mover !== undefined && (this.moving || this.clock.now() < this.leaseUntil)) return this.mover;
    return undefined;
  }

  private admit(viewer: PtzViewer): void {
    if (this.disposed) throw new PtzRefusedError('unsupported', 'PTZ is no longer available for this camera');
    if (!viewer.ptz) throw new PtzRefusedError('forbidden', 'you may watch this camera but not move it');
    const holder = this.currentMover();
    if (holder !== undefined && holder !== viewer.id) throw new PtzRefusedError('busy', 'someone else is moving this camera');
  }

  private touch(viewer: PtzViewer): void {
    const changed = this.mover !== viewer.id;
    this.mover = viewer.id;
    this.leaseUntil = this.clock.now() + (this.options.leaseMs ?? 5000);
    if (changed) this.emitState();
  }

  private rateLimit(): void {
    const now = this.clock.now();
    if (now - this.lastSentAt < (this.options.minIntervalMs ?? 250)) throw new PtzRefusedError('rate-limited', 'too many PTZ commands; slow down');
    this.lastSentAt = now;
  }

  private checkVector(vector: PtzVector): PtzVector {
    const values = [vector.pan, vector.tilt, vector.zoom];
    if (!values.every((v) => typeof v === 'number' && Number.isFinite(v))) throw new PtzRefusedError('invalid', 'a move needs three numbers');
    const clamp = (v: number): number => Math.max(-1, Math.min(1, v));
    return { pan: clamp(vector.pan), tilt: clamp(vector.tilt), zoom: clamp(vector.zoom) };
  }

  private armDeadMan(): void {
    if (this.deadMan !== undefined) this.clock.clearTimeout(this.deadMan);
    this.deadMan = this.clock.setTimeout(() => {
      this.deadMan = undefined;
      // No keep-alive: the client vanished or froze with a button held. The camera must not keep turning.
      void this.sendStop('no keep-alive').catch(() => undefined);
    }, this.options.deadManMs ?? 1000);
  }

  private async sendStop(why: string): Promise<void> {
    if (this.deadMan !== undefined) {
      this.clock.clearTimeout(this.deadMan);
      this.deadMan = undefined;
    }
    const wasMoving = this.moving !== undefined;
    this.moving = undefined;
    this.last = 'stop';
    this.emitState();
    if (wasMoving && why !== 'requested') this.options.log.debug(`[${this.options.camera}] PTZ stop (${why})`);
    try {
      await this.enqueue(() => this.options.ptz.stop());
    } catch (error) {
      // One more try: a camera left turning is the failure that matters here.
      this.options.log.warn(`[${this.options.camera}] PTZ stop failed, sending it again: ${(error as Error).message}`);
      await this.enqueue(() => this.options.ptz.stop());
    }
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private emitState(): void {
    this.emit('state', this.state);
  }
}

function isZero(v: PtzVector): boolean {
  return v.pan === 0 && v.tilt === 0 && v.zoom === 0;
}

function sameVector(a: PtzVector, b: PtzVector): boolean {
  return a.pan === b.pan && a.tilt === b.tilt && a.zoom === b.zoom;
}
