/**
 * H.265 SPS parsing (ITU-T H.265 7.3.2.2), as far as the picture size: enough for stats and for a
 * transcoder to size its output. Frame rate is measured by the Source instead of read from VUI,
 * which in H.265 sits behind several variable-length structures.
 */
import { BitReader, unescapeRbsp } from './bit-reader.js';

export interface H265SpsInfo {
  profileIdc: number;
  tierFlag: boolean;
  levelIdc: number;
  profileName: string;
  /** general_level_idc / 30, e.g. 4.1. */
  level: number;
  chromaFormatIdc: number;
  bitDepthLuma: number;
  width: number;
  height: number;
}

export function h265ProfileName(profileIdc: number): string {
  switch (profileIdc) {
    case 1: return 'Main';
    case 2: return 'Main 10';
    case 3: return 'Main Still Picture';
    case 4: return 'Range Extensions';
    default: return `profile ${profileIdc}`;
  }
}

export function parseH265Sps(nal: Buffer): H265SpsInfo | undefined {
  if (nal.length < 4 || ((nal[0]! >> 1) & 0x3f) !== 33) return undefined;
  try {
    const r = new BitReader(unescapeRbsp(nal), 2);
    r.skip(4); // sps_video_parameter_set_id
    const maxSubLayersMinus1 = r.u(3);
    r.skip(1); // sps_temporal_id_nesting_flag
    // profile_tier_level(1, maxSubLayersMinus1)
    r.skip(2); // general_profile_space
    const tierFlag = r.flag();
    const profileIdc = r.u(5);
    r.skip(32 + 4 + 43 + 1); // compatibility flags, source flags, constraint bits, inbld/reserved
    const levelIdc = r.u(8);
    const profilePresent: boolean[] = [];
    const levelPresent: boolean[] = [];
    for (let i = 0; i < maxSubLayersMinus1; i++) {
      profilePresent.push(r.flag());
      levelPresent.push(r.flag());
    }
    if (maxSubLayersMinus1 > 0) r.skip(2 * (8 - maxSubLayersMinus1));
    for (let i = 0; i < maxSubLayersMinus1; i++) {
      if (profilePresent[i]) r.skip(88);
      if (levelPresent[i]) r.skip(8);
    }
    r.ue(); // sps_seq_parameter_set_id
    const chromaFormatIdc = r.ue();
    let separateColourPlane = false;
    if (chromaFormatIdc === 3) separateColourPlane = r.flag();
    let width = r.ue();
    let height = r.ue();
    if (r.flag()) {
      const left = r.ue();
      const right = r.ue();
      const top = r.ue();
      const bottom = r.ue();
      const chroma = separateColourPlane ? 0 : chromaFormatIdc;
      const subWidthC = chroma === 1 || chroma === 2 ? 2 : 1;
      const subHeightC = chroma === 1 ? 2 : 1;
      width -= subWidthC * (left + right);
      height -= subHeightC * (top + bottom);
    }
    const bitDepthLuma = r.ue() + 8;
    return {
      profileIdc,
      tierFlag,
      levelIdc,
      profileName: h265ProfileName(profileIdc),
      level: Math.round((levelIdc / 30) * 10) / 10,
      chromaFormatIdc,
      bitDepthLuma,
      width,
      height,
    };
  } catch {
    return undefined;
  }
}
