/**
 * A typed ONVIF device for a camera configured by host, port and credentials: clock offset, device
 * information, profile choice, stream and snapshot URIs (rewritten to the address actually reached),
 * and the snapshot itself. Every failure is an `OnvifError` naming the camera.
 */
import type { Logger } from '../util/logger.js';
import { prefixedLogger, redactingLogger } from '../util/logger.js';
import { redactUrl } from '../util/redact.js';
import { OnvifError } from './errors.js';
import { HttpTransportError, httpRequest, type HttpResponse } from './http-client.js';
import { NS, SoapClient } from './soap.js';
import { attr, child, childrenNamed, escapeXml, path, textAt, type XmlElement } from './xml.js';

export interface OnvifDeviceOptions {
  /** Camera name for every message. */
  name: string;
  host: string;
  /** ONVIF HTTP port. Default 80. */
  port?: number;
  username?: string;
  password?: string;
  log: Logger;
  /** Per-request deadline. Default 8000 ms. */
  timeoutMs?: number;
  /** Snapshot download deadline. Default 4000 ms (HomeKit gives a snapshot 5 s in all). */
  snapshotTimeoutMs?: number;
  /** Use HTTPS for the device service. Default false. */
  https?: boolean;
  /** Device service path. Default `/onvif/device_service`. */
  devicePath?: string;
  /** RTSP port to use instead of the one in the camera's stream URI (port forwarding, NAT). */
  rtspPort?: number;
  /** Profile token or name to use as the main stream instead of the automatic choice. */
  profile?: string;
}

export interface OnvifDeviceInformation {
  manufacturer: string | undefined;
  model: string | undefined;
  firmwareRevision: string | undefined;
  serialNumber: string | undefined;
  hardwareId: string | undefined;
}

export interface OnvifServiceAddresses {
  device: string;
  media: string | undefined;
  media2: string | undefined;
  events: string | undefined;
  /** PTZ service, when GetServices or GetCapabilities lists one. */
  ptz: string | undefined;
}

export type VideoEncoding = 'H264' | 'H265' | 'JPEG' | 'MPEG4' | 'OTHER';

export interface OnvifVideoProfile {
  token: string;
  name: string;
  encoding: VideoEncoding;
  width: number;
  height: number;
  frameRate: number | undefined;
  bitrateKbps: number | undefined;
  /** Which media service described it (and must be asked for its URIs). */
  mediaVersion: 1 | 2;
}

export interface ResolvedStreamVariant {
  /** RTSP URL for the RTSP client, credentials included (percent-encoded). Never log it: use `rtspUrlForLog`. */
  rtspUrl: string;
  /** The same URL without credentials. */
  rtspUrlWithoutCredentials: string;
  /** Safe to log. */
  rtspUrlForLog: string;
  profileToken: string;
  profileName: string;
  encoding: VideoEncoding;
  width: number;
  height: number;
  frameRate: number | undefined;
  /** True when the camera's URI named another host or port and was rewritten. */
  rewritten: boolean;
}

export interface ResolvedStream extends ResolvedStreamVariant {
  username: string | undefined;
  password: string | undefined;
  /** A lower-resolution profile for low-bandwidth uses, when the camera has one. */
  subStream: ResolvedStreamVariant | undefined;
}

export interface OnvifDevice {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly services: Readonly<OnvifServiceAddresses>;
  /** Camera clock minus local clock (ms), used for WS-Security. */
  readonly clockOffsetMs: number;
  /** The SOAP client (credentials, clock) for other ONVIF services such as events. */
  readonly soap: SoapClient;
  readonly log: Logger;
  /** Re-reads the camera clock (after a reboot it may have changed); returns the offset. */
  syncClock(): Promise<number>;
  getDeviceInformation(): Promise<OnvifDeviceInformation>;
  getProfiles(): Promise<OnvifVideoProfile[]>;
  resolveStream(): Promise<ResolvedStream>;
  getSnapshotUri(): Promise<string>;
  fetchSnapshot(): Promise<Buffer>;
  /** Maps an address the camera announced (subscription, service) to the host and port actually reached. */
  rewriteServiceUrl(url: string): string;
}

/** A device after `connectOnvifDevice`: reachable, credentials accepted, information read. */
export interface ConnectedOnvifDevice extends OnvifDevice {
  readonly info: OnvifDeviceInformation;
}

// ---------------------------------------------------------------------------------------------------
// Pure helpers (exported for tests)

const PLACEHOLDERS = new Set([
  '', '-', '--', '---', '.', '?', 'none', 'null', 'nil', 'undefined', 'unknown', 'n/a', 'na', 'n.a.', 'not available',
  'default', 'string', 'to be filled by o.e.m.', 'tbd', 'xxx', 'manufacturer', 'model', 'serial', 'serialnumber',
]);

/** Trims a device-information value and drops placeholders ('--', 'NONE', 'N/A', all zeros, ...). */
export function cleanInfoValue(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  // Control characters and NULs appear in some firmwares' fixed-size fields.
  const cleaned = [...value]
    .map((ch) => (ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f ? ' ' : ch))
    .join('')
    .replace(/\s+/g, ' ')
    .trim();
  if (PLACEHOLDERS.has(cleaned.toLowerCase())) return undefined;
  if (/^[0\s.:-]+$/.test(cleaned) || /^x+$/i.test(cleaned) || /^[-_*.?]+$/.test(cleaned)) return undefined;
  // HomeKit limits these strings to 64 characters.
  return cleaned.slice(0, 64);
}

export function normalizeEncoding(raw: string | undefined): VideoEncoding {
  const value = (raw ?? '').trim().toUpperCase().replace(/[^A-Z0-9]/g, '');
  if (value === 'H264' || value === 'AVC') return 'H264';
  if (value === 'H265' || value === 'HEVC') return 'H265';
  if (value === 'JPEG' || value === 'MJPEG') return 'JPEG';
  if (value === 'MPEG4' || value === 'MP4V') return 'MPEG4';
  return 'OTHER';
}

function numberOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** Media1 `GetProfilesResponse`: profiles without a video encoder configuration are skipped. */
export function parseMedia1Profiles(response: XmlElement): ParsedProfiles {
  return parseProfiles(response, 1);
}

export interface ParsedProfiles {
  profiles: OnvifVideoProfile[];
  /** Names of profiles left out (no video encoder, no token, no resolution). */
  skipped: string[];
  /** Profiles that carry no video encoder configuration at all (Media2 may leave it out of GetProfiles). */
  withoutEncoder: Array<{ token: string; name: string }>;
}

/** Media2 `GetProfilesResponse` (Profiles/Configurations/VideoEncoder). */
export function parseMedia2Profiles(response: XmlElement): ParsedProfiles {
  return parseProfiles(response, 2);
}

/**
 * Both Media versions list profiles the same way; only where the video encoder configuration sits
 * differs (Media2 may also carry Encoding as an attribute). Profiles without one are skipped.
 */
function parseProfiles(response: XmlElement, mediaVersion: 1 | 2): ParsedProfiles {
  const profiles: OnvifVideoProfile[] = [];
  const skipped: string[] = [];
  const withoutEncoder: Array<{ token: string; name: string }> = [];
  for (const profile of childrenNamed(response, 'Profiles')) {
    const token = attr(profile, 'token') ?? '';
    const name = textAt(profile, 'Name') || token;
    const encoder = mediaVersion === 1 ? child(profile, 'VideoEncoderConfiguration') : path(profile, 'Configurations', 'VideoEncoder');
    if (!encoder && token) withoutEncoder.push({ token, name });
    const parsed = encoder && token ? profileFromEncoder(token, name, encoder, mediaVersion) : undefined;
    if (parsed) profiles.push(parsed);
    else skipped.push(name || '(unnamed)');
  }
  return { profiles, skipped, withoutEncoder };
}

/** A profile from a video encoder configuration (Media1 `VideoEncoderConfiguration`, Media2 `VideoEncoder2Configuration`). */
export function profileFromEncoder(token: string, name: string, encoder: XmlElement, mediaVersion: 1 | 2): OnvifVideoProfile | undefined {
  const width = numberOf(textAt(encoder, 'Resolution', 'Width'));
  const height = numberOf(textAt(encoder, 'Resolution', 'Height'));
  if (!width || !height) return undefined;
  const encoding = textAt(encoder, 'Encoding') ?? (mediaVersion === 2 ? attr(encoder, 'Encoding') : undefined);
  return {
    token,
    name,
    encoding: normalizeEncoding(encoding),
    width,
    height,
    frameRate: numberOf(textAt(encoder, 'RateControl', 'FrameRateLimit')),
    bitrateKbps: numberOf(textAt(encoder, 'RateControl', 'BitrateLimit')),
    mediaVersion,
  };
}

/**
 * True for a stream URI that is multicast: a group address (IPv4 224.0.0.0/4, IPv6 ff00::/8) or the
 * `transportmode=mcast` query some firmwares add on their own address. Checked before the host is
 * rewritten to the address reached, which would hide the group address.
 */
export function isMulticastStreamUri(uri: string): boolean {
  let url: URL;
  try {
    url = new URL(uri.trim());
  } catch {
    return false;
  }
  for (const [key, value] of url.searchParams) {
    if (key.toLowerCase() === 'transportmode' && /^(mcast|multicast)$/i.test(value.trim())) return true;
  }
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const v4 = /^(\d{1,3})\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.exec(host);
  if (v4) return Number(v4[1]) >= 224 && Number(v4[1]) <= 239;
  return /^ff[0-9a-f]{2}:/.test(host);
}

/**
 * Main stream: the largest H.264 profile (H.265 only when there is no H.264: it needs transcoding for
 * browsers). Sub-stream: the smallest other profile of the same codec with fewer pixels than the main.
 */
export function chooseProfiles(
  profiles: readonly OnvifVideoProfile[],
  preferred?: string,
): { main: OnvifVideoProfile; sub: OnvifVideoProfile | undefined } | undefined {
  const pixels = (p: OnvifVideoProfile): number => p.width * p.height;
  const byQuality = (a: OnvifVideoProfile, b: OnvifVideoProfile): number =>
    pixels(b) - pixels(a) || (b.frameRate ?? 0) - (a.frameRate ?? 0);
  const h264 = profiles.filter((p) => p.encoding === 'H264');
  const h265 = profiles.filter((p) => p.encoding === 'H265');
  const pool = h264.length > 0 ? h264 : h265;
  const wanted = preferred ? profiles.find((p) => p.token === preferred || p.name === preferred) : undefined;
  const main = wanted ?? [...pool].sort(byQuality)[0];
  if (!main) return undefined;
  const sub = pool
    .filter((p) => p.token !== main.token && pixels(p) < pixels(main))
    .sort((a, b) => pixels(a) - pixels(b))[0];
  return { main, sub };
}

function sameHost(a: string, b: string): boolean {
  const norm = (h: string): string => h.replace(/^\[|\]$/g, '').toLowerCase();
  return norm(a) === norm(b);
}

function hostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/**
 * Points a stream URI the camera gave at the host actually reached (cameras behind NAT, in Docker, or
 * with a stale DHCP address report an internal IP), and at `rtspPort` when configured.
 */
export function rewriteStreamUri(uri: string, reachedHost: string, rtspPort?: number): { url: URL; rewritten: boolean } {
  let url: URL;
  try {
    url = new URL(uri.trim());
  } catch {
    // A bare path (seen on a few cameras): resolve against the reached host.
    url = new URL(`rtsp://${hostForUrl(reachedHost)}${uri.trim().startsWith('/') ? '' : '/'}${uri.trim()}`);
  }
  let rewritten = false;
  if (!url.hostname || !sameHost(url.hostname, reachedHost) || url.hostname === '0.0.0.0') {
    url.hostname = hostForUrl(reachedHost);
    rewritten = true;
  }
  if (rtspPort !== undefined && url.port !== String(rtspPort)) {
    url.port = String(rtspPort);
    rewritten = true;
  }
  return { url, rewritten };
}

/** Candidate snapshot URLs: as given, or, when it names another host, that path on the reached host. */
export function snapshotCandidates(uri: string, reachedHost: string, onvifPort: number): URL[] {
  const url = new URL(uri.trim());
  if (sameHost(url.hostname, reachedHost)) return [url];
  const sameOrigin = new URL(url.href);
  sameOrigin.hostname = hostForUrl(reachedHost);
  const onOnvifPort = new URL(sameOrigin.href);
  onOnvifPort.port = String(onvifPort);
  return sameOrigin.href === onOnvifPort.href ? [sameOrigin] : [sameOrigin, onOnvifPort];
}

function withCredentials(url: URL, username: string | undefined, password: string | undefined): string {
  if (!username) return url.href;
  const copy = new URL(url.href);
  copy.username = encodeURIComponent(username);
  copy.password = encodeURIComponent(password ?? '');
  return copy.href;
}

function withoutCredentials(url: URL): URL {
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy;
}

const SERVICE_KEYS: Record<string, keyof Omit<OnvifServiceAddresses, 'device'> | 'device'> = {
  'http://www.onvif.org/ver10/device/wsdl': 'device',
  'http://www.onvif.org/ver10/media/wsdl': 'media',
  'http://www.onvif.org/ver20/media/wsdl': 'media2',
  'http://www.onvif.org/ver10/events/wsdl': 'events',
  'http://www.onvif.org/ver20/ptz/wsdl': 'ptz',
};

// ---------------------------------------------------------------------------------------------------

class OnvifDeviceImpl implements OnvifDevice {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly soap: SoapClient;
  readonly log: Logger;
  readonly services: OnvifServiceAddresses;
  private readonly origin: string;
  private snapshotUri: string | undefined;
  private mainProfile: OnvifVideoProfile | undefined;

  constructor(private readonly options: OnvifDeviceOptions) {
    this.name = options.name;
    this.host = options.host.replace(/^\[|\]$/g, '');
    this.port = options.port ?? (options.https ? 443 : 80);
    this.origin = `${options.https ? 'https' : 'http'}://${hostForUrl(this.host)}:${this.port}`;
    this.log = redactingLogger(prefixedLogger(options.log, options.name), new Set([options.password ?? ''].filter((p) => p.length > 1)));
    this.soap = new SoapClient({
      camera: options.name,
      credentials: options.username ? { username: options.username, password: options.password ?? '' } : undefined,
      timeoutMs: options.timeoutMs ?? 8000,
    });
    const device = `${this.origin}${options.devicePath ?? '/onvif/device_service'}`;
    this.services = { device, media: undefined, media2: undefined, events: undefined, ptz: undefined };
  }

  get clockOffsetMs(): number {
    return this.soap.clockOffsetMs;
  }

  private fail(code: OnvifError['code'], action: string, detail?: string, httpStatus?: number): OnvifError {
    return new OnvifError({ code, camera: this.name, action, detail, httpStatus, secrets: [this.options.password] });
  }

  rewriteServiceUrl(announced: string): string {
    try {
      const url = new URL(announced.trim(), this.origin);
      // ONVIF devices serve every service on the port we reached them at; the announced host is often
      // an internal address (NAT, Docker, a second interface), so only the path is trusted.
      const rewritten = new URL(`${url.pathname}${url.search}`, this.origin).href;
      if (rewritten !== url.href) this.log.debug(`ONVIF service ${redactUrl(url.href)} used as ${redactUrl(rewritten)}`);
      return rewritten;
    } catch {
      return this.services.device;
    }
  }

  async syncClock(): Promise<number> {
    const action = 'GetSystemDateAndTime';
    const started = Date.now();
    let response: XmlElement;
    try {
      response = await this.soap.call({
        url: this.services.device,
        action,
        soapAction: `${NS.tds}/${action}`,
        body: '<tds:GetSystemDateAndTime/>',
        authenticate: false,
      });
    } catch (error) {
      if (!(error instanceof OnvifError)) throw error;
      if (['TIMEOUT', 'UNREACHABLE', 'HTML_RESPONSE', 'ABORTED'].includes(error.code)) throw error;
      // Some cameras want credentials even for this call, and some do not implement it: go on without an offset.
      try {
        response = await this.soap.call({ url: this.services.device, action, soapAction: `${NS.tds}/${action}`, body: '<tds:GetSystemDateAndTime/>' });
      } catch (second) {
        if (second instanceof OnvifError && ['TIMEOUT', 'UNREACHABLE'].includes(second.code)) throw second;
        this.log.debug(`camera clock unknown (${error.code}); using the local clock for authentication`);
        return this.soap.clockOffsetMs;
      }
    }
    const utc = path(response, 'SystemDateAndTime', 'UTCDateTime');
    const n = (...names: string[]): number => Number(textAt(utc, ...names));
    const cameraTime = Date.UTC(n('Date', 'Year'), n('Date', 'Month') - 1, n('Date', 'Day'), n('Time', 'Hour'), n('Time', 'Minute'), n('Time', 'Second'));
    if (!utc || !Number.isFinite(cameraTime)) {
      this.log.debug('camera reports no UTC time; using the local clock for authentication');
      return this.soap.clockOffsetMs;
    }
    // The camera read its clock about half-way through the round trip.
    const localMidpoint = started + (Date.now() - started) / 2;
    const offset = Math.round(cameraTime - localMidpoint);
    this.soap.clockOffsetMs = Math.abs(offset) < 1500 ? 0 : offset;
    if (Math.abs(offset) > 5 * 60_000) {
      this.log.info(`camera clock is ${formatDuration(offset)} off; authenticating with the camera's time`);
    }
    return this.soap.clockOffsetMs;
  }

  async discoverServices(): Promise<void> {
    try {
      const response = await this.soap.call({
        url: this.services.device,
        action: 'GetServices',
        soapAction: `${NS.tds}/GetServices`,
        body: '<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>',
      });
      for (const service of childrenNamed(response, 'Service')) {
        const key = SERVICE_KEYS[textAt(service, 'Namespace') ?? ''];
        const xaddr = textAt(service, 'XAddr');
        if (key && xaddr) this.services[key] = this.rewriteServiceUrl(xaddr);
      }
      if (this.services.media || this.services.media2) return;
    } catch (error) {
      if (!(error instanceof OnvifError)) throw error;
      if (['TIMEOUT', 'UNREACHABLE', 'NOT_AUTHORIZED', 'HTML_RESPONSE', 'ABORTED'].includes(error.code)) throw error;
      this.log.debug(`GetServices unavailable (${error.code}); trying GetCapabilities`);
    }
    try {
      const response = await this.soap.call({
        url: this.services.device,
        action: 'GetCapabilities',
        soapAction: `${NS.tds}/GetCapabilities`,
        body: '<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>',
      });
      const capabilities = child(response, 'Capabilities');
      const media = textAt(capabilities, 'Media', 'XAddr');
      const events = textAt(capabilities, 'Events', 'XAddr');
      const ptz = textAt(capabilities, 'PTZ', 'XAddr');
      if (ptz) this.services.ptz = this.rewriteServiceUrl(ptz);
      if (media) this.services.media = this.rewriteServiceUrl(media);
      if (events) this.services.events = this.rewriteServiceUrl(events);
    } catch (error) {
      if (!(error instanceof OnvifError)) throw error;
      if (['TIMEOUT', 'UNREACHABLE', 'NOT_AUTHORIZED', 'HTML_RESPONSE', 'ABORTED'].includes(error.code)) throw error;
      this.log.debug(`GetCapabilities unavailable (${error.code}); assuming every service at the device address`);
    }
    // Single-endpoint devices (Axis style) answer everything at the device service.
    if (!this.services.media && !this.services.media2) this.services.media = this.services.device;
    this.services.events ??= this.services.device;
  }

  async getDeviceInformation(): Promise<OnvifDeviceInformation> {
    const response = await this.soap.call({
      url: this.services.device,
      action: 'GetDeviceInformation',
      soapAction: `${NS.tds}/GetDeviceInformation`,
      body: '<tds:GetDeviceInformation/>',
    });
    return {
      manufacturer: cleanInfoValue(textAt(response, 'Manufacturer')),
      model: cleanInfoValue(textAt(response, 'Model')),
      firmwareRevision: cleanInfoValue(textAt(response, 'FirmwareVersion')),
      serialNumber: cleanInfoValue(textAt(response, 'SerialNumber')),
      hardwareId: cleanInfoValue(textAt(response, 'HardwareId')),
    };
  }

  async getProfiles(): Promise<OnvifVideoProfile[]> {
    let firstError: OnvifError | undefined;
    if (this.services.media) {
      try {
        const response = await this.soap.call({
          url: this.services.media,
          action: 'GetProfiles',
          soapAction: `${NS.trt}/GetProfiles`,
          body: '<trt:GetProfiles/>',
        });
        const { profiles, skipped } = parseMedia1Profiles(response);
        if (skipped.length) this.log.debug(`skipped profiles without a video encoder: ${skipped.join(', ')}`);
        if (profiles.length > 0 || !this.services.media2) return profiles;
      } catch (error) {
        if (!(error instanceof OnvifError)) throw error;
        if (!this.services.media2 || ['TIMEOUT', 'UNREACHABLE', 'NOT_AUTHORIZED', 'ABORTED'].includes(error.code)) throw error;
        firstError = error;
        this.log.debug(`Media1 GetProfiles failed (${error.code}); trying Media2`);
      }
    }
    if (!this.services.media2) throw firstError ?? this.fail('NO_VIDEO_PROFILE', 'GetProfiles', 'no media service');
    const response = await this.soap.call({
      url: this.services.media2,
      action: 'GetProfiles',
      soapAction: `${NS.tr2}/GetProfiles`,
      body: '<tr2:GetProfiles><tr2:Type>All</tr2:Type></tr2:GetProfiles>',
    });
    const { profiles, skipped, withoutEncoder } = parseMedia2Profiles(response);
    if (withoutEncoder.length > 0) profiles.push(...(await this.media2EncodersFor(this.services.media2, withoutEncoder)));
    const left = skipped.filter((name) => !profiles.some((p) => p.name === name));
    if (left.length) this.log.debug(`skipped Media2 profiles without a video encoder: ${left.join(', ')}`);
    return profiles;
  }

  /**
   * Some Media2 firmwares leave the encoder out of GetProfiles even with Type=All; the profile still
   * has one, which GetVideoEncoderConfigurations(ProfileToken) returns. Without this such a camera
   * would look like it had "no video profile".
   */
  private async media2EncodersFor(url: string, missing: ReadonlyArray<{ token: string; name: string }>): Promise<OnvifVideoProfile[]> {
    const found: OnvifVideoProfile[] = [];
    for (const { token, name } of missing) {
      let response: XmlElement;
      try {
        response = await this.soap.call({
          url,
          action: 'GetVideoEncoderConfigurations',
          soapAction: `${NS.tr2}/GetVideoEncoderConfigurations`,
          body: `<tr2:GetVideoEncoderConfigurations><tr2:ProfileToken>${escapeXml(token)}</tr2:ProfileToken></tr2:GetVideoEncoderConfigurations>`,
        });
      } catch (error) {
        if (!(error instanceof OnvifError) || ['TIMEOUT', 'UNREACHABLE', 'NOT_AUTHORIZED', 'ABORTED'].includes(error.code)) throw error;
        this.log.debug(`no video encoder for Media2 profile ${name} (${error.code})`);
        // Not supported is answered once per connection by the SOAP client; the other profiles would get the same.
        if (error.code === 'ACTION_NOT_SUPPORTED') break;
        continue;
      }
      const encoder = childrenNamed(response, 'Configurations')[0];
      const profile = encoder ? profileFromEncoder(token, name, encoder, 2) : undefined;
      if (profile) found.push(profile);
    }
    return found;
  }

  private async streamUriFor(profile: OnvifVideoProfile): Promise<string> {
    const token = escapeXml(profile.token);
    const media1 = async (): Promise<string | undefined> => {
      if (!this.services.media) return undefined;
      const response = await this.soap.call({
        url: this.services.media,
        action: 'GetStreamUri',
        soapAction: `${NS.trt}/GetStreamUri`,
        body:
          '<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport>' +
          `</trt:StreamSetup><trt:ProfileToken>${token}</trt:ProfileToken></trt:GetStreamUri>`,
      });
      return textAt(response, 'MediaUri', 'Uri') || undefined;
    };
    const media2 = async (): Promise<string | undefined> => {
      if (!this.services.media2) return undefined;
      const response = await this.soap.call({
        url: this.services.media2,
        action: 'GetStreamUri',
        soapAction: `${NS.tr2}/GetStreamUri`,
        body: `<tr2:GetStreamUri><tr2:Protocol>RTSP</tr2:Protocol><tr2:ProfileToken>${token}</tr2:ProfileToken></tr2:GetStreamUri>`,
      });
      return textAt(response, 'Uri') || undefined;
    };
    const order = profile.mediaVersion === 2 ? [media2, media1] : [media1, media2];
    let lastError: unknown;
    const multicast: string[] = [];
    for (const attempt of order) {
      try {
        const uri = await attempt();
        if (uri && isMulticastStreamUri(uri)) {
          // Asked for unicast, given multicast (a firmware setting overrides the request): our RTSP client
          // pulls over TCP, so ask the other media service before giving up.
          multicast.push(redactUrl(uri));
          this.log.debug(`stream URI ${redactUrl(uri)} is multicast although unicast was asked; asking the other media service`);
          continue;
        }
        if (uri) return uri;
      } catch (error) {
        if (error instanceof OnvifError && ['TIMEOUT', 'UNREACHABLE', 'NOT_AUTHORIZED', 'ABORTED'].includes(error.code)) throw error;
        lastError = error;
      }
    }
    if (multicast.length > 0) {
      throw this.fail('MULTICAST_STREAM', 'GetStreamUri', `profile ${profile.name} gave only multicast URIs: ${multicast.join(', ')}`);
    }
    if (lastError) throw lastError;
    throw this.fail('BAD_RESPONSE', 'GetStreamUri', `no URI for profile ${profile.token}`);
  }

  private async variant(profile: OnvifVideoProfile): Promise<ResolvedStreamVariant> {
    const uri = await this.streamUriFor(profile);
    let rewrite: { url: URL; rewritten: boolean };
    try {
      rewrite = rewriteStreamUri(uri, this.host, this.options.rtspPort);
    } catch {
      throw this.fail('BAD_RESPONSE', 'GetStreamUri', `unusable stream URI ${redactUrl(uri)}`);
    }
    if (rewrite.url.protocol !== 'rtsp:' && rewrite.url.protocol !== 'rtsps:') {
      throw this.fail('BAD_RESPONSE', 'GetStreamUri', `not an RTSP URI: ${redactUrl(uri)}`);
    }
    const bare = withoutCredentials(rewrite.url);
    // The camera's own credentials in the URI (a few embed them) give way to the configured ones.
    const username = this.options.username ?? (decodeURIComponent(rewrite.url.username) || undefined);
    const password = this.options.username ? this.options.password : decodeURIComponent(rewrite.url.password) || undefined;
    if (rewrite.rewritten) {
      this.log.debug(`stream URI ${redactUrl(uri)} rewritten to ${bare.href} (the address reached)`);
    }
    return {
      rtspUrl: withCredentials(bare, username, password),
      rtspUrlWithoutCredentials: bare.href,
      rtspUrlForLog: redactUrl(withCredentials(bare, username, password)),
      profileToken: profile.token,
      profileName: profile.name,
      encoding: profile.encoding,
      width: profile.width,
      height: profile.height,
      frameRate: profile.frameRate,
      rewritten: rewrite.rewritten,
    };
  }

  async resolveStream(): Promise<ResolvedStream> {
    const profiles = await this.getProfiles();
    const choice = chooseProfiles(profiles, this.options.profile);
    if (!choice) {
      const seen = profiles.map((p) => `${p.name} ${p.encoding} ${p.width}x${p.height}`).join(', ') || 'none';
      throw this.fail('NO_VIDEO_PROFILE', 'GetProfiles', `no H.264 or H.265 profile (profiles: ${seen})`);
    }
    if (this.options.profile && choice.main.token !== this.options.profile && choice.main.name !== this.options.profile) {
      this.log.warn(`profile "${this.options.profile}" not found; using ${choice.main.name}`);
    }
    if (choice.main.encoding !== 'H264') {
      this.log.warn(`no H.264 profile; using ${choice.main.encoding} profile ${choice.main.name}, which browsers need transcoded`);
    }
    this.mainProfile = choice.main;
    const main = await this.variant(choice.main);
    let subStream: ResolvedStreamVariant | undefined;
    if (choice.sub) {
      try {
        subStream = await this.variant(choice.sub);
      } catch (error) {
        // The sub-stream is an optimisation; the main stream is what matters.
        this.log.debug(`no sub-stream URI: ${(error as Error).message}`);
      }
    }
    this.log.debug(
      `stream ${main.rtspUrlForLog} (${main.profileName}, ${main.width}x${main.height})` +
        (subStream ? `, sub-stream ${subStream.rtspUrlForLog} (${subStream.width}x${subStream.height})` : ''),
    );
    const configured = !!this.options.username;
    return {
      ...main,
      username: configured ? this.options.username : undefined,
      password: configured ? (this.options.password ?? '') : undefined,
      subStream,
    };
  }

  async getSnapshotUri(): Promise<string> {
    if (this.snapshotUri) return this.snapshotUri;
    let profile = this.mainProfile;
    if (!profile) {
      const choice = chooseProfiles(await this.getProfiles(), this.options.profile);
      if (!choice) throw this.fail('NO_VIDEO_PROFILE', 'GetSnapshotUri', 'no video profile to take a snapshot of');
      profile = choice.main;
      this.mainProfile = profile;
    }
    const token = escapeXml(profile.token);
    const attempts: Array<() => Promise<string | undefined>> = [];
    const media1 = this.services.media;
    const media2 = this.services.media2;
    if (media1) {
      attempts.push(async () =>
        textAt(
          await this.soap.call({
            url: media1,
            action: 'GetSnapshotUri',
            soapAction: `${NS.trt}/GetSnapshotUri`,
            body: `<trt:GetSnapshotUri><trt:ProfileToken>${token}</trt:ProfileToken></trt:GetSnapshotUri>`,
          }),
          'MediaUri',
          'Uri',
        ),
      );
    }
    if (media2) {
      const call = async (): Promise<string | undefined> =>
        textAt(
          await this.soap.call({
            url: media2,
            action: 'GetSnapshotUri',
            soapAction: `${NS.tr2}/GetSnapshotUri`,
            body: `<tr2:GetSnapshotUri><tr2:ProfileToken>${token}</tr2:ProfileToken></tr2:GetSnapshotUri>`,
          }),
          'Uri',
        );
      if (profile.mediaVersion === 2) attempts.unshift(call);
      else attempts.push(call);
    }
    let lastError: OnvifError | undefined;
    for (const attempt of attempts) {
      try {
        const uri = await attempt();
        if (uri) {
          this.snapshotUri = uri;
          return uri;
        }
      } catch (error) {
        if (!(error instanceof OnvifError)) throw error;
        if (['TIMEOUT', 'UNREACHABLE', 'NOT_AUTHORIZED', 'ABORTED'].includes(error.code)) throw error;
        lastError = error;
      }
    }
    throw this.fail('NO_SNAPSHOT_URI', 'GetSnapshotUri', lastError?.detail ?? 'the camera returned no URI');
  }

  async fetchSnapshot(): Promise<Buffer> {
    const uri = await this.getSnapshotUri();
    let candidates: URL[];
    try {
      candidates = snapshotCandidates(uri, this.host, this.port);
    } catch {
      throw this.fail('BAD_RESPONSE', 'snapshot', `unusable snapshot URI ${redactUrl(uri)}`);
    }
    const credentials = this.options.username ? { username: this.options.username, password: this.options.password ?? '' } : undefined;
    let lastError: OnvifError | undefined;
    for (const candidate of candidates) {
      let response: HttpResponse;
      try {
        response = await httpRequest({
          url: candidate.href,
          timeoutMs: this.options.snapshotTimeoutMs ?? 4000,
          credentials,
          headers: { accept: 'image/jpeg, image/*' },
          maxBytes: 16 * 1024 * 1024,
        });
      } catch (error) {
        lastError = this.soap.transportError(error, 'snapshot');
        // A refused port is worth trying the next candidate for; a timeout would blow HomeKit's 5 s.
        if (error instanceof HttpTransportError && error.kind === 'unreachable') continue;
        throw lastError;
      }
      try {
        return this.checkSnapshot(response, candidate);
      } catch (error) {
        // The rewritten URI may reach another web server (a router's page on port 80): try the next.
        lastError = error instanceof OnvifError ? error : this.fail('BAD_RESPONSE', 'snapshot');
      }
    }
    throw lastError ?? this.fail('UNREACHABLE', 'snapshot');
  }

  private checkSnapshot(response: HttpResponse, url: URL): Buffer {
    const where = redactUrl(url.href);
    const contentType = String(response.headers['content-type'] ?? '').toLowerCase();
    if (response.status === 401 || response.status === 403) {
      throw this.fail('NOT_AUTHORIZED', 'snapshot', `HTTP ${response.status} from ${where}`, response.status);
    }
    if (response.status !== 200) throw this.fail('HTTP_ERROR', 'snapshot', `HTTP ${response.status} from ${where}`, response.status);
    const body = response.body;
    if (body.length >= 3 && body[0] === 0xff && body[1] === 0xd8 && body[2] === 0xff) return body;
    if (contentType.includes('text/html')) throw this.fail('HTML_RESPONSE', 'snapshot', `an HTML page from ${where}`, response.status);
    throw this.fail('NOT_A_JPEG', 'snapshot', `${body.length} bytes of ${contentType || 'unknown type'} from ${where}`, response.status);
  }
}

function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  const sign = ms < 0 ? 'behind' : 'ahead';
  if (abs >= 86_400_000) return `${Math.round(abs / 86_400_000)} day(s) ${sign}`;
  if (abs >= 3_600_000) return `${Math.round(abs / 3_600_000)} hour(s) ${sign}`;
  return `${Math.round(abs / 60_000)} minute(s) ${sign}`;
}

/**
 * Connects to a camera by host and credentials: reads its clock, finds its services and checks the
 * credentials with GetDeviceInformation (returned as `info`). Throws one `OnvifError` on failure.
 */
export async function connectOnvifDevice(options: OnvifDeviceOptions): Promise<ConnectedOnvifDevice> {
  const device = new OnvifDeviceImpl(options);
  await device.syncClock();
  await device.discoverServices();
  let info: OnvifDeviceInformation;
  try {
    info = await device.getDeviceInformation();
  } catch (error) {
    // GetDeviceInformation is mandatory for every ONVIF device: an HTML page refusing it means this is
    // some other web server (wrong port or path), not a camera lacking an optional call.
    if (error instanceof OnvifError && error.code === 'ACTION_NOT_SUPPORTED' && error.htmlBody) {
      throw new OnvifError({ code: 'HTML_RESPONSE', camera: options.name, action: 'GetDeviceInformation', detail: error.detail, httpStatus: error.httpStatus, htmlBody: true, cause: error });
    }
    throw error;
  }
  device.log.debug(
    `ONVIF connected at ${options.host}:${device.port}: ${info.manufacturer ?? '?'} ${info.model ?? '?'} firmware ${info.firmwareRevision ?? '?'}`,
  );
  return Object.assign(device, { info }) satisfies ConnectedOnvifDevice;
}
