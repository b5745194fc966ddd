import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderMetrics } from '../../src/web/metrics.js';
import { newDepacketizerCounters } from '../../src/media/nal-assembler.js';
import type { SourceStats, TrackStats } from '../../src/media/source.js';

function stats(overrides: Partial<SourceStats>): SourceStats {
  return { id: 'porch', name: 'Porch', state: 'live', subscribers: 3, reconnects: 1, bitrateBps: 2_000_000, packetsReceived: 1000, packetsLost: 2, gopCacheBytes: 50_000, gopCacheFrames: 40, fps: 25, timeToFirstFrameMs: 350, ...overrides };
}

const videoStats: TrackStats = {
  codec: 'H264', clockRate: 90_000, packetsReceived: 900, packetsLost: 2, packetsLate: 3, packetsMalformed: 0, framesOut: 250, keyframes: 5, framesDamaged: 1,
  bitrateBps: 1_900_000, fps: 25, depacketizer: newDepacketizerCounters(),
};

test('renders every camera in the Prometheus text format with a camera label and no URL', () => {
  const text = renderMetrics([
    { stats: stats({ lastError: 'rtsp://admin:secret@10.0.0.2/live refused', video: videoStats }), viewers: 2, transcoders: 1, scaleOut: { gateways: 2, viewers: 40, packetsForwarded: 9000 } },
    { stats: stats({ id: 'gate"x', state: 'retrying', fps: undefined, timeToFirstFrameMs: undefined }), viewers: 0 },
  ]);
  assert.match(text, /^# TYPE webrtc_cameras_state gauge$/m);
  assert.match(text, /^webrtc_cameras_state\{camera="porch",state="live"\} 1$/m);
  assert.match(text, /^webrtc_cameras_state\{camera="porch",state="retrying"\} 0$/m);
  assert.match(text, /^webrtc_cameras_state\{camera="gate\\"x",state="retrying"\} 1$/m);
  assert.match(text, /^webrtc_cameras_viewers\{camera="porch"\} 2$/m);
  assert.match(text, /^webrtc_cameras_packets_lost_total\{camera="porch"\} 2$/m);
  assert.match(text, /^webrtc_cameras_time_to_first_frame_seconds\{camera="porch"\} 0.35$/m);
  assert.match(text, /^webrtc_cameras_video_packets_late_total\{camera="porch"\} 3$/m);
  assert.match(text, /^webrtc_cameras_transcoders\{camera="porch"\} 1$/m);
  assert.match(text, /^webrtc_cameras_video_frames_damaged_total\{camera="porch"\} 1$/m);
  assert.match(text, /^webrtc_cameras_video_keyframes_total\{camera="porch"\} 5$/m);
  assert.match(text, /^webrtc_cameras_scale_out_gateways\{camera="porch"\} 2$/m);
  assert.match(text, /^webrtc_cameras_scale_out_viewers\{camera="porch"\} 40$/m);
  assert.match(text, /^webrtc_cameras_scale_out_packets_forwarded\{camera="porch"\} 9000$/m);
  assert.doesNotMatch(text, /scale_out_[a-z_]+\{camera="gate/, 'a camera that is not scaled out has no scale-out lines');
  assert.doesNotMatch(text, /webrtc_cameras_fps\{camera="gate/, 'an unknown figure is left out, not reported as 0');
  assert.ok(!text.includes('secret') && !text.includes('rtsp://'), 'no error text or URL is exported');
  // Every sample line is `name{labels} number`.
  for (const line of text.trim().split('\n').filter((l) => !l.startsWith('#'))) {
    assert.match(line, /^[a-z_]+\{[^}]*\} -?[0-9.e+-]+$/, line);
  }
});
