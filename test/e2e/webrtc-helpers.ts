// Shared pieces of the issue-4 end-to-end suites (test/e2e/webrtc-*.test.ts): an in-page probe that
// times the first decoded frame and records the signalling messages the watch page receives, an
// in-page frame sampler (so the timing of the samples is the page's, not playwright's round trips),
// and small statistics. The probe is an init script: it runs before the watch page's own module and
// outside its CSP, and changes nothing the page does.
import type { Page } from 'playwright-core';

/**
 * Init script. Records, relative to navigation start (performance.now()):
 * - `__firstDecodedAt`: first getStats() poll (every ~10 ms) that shows framesDecoded > 0;
 * - `__firstPresentedAt`: the first requestVideoFrameCallback of a <video> the page plays;
 * - `__wsLog`: every signalling message (type, state, code, message) and socket open/close;
 * - `__pageId`: a random id, so a test can tell that the page was not reloaded.
 */
export const PAGE_PROBE_SCRIPT = `(() => {
  if (window.__wsLog) return;
  const log = [];
  Object.defineProperty(window, '__wsLog', { value: log });
  window.__pageId = Math.random().toString(36).slice(2);
  const OriginalWebSocket = window.WebSocket;
  class RecordedWebSocket extends OriginalWebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener('open', () => log.push({ at: performance.now(), type: '(open)' }));
      this.addEventListener('close', (e) => log.push({ at: performance.now(), type: '(close)', code: e.code }));
      this.addEventListener('message', (e) => {
        try {
          const m = JSON.parse(e.data);
          log.push({ at: performance.now(), type: m.type, state: m.state, code: m.code, message: m.message, sdp: m.type === 'offer' ? m.sdp : undefined });
        } catch {}
      });
    }
  }
  window.WebSocket = RecordedWebSocket;
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function (...args) {
    if (this instanceof HTMLVideoElement && !this.__probed && 'requestVideoFrameCallback' in this) {
      this.__probed = true;
      this.requestVideoFrameCallback(() => {
        if (window.__firstPresentedAt === undefined) window.__firstPresentedAt = performance.now();
      });
    }
    return play.apply(this, args);
  };
  const poll = async () => {
    for (const pc of window.__pcs || []) {
      try {
        const report = await pc.getStats();
        report.forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video' && s.framesDecoded > 0 && window.__firstDecodedAt === undefined) {
            window.__firstDecodedAt = performance.now();
          }
        });
      } catch {}
    }
    if (window.__firstDecodedAt === undefined && performance.now() < 30000) setTimeout(poll, 10);
  };
  setTimeout(poll, 10);
})();`;

export interface ProbeLogEntry {
  at: number;
  type: string;
  state?: string;
  code?: string | number;
  message?: string;
  sdp?: string;
}

export interface PageProbe {
  pageId: string;
  firstDecodedAt?: number;
  firstPresentedAt?: number;
  log: ProbeLogEntry[];
}

interface ProbeWindow {
  __pageId: string;
  __firstDecodedAt?: number;
  __firstPresentedAt?: number;
  __wsLog: ProbeLogEntry[];
}

export async function readProbe(page: Page): Promise<PageProbe> {
  return page.evaluate(() => {
    const w = window as unknown as ProbeWindow;
    const out: PageProbe = { pageId: w.__pageId, log: w.__wsLog.map((e) => ({ ...e })) };
    if (w.__firstDecodedAt !== undefined) out.firstDecodedAt = w.__firstDecodedAt;
    if (w.__firstPresentedAt !== undefined) out.firstPresentedAt = w.__firstPresentedAt;
    return out;
  });
}

/** The watch page's STALL_MS (src/web/page/live-session.js): this long without a new frame, it reconnects. */
export const PAGE_STALL_MS = 8000;

export interface FrameSample {
  /** Page time (ms since navigation start). */
  at: number;
  framesDecoded: number;
  /** Video RTP packets received: what the server delivered, whether or not the browser kept up decoding. */
  packetsReceived: number;
  freezeCount: number;
  totalFreezesDuration: number;
  /** Which recorded RTCPeerConnection the figures are from (a reconnect makes a new one). */
  pc: number;
}

/**
 * Samples the video inbound-rtp of the page's newest RTCPeerConnection every `intervalMs` for
 * `durationMs`, inside the page, and returns the samples. With `stopAbove`, it stops early at the
 * first sample whose framesDecoded exceeds it, or that comes from a new peer connection.
 */
export async function sampleFrames(page: Page, durationMs: number, intervalMs = 150, stopAbove?: number): Promise<FrameSample[]> {
  return page.evaluate(
    async ({ durationMs, intervalMs, stopAbove }) => {
      const pcs = (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs;
      const samples: FrameSample[] = [];
      const end = performance.now() + durationMs;
      while (performance.now() < end) {
        const index = pcs.length - 1;
        const sample: FrameSample = { at: performance.now(), framesDecoded: 0, packetsReceived: 0, freezeCount: 0, totalFreezesDuration: 0, pc: index };
        if (index >= 0) {
          try {
            const report = await pcs[index]!.getStats();
            report.forEach((s: Record<string, unknown>) => {
              if (s.type === 'inbound-rtp' && s.kind === 'video') {
                sample.framesDecoded = Number(s.framesDecoded ?? 0);
                sample.packetsReceived = Number(s.packetsReceived ?? 0);
                sample.freezeCount = Number(s.freezeCount ?? 0);
                sample.totalFreezesDuration = Number(s.totalFreezesDuration ?? 0);
              }
            });
          } catch {
            // a peer connection closed under us: the sample says 0 frames
          }
        }
        samples.push(sample);
        if (stopAbove !== null && (sample.framesDecoded > stopAbove || sample.pc !== samples[0]!.pc)) break;
        await new Promise((r) => setTimeout(r, intervalMs));
      }
      return samples;
    },
    // null, not undefined: it has to cross into the page as JSON.
    { durationMs, intervalMs, stopAbove: stopAbove ?? null },
  );
}

/**
 * The longest time (ms) between two samples at which `progress` went up (decoded frames by default;
 * `packetsReceived`: what the server delivered), and the frames decoded over the samples.
 */
export function longestStall(samples: FrameSample[], progress: 'framesDecoded' | 'packetsReceived' = 'framesDecoded'): { stallMs: number; frames: number; spanMs: number } {
  let lastProgressAt = samples[0]?.at ?? 0;
  let stallMs = 0;
  for (let i = 1; i < samples.length; i++) {
    if (samples[i]![progress] > samples[i - 1]![progress] || samples[i]!.pc !== samples[i - 1]!.pc) {
      stallMs = Math.max(stallMs, samples[i]!.at - lastProgressAt);
      lastProgressAt = samples[i]!.at;
    }
  }
  stallMs = Math.max(stallMs, (samples.at(-1)?.at ?? 0) - lastProgressAt);
  return {
    stallMs,
    frames: (samples.at(-1)?.framesDecoded ?? 0) - (samples[0]?.framesDecoded ?? 0),
    spanMs: (samples.at(-1)?.at ?? 0) - (samples[0]?.at ?? 0),
  };
}

export { median } from '../helpers/stats.js';

/** The text of an element, or '' (a function predicate: the watch page's CSP refuses string ones). */
export async function textOf(page: Page, selector: string): Promise<string> {
  return page.evaluate((s) => document.querySelector(s)?.textContent ?? '', selector);
}

/** H.264 profile_idc of the first SPS in an Annex-B stream (100 = High, 66 = Baseline, 77 = Main). */
export function spsProfileIdc(annexB: Buffer): number | undefined {
  for (let i = 0; i + 4 < annexB.length; i++) {
    if (annexB[i] === 0 && annexB[i + 1] === 0 && annexB[i + 2] === 1 && (annexB[i + 3]! & 0x1f) === 7) return annexB[i + 4];
  }
  return undefined;
}

export { sleep } from '../helpers/wait.js';
