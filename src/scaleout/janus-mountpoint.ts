/**
 * A camera's RTP mountpoint on a Janus streaming plugin: what to ask for, and reading the ports
 * Janus chose.
 *
 * Janus picks the ports (port 0), so two plugins, or a restart, never collide on a port. The
 * video section keeps its latest keyframe (`bufferkf`), so a viewer who joins sees a picture at
 * once instead of waiting for the camera's next one. Only what Janus relays to browsers as it is
 * goes there: H.264 or VP8 video, G.711 or Opus sound.
 */
import { createHmac } from 'node:crypto';
import type { AudioCodecName, VideoCodecName } from '../media/types.js';
import { JanusError, type JanusHandle, type PluginData } from './janus-api.js';

export const STREAMING_PLUGIN = 'janus.plugin.streaming';
/** Janus's streaming error for "a mountpoint with this id exists". */
const MOUNTPOINT_EXISTS = 456;

export const JANUS_VIDEO_PAYLOAD_TYPE = 96;
/** Janus's name and payload type for each sound the plugin can forward as it is. */
const AUDIO_FORMATS: Partial<Record<AudioCodecName, { codec: string; payloadType: number; fmtp?: string }>> = {
  PCMU: { codec: 'pcmu', payloadType: 0 },
  PCMA: { codec: 'pcma', payloadType: 8 },
  OPUS: { codec: 'opus', payloadType: 111, fmtp: 'minptime=10;useinbandfec=1' },
};
const VIDEO_FORMATS: Partial<Record<VideoCodecName, { codec: string; fmtp?: string }>> = {
  // As the plugin's own viewers are offered it: browsers decode High-profile streams under it.
  H264: { codec: 'h264', fmtp: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f' },
  VP8: { codec: 'vp8' },
};

export function janusAudioFormat(codec: AudioCodecName): { codec: string; payloadType: number; fmtp?: string } | undefined {
  return AUDIO_FORMATS[codec];
}

export function janusCarriesVideo(codec: VideoCodecName): boolean {
  return VIDEO_FORMATS[codec] !== undefined;
}

export interface MountpointRequest {
  cameraId: string;
  /** What Janus shows in its lists (the camera's name). */
  description: string;
  video?: VideoCodecName;
  audio?: AudioCodecName;
  /** Janus's streaming `admin_key`, when it is set. */
  adminKey?: string;
  /** Keys this plugin's mountpoint ids and secrets, so that two plugins on one Janus never meet. */
  instanceKey: string;
  /** SRTP for a gateway off this machine: the SDES key (base64, 30 bytes) for AES_CM_128_HMAC_SHA1_80. */
  srtpKey?: string;
}

export interface MountpointPorts {
  id: number;
  video?: { port: number; rtcpPort?: number };
  audio?: { port: number };
}

/** A stable 31-bit id per plugin and camera, so that a restarted plugin finds its old mountpoint. */
export function mountpointId(instanceKey: string, cameraId: string): number {
  return createHmac('sha256', instanceKey).update(`mountpoint:${cameraId}`).digest().readUInt32BE(0) >>> 1 || 1;
}

/** The mountpoint's secret (to destroy it), derived in the same way; never sent to a viewer. */
export function mountpointSecret(instanceKey: string, cameraId: string): string {
  return createHmac('sha256', instanceKey).update(`secret:${cameraId}`).digest('base64url');
}

export function mountpointCreateBody(request: MountpointRequest): Record<string, unknown> {
  const media: Array<Record<string, unknown>> = [];
  if (request.video) {
    const format = VIDEO_FORMATS[request.video];
    if (!format) throw new JanusError(`Janus cannot relay ${request.video} video as it is`);
    media.push({ type: 'video', mid: 'v', label: 'video', port: 0, rtcpport: 0, pt: JANUS_VIDEO_PAYLOAD_TYPE, codec: format.codec, ...(format.fmtp ? { fmtp: format.fmtp } : {}), bufferkf: true });
  }
  if (request.audio) {
    const format = AUDIO_FORMATS[request.audio];
    if (format) media.push({ type: 'audio', mid: 'a', label: 'audio', port: 0, pt: format.payloadType, codec: format.codec, ...(format.fmtp ? { fmtp: format.fmtp } : {}) });
  }
  if (media.length === 0) throw new JanusError('nothing to relay through Janus');
  return {
    request: 'create',
    type: 'rtp',
    id: mountpointId(request.instanceKey, request.cameraId),
    name: `hwc-${request.cameraId}`,
    description: request.description,
    is_private: true,
    permanent: false,
    secret: mountpointSecret(request.instanceKey, request.cameraId),
    media,
    ...(request.adminKey ? { admin_key: request.adminKey } : {}),
    ...(request.srtpKey ? { srtpsuite: 80, srtpcrypto: request.srtpKey } : {}),
  };
}

/** Reads the ports from Janus's `created` reply; throws when they are not there. */
export function readMountpointPorts(reply: PluginData): MountpointPorts {
  const stream = reply['stream'];
  if (typeof stream !== 'object' || stream === null) throw new JanusError('Janus: the created mountpoint has no stream description');
  const { id, ports } = stream as Record<string, unknown>;
  if (typeof id !== 'number' || !Array.isArray(ports)) throw new JanusError('Janus: the created mountpoint has no ports');
  const result: MountpointPorts = { id };
  const isPort = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value > 0 && value < 65536;
  for (const entry of ports as unknown[]) {
    if (typeof entry !== 'object' || entry === null) continue;
    const { type, port, rtcp_port: rtcpPort } = entry as Record<string, unknown>;
    if (!isPort(port)) continue;
    if (type === 'video') result.video = { port, ...(isPort(rtcpPort) ? { rtcpPort } : {}) };
    if (type === 'audio') result.audio = { port };
  }
  return result;
}

/**
 * Creates the camera's mountpoint on `handle`'s gateway. One left over from an earlier run of
 * this plugin (same id) is destroyed first, with the secret only this plugin can derive.
 */
export async function createMountpoint(handle: JanusHandle, request: MountpointRequest): Promise<MountpointPorts> {
  const body = mountpointCreateBody(request);
  try {
    return readMountpointPorts(await handle.request(body));
  } catch (error) {
    if (!(error instanceof JanusError) || error.code !== MOUNTPOINT_EXISTS) throw error;
  }
  await destroyMountpoint(handle, request);
  return readMountpointPorts(await handle.request(body));
}

export async function destroyMountpoint(handle: JanusHandle, request: Pick<MountpointRequest, 'cameraId' | 'instanceKey' | 'adminKey'>): Promise<void> {
  await handle.request({
    request: 'destroy',
    id: mountpointId(request.instanceKey, request.cameraId),
    secret: mountpointSecret(request.instanceKey, request.cameraId),
    permanent: false,
    ...(request.adminKey ? { admin_key: request.adminKey } : {}),
  });
}
