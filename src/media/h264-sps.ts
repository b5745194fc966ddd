/**
 * H.264 sequence parameter set parsing (ITU-T H.264 7.3.2.1). The Source reports what the camera
 * really sends (resolution, profile, level, frame rate), which is what users need when a browser
 * shows black; the WebRTC side uses `profileLevelId` to choose what to offer.
 */
import { BitReader, unescapeRbsp } from './bit-reader.js';

export interface H264SpsInfo {
  spsId: number;
  profileIdc: number;
  /** The constraint_set0..5 flags byte as sent (bit 7 = constraint_set0_flag). */
  constraintFlags: number;
  levelIdc: number;
  /** e.g. "High", "Constrained Baseline". */
  profileName: string;
  /** e.g. 3.1; 1b is reported as 1.1 with `constraintFlags` bit 4 set, as the standard encodes it. */
  level: number;
  /** The 6 hex digits SDP uses (profile_idc, constraint byte, level_idc), e.g. "640028". */
  profileLevelId: string;
  chromaFormatIdc: number;
  bitDepthLuma: number;
  bitDepthChroma: number;
  /** Displayed size, after frame cropping. */
  width: number;
  height: number;
  frameMbsOnly: boolean;
  /** From VUI timing info when present (time_scale / (2 * num_units_in_tick)). */
  fps?: number;
  sarWidth?: number;
  sarHeight?: number;
}

/** Profiles whose SPS carries chroma format, bit depth and scaling matrices (7.3.2.1.1). */
const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

/** Table E-1: the predefined sample aspect ratios. */
const SAR_TABLE: ReadonlyArray<readonly [number, number]> = [
  [0, 0], [1, 1], [12, 11], [10, 11], [16, 11], [40, 33], [24, 11], [20, 11], [32, 11],
  [80, 33], [18, 11], [15, 11], [64, 33], [160, 99], [4, 3], [3, 2], [2, 1],
];

export function h264ProfileName(profileIdc: number, constraintFlags: number): string {
  switch (profileIdc) {
    case 66: return constraintFlags & 0x40 ? 'Constrained Baseline' : 'Baseline';
    case 77: return 'Main';
    case 88: return 'Extended';
    case 100: return constraintFlags & 0x0c ? 'Constrained High' : 'High';
    case 110: return 'High 10';
    case 122: return 'High 4:2:2';
    case 244: return 'High 4:4:4 Predictive';
    case 44: return 'CAVLC 4:4:4 Intra';
    default: return `profile ${profileIdc}`;
  }
}

function skipScalingList(reader: BitReader, size: number): void {
  let lastScale = 8;
  let nextScale = 8;
  for (let j = 0; j < size; j++) {
    if (nextScale !== 0) {
      const delta = reader.se();
      nextScale = (lastScale + delta + 256) % 256;
    }
    lastScale = nextScale === 0 ? lastScale : nextScale;
  }
}

/**
 * Parses an SPS NAL unit (with its one-byte NAL header, without start code). Returns undefined when
 * the bytes are not an SPS or are truncated/corrupt, never throws.
 */
export function parseH264Sps(nal: Buffer): H264SpsInfo | undefined {
  if (nal.length < 4 || (nal[0]! & 0x1f) !== 7) return undefined;
  try {
    return parseSpsRbsp(unescapeRbsp(nal));
  } catch {
    return undefined;
  }
}

function parseSpsRbsp(rbsp: Buffer): H264SpsInfo {
  const r = new BitReader(rbsp, 1);
  const profileIdc = r.u(8);
  const constraintFlags = r.u(8);
  const levelIdc = r.u(8);
  const spsId = r.ue();
  let chromaFormatIdc = 1;
  let separateColourPlane = false;
  let bitDepthLuma = 8;
  let bitDepthChroma = 8;
  if (HIGH_PROFILES.has(profileIdc)) {
    chromaFormatIdc = r.ue();
    if (chromaFormatIdc === 3) separateColourPlane = r.flag();
    bitDepthLuma = r.ue() + 8;
    bitDepthChroma = r.ue() + 8;
    r.skip(1); // qpprime_y_zero_transform_bypass_flag
    if (r.flag()) {
      const lists = chromaFormatIdc !== 3 ? 8 : 12;
      for (let i = 0; i < lists; i++) {
        if (r.flag()) skipScalingList(r, i < 6 ? 16 : 64);
      }
    }
  }
  r.ue(); // log2_max_frame_num_minus4
  const picOrderCntType = r.ue();
  if (picOrderCntType === 0) {
    r.ue(); // log2_max_pic_order_cnt_lsb_minus4
  } else if (picOrderCntType === 1) {
    r.skip(1); // delta_pic_order_always_zero_flag
    r.se(); // offset_for_non_ref_pic
    r.se(); // offset_for_top_to_bottom_field
    const cycle = r.ue();
    if (cycle > 255) throw new Error('num_ref_frames_in_pic_order_cnt_cycle out of range');
    for (let i = 0; i < cycle; i++) r.se();
  }
  r.ue(); // max_num_ref_frames
  r.skip(1); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = r.ue() + 1;
  const heightMapUnits = r.ue() + 1;
  const frameMbsOnly = r.flag();
  if (!frameMbsOnly) r.skip(1); // mb_adaptive_frame_field_flag
  r.skip(1); // direct_8x8_inference_flag
  let width = widthMbs * 16;
  let height = (frameMbsOnly ? 1 : 2) * heightMapUnits * 16;
  if (r.flag()) {
    const left = r.ue();
    const right = r.ue();
    const top = r.ue();
    const bottom = r.ue();
    // Crop units depend on chroma subsampling (7-19..7-22).
    const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
    const subWidthC = chromaArrayType === 1 || chromaArrayType === 2 ? 2 : 1;
    const subHeightC = chromaArrayType === 1 ? 2 : 1;
    const cropUnitX = chromaArrayType === 0 ? 1 : subWidthC;
    const cropUnitY = (chromaArrayType === 0 ? 1 : subHeightC) * (frameMbsOnly ? 1 : 2);
    width -= (left + right) * cropUnitX;
    height -= (top + bottom) * cropUnitY;
  }
  const info: H264SpsInfo = {
    spsId,
    profileIdc,
    constraintFlags,
    levelIdc,
    profileName: h264ProfileName(profileIdc, constraintFlags),
    level: levelIdc / 10,
    profileLevelId: [profileIdc, constraintFlags, levelIdc].map((v) => v.toString(16).padStart(2, '0')).join(''),
    chromaFormatIdc,
    bitDepthLuma,
    bitDepthChroma,
    width,
    height,
    frameMbsOnly,
  };
  if (r.bitsLeft > 0 && r.flag()) parseVui(r, info);
  return info;
}

/** Reads the VUI up to the timing info, which is all we need; a truncated VUI just leaves fps unset. */
function parseVui(r: BitReader, info: H264SpsInfo): void {
  try {
    if (r.flag()) {
      const idc = r.u(8);
      if (idc === 255) {
        info.sarWidth = r.u(16);
        info.sarHeight = r.u(16);
      } else if (idc > 0 && idc < SAR_TABLE.length) {
        [info.sarWidth, info.sarHeight] = SAR_TABLE[idc]!;
      }
    }
    if (r.flag()) r.skip(1); // overscan_appropriate_flag
    if (r.flag()) {
      r.skip(4); // video_format, video_full_range_flag
      if (r.flag()) r.skip(24); // colour primaries, transfer, matrix
    }
    if (r.flag()) {
      r.ue();
      r.ue();
    }
    if (r.flag()) {
      const unitsInTick = r.u(32);
      const timeScale = r.u(32);
      if (unitsInTick > 0 && timeScale > 0) info.fps = timeScale / (2 * unitsInTick);
    }
  } catch {
    // VUI is optional information; a broken one must not hide the resolution we already have.
  }
}
