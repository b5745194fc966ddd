/**
 * Instant start in a real browser: Chromium opens the watch page on a camera whose Source is warm
 * (always on), with a 4 s camera GOP and no keyframe on PLAY, so only the GOP cache can make the
 * first frame quick. The chain is the product's: GStreamer fake camera → RTSP client → Source →
 * web server, signalling and werift peer → Chromium.
 *
 * For each load: navigation start → first `framesDecoded > 0` and → first presented frame
 * (requestVideoFrameCallback), and whether a camera keyframe arrived in between (such a load
 * could have been served by the camera rather than the cache; it is counted, and kept).
 * The same loads with the cache turned off (subscribers start at the camera's next keyframe)
 * show what the cache is worth. Medians and p90; compare the rows of one run.
 *
 * This is the figure the e2e suite no longer bounds: a test proves the first frame comes from the
 * cache, this measures how fast it is on this machine as it is now.
 *
 * Run: npm run bench:instant [-- --loads 9]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import { Source } from '../src/media/source.js';
import type { FrameSink, MediaFrame, SourceState, TrackDescription } from '../src/media/types.js';
import { rtspUpstream } from '../src/rtsp/upstream.js';
import { silentLogger } from '../src/util/logger.js';
import { createWebServer } from '../src/web/server.js';
import type { BroadcastSource } from '../src/media/types.js';
import { LOOPBACK_ICE_SETTINGS } from '../src/webrtc/ice-config.js';
import { createSignallingHandler } from '../src/webrtc/signalling.js';
import { ViewerLimiter } from '../src/webrtc/viewer-limits.js';
import { createWhepHandler } from '../src/webrtc/whep.js';
import { PAGE_PROBE_SCRIPT, readProbe } from '../test/e2e/webrtc-helpers.js';
import { launchChromium } from '../test/helpers/browser.js';
import { FakeCamera } from '../test/helpers/fake-camera.js';
import { cleanupAll } from '../test/helpers/processes.js';

const FPS = 25;
const GOP_FRAMES = 100; // 4 s

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/**
 * The Source as a viewer would see it without a GOP cache: no replay on subscribe and none on a
 * keyframe request, so the picture starts at the camera's next keyframe (MediaMTX, go2rtc).
 */
function withoutCache(source: Source): BroadcastSource {
  return {
    id: source.id,
    get tracks() {
      return source.tracks;
    },
    get state() {
      return source.state;
    },
    subscribe: (sink, options) => source.subscribe(sink, { ...options, fromKeyframe: false }),
    requestKeyframe: () => undefined,
    stats: () => source.stats(),
    on(event, listener) {
      source.on(event, listener);
      return this;
    },
    off(event, listener) {
      source.off(event, listener);
      return this;
    },
  };
}

/** Keeps the always-on Source's keyframe count visible without a subscriber's side effects. */
class Nothing implements FrameSink {
  write(_frame: MediaFrame): boolean {
    return true;
  }
  onState(_state: SourceState): void {}
  onTracks(_tracks: ReadonlyArray<TrackDescription>): void {}
}

async function main(): Promise<void> {
  const loads = argument('loads', 9);
  const camera = await FakeCamera.start({ width: 640, height: 360, fps: FPS, keyframeIntervalFrames: GOP_FRAMES, keyframeOnPlay: false, audio: 'pcmu' });
  const source = new Source({ id: 'front', name: 'Front', upstream: rtspUpstream({ url: camera.url, cameraName: 'Front', logger: silentLogger }), alwaysOn: true });
  const keepAlive = source.subscribe(new Nothing(), { kinds: ['video'] });
  const keyframes = (): number => source.stats().video?.keyframes ?? 0;
  const rows: string[][] = [];
  const chromium = await launchChromium();
  await chromium.context.addInitScript({ content: PAGE_PROBE_SCRIPT });
  try {
    while (keyframes() < 1) await sleep(50);
    for (const [label, exposed] of [['GOP cache (the product)', source], ['no cache: next camera keyframe', withoutCache(source)]] as const) {
      const registry = { get: (id: string) => (id === 'front' ? exposed : undefined), list: () => [exposed] };
      const limits = new ViewerLimiter({ maxViewersPerCamera: 10 });
      const server = createWebServer({
        port: 0,
        host: '127.0.0.1',
        registry,
        signalling: createSignallingHandler({ registry, limits, ice: LOOPBACK_ICE_SETTINGS }),
        whep: createWhepHandler({ registry, limits, ice: LOOPBACK_ICE_SETTINGS }),
      });
      const base = (await server.listen()).url;
      const decoded: number[] = [];
      const presented: number[] = [];
      let straddled = 0;
      for (let i = 0; i < loads; i++) {
        const before = keyframes();
        const page: Page = await chromium.openPage(`${base}#camera=front`);
        try {
          let probe = await readProbe(page);
          const deadline = Date.now() + 15_000;
          while (probe.firstDecodedAt === undefined || probe.firstPresentedAt === undefined) {
            if (Date.now() > deadline) throw new Error(`${label}: no frame in 15 s`);
            await sleep(20);
            probe = await readProbe(page);
          }
          decoded.push(probe.firstDecodedAt);
          presented.push(probe.firstPresentedAt);
          if (keyframes() !== before) straddled++;
        } finally {
          await page.close();
        }
        // Land the next load at another point of the 4 s GOP.
        await sleep(350 + ((i * 1_370) % 4_000));
      }
      await server.close();
      rows.push([
        label,
        String(loads),
        percentile(decoded, 50).toFixed(0),
        percentile(decoded, 90).toFixed(0),
        percentile(presented, 50).toFixed(0),
        String(straddled),
      ]);
    }
  } finally {
    await chromium.close();
    keepAlive.unsubscribe();
    await source.close();
    await camera.close();
    await cleanupAll();
  }
  const header = ['path', 'loads', 'first decoded ms p50', 'p90', 'first presented ms p50', 'loads with a camera keyframe inside'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`Chromium page load → first frame; camera 640x360 ${FPS} fps, GOP ${GOP_FRAMES / FPS} s, no keyframe on PLAY, source warm`);
  console.log(line(header));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const row of rows) console.log(line(row));
}

await main();
