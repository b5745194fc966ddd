/**
 * The parts of opening a session that only read answers: which methods the camera lists, where a
 * 3xx points (validated: RTSP only, no loops, a bounded number of hops), and which of the SDP's
 * tracks are played (the first video and, unless turned off, the first audio).
 */
import type { Logger } from '../util/logger.js';
import type { RtspResponse } from './connection.js';
import type { RtspErrorFactory } from './errors.js';
import { describeTracks, parseSdp, SdpError, type DescribedTrack, type SessionDescription } from './sdp.js';
import { baseUrlFor, displayUrl, parseRtspUrl, resolveControlUrl } from './url.js';

export function isRedirect(status: number): boolean {
  return status >= 300 && status < 400;
}

/** The methods an OPTIONS answer lists in `Public`, upper-cased. */
export function publicMethodsOf(response: RtspResponse): Set<string> {
  return new Set(
    (response.headers.get('public') ?? '')
      .split(',')
      .map((m) => m.trim().toUpperCase())
      .filter(Boolean),
  );
}

/** Validates a 3xx and returns where it points; `visited` gains the new URL. */
export function redirectTarget(
  errors: RtspErrorFactory,
  method: string,
  response: RtspResponse,
  currentUrl: string,
  hops: { hop: number; max: number; visited: Set<string> },
): string {
  const location = response.headers.get('location')?.trim();
  const d = { status: response.status, method };
  if (!location) throw errors.create('redirect', `${method} answered ${response.status} without a Location`, d);
  let resolved: string;
  try {
    resolved = new URL(location, currentUrl).toString();
  } catch {
    throw errors.create('redirect', `${method} redirected to an invalid Location "${displayUrl(location)}"`, d);
  }
  if (!/^rtsps?:\/\//i.test(resolved)) {
    throw errors.create('redirect', `${method} redirected to a non-RTSP URL ${displayUrl(resolved)}`, d);
  }
  let clean: string;
  try {
    clean = parseRtspUrl(resolved).url;
  } catch {
    throw errors.create('redirect', `${method} redirected to an unusable URL ${displayUrl(resolved)}`, d);
  }
  if (hops.visited.has(clean)) throw errors.create('redirect', `redirect loop: ${displayUrl(clean)} was already visited`, d);
  if (hops.hop + 1 > hops.max) throw errors.create('redirect', `more than ${hops.max} redirects`, d);
  hops.visited.add(clean);
  return resolved;
}

/**
 * The SDP of a DESCRIBE answer, the base for its relative control URLs (Content-Base, then
 * Content-Location, then the request URL) and the aggregate control URL for PLAY. A broken SDP is
 * a 'protocol' RtspError.
 */
export function readDescribedSdp(
  describe: RtspResponse & { url: string },
  errors: RtspErrorFactory,
  log: Logger,
): { sdp: SessionDescription; baseUrl: string; aggregateUrl: string } {
  const contentType = describe.headers.get('content-type');
  if (contentType && !/application\/sdp/i.test(contentType)) {
    log.debug(`DESCRIBE answered Content-Type ${contentType}; trying to read it as SDP anyway`);
  }
  let sdp;
  try {
    sdp = parseSdp(describe.body.toString('utf8'));
  } catch (err) {
    if (err instanceof SdpError) throw errors.create('protocol', `the camera's SDP is broken: ${err.message}`, { method: 'DESCRIBE', cause: err });
    throw err;
  }
  const baseUrl = baseUrlFor(describe.url, describe.headers.get('content-base'), describe.headers.get('content-location'));
  const aggregateUrl = sdp.control && sdp.control !== '*' ? resolveControlUrl(baseUrl, sdp.control) : baseUrl;
  return { sdp, baseUrl, aggregateUrl };
}

/** The tracks to set up from a DESCRIBE answer, and the aggregate control URL for PLAY. */
export function selectTracks(
  describe: RtspResponse & { url: string },
  wantAudio: boolean,
  errors: RtspErrorFactory,
  log: Logger,
): { selected: DescribedTrack[]; aggregateUrl: string } {
  const { sdp, baseUrl, aggregateUrl } = readDescribedSdp(describe, errors, log);
  const { tracks, skipped } = describeTracks(sdp, baseUrl);
  for (const s of skipped) log.info(`skipping track ${s.mediaIndex} (${s.format}): ${s.reason}`);

  const video = tracks.find((t) => t.kind === 'video');
  const audio = wantAudio ? tracks.find((t) => t.kind === 'audio') : undefined;
  for (const t of tracks) {
    if (t === video || t === audio) continue;
    const why = t.kind === 'audio' && !wantAudio ? 'audio is turned off' : `only one ${t.kind} track is played`;
    log.info(`skipping track ${t.mediaIndex} (${t.kind}/${t.codec}): ${why}`);
  }
  const selected = [video, audio].filter((t): t is DescribedTrack => t !== undefined);
  if (selected.length === 0) {
    const offered = [...tracks.map((t) => `${t.kind}/${t.codec}`), ...skipped.map((s) => s.format)].join(', ') || 'nothing';
    throw errors.create('unsupported', `no playable track (the camera offers ${offered})`, { method: 'DESCRIBE' });
  }
  return { selected, aggregateUrl };
}
