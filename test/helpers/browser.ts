// Real browsers as test peers: Chromium through playwright-core, Firefox ESR through
// puppeteer-core (playwright-core cannot drive Debian's Firefox). Each launch gets a fresh
// profile in a temp dir that close() removes; the test-file cleanup (processes.ts) closes
// any browser a failing test left open. Every page records its RTCPeerConnections in
// `window.__pcs` (an init script) so readRtcStats() can read their inbound-rtp reports.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page as PlaywrightPage } from 'playwright-core';
import puppeteer, { type Browser as PuppeteerBrowser, type Page as PuppeteerPage } from 'puppeteer-core';
import { registerCleanup } from './processes.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';
export const FIREFOX_PATH = '/usr/bin/firefox-esr';

/**
 * Chromium flags. The first group is required on the test machines: without the
 * background-networking ones Chromium keeps dialling out and the network refuses it.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Media tests: play without a click, grant getUserMedia, and give it a fake camera/mic.
  '--autoplay-policy=no-user-gesture-required',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  // WebRTC on a loopback-only network: also gather 127.0.0.1 candidates, and offer plain
  // host addresses instead of .local names (resolving those needs multicast DNS on the
  // real interface, which these machines must not use).
  '--allow-loopback-in-peer-connection',
  `--disable-features=${[
    'WebRtcHideLocalIpsWithMdns',
    // Chromium keeps only the last --disable-features, and playwright passes its own list
    // first; repeat the entries of that list that keep Chromium off the network.
    'OptimizationHints',
    'NetworkTimeServiceQuerying',
    'AimEnabled',
    'PreconnectToSearch',
    'MediaRouter',
    'HttpsUpgrades',
    'HttpsFirstBalancedModeAutoEnable',
    'LensOverlay',
    'PaintHolding',
    'ThirdPartyStoragePartitioning',
    'AvoidCorsURLLoaderRestartOnRedirect',
    'DestroyProfileOnBrowserClose',
  ].join(',')}`,
];

/**
 * Firefox preferences: media permissions and autoplay for tests, loopback ICE candidates,
 * and no background downloads (OpenH264, updates) on a network that refuses them.
 */
export const FIREFOX_PREFS: Readonly<Record<string, unknown>> = {
  'media.navigator.permission.disabled': true,
  'media.navigator.streams.fake': true,
  'media.autoplay.default': 0,
  'media.autoplay.blocking_policy': 0,
  'media.peerconnection.ice.loopback': true,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'media.gmp-manager.updateEnabled': false,
  'media.gmp-gmpopenh264.autoupdate': false,
  'app.update.enabled': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'network.dns.disablePrefetch': true,
  'network.prefetch-next': false,
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.enabled': false,
  'extensions.update.enabled': false,
};

/**
 * Init script text: wraps the page's `constructorName` so every instance the page creates is kept in
 * `window[listName]` (in creation order), without changing how the page uses it.
 */
function instanceRecorderScript(constructorName: string, listName: string, alias?: string): string {
  return `(() => {
  if (window.${listName}) return;
  const made = [];
  Object.defineProperty(window, '${listName}', { value: made });
  const Original = window.${constructorName};
  if (typeof Original !== 'function') return;
  class Recorded extends Original {
    constructor(...args) {
      super(...args);
      made.push(this);
    }
  }
  Object.defineProperty(Recorded, 'name', { value: '${constructorName}' });
  window.${constructorName} = Recorded;${alias ? `
  if ('${alias}' in window) window.${alias} = Recorded;` : ''}
})();`;
}

/** Init script (every page): every RTCPeerConnection the page creates, in `window.__pcs`. */
export const RTC_RECORDER_SCRIPT = instanceRecorderScript('RTCPeerConnection', '__pcs', 'webkitRTCPeerConnection');

/**
 * Init script for one page (`page.addInitScript({ content })`): every EventSource the page opens, in
 * `window.__eventSources`, so a test can count them (readEventSources).
 */
export const EVENT_SOURCE_RECORDER_SCRIPT = instanceRecorderScript('EventSource', '__eventSources');

/** The EventSources a page with EVENT_SOURCE_RECORDER_SCRIPT opened, in order: path and readyState (2 = closed). */
export async function readEventSources(page: ScriptablePage): Promise<Array<{ path: string; readyState: number }>> {
  const value = await page.evaluate('(window.__eventSources || []).map((s) => ({ path: new URL(s.url).pathname, readyState: s.readyState }))');
  if (!Array.isArray(value)) throw new Error('readEventSources: the page did not return an array');
  return value as Array<{ path: string; readyState: number }>;
}

/** Runs in the page: getStats() of every recorded peer connection, as plain JSON. */
const READ_STATS_SCRIPT = `(async () => {
  const out = [];
  const pcs = window.__pcs || [];
  for (let index = 0; index < pcs.length; index++) {
    const pc = pcs[index];
    const entry = {
      index,
      connectionState: pc.connectionState,
      iceConnectionState: pc.iceConnectionState,
      signalingState: pc.signalingState,
      inbound: [],
      candidatePairs: [],
    };
    try {
      const report = await pc.getStats();
      const byId = new Map();
      const selectedPairs = new Set();
      report.forEach((s) => {
        byId.set(s.id, s);
        if (s.type === 'transport' && s.selectedCandidatePairId) selectedPairs.add(s.selectedCandidatePairId);
      });
      report.forEach((s) => {
        if (s.type === 'inbound-rtp') {
          const codec = s.codecId ? byId.get(s.codecId) : undefined;
          entry.inbound.push(Object.assign(JSON.parse(JSON.stringify(s)), {
            mimeType: codec ? codec.mimeType : undefined,
            sdpFmtpLine: codec ? codec.sdpFmtpLine : undefined,
          }));
        } else if (s.type === 'candidate-pair' && s.state === 'succeeded') {
          const local = byId.get(s.localCandidateId);
          const remote = byId.get(s.remoteCandidateId);
          entry.candidatePairs.push({
            nominated: !!s.nominated,
            selected: selectedPairs.has(s.id),
            localAddress: local ? (local.address || local.ip) : undefined,
            localCandidateType: local ? local.candidateType : undefined,
            remoteAddress: remote ? (remote.address || remote.ip) : undefined,
            remoteCandidateType: remote ? remote.candidateType : undefined,
            currentRoundTripTime: s.currentRoundTripTime,
            requestsSent: s.requestsSent,
            responsesReceived: s.responsesReceived,
          });
        }
      });
    } catch (err) {
      entry.error = String(err);
    }
    out.push(entry);
  }
  return out;
})()`;

/** What readRtcStats() needs from a page: playwright and puppeteer pages both qualify. */
export interface ScriptablePage {
  evaluate(script: string): Promise<unknown>;
}

export interface InboundRtpStats {
  kind: 'video' | 'audio';
  ssrc?: number;
  mimeType?: string;
  sdpFmtpLine?: string;
  packetsReceived?: number;
  packetsLost?: number;
  bytesReceived?: number;
  jitter?: number;
  framesDecoded?: number;
  framesReceived?: number;
  keyFramesDecoded?: number;
  framesDropped?: number;
  frameWidth?: number;
  frameHeight?: number;
  framesPerSecond?: number;
  jitterBufferDelay?: number;
  jitterBufferEmittedCount?: number;
  jitterBufferTargetDelay?: number;
  freezeCount?: number;
  totalFreezesDuration?: number;
  pauseCount?: number;
  totalPausesDuration?: number;
  nackCount?: number;
  pliCount?: number;
  firCount?: number;
  totalDecodeTime?: number;
  decoderImplementation?: string;
  totalSamplesReceived?: number;
  concealedSamples?: number;
  audioLevel?: number;
  totalAudioEnergy?: number;
  /** The sender-clock (NTP, ms) time of the media playing out now: audio and video equal when in step. */
  estimatedPlayoutTimestamp?: number;
  /** Every field the browser reported. */
  raw: Record<string, unknown>;
}

export interface CandidatePairStats {
  nominated: boolean;
  localAddress?: string;
  localCandidateType?: string;
  remoteAddress?: string;
  remoteCandidateType?: string;
  currentRoundTripTime?: number;
  /** The transport's selected pair (several pairs can be nominated). */
  selected?: boolean;
  /** STUN checks (keepalives, consent) this browser sent on the pair, and the answers it accepted. */
  requestsSent?: number;
  responsesReceived?: number;
}

export interface PeerConnectionStats {
  /** Position in creation order on the page. */
  index: number;
  connectionState?: string;
  iceConnectionState?: string;
  signalingState?: string;
  inbound: InboundRtpStats[];
  /** The first inbound video / audio report, for convenience. */
  video?: InboundRtpStats;
  audio?: InboundRtpStats;
  /** Candidate pairs in state 'succeeded'. */
  candidatePairs: CandidatePairStats[];
  /** Set when getStats() threw (e.g. on a closed connection in some browsers). */
  error?: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

const NUMERIC_INBOUND_FIELDS = [
  'ssrc', 'packetsReceived', 'packetsLost', 'bytesReceived', 'jitter', 'framesDecoded', 'framesReceived',
  'keyFramesDecoded', 'framesDropped', 'frameWidth', 'frameHeight', 'framesPerSecond', 'jitterBufferDelay',
  'jitterBufferEmittedCount', 'jitterBufferTargetDelay', 'freezeCount', 'totalFreezesDuration', 'pauseCount',
  'totalPausesDuration', 'nackCount', 'pliCount', 'firCount', 'totalDecodeTime', 'totalSamplesReceived',
  'concealedSamples', 'audioLevel', 'totalAudioEnergy', 'estimatedPlayoutTimestamp',
] as const;

function toInbound(s: Record<string, unknown>): InboundRtpStats {
  const kind = s.kind === 'audio' || s.mediaType === 'audio' ? 'audio' : 'video';
  const out: InboundRtpStats = {
    kind,
    mimeType: str(s.mimeType),
    sdpFmtpLine: str(s.sdpFmtpLine),
    decoderImplementation: str(s.decoderImplementation),
    raw: s,
  };
  for (const f of NUMERIC_INBOUND_FIELDS) out[f] = num(s[f]);
  return out;
}

function toPeerConnectionStats(v: unknown): PeerConnectionStats {
  if (!isRecord(v)) throw new Error('readRtcStats: unexpected value from the page');
  const inbound = Array.isArray(v.inbound) ? v.inbound.filter(isRecord).map(toInbound) : [];
  const pairs = Array.isArray(v.candidatePairs) ? v.candidatePairs.filter(isRecord) : [];
  return {
    index: num(v.index) ?? -1,
    connectionState: str(v.connectionState),
    iceConnectionState: str(v.iceConnectionState),
    signalingState: str(v.signalingState),
    inbound,
    video: inbound.find((s) => s.kind === 'video'),
    audio: inbound.find((s) => s.kind === 'audio'),
    candidatePairs: pairs.map((p) => ({
      nominated: p.nominated === true,
      localAddress: str(p.localAddress),
      localCandidateType: str(p.localCandidateType),
      remoteAddress: str(p.remoteAddress),
      remoteCandidateType: str(p.remoteCandidateType),
      currentRoundTripTime: num(p.currentRoundTripTime),
      selected: p.selected === true,
      requestsSent: num(p.requestsSent),
      responsesReceived: num(p.responsesReceived),
    })),
    error: str(v.error),
  };
}

/** getStats() of every RTCPeerConnection the page created, with inbound-rtp reports. */
export async function readRtcStats(page: ScriptablePage): Promise<PeerConnectionStats[]> {
  const value = await page.evaluate(READ_STATS_SCRIPT);
  if (!Array.isArray(value)) throw new Error('readRtcStats: the page did not return an array');
  return value.map(toPeerConnectionStats);
}

/** Polls readRtcStats() until `predicate` holds; throws with the last stats on timeout. */
export async function waitForRtcStats(
  page: ScriptablePage,
  predicate: (stats: PeerConnectionStats[]) => boolean,
  { timeoutMs = 15_000, intervalMs = 250 } = {},
): Promise<PeerConnectionStats[]> {
  const deadline = Date.now() + timeoutMs;
  let last: PeerConnectionStats[] = [];
  for (;;) {
    last = await readRtcStats(page);
    if (predicate(last)) return last;
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`RTC stats condition not met after ${timeoutMs} ms; last stats:\n${summarizeRtcStats(last)}\n${await describePage(page)}`);
}

/** Where the page is and what it says, so a failure shows e.g. a sign-in form instead of a player. */
async function describePage(page: ScriptablePage): Promise<string> {
  try {
    const text = await page.evaluate('location.href + " says: " + (document.body ? document.body.innerText : "").replace(/\\s+/g, " ").slice(0, 300)');
    return `page: ${String(text)}`;
  } catch (error) {
    return `page: (unreadable: ${(error as Error).message})`;
  }
}

/**
 * Signs the browser context in through the /login form, like a person, and waits for the redirect
 * to '/'. The session cookie then serves every tab of the context. (Waiting for the navigation to
 * finish matters: navigating away while the POST is in flight cancels the sign-in.)
 */
export async function signInWithForm(page: PlaywrightPage, base: string, username: string, password: string): Promise<void> {
  const origin = new URL(base).origin;
  await page.goto(`${origin}/login`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL((url) => url.pathname === '/', { timeout: 15_000 }), page.click('button[type=submit]')]);
}

/** Waits until some peer connection on the page has decoded at least `frames` video frames. */
export function waitForFramesDecoded(page: ScriptablePage, frames: number, timeoutMs = 15_000): Promise<PeerConnectionStats[]> {
  return waitForRtcStats(page, (all) => all.some((pc) => (pc.video?.framesDecoded ?? 0) >= frames), { timeoutMs });
}

/** One line per peer connection, for assertion messages. */
export function summarizeRtcStats(stats: PeerConnectionStats[]): string {
  if (stats.length === 0) return '(no RTCPeerConnection on the page)';
  return stats
    .map((pc) => {
      const v = pc.video;
      const a = pc.audio;
      const video = v
        ? `video ${v.mimeType ?? '?'} ${v.frameWidth ?? '?'}x${v.frameHeight ?? '?'} decoded=${v.framesDecoded ?? 0} pkts=${v.packetsReceived ?? 0} lost=${v.packetsLost ?? 0} freezes=${v.freezeCount ?? 0}`
        : 'no video';
      const audio = a ? `audio ${a.mimeType ?? '?'} pkts=${a.packetsReceived ?? 0}` : 'no audio';
      return `pc#${pc.index} ${pc.connectionState ?? '?'}/${pc.iceConnectionState ?? '?'} ${video}; ${audio}${pc.error ? ` error=${pc.error}` : ''}`;
    })
    .join('\n');
}

export interface OpenPageOptions {
  timeoutMs?: number;
  /** Default 'load'. */
  waitUntil?: 'load' | 'domcontentloaded';
}

export interface ChromiumLaunchOptions {
  /** Added after CHROMIUM_ARGS. */
  extraArgs?: string[];
  /** Default true. */
  headless?: boolean;
  timeoutMs?: number;
}

export interface ChromiumSession {
  readonly context: BrowserContext;
  readonly userDataDir: string;
  /** A new tab showing `url` (recording its RTCPeerConnections). */
  openPage(url: string, options?: OpenPageOptions): Promise<PlaywrightPage>;
  close(): Promise<void>;
}

export async function launchChromium(options: ChromiumLaunchOptions = {}): Promise<ChromiumSession> {
  const userDataDir = await mkdtemp(join(tmpdir(), 'wrc-chromium-'));
  let context: BrowserContext;
  try {
    // A persistent context is how playwright takes a user-data-dir of our choosing.
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: options.headless ?? true,
      args: [...CHROMIUM_ARGS, ...(options.extraArgs ?? [])],
      timeout: options.timeoutMs ?? 30_000,
    });
  } catch (err) {
    await rm(userDataDir, { recursive: true, force: true });
    throw err;
  }
  await context.addInitScript({ content: RTC_RECORDER_SCRIPT });
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      unregister();
      await context.close().catch(() => undefined);
      await rm(userDataDir, { recursive: true, force: true });
    })());
  const unregister = registerCleanup(close);
  return {
    context,
    userDataDir,
    openPage: async (url, o = {}) => {
      const page = await context.newPage();
      await page.goto(url, { timeout: o.timeoutMs ?? 15_000, waitUntil: o.waitUntil ?? 'load' });
      return page;
    },
    close,
  };
}

export interface FirefoxLaunchOptions {
  /** Merged over FIREFOX_PREFS. */
  prefs?: Record<string, unknown>;
  extraArgs?: string[];
  headless?: boolean;
  timeoutMs?: number;
}

export interface FirefoxSession {
  readonly browser: PuppeteerBrowser;
  readonly userDataDir: string;
  /** A new tab showing `url` (recording its RTCPeerConnections). */
  openPage(url: string, options?: OpenPageOptions): Promise<PuppeteerPage>;
  close(): Promise<void>;
}

export async function launchFirefox(options: FirefoxLaunchOptions = {}): Promise<FirefoxSession> {
  const userDataDir = await mkdtemp(join(tmpdir(), 'wrc-firefox-'));
  let browser: PuppeteerBrowser;
  try {
    browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath: FIREFOX_PATH,
      headless: options.headless ?? true,
      userDataDir,
      extraPrefsFirefox: { ...FIREFOX_PREFS, ...(options.prefs ?? {}) },
      args: options.extraArgs ?? [],
      timeout: options.timeoutMs ?? 30_000,
    });
  } catch (err) {
    await rm(userDataDir, { recursive: true, force: true });
    throw err;
  }
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      unregister();
      await browser.close().catch(() => undefined);
      await rm(userDataDir, { recursive: true, force: true });
    })());
  const unregister = registerCleanup(close);
  return {
    browser,
    userDataDir,
    openPage: async (url, o = {}) => {
      const page = await browser.newPage();
      await page.evaluateOnNewDocument(RTC_RECORDER_SCRIPT);
      await page.goto(url, { timeout: o.timeoutMs ?? 15_000, waitUntil: o.waitUntil === 'domcontentloaded' ? 'domcontentloaded' : 'load' });
      return page;
    },
    close,
  };
}
