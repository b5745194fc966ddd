/**
 * WHEP (draft-ietf-wish-whep) without HTTP plumbing: src/web routes `POST /whep/<camera>`,
 * `DELETE` and `PATCH /whep/<camera>/<session>` here after its own checks (ids, media type, size,
 * authentication), and writes back the `{status, headers, body}` answers.
 *
 * This is the client-offer path, so the offer is cleaned before werift sees it (sdp-filter.ts:
 * one H.264 packetization-mode=1 payload type per video section). A client that offers VP8 but no
 * usable H.264, or any VP8 client of an H.265 camera, is answered from the camera's VP8 variant. The answer is returned once ICE
 * gathering completed (bounded wait), so clients without trickle get every candidate. PATCH accepts
 * trickled candidates (application/trickle-ice-sdpfrag); ICE restarts are refused.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { canWatch, type CallerContext } from '../access/principal.js';
import type { BroadcastSource } from '../media/types.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { refusalLog } from '../util/summary-log.js';
import { UnsupportedCodecError } from './codecs.js';
import { DEFAULT_ICE_SETTINGS, type IceSettings } from './ice-config.js';
import { offeredVideoCodecs } from './sdp-filter.js';
import type { CameraRegistry, HandlerResponse, IceCandidateJson, WhepHandler } from './types.js';
import type { ViewerLimiter } from './viewer-limits.js';
import { ViewerPeer, warmUpWebRtc, type ViewerPeerOptions } from './viewer-peer.js';

export interface WhepContext {
  registry: CameraRegistry;
  limits: ViewerLimiter;
  ice?: IceSettings;
  logger?: Logger;
  /** Path prefix of the Location header (default `/whep`). */
  basePath?: string;
  /** How long a POST waits for a camera that has not connected yet (default 10 s). */
  tracksTimeoutMs?: number;
  /** How long a POST waits for ICE gathering before answering (default 3 s). */
  gatherTimeoutMs?: number;
  viewerOptions?: Omit<ViewerPeerOptions, 'source' | 'ice' | 'logger'>;
  onViewer?: (viewer: ViewerPeer) => void;
}

interface WhepSession {
  id: string;
  cameraId: string;
  owner: string;
  viewer: ViewerPeer;
  etag: string;
  remoteUfrag: string | undefined;
}

export interface WhepEndpoint extends WhepHandler {
  handlePatch(cameraId: string, sessionId: string, fragment: string, ctx: CallerContext): Promise<HandlerResponse>;
  /** Open sessions (stats, tests). */
  readonly sessionCount: number;
  /** Ends every session (shutdown). */
  closeAll(): Promise<void>;
}

function text(status: number, body: string, headers: Record<string, string> = {}): HandlerResponse {
  return { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', ...headers }, body };
}

/**
 * WebRTC media is DTLS-SRTP only: an offer without `a=fingerprint` (session level or in every media
 * section) cannot complete DTLS, so it would only hold a viewer slot until the connect timeout.
 * werift accepts such an offer and answers 201, so the check is ours.
 */
export function offerHasFingerprint(sdp: string): boolean {
  const lines = sdp.split(/\r?\n/);
  const fingerprint = /^a=fingerprint:\S+ [0-9A-Fa-f:]+\s*$/;
  const firstMedia = lines.findIndex((l) => l.startsWith('m='));
  const sessionLines = firstMedia < 0 ? lines : lines.slice(0, firstMedia);
  if (sessionLines.some((l) => fingerprint.test(l))) return true;
  if (firstMedia < 0) return false;
  let sectionHas = false;
  for (let i = firstMedia; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('m=')) {
      if (i !== firstMedia && !sectionHas) return false;
      sectionHas = false;
    } else if (fingerprint.test(line)) {
      sectionHas = true;
    }
  }
  return sectionHas;
}

function iceUfrag(sdp: string): string | undefined {
  return /^a=ice-ufrag:(\S+)/m.exec(sdp)?.[1];
}

/** Candidates of a trickle-ice-sdpfrag body (RFC 8840), with the mid they follow. */
export function parseSdpFragment(fragment: string): { ufrag?: string; candidates: IceCandidateJson[]; end: boolean } {
  let mid: string | null = null;
  let mLineIndex = -1;
  let ufrag: string | undefined;
  let end = false;
  const candidates: IceCandidateJson[] = [];
  for (const raw of fragment.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('m=')) {
      mLineIndex++;
      mid = null;
    } else if (line.startsWith('a=mid:')) {
      mid = line.slice(6);
    } else if (line.startsWith('a=ice-ufrag:')) {
      ufrag = line.slice(12);
    } else if (line.startsWith('a=candidate:')) {
      candidates.push({ candidate: line.slice(2), sdpMid: mid, sdpMLineIndex: Math.max(mLineIndex, 0) });
    } else if (line === 'a=end-of-candidates') {
      end = true;
    }
  }
  return { ...(ufrag !== undefined ? { ufrag } : {}), candidates, end };
}

export function createWhepHandler(ctx: WhepContext): WhepEndpoint {
  const log = ctx.logger ?? silentLogger;
  const basePath = ctx.basePath ?? '/whep';
  const sessions = new Map<string, WhepSession>();
  void warmUpWebRtc();

  const findSession = (cameraId: string, sessionId: string, caller: CallerContext): WhepSession | undefined => {
    const session = sessions.get(sessionId);
    if (!session || session.cameraId !== cameraId) return undefined;
    // Only whoever opened a session (or an admin) may end or change it.
    if (session.owner !== caller.principal.name && !caller.principal.admin) return undefined;
    return session;
  };

  return {
    get sessionCount() {
      return sessions.size;
    },

    async handlePost(cameraId, offer, caller) {
      if (!canWatch(caller.principal, cameraId)) return text(403, 'You may not watch this camera.');
      const main = ctx.registry.get(cameraId);
      if (!main) return text(404, 'There is no camera with this id.');
      if (!offerHasFingerprint(offer)) {
        return text(400, 'The SDP offer has no DTLS fingerprint (a=fingerprint); WebRTC media needs DTLS-SRTP.');
      }
      // A client that offers VP8 but no H.264 (packetization-mode=1) nor H.265 gets the camera's VP8 variant.
      const offered = offeredVideoCodecs(offer);
      const acceptsVp8 = offered.includes('VP8');
      const takesH264 = offered.includes('H264');
      // An H.265 camera's own video goes as it is to a client that offers H.265.
      const takesH265 = offered.includes('H265');
      const wantsVariant = acceptsVp8 && !takesH264 && !takesH265;
      const admission = ctx.limits.admit(cameraId, { principal: caller.principal.name, address: caller.remoteAddress });
      if ('refused' in admission && admission.refused === 'too-many-pending') {
        refusalLog(log).note('info', 'WHEP viewers refused: too many still connecting from one user or address', `Camera ${cameraId}: WHEP viewer refused, '${caller.principal.name}' or its address has ${ctx.limits.pendingLimit} viewers still connecting (web.maxConnectingViews)`);
        return text(429, 'Several of your camera views are still connecting. Wait a few seconds and try again.', { 'Retry-After': '5' });
      }
      const release = 'slot' in admission ? admission.slot : undefined;
      if (!release) {
        refusalLog(log).note('info', `Camera ${cameraId}: WHEP viewers refused at the viewer limit`, `Camera ${cameraId}: WHEP viewer refused, limit ${ctx.limits.limitFor(cameraId)} reached`);
        return text(503, 'Too many people are watching this camera right now.', { 'Retry-After': '30' });
      }
      const sessionId = randomUUID();
      let released = false;
      const releaseOnce = (): void => {
        if (released) return;
        released = true;
        release();
      };
      /** A viewer of `source` answering the offer: the answer, or the HTTP error to send. */
      const attempt = async (source: BroadcastSource): Promise<{ viewer: ViewerPeer; answer: string } | { refusal: UnsupportedCodecError } | HandlerResponse> => {
        const viewer = new ViewerPeer({ ...ctx.viewerOptions, source, ice: ctx.ice ?? DEFAULT_ICE_SETTINGS, logger: log, remoteAddress: caller.remoteAddress, ...(takesH265 ? { receivesH265: true } : {}) });
        viewer.once('closed', () => sessions.delete(sessionId));
        ctx.onViewer?.(viewer);
        try {
          await viewer.waitForTracks(ctx.tracksTimeoutMs ?? 10_000);
        } catch {
          await viewer.close('error', 'camera not connected');
          return text(503, 'The camera is not reachable right now.', { 'Retry-After': '10' });
        }
        try {
          return { viewer, answer: await viewer.answerOffer(offer, ctx.gatherTimeoutMs ?? 3_000) };
        } catch (error) {
          if (error instanceof UnsupportedCodecError) {
            await viewer.close('unsupported-codec', error.reason);
            return { refusal: error };
          }
          log.debug(`Camera ${cameraId}: WHEP offer refused: ${error instanceof Error ? error.message : String(error)}`);
          await viewer.close('error', 'bad offer');
          return text(400, 'The SDP offer could not be used.');
        }
      };
      const variant = wantsVariant ? ctx.registry.transcoded?.(cameraId, 'VP8') : undefined;
      // The camera's own video; its AAC sound (if that is what it sends) as Opus.
      let result = await attempt(variant ?? ctx.registry.withOpusSound?.(cameraId) ?? main);
      if ('refusal' in result && !variant) {
        // An H.265 camera, say: the H.264 variant when the client takes H.264, else the VP8 one.
        const h264 = takesH264 ? ctx.registry.transcoded?.(cameraId, 'H264') : undefined;
        const fallback = h264 ?? (acceptsVp8 ? ctx.registry.transcoded?.(cameraId, 'VP8') : undefined);
        if (fallback) {
          log.info(`Camera ${cameraId}: ${result.refusal.reason}; answering this WHEP client from the ${h264 ? 'H.264' : 'VP8'} variant`);
          result = await attempt(fallback);
        }
      }
      if ('refusal' in result) {
        releaseOnce();
        refusalLog(log).note('warn', `Camera ${cameraId}: cannot stream to a WHEP client: ${result.refusal.reason}`, `Camera ${cameraId}: cannot stream to WHEP client: ${result.refusal.reason}`);
        return text(406, result.refusal.message);
      }
      if (!('viewer' in result)) {
        releaseOnce();
        return result;
      }
      const { viewer, answer } = result;
      viewer.once('closed', releaseOnce);
      viewer.once('connected', () => release.connected());
      if (viewer.closed) {
        releaseOnce();
        return text(503, 'The stream ended while it was being set up.');
      }
      const etag = randomBytes(8).toString('hex');
      sessions.set(sessionId, {
        id: sessionId,
        cameraId,
        owner: caller.principal.name,
        viewer,
        etag,
        remoteUfrag: iceUfrag(offer),
      });
      return {
        status: 201,
        headers: {
          'Content-Type': 'application/sdp',
          Location: `${basePath}/${encodeURIComponent(cameraId)}/${sessionId}`,
          ETag: `"${etag}"`,
          'Accept-Patch': 'application/trickle-ice-sdpfrag',
        },
        body: answer,
      };
    },

    async handleDelete(cameraId, sessionId, caller) {
      const session = findSession(cameraId, sessionId, caller);
      if (!session) return text(404, 'No such WHEP session.');
      sessions.delete(sessionId);
      await session.viewer.close('closed');
      return { status: 200 };
    },

    async handlePatch(cameraId, sessionId, fragment, caller) {
      const session = findSession(cameraId, sessionId, caller);
      if (!session) return text(404, 'No such WHEP session.');
      const parsed = parseSdpFragment(fragment);
      if (parsed.ufrag !== undefined && session.remoteUfrag !== undefined && parsed.ufrag !== session.remoteUfrag) {
        return text(422, 'ICE restarts are not supported; start a new session.');
      }
      try {
        for (const candidate of parsed.candidates) await session.viewer.addRemoteCandidate(candidate);
        if (parsed.end) await session.viewer.addRemoteCandidate(null);
      } catch {
        return text(400, 'A candidate could not be used.');
      }
      return { status: 204, headers: { ETag: `"${session.etag}"` } };
    },

    async closeAll() {
      await Promise.all([...sessions.values()].map((s) => s.viewer.close('closed')));
      sessions.clear();
    },
  };
}
