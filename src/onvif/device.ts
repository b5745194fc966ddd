/**
 * A typed ONVIF device for a camera configured by host, port and credentials: clock offset, device
 * information, profile choice, stream and snapshot URIs (rewritten to the address actually reached),
 * and the snapshot itself. Every failure is an `OnvifError` naming the camera.
 *
 * Beside it: device-types.ts (the types), media-service.ts (the Media1/Media2 calls), profiles.ts
 * (reading and choosing profiles), stream-uri.ts (announced addresses made usable).
 */
import { withCredentials, withoutCredentials } from '../util/address.js';
import type { Logger } from '../util/logger.js';
import { prefixedLogger, redactingLogger } from '../util/logger.js';
import { redactUrl } from '../util/redact.js';
import type {
  ConnectedOnvifDevice,
  OnvifDevice,
  OnvifDeviceInformation,
  OnvifDeviceOptions,
  OnvifServiceAddresses,
  OnvifVideoProfile,
  ResolvedStream,
  ResolvedStreamVariant,
} from './device-types.js';
import { OnvifError } from './errors.js';
import { HttpTransportError, httpRequest, type HttpResponse } from './http-client.js';
import { OnvifMediaService } from './media-service.js';
import { chooseProfiles } from './profiles.js';
import { NS, SoapClient } from './soap.js';
import { hostForUrl, rewriteStreamUri, snapshotCandidates } from './stream-uri.js';
import { child, childrenNamed, path, textAt, type XmlElement } from './xml.js';

// Moved beside this file; re-exported for the modules that import them from here.
export type * from './device-types.js';
export { chooseProfiles, normalizeEncoding, parseMedia1Profiles, parseMedia2Profiles, profileFromEncoder, type ParsedProfiles } from './profiles.js';
export { isMulticastStreamUri, rewriteStreamUri, snapshotCandidates } from './stream-uri.js';

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
  private readonly media: OnvifMediaService;

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
    this.media = new OnvifMediaService(this.soap, this.services, this.log, (code, action, detail) => this.fail(code, action, detail));
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

  getProfiles(): Promise<OnvifVideoProfile[]> {
    return this.media.getProfiles();
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

  private async variant(profile: OnvifVideoProfile): Promise<ResolvedStreamVariant> {
    const uri = await this.media.streamUriFor(profile);
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
    // The camera's own credentials in the URI (a few embed them) give way to the configured ones;
    // either way they leave here as fields beside the bare URL. Without a user name there is no log-in.
    const username = this.options.username ?? (decodeURIComponent(rewrite.url.username) || undefined);
    const password = username ? ((this.options.username ? this.options.password : decodeURIComponent(rewrite.url.password)) ?? '') : undefined;
    if (rewrite.rewritten) {
      this.log.debug(`stream URI ${redactUrl(uri)} rewritten to ${bare.href} (the address reached)`);
    }
    return {
      rtspUrl: bare.href,
      username: username || undefined,
      password,
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
    return { ...main, subStream };
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
    this.snapshotUri = await this.media.snapshotUriFor(profile);
    return this.snapshotUri;
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
