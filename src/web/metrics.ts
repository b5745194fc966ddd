import type { SourceStats } from '../media/source.js';
import type { SourceStateName } from '../media/types.js';

/** What the metrics page reads per camera: the Source's own stats and the viewer count. */
export interface CameraMetricsInput {
  stats: SourceStats;
  viewers: number;
  /** Encoders running for this camera (VP8 and H.264 variants, Opus sound): 0 to 3. */
  transcoders?: number;
  /** Steps a variant encoder went down to keep up (0: full picture), while one runs. */
  transcoderStepsDown?: number;
  /** A scaled-out camera: gateways it is published on, viewers they serve, packets sent to them (all gateways). */
  scaleOut?: { gateways: number; viewers: number; packetsForwarded: number };
}

const STATES: ReadonlyArray<SourceStateName> = ['idle', 'connecting', 'live', 'retrying', 'stopped'];

/** Prometheus label values: backslash, double quote and newline must be escaped. */
function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

interface Family {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  value: (c: CameraMetricsInput) => number | undefined;
}

const FAMILIES: ReadonlyArray<Family> = [
  { name: 'webrtc_cameras_subscribers', help: 'Subscribers of the camera\'s shared Source (viewers, re-stream clients, snapshots).', type: 'gauge', value: (c) => c.stats.subscribers },
  { name: 'webrtc_cameras_viewers', help: 'Browser and WHEP viewers of the camera.', type: 'gauge', value: (c) => c.viewers },
  { name: 'webrtc_cameras_bitrate_bits_per_second', help: 'Bitrate received from the camera over the last 5 s.', type: 'gauge', value: (c) => c.stats.bitrateBps },
  { name: 'webrtc_cameras_fps', help: 'Measured video frame rate.', type: 'gauge', value: (c) => c.stats.fps },
  { name: 'webrtc_cameras_packets_received_total', help: 'RTP packets received from the camera.', type: 'counter', value: (c) => c.stats.packetsReceived },
  { name: 'webrtc_cameras_packets_lost_total', help: 'RTP packets lost between the camera and the plugin (sequence gaps).', type: 'counter', value: (c) => c.stats.packetsLost },
  { name: 'webrtc_cameras_video_packets_late_total', help: 'Video packets that arrived after the reorder window gave up on them, or twice, and were dropped.', type: 'counter', value: (c) => c.stats.video?.packetsLate },
  { name: 'webrtc_cameras_video_keyframes_total', help: 'Keyframes received from the camera (their spacing is how long a viewer without the GOP cache would wait).', type: 'counter', value: (c) => c.stats.video?.keyframes },
  { name: 'webrtc_cameras_video_frames_damaged_total', help: 'Video frames passed on with a part lost (viewers see artifacts until the next keyframe).', type: 'counter', value: (c) => c.stats.video?.framesDamaged },
  { name: 'webrtc_cameras_transcoders', help: 'Encoders running for the camera: the VP8 variant (browsers without H.264), the H.264 variant (H.265 cameras) and the Opus sound (AAC cameras); one of each at most, whatever the viewer count.', type: 'gauge', value: (c) => c.transcoders },
  { name: 'webrtc_cameras_transcoder_steps_down', help: 'How many steps a variant encoder of the camera went down to keep up with it (0: its full picture; each step a smaller picture or fewer frames a second, about half the work), while one runs.', type: 'gauge', value: (c) => c.transcoderStepsDown },
  { name: 'webrtc_cameras_scale_out_gateways', help: 'Scale-out gateways the camera is published on now.', type: 'gauge', value: (c) => c.scaleOut?.gateways },
  { name: 'webrtc_cameras_scale_out_viewers', help: 'Viewers of the camera served by the scale-out gateways (they count in webrtc_cameras_viewers too).', type: 'gauge', value: (c) => c.scaleOut?.viewers },
  { name: 'webrtc_cameras_scale_out_packets_forwarded', help: 'RTP packets sent to the scale-out gateways by the current forwarders (one copy per gateway; restarts from 0 when a gateway comes back).', type: 'gauge', value: (c) => c.scaleOut?.packetsForwarded },
  { name: 'webrtc_cameras_reconnects_total', help: 'Camera sessions re-established after a failure.', type: 'counter', value: (c) => c.stats.reconnects },
  { name: 'webrtc_cameras_gop_cache_bytes', help: 'Bytes held in the GOP cache (frames since the last keyframe).', type: 'gauge', value: (c) => c.stats.gopCacheBytes },
  { name: 'webrtc_cameras_time_to_first_frame_seconds', help: 'Latest session: connect start to first keyframe.', type: 'gauge', value: (c) => (c.stats.timeToFirstFrameMs === undefined ? undefined : c.stats.timeToFirstFrameMs / 1000) },
];

/**
 * The Prometheus text exposition of every camera: one family per figure, a `camera` label with the
 * id (never a URL, so nothing secret can appear), and the state as a 0/1 gauge per state name.
 */
export function renderMetrics(cameras: ReadonlyArray<CameraMetricsInput>): string {
  const lines: string[] = [];
  lines.push('# HELP webrtc_cameras_state 1 for the state the camera\'s Source is in.', '# TYPE webrtc_cameras_state gauge');
  for (const c of cameras) {
    for (const state of STATES) lines.push(`webrtc_cameras_state{camera="${label(c.stats.id)}",state="${state}"} ${c.stats.state === state ? 1 : 0}`);
  }
  for (const family of FAMILIES) {
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
    for (const c of cameras) {
      const value = family.value(c);
      if (value !== undefined && Number.isFinite(value)) lines.push(`${family.name}{camera="${label(c.stats.id)}"} ${value}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
