/**
 * Maps a camera's Source (state, tracks, live statistics) to the JSON the API and the page use.
 * The JSON is for any viewer, so it is built field by field from an allow-list: nothing the camera's
 * configuration holds (URL, host, user, password) can slip into it, and error texts lose their URLs.
 */
import { publicErrorText } from '../access/public-error.js';
import type { SourceStateName, SourceStats } from '../media/types.js';
import type { BroadcastSource, CameraExtras } from './types.js';

export interface CameraStatus {
  id: string;
  name: string;
  state: SourceStateName;
  /** Why the camera is not live, without URLs or secrets; `null` when there is nothing to say. */
  lastError: string | null;
  /** Video codec (`H264`, `H265`), `null` before the first connect. */
  codec: string | null;
  width: number | null;
  height: number | null;
  fps: number | null;
  bitrateKbps: number | null;
  /** Audio codec (`PCMU`...) or `null` when the camera sends none. */
  audio: string | null;
  viewers: number;
  /** When retrying: ms until the next attempt. */
  retryInMs: number | null;
}

function finite(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null;
}

/**
 * The Source's statistics. A registry entry that is not a full Source (a transcoded variant, a test
 * fake) may lack a figure or give a malformed one: each is used only when it is a finite number, and
 * a `stats()` that throws must not take the camera list down with it.
 */
function readStats(source: BroadcastSource): Partial<SourceStats> {
  try {
    return source.stats();
  } catch {
    return {};
  }
}

/** The display name: the registry's extras first, then the name the Source carries, then the id. */
function displayName(source: BroadcastSource, stats: Partial<SourceStats>, extras: CameraExtras | undefined): string {
  if (extras?.name) return extras.name;
  return typeof stats.name === 'string' && stats.name.length > 0 ? stats.name : source.id;
}

export function toCameraStatus(
  source: BroadcastSource,
  extras?: CameraExtras,
  secrets: Iterable<string> = [],
): CameraStatus {
  const stats = readStats(source);
  const video = source.tracks.find((track) => track.kind === 'video');
  const audio = source.tracks.find((track) => track.kind === 'audio');
  const bps = finite(stats.bitrateBps);
  const bitrateKbps = bps === null ? null : bps / 1000;
  const state = source.state;
  const live = state.state === 'live';
  return {
    id: source.id,
    name: displayName(source, stats, extras),
    state: state.state,
    lastError: state.state === 'live' ? null : publicErrorText(state.lastError, secrets),
    codec: video?.codec ?? (typeof stats.codec === 'string' && /^H26[45]$/.test(stats.codec) ? stats.codec : null),
    width: finite(stats.width),
    height: finite(stats.height),
    // Rates are measured over the last seconds; once the camera is down they only decay, so they are
    // shown while live and nowhere else (the resolution is the last known one and stays).
    fps: live ? finite(stats.fps) : null,
    bitrateKbps: live && bitrateKbps !== null ? Math.round(bitrateKbps) : null,
    audio: audio?.codec ?? null,
    viewers: finite(extras?.viewers) ?? finite(stats.subscribers) ?? 0,
    retryInMs: state.state === 'retrying' ? finite(state.retryInMs) : null,
  };
}
