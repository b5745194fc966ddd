/**
 * The SDP the re-stream answers DESCRIBE with, generated from a Source's tracks. Parameter sets
 * come from the newest keyframe seen when one is available, so a camera that changed resolution
 * since its SDP was read is still described correctly; the camera's own SDP values are the fallback.
 */
import { AAC_LC_OBJECT_TYPE, AAC_SAMPLE_RATES, audioSpecificConfig as aacConfig } from '../media/adts.js';
import { AAC_OUTPUT_FMTP } from '../media/audio.js';
import type { CodecName, TrackDescription } from '../media/types.js';

/** One source track as offered to re-stream clients. */
export interface ServedTrack {
  /** Index into the Source's `tracks`. */
  sourceIndex: number;
  /** `trackID=N` in control URLs; equal to `sourceIndex` so a URL stays valid across DESCRIBEs. */
  trackId: number;
  kind: 'video' | 'audio';
  codec: CodecName;
  clockRate: number;
  channels: number;
  payloadType: number;
  /** fmtp for the offer, without the `a=fmtp:PT ` prefix; empty when none. */
  fmtp: string;
}

const KNOWN_CODECS: ReadonlySet<string> = new Set(['H264', 'H265', 'PCMU', 'PCMA', 'AAC', 'OPUS']);

/** Parameter sets of a video track: H.264 uses sps/pps, H.265 vps/sps/pps. NAL units without start codes. */
export interface ParameterSets {
  vps: Buffer[];
  sps: Buffer[];
  pps: Buffer[];
}

/** Picks SPS/PPS (and VPS for H.265) out of an access unit's NAL units; undefined when it has none. */
export function parameterSetsFromUnits(codec: CodecName, units: ReadonlyArray<Buffer>): ParameterSets | undefined {
  const sets: ParameterSets = { vps: [], sps: [], pps: [] };
  for (const unit of units) {
    if (unit.length < 2) continue;
    if (codec === 'H264') {
      const type = unit[0]! & 0x1f;
      if (type === 7) sets.sps.push(unit);
      else if (type === 8) sets.pps.push(unit);
    } else if (codec === 'H265') {
      const type = (unit[0]! >> 1) & 0x3f;
      if (type === 32) sets.vps.push(unit);
      else if (type === 33) sets.sps.push(unit);
      else if (type === 34) sets.pps.push(unit);
    }
  }
  if (sets.sps.length === 0 || sets.pps.length === 0) return undefined;
  if (codec === 'H265' && sets.vps.length === 0) return undefined;
  return sets;
}

/** The parameter sets the camera declared (parsed `parameterSets`, or the raw fmtp values). */
export function parameterSetsFromTrack(track: TrackDescription): ParameterSets | undefined {
  if (track.codec === 'H264') {
    const units = track.parameterSets?.length
      ? track.parameterSets
      : decodeList(track.fmtp['sprop-parameter-sets']);
    return parameterSetsFromUnits('H264', units);
  }
  if (track.codec === 'H265') {
    const units = track.parameterSets?.length
      ? track.parameterSets
      : [
        ...decodeList(track.fmtp['sprop-vps']),
        ...decodeList(track.fmtp['sprop-sps']),
        ...decodeList(track.fmtp['sprop-pps']),
      ];
    return parameterSetsFromUnits('H265', units);
  }
  return undefined;
}

function decodeList(value: string | undefined): Buffer[] {
  if (!value) return [];
  return value.split(',').map((part) => Buffer.from(part.trim(), 'base64')).filter((b) => b.length > 0);
}

/**
 * Chooses what to offer for each source track. Payload types are ours (the packets are re-headed per
 * client anyway): the static 0/8 for 8 kHz mono G.711, dynamic 96+ for the rest.
 */
export function planTracks(
  tracks: ReadonlyArray<TrackDescription>,
  videoSets?: ParameterSets,
): ServedTrack[] {
  const served: ServedTrack[] = [];
  const seenKinds = new Set<string>();
  tracks.forEach((track, index) => {
    // The Source emits frames by kind, so only the first track of each kind can be told apart.
    if (!track || !KNOWN_CODECS.has(track.codec) || seenKinds.has(track.kind)) return;
    seenKinds.add(track.kind);
    const channels = track.channels ?? (track.codec === 'OPUS' ? 2 : 1);
    let payloadType = 96 + index;
    if (track.codec === 'PCMU' && track.clockRate === 8000 && channels === 1) payloadType = 0;
    if (track.codec === 'PCMA' && track.clockRate === 8000 && channels === 1) payloadType = 8;
    served.push({
      sourceIndex: index,
      trackId: index,
      kind: track.kind,
      codec: track.codec,
      clockRate: track.clockRate,
      channels,
      payloadType,
      fmtp: fmtpFor(track, channels, track.kind === 'video' ? videoSets ?? parameterSetsFromTrack(track) : undefined),
    });
  });
  return served;
}

function fmtpFor(track: TrackDescription, channels: number, sets: ParameterSets | undefined): string {
  switch (track.codec) {
    case 'H264': {
      const parts = ['packetization-mode=1'];
      const sps = sets?.sps[0];
      const profileLevelId = sps && sps.length >= 4 ? sps.subarray(1, 4).toString('hex') : track.fmtp['profile-level-id'];
      if (profileLevelId) parts.push(`profile-level-id=${profileLevelId}`);
      if (sets) parts.push(`sprop-parameter-sets=${[...sets.sps, ...sets.pps].map((b) => b.toString('base64')).join(',')}`);
      return parts.join(';');
    }
    case 'H265': {
      if (!sets) return '';
      const b64 = (list: Buffer[]): string => list.map((b) => b.toString('base64')).join(',');
      return `sprop-vps=${b64(sets.vps)};sprop-sps=${b64(sets.sps)};sprop-pps=${b64(sets.pps)}`;
    }
    case 'AAC': {
      const config = track.fmtp['config'] ?? audioSpecificConfig(track.clockRate, channels);
      // The Source re-packetises every AAC track to one AU-header layout; describe that one.
      const f = AAC_OUTPUT_FMTP;
      return `streamtype=5;profile-level-id=1;mode=${f.mode};sizelength=${f.sizelength};indexlength=${f.indexlength};` +
        `indexdeltalength=${f.indexdeltalength};config=${config}`;
    }
    case 'OPUS':
      return channels === 2 ? 'sprop-stereo=1' : '';
    default:
      return '';
  }
}

/**
 * AAC-LC AudioSpecificConfig (ISO 14496-3) as hex, for cameras whose SDP did not carry `config`:
 * media/adts.ts writes it; a rate without a sampling-frequency index is announced as 8 kHz.
 */
export function audioSpecificConfig(sampleRate: number, channels: number): string {
  const rate = (AAC_SAMPLE_RATES as readonly number[]).includes(sampleRate) ? sampleRate : 8000;
  return aacConfig(AAC_LC_OBJECT_TYPE, rate, Math.min(6, Math.max(1, channels))).toString('hex');
}

function rtpmap(track: ServedTrack): string {
  switch (track.codec) {
    case 'H264': return `H264/${track.clockRate}`;
    case 'H265': return `H265/${track.clockRate}`;
    case 'VP8': return `VP8/${track.clockRate}`;
    case 'PCMU': return `PCMU/${track.clockRate}${track.channels > 1 ? `/${track.channels}` : ''}`;
    case 'PCMA': return `PCMA/${track.clockRate}${track.channels > 1 ? `/${track.channels}` : ''}`;
    case 'AAC': return `MPEG4-GENERIC/${track.clockRate}/${track.channels}`;
    case 'OPUS': return `opus/${track.clockRate}/2`;
  }
}

export function buildSdp(options: { sessionId: string; name: string; address: string; tracks: ReadonlyArray<ServedTrack> }): string {
  const ipVersion = options.address.includes(':') ? 'IP6' : 'IP4';
  const lines = [
    'v=0',
    `o=- ${options.sessionId} 1 IN ${ipVersion} ${options.address}`,
    // The camera id is ours (a slug), but keep the line printable whatever it is.
    `s=${options.name.replace(/[^\x20-\x7e]/g, '_') || 'camera'}`,
    `c=IN ${ipVersion} ${ipVersion === 'IP6' ? '::' : '0.0.0.0'}`,
    't=0 0',
    'a=tool:homebridge-webrtc-cameras',
    'a=range:npt=0-',
  ];
  for (const track of options.tracks) {
    lines.push(`m=${track.kind} 0 RTP/AVP ${track.payloadType}`);
    lines.push(`a=rtpmap:${track.payloadType} ${rtpmap(track)}`);
    if (track.fmtp) lines.push(`a=fmtp:${track.payloadType} ${track.fmtp}`);
    lines.push(`a=control:trackID=${track.trackId}`);
  }
  return `${lines.join('\r\n')}\r\n`;
}
