/**
 * Maps a camera's Source (state, tracks, live statistics) to the JSON the API and the page use.
 * The JSON is for any viewer, so it is built field by field from an allow-list: nothing the camera's
 * configuration holds (URL, host, user, password) can slip into it, and error texts lose their URLs.
 */
import type { SourceStateName } from '../media/types.js';
import { redactText } from '../util/redact.js';
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

/**
 * The figures read from a Source's `stats()` (src/media/source.ts `SourceStats`). They are read
 * structurally and only when they are finite numbers, so a registry entry that is not a full Source
 * (a transcoded variant, a test fake) simply shows `null` for what it does not know.
 */
export interface SourceStatsLike {
  width?: unknown;
  height?: unknown;
  fps?: unknown;
  bitrateKbps?: unknown;
  /** Bits per second, as src/media's `SourceStats` counts it. */
  bitrateBps?: unknown;
  /** The video codec (or audio codec of an audio-only camera), known before `tracks` in some states. */
  codec?: unknown;
  viewers?: unknown;
  subscribers?: unknown;
}

/**
 * A URL in running text. It stops at a bracket or quote and gives back trailing punctuation, so that
 * 'Camera "Front" (rtsp://host/x): refused' keeps its ')' and ':' (IPv6 hosts keep their [ ]).
 */
const URL_ANYWHERE = /\b[a-z][a-z0-9+.-]*:\/\/[^\s()<>"']+/gi;

/** An error text fit for any viewer: URLs are replaced (they name hosts and users) and secrets masked. */
export function publicErrorText(text: string | undefined, secrets: Iterable<string> = []): string | null {
  if (!text) return null;
  const redacted = redactText(text, [...secrets]).replace(URL_ANYWHERE, (url) => `<camera url>${/[.,;:!?]+$/.exec(url)?.[0] ?? ''}`);
  // A long stack or ffmpeg dump helps nobody on a phone; the log has the full story.
  return redacted.length > 300 ? `${redacted.slice(0, 297)}...` : redacted;
}

function finite(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null;
}

/** Reads `stats()` / `getStats()` / `stats` from a Source when it offers one, without trusting its type. */
export function readSourceStats(source: BroadcastSource): SourceStatsLike {
  const candidate = source as unknown as Record<string, unknown>;
  try {
    for (const key of ['stats', 'getStats']) {
      const member = candidate[key];
      const value: unknown = typeof member === 'function' ? (member as () => unknown).call(source) : member;
      if (value && typeof value === 'object') return value as SourceStatsLike;
    }
  } catch {
    // A stats getter that throws must not take the camera list down with it.
  }
  return {};
}

/** The display name: the registry's extras first, then a `name` the Source carries, then the id. */
function displayName(source: BroadcastSource, extras: CameraExtras | undefined): string {
  if (extras?.name) return extras.name;
  const own = (source as unknown as { name?: unknown }).name;
  return typeof own === 'string' && own.length > 0 ? own : source.id;
}

export function toCameraStatus(
  source: BroadcastSource,
  extras?: CameraExtras,
  secrets: Iterable<string> = [],
): CameraStatus {
  const stats = readSourceStats(source);
  const video = source.tracks.find((track) => track.kind === 'video');
  const audio = source.tracks.find((track) => track.kind === 'audio');
  const bps = finite(stats.bitrateBps);
  const bitrateKbps = finite(stats.bitrateKbps) ?? (bps === null ? null : bps / 1000);
  const state = source.state;
  const live = state.state === 'live';
  return {
    id: source.id,
    name: displayName(source, extras),
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
    viewers: finite(extras?.viewers) ?? finite(stats.viewers) ?? finite(stats.subscribers) ?? 0,
    retryInMs: state.state === 'retrying' ? finite(state.retryInMs) : null,
  };
}
