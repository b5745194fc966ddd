/**
 * ONVIF media profiles: reading them from Media1 and Media2 `GetProfiles` answers (or a Media2 video
 * encoder configuration), and choosing the main stream and the sub-stream among them.
 */
import type { OnvifVideoProfile, VideoEncoding } from './device-types.js';
import { attr, child, childrenNamed, path, textAt, type XmlElement } from './xml.js';

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
