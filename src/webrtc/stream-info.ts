/**
 * What the page is told about a viewer's stream (`StreamInfo`: codecs, picture size, notes), and
 * noticing when the picture size changes mid-stream so the page is told again, once.
 */
import { parseH264Sps } from '../media/h264-sps.js';
import type { MediaFrame } from '../media/types.js';
import type { MediaPlan } from './codecs.js';
import type { StreamInfo } from './types.js';

/** The info for a media plan, with the picture size from the SPS the camera announced, when known. */
export function streamInfoFor(plan: MediaPlan): StreamInfo {
  const info: StreamInfo = { codec: plan.video ? plan.video.codec : null, audio: plan.audio ? plan.audio.codec : null };
  const sps = plan.video?.track.parameterSets?.find((nal) => nal.length > 0 && (nal[0]! & 0x1f) === 7);
  const parsed = sps ? parseH264Sps(sps) : undefined;
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
    const sps = frame.units.find((u) => u.length > 0 && (u[0]! & 0x1f) === 7);
    if (!sps) return undefined;
    const info = this.sent;
    if (info && this.lastSps && this.lastSps.equals(sps)) return undefined;
    this.lastSps = sps;
    const parsed = parseH264Sps(sps);
    const base = currentInfo();
    if (!parsed || !base) return undefined;
    if (info && info.width === parsed.width && info.height === parsed.height) return undefined;
    const next: StreamInfo = { ...base, width: parsed.width, height: parsed.height };
    this.sent = next;
    return next;
  }
}
