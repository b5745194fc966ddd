/**
 * What the page is told about a viewer's stream (`StreamInfo`: codecs, picture size, notes), and
 * noticing when the picture size changes mid-stream so the page is told again, once.
 */
import { parseH264Sps } from '../media/h264-sps.js';
import { parseH265Sps } from '../media/h265-sps.js';
import type { MediaFrame } from '../media/types.js';
import type { MediaPlan } from './codecs.js';
import type { StreamInfo } from './types.js';

/** A sequence parameter set of either codec, and the picture size it gives. */
function isSps(h265: boolean, nal: Buffer): boolean {
  return nal.length > 0 && (h265 ? ((nal[0]! >> 1) & 0x3f) === 33 : (nal[0]! & 0x1f) === 7);
}

function pictureOf(h265: boolean, sps: Buffer): { width: number; height: number } | undefined {
  return h265 ? parseH265Sps(sps) : parseH264Sps(sps);
}

/** The info for a media plan, with the picture size from the SPS the camera announced, when known. */
export function streamInfoFor(plan: MediaPlan): StreamInfo {
  const info: StreamInfo = { codec: plan.video ? plan.video.codec : null, audio: plan.audio ? plan.audio.codec : null };
  const h265 = plan.video?.codec === 'H265';
  const sps = plan.video?.track.parameterSets?.find((nal) => isSps(h265, nal));
  const parsed = sps ? pictureOf(h265, sps) : undefined;
  if (parsed) {
    info.width = parsed.width;
    info.height = parsed.height;
  }
  if (plan.notes.length > 0) info.message = plan.notes.join(' ');
  return info;
}

/** Remembers what the page was told and reports a keyframe whose SPS gives another picture size. */
export class ResolutionWatch {
  private sent: StreamInfo | undefined;
  private lastSps: Buffer | undefined;

  /** Records what the page was told, so a resolution change is reported once. */
  markSent(info: StreamInfo): void {
    this.sent = info;
  }

  /** The new info to tell the page after this keyframe (`currentInfo` gives the rest of it), or undefined when nothing changed. */
  check(frame: MediaFrame, currentInfo: () => StreamInfo | undefined): StreamInfo | undefined {
    // Cheap: one byte per unit; the SPS is parsed only when its bytes differ from the last one.
    const h265 = frame.codec === 'H265';
    const sps = frame.units.find((u) => isSps(h265, u));
    if (!sps) return undefined;
    const info = this.sent;
    if (info && this.lastSps && this.lastSps.equals(sps)) return undefined;
    this.lastSps = sps;
    const parsed = pictureOf(h265, sps);
    const base = currentInfo();
    if (!parsed || !base) return undefined;
    if (info && info.width === parsed.width && info.height === parsed.height) return undefined;
    const next: StreamInfo = { ...base, width: parsed.width, height: parsed.height };
    this.sent = next;
    return next;
  }
}
