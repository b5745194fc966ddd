import type { CodecName, TrackDescription } from '../media/types.js';
import { resolveControlUrl } from './url.js';

/**
 * SDP (RFC 8866) as cameras write it, and the step from media sections to `TrackDescription`s.
 * Cameras bend the format (LF line ends, stray NULs, missing `v=`), so parsing is lenient line by
 * line; it fails only when the text has no usable media description at all.
 */

export class SdpError extends Error {
  override readonly name = 'SdpError';
}

export interface RtpMap {
  encoding: string;
  clockRate: number;
  channels?: number;
}

export interface SdpMedia {
  /** video, audio, application... */
  media: string;
  port: number;
  proto: string;
  /** Payload types (or other formats) in the order the camera listed them. */
  formats: string[];
  control?: string;
  /** sendrecv / sendonly / recvonly / inactive, when given. */
  direction?: string;
  rtpmaps: Map<number, RtpMap>;
  fmtps: Map<number, Record<string, string>>;
  /** Every other attribute, name -> values. */
  attributes: Map<string, string[]>;
}

export interface SessionDescription {
  sessionName?: string;
  /** Session-level a=control: the aggregate control URL. */
  control?: string;
  media: SdpMedia[];
}

const DIRECTIONS = new Set(['sendrecv', 'sendonly', 'recvonly', 'inactive']);

export function parseSdp(text: string): SessionDescription {
  if (!text || text.trim().length === 0) throw new SdpError('the SDP is empty');
  // eslint-disable-next-line no-control-regex
  const lines = text.replace(/\u0000/g, '').split(/\r?\n|\r/);
  const session: SessionDescription = { media: [] };
  let current: SdpMedia | undefined;
  let validLines = 0;
  for (const raw of lines) {
    const line = raw.trim();
    if (line.length === 0) continue;
    const m = /^([a-zA-Z])\s*=(.*)$/.exec(line);
    if (!m) continue; // a camera's stray text; the lines around it may still describe the stream
    validLines++;
    const type = m[1]!;
    const value = m[2]!.trim();
    if (type === 'm') {
      current = parseMediaLine(value);
      session.media.push(current);
      continue;
    }
    if (type === 's' && !current) {
      session.sessionName = value;
      continue;
    }
    if (type !== 'a') continue;
    const colon = value.indexOf(':');
    const name = (colon >= 0 ? value.slice(0, colon) : value).trim().toLowerCase();
    const attrValue = colon >= 0 ? value.slice(colon + 1).trim() : '';
    if (!current) {
      if (name === 'control') session.control = attrValue;
      continue;
    }
    if (name === 'control') current.control = attrValue;
    else if (DIRECTIONS.has(name)) current.direction = name;
    else if (name === 'rtpmap') parseRtpMap(attrValue, current);
    else if (name === 'fmtp') parseFmtpAttribute(attrValue, current);
    else {
      const list = current.attributes.get(name);
      if (list) list.push(attrValue);
      else current.attributes.set(name, [attrValue]);
    }
  }
  if (validLines === 0) throw new SdpError('the DESCRIBE body is not SDP (no "x=value" lines)');
  if (session.media.length === 0) throw new SdpError('the SDP has no media description (no m= line)');
  return session;
}

function parseMediaLine(value: string): SdpMedia {
  // m=<media> <port>[/<number of ports>] <proto> <fmt> ...
  const parts = value.split(/\s+/);
  const port = /^(\d+)(?:\/\d+)?$/.exec(parts[1] ?? '');
  if (parts.length < 3 || !/^[a-zA-Z0-9_-]+$/.test(parts[0]!) || !port) {
    throw new SdpError(`malformed m= line "${truncate(value)}"`);
  }
  return {
    media: parts[0]!.toLowerCase(),
    port: Number(port[1]),
    proto: parts[2]!,
    formats: parts.slice(3),
    rtpmaps: new Map(),
    fmtps: new Map(),
    attributes: new Map(),
  };
}

function parseRtpMap(value: string, media: SdpMedia): void {
  // a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]
  const m = /^(\d{1,3})\s+([^/\s]+)\/(\d+)(?:\/(\d+))?/.exec(value);
  if (!m) return; // a broken rtpmap leaves the payload type unknown; the track is then skipped
  const entry: RtpMap = { encoding: m[2]!, clockRate: Number(m[3]) };
  if (m[4] !== undefined) entry.channels = Number(m[4]);
  media.rtpmaps.set(Number(m[1]), entry);
}

function parseFmtpAttribute(value: string, media: SdpMedia): void {
  const m = /^(\d{1,3})\s+(.*)$/.exec(value);
  if (!m) return;
  media.fmtps.set(Number(m[1]), parseFmtp(m[2]!));
}

/** "a=1; b=x=y;c" -> {a: '1', b: 'x=y', c: ''}: values keep their "=" (base64 padding). */
export function parseFmtp(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(';')) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    if (eq < 0) out[p.toLowerCase()] = '';
    else out[p.slice(0, eq).trim().toLowerCase()] = p.slice(eq + 1).trim();
  }
  return out;
}

/** Static payload types a camera may use without a=rtpmap (RFC 3551). */
export const STATIC_PAYLOAD_TYPES: ReadonlyMap<number, RtpMap> = new Map([
  [0, { encoding: 'PCMU', clockRate: 8000, channels: 1 }],
  [8, { encoding: 'PCMA', clockRate: 8000, channels: 1 }],
]);

export interface SkippedMedia {
  /** Index of the m= section in the SDP. */
  mediaIndex: number;
  media: string;
  /** What the section carries, e.g. "application/vnd.onvif.metadata" or "audio/G726-32". */
  format: string;
  reason: string;
}

export interface DescribedTrack extends TrackDescription {
  /** Index of the m= section in the SDP. */
  mediaIndex: number;
}

export interface TrackList {
  tracks: DescribedTrack[];
  skipped: SkippedMedia[];
}

/**
 * Turns the media sections into tracks this plugin can play, and says why each other section was
 * skipped. `baseUrl` resolves relative control URLs (see resolveControlUrl).
 */
export function describeTracks(sdp: SessionDescription, baseUrl: string): TrackList {
  const tracks: DescribedTrack[] = [];
  const skipped: SkippedMedia[] = [];
  sdp.media.forEach((media, mediaIndex) => {
    const skip = (format: string, reason: string): void => {
      skipped.push({ mediaIndex, media: media.media, format, reason });
    };
    const firstFormat = media.formats[0] ?? '?';
    const label = (pt: number | string): string => {
      const map = typeof pt === 'number' ? media.rtpmaps.get(pt) ?? STATIC_PAYLOAD_TYPES.get(pt) : undefined;
      return `${media.media}/${map ? map.encoding : pt}`;
    };
    if (media.media !== 'video' && media.media !== 'audio') {
      skip(`${media.media}/${media.rtpmaps.get(Number(firstFormat))?.encoding ?? firstFormat}`, 'not audio or video');
      return;
    }
    // Direction attributes are unreliable: Hikvision marks its video recvonly and ONVIF marks the
    // backchannel sendonly. Backchannels appear only when a client sends "Require:
    // www.onvif.org/ver20/backchannel", which playback never sends (backchannel.ts does, and picks
    // its section with chooseBackchannel); so only `inactive` is skipped.
    if (media.direction === 'inactive') {
      skip(label(Number(firstFormat)), 'the camera marks it inactive');
      return;
    }
    if (!/^RTP\/AVPF?(\/TCP)?$/i.test(media.proto) && !/^RTP\/AVP\/UDP$/i.test(media.proto)) {
      skip(label(Number(firstFormat)), `transport profile ${media.proto} is not supported`);
      return;
    }
    // A section can list several payload types; the first one we understand is the one we play.
    let lastReason = 'no payload type listed';
    for (const fmt of media.formats) {
      if (!/^\d{1,3}$/.test(fmt)) continue;
      const pt = Number(fmt);
      const result = trackFor(media, pt);
      if (typeof result === 'string') {
        lastReason = result;
        continue;
      }
      tracks.push({ ...result, controlUrl: resolveControlUrl(baseUrl, media.control), mediaIndex });
      return;
    }
    skip(label(Number(firstFormat)), lastReason);
  });
  return { tracks, skipped };
}

/** The track for one payload type, or a reason why it is not playable. */
function trackFor(media: SdpMedia, pt: number): Omit<TrackDescription, 'controlUrl'> | string {
  const map = media.rtpmaps.get(pt) ?? (pt < 96 ? STATIC_PAYLOAD_TYPES.get(pt) : undefined);
  if (!map) return pt >= 96 ? `payload type ${pt} has no a=rtpmap` : `static payload type ${pt} is not supported`;
  const fmtp = media.fmtps.get(pt) ?? {};
  const encoding = map.encoding.toUpperCase();
  const base = { payloadType: pt, clockRate: map.clockRate, fmtp };
  const withChannels = (channels: number | undefined) => (channels === undefined ? {} : { channels });

  if (media.media === 'video') {
    if (encoding === 'H264') {
      const sets = decodeParameterSets(fmtp['sprop-parameter-sets']);
      return { kind: 'video', codec: 'H264', ...base, ...(sets.length ? { parameterSets: sets } : {}) };
    }
    if (encoding === 'H265' || encoding === 'HEVC') {
      // VPS, SPS, PPS: kept for whoever transcodes (browsers cannot take H.265 here).
      const sets = ['sprop-vps', 'sprop-sps', 'sprop-pps'].flatMap((k) => decodeParameterSets(fmtp[k]));
      return {
        kind: 'video',
        codec: 'H265',
        ...base,
        needsTranscoding: true,
        ...(sets.length ? { parameterSets: sets } : {}),
      };
    }
    if (encoding === 'VP8') return { kind: 'video', codec: 'VP8', ...base };
    return `video codec ${map.encoding} is not supported`;
  }

  let codec: CodecName | undefined;
  let needsTranscoding = false;
  let channels = map.channels;
  if (encoding === 'PCMU' || encoding === 'PCMA') {
    codec = encoding;
    channels ??= 1;
  } else if (encoding === 'MPEG4-GENERIC') {
    const mode = (fmtp['mode'] ?? '').toLowerCase();
    // Without a mode the camera is almost certainly sending AAC-hbr, the only mode cameras use.
    if (mode && !mode.startsWith('aac')) return `MPEG4-GENERIC mode ${fmtp['mode']} is not AAC`;
    codec = 'AAC';
    needsTranscoding = true; // browsers take no AAC over WebRTC
    channels ??= 1;
  } else if (encoding === 'OPUS') {
    codec = 'OPUS';
    channels ??= 2;
  }
  if (!codec) return `audio codec ${map.encoding} is not supported`;
  return { kind: 'audio', codec, ...base, ...withChannels(channels), ...(needsTranscoding ? { needsTranscoding } : {}) };
}

/** "Z0IAH+kCwSyA,aM4xUg==" -> NAL units. Entries that are not valid base64 are dropped. */
export function decodeParameterSets(value: string | undefined): Buffer[] {
  if (!value) return [];
  const out: Buffer[] = [];
  for (const part of value.split(',')) {
    const p = part.trim();
    if (!p || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(p)) continue;
    const buf = Buffer.from(p, 'base64');
    if (buf.length > 0) out.push(buf);
  }
  return out;
}

function truncate(s: string, n = 60): string {
  return s.length > n ? `${s.slice(0, n)}...` : s;
}
