/**
 * Client-offer (WHEP) SDP clean-up.
 *
 * werift, answering an offer, picks the first H.264 payload type by MIME type alone; Chromium's
 * first is often packetization-mode=0 or 42001f, so the browser would get FU-A packets it was told
 * not to expect (NOTES.md). Before `setRemoteDescription` we therefore keep exactly one H.264
 * payload type per video section, the best packetization-mode=1 one, and drop every other video
 * payload type (other H.264 variants, VP8/VP9/AV1 and the RTX/RED/FEC that point at them).
 */

export interface H264Choice {
  payloadType: number;
  /** The fmtp line's parameters exactly as offered (werift matches them in the answer). */
  fmtp: string;
  profileLevelId: string;
}

export interface FilteredOffer {
  sdp: string;
  /** The video payload kept in the (first) video section (H.264, or VP8 for the variant); undefined when none is usable. */
  h264?: H264Choice;
  /** True when the offer has an audio section. */
  hasAudio: boolean;
}

interface Section {
  lines: string[];
}

function splitSections(sdp: string): { session: string[]; media: Section[] } {
  const lines = sdp.split(/\r?\n/).filter((line) => line.length > 0);
  const session: string[] = [];
  const media: Section[] = [];
  for (const line of lines) {
    if (line.startsWith('m=')) media.push({ lines: [line] });
    else if (media.length === 0) session.push(line);
    else media[media.length - 1]!.lines.push(line);
  }
  return { session, media };
}

function parseParams(fmtp: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const part of fmtp.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    params.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  return params;
}

/** Lower is better. Chromium and Safari always offer 42e01f; the rest is for other clients. */
export function h264ProfileRank(profileLevelId: string): number {
  const p = profileLevelId.toLowerCase();
  if (p === '42e01f') return 0;
  if (/^42e0/.test(p)) return 1;
  if (p === '42001f') return 2;
  if (/^42/.test(p)) return 3;
  if (/^4d/.test(p)) return 4;
  if (/^64/.test(p)) return 5;
  return 6;
}

interface PayloadInfo {
  pt: number;
  codec: string;
  fmtp: string;
}

function payloadInfo(section: Section): PayloadInfo[] {
  const mline = section.lines[0]!.split(' ');
  const pts = mline.slice(3).map(Number).filter((n) => Number.isInteger(n) && n >= 0 && n <= 127);
  const codecs = new Map<number, string>();
  const fmtps = new Map<number, string>();
  for (const line of section.lines) {
    let m = /^a=rtpmap:(\d+) ([^/\s]+)/.exec(line);
    if (m) codecs.set(Number(m[1]), m[2]!.toUpperCase());
    m = /^a=fmtp:(\d+) (.*)$/.exec(line);
    if (m) fmtps.set(Number(m[1]), m[2]!);
  }
  return pts.map((pt) => ({ pt, codec: codecs.get(pt) ?? '', fmtp: fmtps.get(pt) ?? '' }));
}

function chooseH264(payloads: PayloadInfo[]): H264Choice | undefined {
  let best: H264Choice | undefined;
  let bestRank = Number.POSITIVE_INFINITY;
  for (const p of payloads) {
    if (p.codec !== 'H264') continue;
    const params = parseParams(p.fmtp);
    if (params.get('packetization-mode') !== '1') continue;
    const profileLevelId = (params.get('profile-level-id') ?? '42001f').toLowerCase();
    const rank = h264ProfileRank(profileLevelId);
    if (rank < bestRank) {
      bestRank = rank;
      best = { payloadType: p.pt, fmtp: p.fmtp, profileLevelId };
    }
  }
  return best;
}

function keepPayloads(section: Section, keep: ReadonlySet<number>): void {
  const mline = section.lines[0]!.split(' ');
  const formats = mline.slice(3).filter((pt) => keep.has(Number(pt)));
  section.lines[0] = [...mline.slice(0, 3), ...formats].join(' ');
  section.lines = section.lines.filter((line) => {
    const m = /^a=(?:rtpmap|fmtp|rtcp-fb):(\d+|\*)[\s]/.exec(line);
    if (!m || m[1] === '*') return true;
    return keep.has(Number(m[1]));
  });
}

/**
 * JSEP max-bundle offers (GStreamer's webrtcbin, for one) give every m-section after the first port
 * 0 and `a=bundle-only`. There port 0 means "bundled", not "rejected" (RFC 8843 section 6), but
 * werift reads it as rejected and answers the section inactive: such a client got no audio, or no
 * video when its audio came first. The usual placeholder port 9 makes it an ordinary bundled section.
 */
function acceptBundleOnly(section: Section): void {
  if (!section.lines.includes('a=bundle-only')) return;
  const parts = section.lines[0]!.split(' ');
  if (parts[1] !== '0') return;
  parts[1] = '9';
  section.lines[0] = parts.join(' ');
}

function chooseVp8(payloads: PayloadInfo[]): H264Choice | undefined {
  const vp8 = payloads.find((p) => p.codec === 'VP8');
  return vp8 ? { payloadType: vp8.pt, fmtp: vp8.fmtp, profileLevelId: '' } : undefined;
}

/**
 * The client's H.265 in Main profile (profile-id 1, or none named: RFC 7798's default), else any
 * H.265 it offers; cameras send Main, and a Main 10 decoder takes Main too.
 */
function chooseH265(payloads: PayloadInfo[]): H264Choice | undefined {
  const h265 = payloads.filter((p) => p.codec === 'H265');
  const main = h265.find((p) => (/(?:^|;)\s*profile-id=(\d+)/.exec(p.fmtp)?.[1] ?? '1') === '1') ?? h265[0];
  return main ? { payloadType: main.pt, fmtp: main.fmtp, profileLevelId: '' } : undefined;
}

/** The video codecs a client offer names (upper case, first video section): decides H.264 or the VP8 variant. */
export function offeredVideoCodecs(sdp: string): string[] {
  const video = splitSections(sdp).media.find((s) => s.lines[0]!.startsWith('m=video '));
  if (!video) return [];
  const payloads = payloadInfo(video);
  // H.264 counts only in the mode this server sends (packetization-mode=1).
  return [...new Set(payloads.filter((p) => p.codec !== 'H264' || chooseH264([p])).map((p) => p.codec).filter((c) => c.length > 0))];
}

/**
 * Keeps the best packetization-mode=1 H.264 in every video section and nothing else there. A video
 * section without usable H.264 is left as it is (werift then rejects it, and `h264` is undefined).
 * Bundle-only sections are accepted as bundled (see `acceptBundleOnly`).
 */
export function filterOfferForH264(sdp: string): FilteredOffer {
  return filterOffer(sdp, chooseH264);
}

/** The same for the VP8 variant: the first VP8 payload type, and nothing else, in every video section. */
export function filterOfferForVp8(sdp: string): FilteredOffer {
  return filterOffer(sdp, chooseVp8);
}

function filterOffer(sdp: string, choose: (payloads: PayloadInfo[]) => H264Choice | undefined): FilteredOffer {
  const { session, media } = splitSections(sdp);
  let h264: H264Choice | undefined;
  let hasAudio = false;
  for (const section of media) {
    acceptBundleOnly(section);
    const kind = section.lines[0]!.slice(2).split(' ')[0];
    if (kind === 'audio') hasAudio = true;
    if (kind !== 'video') continue;
    const choice = choose(payloadInfo(section));
    if (!choice) continue;
    h264 ??= choice;
    keepPayloads(section, new Set([choice.payloadType]));
  }
  const out = [...session, ...media.flatMap((s) => s.lines)].join('\r\n') + '\r\n';
  return { sdp: out, ...(h264 ? { h264 } : {}), hasAudio };
}

/** The same for an H.265 camera's own video: the client's H.265 (`chooseH265`), and nothing else. */
export function filterOfferForH265(sdp: string): FilteredOffer {
  return filterOffer(sdp, chooseH265);
}

/** Whether an answer (from a browser) accepted the video section (port != 0 and a payload type left). */
export function answerAcceptsVideo(sdp: string): boolean {
  const { media } = splitSections(sdp);
  const video = media.find((s) => s.lines[0]!.startsWith('m=video '));
  if (!video) return false;
  const parts = video.lines[0]!.split(' ');
  return parts[1] !== '0' && parts.length > 3;
}
