/**
 * The watch page's live-session module (src/web/page/live-session.js), imported as the browser
 * does, without a browser: the statistics overlay's figures from getStats() reports. The session's
 * signalling, reconnects and decoding are proven in real Chromium and Firefox (test/web/page.test.ts,
 * test/e2e/webrtc-homebridge.test.ts); this pins the arithmetic people read off the overlay.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

interface PageStats {
  at: number;
  framesDecoded: number;
  bytes: number;
  codec: string | null;
  rttMs: number | null;
  fps: number | null;
  kbps: number | null;
  jitterBufferMs: number | null;
  decodeMs: number | null;
  latencyMs: number | null;
  packetsLost: number;
  audioPackets: number;
}
interface LiveSessionModule {
  summarizeStats(report: Map<string, Record<string, unknown>>, previous: PageStats | null, now: number): PageStats;
}

/** A getStats() report as Chromium shapes it: inbound video and audio, codec, transport and its selected pair. */
function report(at: { frames: number; videoBytes: number; audioBytes: number; jitterDelay: number; emitted: number; decodeTime: number; fps?: number }): Map<string, Record<string, unknown>> {
  return new Map<string, Record<string, unknown>>([
    ['IV', { type: 'inbound-rtp', kind: 'video', codecId: 'C1', framesDecoded: at.frames, bytesReceived: at.videoBytes, packetsLost: 2, jitterBufferDelay: at.jitterDelay, jitterBufferEmittedCount: at.emitted, totalDecodeTime: at.decodeTime, ...(at.fps !== undefined ? { framesPerSecond: at.fps } : {}) }],
    ['IA', { type: 'inbound-rtp', kind: 'audio', bytesReceived: at.audioBytes, packetsLost: -1, packetsReceived: 250 }],
    ['C1', { type: 'codec', mimeType: 'video/H264' }],
    ['T', { type: 'transport', selectedCandidatePairId: 'P2' }],
    ['P1', { type: 'candidate-pair', nominated: true, state: 'succeeded', currentRoundTripTime: 0.5 }],
    ['P2', { type: 'candidate-pair', nominated: true, state: 'succeeded', currentRoundTripTime: 0.004 }],
  ]);
}

describe('watch page: live-session statistics', () => {
  it('bitrate, frame rate, jitter buffer, decode time and the latency estimate from two reports a second apart', async () => {
    const { summarizeStats } = (await import(`../../src/web/page/live-session.js?fresh=${Date.now()}`)) as LiveSessionModule;
    const first = summarizeStats(report({ frames: 100, videoBytes: 1_000_000, audioBytes: 50_000, jitterDelay: 2, emitted: 100, decodeTime: 0.3 }), null, 10_000);
    assert.equal(first.kbps, null, 'one report has no rate yet');
    assert.equal(first.latencyMs, null);
    assert.equal(first.codec, 'H264');
    assert.equal(first.rttMs, 4, 'the transport\u2019s selected pair, not another nominated one');
    assert.equal(first.packetsLost, 1, 'video and audio losses summed (a negative count from duplicates nets out)');
    assert.equal(first.audioPackets, 250);

    const second = summarizeStats(report({ frames: 125, videoBytes: 1_250_000, audioBytes: 58_000, jitterDelay: 3, emitted: 125, decodeTime: 0.35 }), first, 11_000);
    assert.equal(second.kbps, (258_000 * 8) / 1000, 'video plus audio bytes over the second');
    assert.equal(second.fps, 25, 'counted from decoded frames when the browser gives no framesPerSecond');
    assert.equal(second.jitterBufferMs, 40, '1 s of extra delay over 25 emitted frames');
    const close = (actual: number | null, expected: number, what: string): void => assert.ok(actual !== null && Math.abs(actual - expected) < 1e-9, `${what}: ${actual} ms, expected ${expected}`);
    close(second.decodeMs, 2, '50 ms of decoding over 25 frames');
    close(second.latencyMs, 40 + 2 + 2, 'jitter buffer + decode + half the round trip');

    const told = summarizeStats(report({ frames: 125, videoBytes: 1_250_000, audioBytes: 58_000, jitterDelay: 3, emitted: 125, decodeTime: 0.35, fps: 24 }), first, 11_000);
    assert.equal(told.fps, 24, 'the browser\u2019s own frame rate wins');
    assert.equal(told.jitterBufferMs, 40);
  });
});
