/**
 * The media service calls of an ONVIF device (Media1, and Media2 where the camera has it): the
 * profiles, a profile's stream URI and its snapshot URI, each falling back to the other media
 * version where one refuses. Transport failures and refused credentials end the attempt at once.
 */
import type { Logger } from '../util/logger.js';
import { redactUrl } from '../util/redact.js';
import type { OnvifServiceAddresses, OnvifVideoProfile } from './device-types.js';
import { OnvifError } from './errors.js';
import { parseMedia1Profiles, parseMedia2Profiles, profileFromEncoder } from './profiles.js';
import { NS, type SoapClient } from './soap.js';
import { isMulticastStreamUri } from './stream-uri.js';
import { childrenNamed, escapeXml, textAt, type XmlElement } from './xml.js';

export type DeviceFailure = (code: OnvifError['code'], action: string, detail?: string) => OnvifError;

export class OnvifMediaService {
  constructor(
    private readonly soap: SoapClient,
    private readonly services: Readonly<OnvifServiceAddresses>,
    private readonly log: Logger,
    private readonly fail: DeviceFailure,
  ) {}

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

  async streamUriFor(profile: OnvifVideoProfile): Promise<string> {
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

  /** The snapshot URI of a profile. */
  async snapshotUriFor(profile: OnvifVideoProfile): Promise<string> {
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
        if (uri) return uri;
      } catch (error) {
        if (!(error instanceof OnvifError)) throw error;
        if (['TIMEOUT', 'UNREACHABLE', 'NOT_AUTHORIZED', 'ABORTED'].includes(error.code)) throw error;
        lastError = error;
      }
    }
    throw this.fail('NO_SNAPSHOT_URI', 'GetSnapshotUri', lastError?.detail ?? 'the camera returned no URI');
  }
}
