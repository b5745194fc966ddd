/**
 * Turns depacketised H.264/H.265 access units into frames a fresh decoder can use: tracks the
 * parameter sets (from the SDP and in-band), marks keyframes only when their parameter sets are
 * known, puts the parameter sets in front of any keyframe that lacks them (many cameras send them
 * only with some IDRs, or only in the SDP), and gives each frame the packetizer that cuts it for
 * WebRTC (the Source cuts it once, when somebody first reads its packets).
 */
import type { TrackDescription, VideoCodecName } from './types.js';
import type { NalPacketizer } from './nal-packetizer.js';
import type { AccessUnit, DepacketizerCounters, NalAssembler } from './nal-assembler.js';
import type { FrameCallback, TrackPipeline } from './pipeline.js';
import type { RtpPacketView } from './types.js';
import { H264Depacketizer, H264_NAL } from './h264-depacketizer.js';
import { packetizeH264 } from './h264-packetizer.js';
import { parseH264Sps } from './h264-sps.js';
import { H265Depacketizer, H265_NAL, isH265Irap } from './h265-depacketizer.js';
import { packetizeH265 } from './h265-packetizer.js';
import { parseH265Sps } from './h265-sps.js';

/** What the SPS says about the stream, codec-neutral, for stats and for choosing what to offer. */
export interface VideoInfo {
  width: number;
  height: number;
  profileName: string;
  profileIdc: number;
  levelIdc: number;
  level: number;
  /** H.264 only: the SDP profile-level-id (6 hex digits). */
  profileLevelId?: string;
  /** H.264 only, from VUI timing info. */
  fps?: number;
}

type ParamKind = 0 | 1 | 2; // VPS, SPS, PPS: also the order they must appear in

interface CodecTraits {
  codec: VideoCodecName;
  nalType(nal: Buffer): number;
  paramKind(type: number): ParamKind | undefined;
  isKeyframe(type: number): boolean;
  isAud(type: number): boolean;
  required: ReadonlyArray<ParamKind>;
  parseSps(nal: Buffer): VideoInfo | undefined;
  packetize: NalPacketizer;
  depacketizer(onAccessUnit: (au: AccessUnit) => void, track: TrackDescription): NalAssembler;
}

/** The SPS fields both codecs report, copied out of the parser's result. */
function spsInfo(sps: Pick<VideoInfo, 'width' | 'height' | 'profileName' | 'profileIdc' | 'levelIdc' | 'level'>): VideoInfo {
  return { width: sps.width, height: sps.height, profileName: sps.profileName, profileIdc: sps.profileIdc, levelIdc: sps.levelIdc, level: sps.level };
}

const H264_TRAITS: CodecTraits = {
  codec: 'H264',
  nalType: (nal) => nal[0]! & 0x1f,
  paramKind: (type) => (type === H264_NAL.SPS ? 1 : type === H264_NAL.PPS ? 2 : undefined),
  isKeyframe: (type) => type === H264_NAL.IDR,
  isAud: (type) => type === H264_NAL.AUD,
  required: [1, 2],
  parseSps: (nal) => {
    const sps = parseH264Sps(nal);
    if (!sps) return undefined;
    const info: VideoInfo = { ...spsInfo(sps), profileLevelId: sps.profileLevelId };
    if (sps.fps !== undefined) info.fps = sps.fps;
    return info;
  },
  packetize: packetizeH264,
  depacketizer: (onAccessUnit) => new H264Depacketizer(onAccessUnit),
};

const H265_TRAITS: CodecTraits = {
  codec: 'H265',
  nalType: (nal) => (nal[0]! >> 1) & 0x3f,
  paramKind: (type) => (type === H265_NAL.VPS ? 0 : type === H265_NAL.SPS ? 1 : type === H265_NAL.PPS ? 2 : undefined),
  isKeyframe: isH265Irap,
  isAud: (type) => type === H265_NAL.AUD,
  required: [0, 1, 2],
  parseSps: (nal) => {
    const sps = parseH265Sps(nal);
    return sps && spsInfo(sps);
  },
  packetize: packetizeH265,
  depacketizer: (onAccessUnit, track) =>
    new H265Depacketizer(onAccessUnit, Number.parseInt(track.fmtp['sprop-max-don-diff'] ?? '0', 10) > 0),
};

/** Parameter sets announced in the SDP: `parameterSets`, or H.265's sprop-vps/sps/pps. */
export function sdpParameterSets(track: TrackDescription): Buffer[] {
  if (track.parameterSets && track.parameterSets.length > 0) return track.parameterSets;
  const out: Buffer[] = [];
  const keys = track.codec === 'H265' ? ['sprop-vps', 'sprop-sps', 'sprop-pps'] : ['sprop-parameter-sets'];
  for (const key of keys) {
    for (const part of (track.fmtp[key] ?? '').split(',')) {
      const trimmed = part.trim();
      if (trimmed) out.push(Buffer.from(trimmed, 'base64'));
    }
  }
  return out.filter((nal) => nal.length > 0);
}

export class VideoPipeline implements TrackPipeline {
  readonly kind = 'video' as const;
  readonly codec: VideoCodecName;
  private readonly traits: CodecTraits;
  private readonly depacketizer: NalAssembler;
  /** Latest VPS/SPS/PPS, indexed by ParamKind; owned copies. */
  private readonly params: Array<Buffer | undefined> = [undefined, undefined, undefined];
  private currentInfo: VideoInfo | undefined;

  /**
   * `onParameterSetsChanged` fires when in-band parameter sets differ from what we knew (first
   * ones, or a resolution change): the Source then publishes updated tracks.
   */
  constructor(
    track: TrackDescription,
    private readonly onFrame: FrameCallback,
    private readonly onParameterSetsChanged: () => void = () => undefined,
  ) {
    if (track.codec !== 'H264' && track.codec !== 'H265') throw new TypeError(`not a video codec: ${track.codec}`);
    this.codec = track.codec;
    this.traits = track.codec === 'H264' ? H264_TRAITS : H265_TRAITS;
    this.depacketizer = this.traits.depacketizer((au) => this.onAccessUnit(au), track);
    for (const nal of sdpParameterSets(track)) this.learnParameterSet(nal);
  }

  get counters(): DepacketizerCounters {
    return this.depacketizer.counters;
  }

  /** Resolution, profile and level from the latest SPS. */
  get info(): VideoInfo | undefined {
    return this.currentInfo;
  }

  /** Current parameter sets in decoding order (VPS, SPS, PPS; H.264 has no VPS). */
  parameterSets(): Buffer[] {
    return this.params.filter((p): p is Buffer => p !== undefined);
  }

  push(packet: RtpPacketView, lossBefore: boolean): void {
    this.depacketizer.push(packet, lossBefore);
  }

  flush(): void {
    this.depacketizer.flush();
  }

  reset(): void {
    this.depacketizer.reset();
  }

  /** Returns true when the parameter set differs from the one we had. */
  private learnParameterSet(nal: Buffer): boolean {
    if (nal.length < 2) return false;
    const kind = this.traits.paramKind(this.traits.nalType(nal));
    if (kind === undefined) return false;
    const known = this.params[kind];
    if (known && known.equals(nal)) return false;
    // Copy: `nal` is a view into a whole access unit we should not keep alive for this.
    this.params[kind] = Buffer.from(nal);
    if (kind === 1) this.currentInfo = this.traits.parseSps(nal) ?? this.currentInfo;
    return true;
  }

  private onAccessUnit(au: AccessUnit): void {
    const traits = this.traits;
    let units = au.units;
    let hasKeyframeNal = false;
    let present = 0;
    let changed = false;
    for (let i = 0; i < units.length; i++) {
      const unit = units[i]!;
      const type = traits.nalType(unit);
      if (traits.isKeyframe(type)) {
        hasKeyframeNal = true;
        continue;
      }
      const kind = traits.paramKind(type);
      if (kind !== undefined) {
        present |= 1 << kind;
        if (this.learnParameterSet(unit)) changed = true;
      }
    }
    if (changed) this.onParameterSetsChanged();
    let keyframe = false;
    if (hasKeyframeNal) {
      let missing = false;
      let known = true;
      for (const kind of traits.required) {
        if (!(present & (1 << kind))) missing = true;
        if (!this.params[kind]) known = false;
      }
      // A keyframe is only one when a fresh decoder can start there, i.e. its parameter sets exist.
      keyframe = known;
      if (known && missing) units = this.withParameterSets(units);
    }
    let byteLength = au.byteLength;
    if (units !== au.units) {
      byteLength = 0;
      for (const unit of units) byteLength += unit.length;
    }
    this.onFrame({
      timestamp: au.timestamp,
      keyframe,
      units,
      cut: traits.packetize,
      byteLength,
      damaged: au.damaged,
    });
  }

  /**
   * Rebuilds the unit list as AUD (if any), every parameter set in order, then the rest without
   * the partial in-band parameter sets, so a decoder never sees a PPS before its SPS.
   */
  private withParameterSets(units: Buffer[]): Buffer[] {
    const out: Buffer[] = [];
    let start = 0;
    if (units.length > 0 && this.traits.isAud(this.traits.nalType(units[0]!))) {
      out.push(units[0]!);
      start = 1;
    }
    out.push(...this.parameterSets());
    for (let i = start; i < units.length; i++) {
      if (this.traits.paramKind(this.traits.nalType(units[i]!)) === undefined) out.push(units[i]!);
    }
    return out;
  }
}
