/**
 * The SOAP side of ONVIF PTZ: what a camera can do (`discoverPtz`: the PTZ service from
 * GetServices/GetCapabilities, a PTZ-capable profile, the node's and the configuration's velocity and
 * translation ranges) and the calls (ContinuousMove/Stop, RelativeMove, GetPresets, GotoPreset,
 * GotoHomePosition) with a viewer's [-1, 1] values scaled to the camera's ranges. `PtzController`
 * (ptz.ts) is what viewers reach; it never lets them past these calls.
 */
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
