/**
 * An ONVIF camera on loopback for tests: SOAP over HTTP matched on the action (the body element),
 * answered from the upstream fixture files (test/fixtures/onvif/agsh-onvif-v0.x, MIT) and our vendor
 * quirk files (test/fixtures/onvif/quirks), with WS-Security checking, a configurable clock, a stream
 * URI pointing at any RTSP URL, a digest/basic-protected JPEG snapshot, a PullPoint subscription that
 * emits motion on command, and a WS-Discovery responder on a loopback UDP port.
 *
 * Everything binds to 127.0.0.x only; nothing is ever multicast.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { plainTimers, type TimerHandle, type TimerSeam } from '../../src/media/timers.js';
import { passwordDigest } from '../../src/onvif/soap.js';
import { child, descendant, escapeXml, path, textAt, textOf, tryParseXml, type XmlElement } from '../../src/onvif/xml.js';

const here = dirname(fileURLToPath(import.meta.url));
export const ONVIF_FIXTURES = join(here, '..', 'fixtures', 'onvif');

// ---------------------------------------------------------------------------------------------------
// doT subset used by the upstream fixtures: `{{= expr }}` and `{{? cond }} … {{?}}`. Only the
// expressions those files use are understood; anything else is an error, not an `eval`.

export interface DotRenderOptions {
  /** Clock for `new Date()` (the responder's possibly wrong clock). */
  now?: () => number;
  /** For `Math.random()` conditions; default 1 (so random blocks are left out, deterministic). */
  random?: () => number;
}

export function renderDotTemplate(template: string, it: Record<string, unknown>, options: DotRenderOptions = {}): string {
  const now = options.now ?? Date.now;
  const random = options.random ?? ((): number => 1);
  const value = (expr: string): string => {
    const e = expr.trim();
    let m = /^it\.(\w+)$/.exec(e);
    if (m) return String(it[m[1]!] ?? '');
    if (e === 'new Date().toISOString()') return new Date(now()).toISOString();
    m = /^new Date\(Date\.now\(\)\s*\+\s*(\d+)\)\.toISOString\(\)$/.exec(e);
    if (m) return new Date(now() + Number(m[1])).toISOString();
    throw new Error(`unsupported template expression {{=${expr}}}`);
  };
  const condition = (expr: string): boolean =>
    expr.split('||').some((term) => {
      const t = term.trim();
      let m = /^typeof it\.(\w+) === 'undefined'$/.exec(t);
      if (m) return it[m[1]!] === undefined;
      m = /^it\.(\w+) > (\d+)$/.exec(t);
      if (m) return Number(it[m[1]!]) > Number(m[2]);
      m = /^(!?)it\.(\w+)$/.exec(t);
      if (m) return m[1] === '!' ? !it[m[2]!] : !!it[m[2]!];
      m = /^Math\.random\(\) < ([\d.]+)$/.exec(t);
      if (m) return random() < Number(m[1]);
      throw new Error(`unsupported template condition {{?${expr}}}`);
    });
  let out = '';
  const stack: boolean[] = [];
  const emitting = (): boolean => stack.every(Boolean);
  const re = /\{\{(=|\?)([\s\S]*?)\}\}/g;
  let last = 0;
  for (let m = re.exec(template); m; m = re.exec(template)) {
    if (emitting()) out += template.slice(last, m.index);
    last = m.index + m[0].length;
    if (m[1] === '=') {
      if (emitting()) out += escapeXml(value(m[2]!));
    } else if (m[2]!.trim() === '') {
      if (stack.pop() === undefined) throw new Error('unbalanced {{?}}');
    } else {
      stack.push(emitting() ? condition(m[2]!) : false);
    }
  }
  if (stack.length) throw new Error('unclosed {{? }} block');
  if (emitting()) out += template.slice(last);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// JPEG and ffprobe helpers for snapshot tests

function run(command: string, args: string[], input?: Buffer, timeoutMs = 20_000): Promise<{ stdout: Buffer; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out), stderr: err, code });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/** A real JPEG made by ffmpeg (testsrc2). */
export async function makeTestJpeg(width = 320, height = 240): Promise<Buffer> {
  const { stdout, stderr, code } = await run('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${width}x${height}:rate=1`,
    '-frames:v', '1', '-f', 'image2pipe', '-vcodec', 'mjpeg', 'pipe:1',
  ]);
  if (code !== 0 || stdout.length < 100) throw new Error(`ffmpeg could not make a JPEG: ${stderr}`);
  return stdout;
}

/** What ffprobe says about an image given as bytes. */
export async function probeImage(bytes: Buffer): Promise<{ codec: string; width: number; height: number }> {
  const { stdout, stderr, code } = await run('ffprobe', ['-v', 'error', '-show_streams', '-of', 'json', '-i', 'pipe:0'], bytes);
  if (code !== 0) throw new Error(`ffprobe failed: ${stderr}`);
  const parsed = JSON.parse(stdout.toString()) as { streams?: Array<{ codec_name?: string; width?: number; height?: number }> };
  const stream = parsed.streams?.[0];
  return { codec: stream?.codec_name ?? '', width: stream?.width ?? 0, height: stream?.height ?? 0 };
}

// ---------------------------------------------------------------------------------------------------
// The responder

export type MotionTopicStyle = 'cell' | 'alarm' | 'vendor' | 'suffix';

export type ResponderOverride =
  /** A fixture file, relative to test/fixtures/onvif (e.g. `agsh-onvif-v0.x/Error.xml`, `quirks/html-401.html`). */
  | { kind: 'fixture'; file: string; status?: number; contentType?: string }
  | { kind: 'raw'; body: string; status?: number; contentType?: string }
  /** Accept the request and never answer. */
  | { kind: 'timeout' }
  /** Drop the connection. */
  | { kind: 'close' };

export interface DiscoveryResponderOptions {
  endpoint?: string;
  name?: string;
  hardware?: string;
  /** Also answer from this second loopback address (same endpoint, its own XAddr). */
  secondAddress?: string;
  extraXAddrs?: string[];
  /** Surround and separate XAddrs and Scopes with newlines and tabs. */
  whitespace?: boolean;
  /** Rewrite the namespace prefixes of Probe.xml (SOAP-ENV, wsdd, wsa) to other names. */
  renamePrefixes?: boolean;
  /** Send garbage datagrams to the prober before each answer. */
  garbage?: boolean;
  /** Ignore this many probes first (to test retries). */
  ignoreProbes?: number;
}

export interface OnvifResponderOptions {
  username?: string;
  password?: string;
  /** Check WS-Security on everything but GetSystemDateAndTime. Default true. */
  auth?: boolean;
  /** Also require HTTP Digest on the SOAP endpoint (firmwares that use it instead of, or with, WS-Security). */
  soapHttpDigest?: boolean;
  /** How a wrong password is answered. Default SOAP 1.2 ter:NotAuthorized. */
  authFailure?: 'soap-fault' | 'soap11-fault' | 'html-401';
  /** The camera clock's offset from the real one (a camera years off). */
  clockOffsetMs?: number;
  clockToleranceMs?: number;
  /** The real clock the camera's is offset from, and the timers its long polls wait on. Default the real ones; a test's FakeTime for both moves the camera's time with the plugin's. */
  now?: () => number;
  timers?: TimerSeam;
  /** The RTSP URL handed out for the main profile. */
  streamUrl?: string;
  /** For the sub-stream profile (multi-profile and Media2 modes). Default: streamUrl with `/sub`. */
  subStreamUrl?: string;
  /** Hand the stream URI out with this host instead of the real one (a camera reporting its internal IP). */
  streamUriHost?: string;
  /** ... and/or this port (a camera unaware of port forwarding). */
  streamUriPort?: number;
  profiles?: 'fixture' | 'multi' | 'media2-only';
  deviceInformation?: 'fixture' | 'placeholders';
  snapshot?: {
    jpeg?: Buffer;
    auth?: 'digest' | 'basic' | 'none';
    /** Hand the snapshot URI out with this host (internal IP quirk). */
    uriHost?: string;
    serve?: 'jpeg' | 'html' | 'html-401';
  };
  discovery?: boolean | DiscoveryResponderOptions;
  /** Lifetime granted to subscriptions (create and renew). Default 5000 ms, the fixture's value. */
  subscriptionTtlMs?: number;
  /** Axis style: one subscription address for all, the subscription named in ReferenceParameters (echoed as a header). */
  referenceParameters?: boolean;
  /** Style of the `Initialized` message queued on every new subscription; false for none. Default 'cell'. */
  initialStateStyle?: MotionTopicStyle | false;
  /** Per-command replacements (command = body element local name, e.g. `GetProfiles`). */
  overrides?: Record<string, ResponderOverride>;
  /** Per-service replacements keyed `service.Command` (e.g. `media.GetStreamUri`, `media2.GetProfiles`); after `overrides`. */
  serviceOverrides?: Record<string, ResponderOverride>;
  /** List a Media2 service next to Media1 in GetServices (the fixture lists Media1 only). */
  media2?: boolean;
  /** PTZ behaviour; `false` for a camera without PTZ (no PTZ service, PTZ calls refused). Default: the fixture's node. */
  ptz?: false | ResponderPtzOptions;
}

export interface ResponderPtzOptions {
  /** Offer ContinuousMove (velocity spaces in GetNodes/GetConfigurationOptions). Default true. */
  continuous?: boolean;
  /** Narrow the continuous velocity ranges to ±this (the fixture's are ±1). */
  maxVelocity?: number;
}

export interface RecordedRequest {
  command: string;
  service: string;
  path: string;
  authenticated: boolean | undefined;
  /** The request's body element, to check what was asked (PTZ velocities, preset tokens). */
  element: XmlElement;
}

export interface EmitMotionOptions {
  topicStyle?: MotionTopicStyle | 'both';
  /** Default 'Changed'; 'none' sends an event without a PropertyOperation (a pulse). */
  operation?: 'Changed' | 'Initialized' | 'none';
}

/** Any event a camera may send (issue 17: doorbell inputs, tamper, line crossing, vendor topics). */
export interface EmitEventOptions {
  /** As the camera writes it, e.g. `tns1:Device/Trigger/DigitalInput`. */
  topic: string;
  /** Namespace declarations the topic's vendor prefixes need (`xmlns:tnsvendor="..."`). */
  topicNamespaces?: string;
  source?: Record<string, string>;
  data?: Record<string, string>;
  /** Default 'Changed'; 'none' sends an event without a PropertyOperation (a pulse). */
  operation?: 'Changed' | 'Initialized' | 'Deleted' | 'none';
}

export interface OnvifResponder {
  readonly host: string;
  readonly port: number;
  readonly deviceUrl: string;
  /** Where to send probes (loopback UDP), when discovery is enabled. */
  readonly discoveryTarget: { address: string; port: number } | undefined;
  readonly requests: RecordedRequest[];
  readonly counters: { subscriptions: number; renewals: number; unsubscribes: number; pulls: number; probes: number };
  activeSubscriptions(): number;
  emitMotion(active: boolean, options?: EmitMotionOptions): void;
  /** Queues one notification with any topic on every subscription. */
  emitEvent(event: EmitEventOptions): void;
  /** A doorbell press as a digital input: LogicalState true (then, with `release`, false). */
  emitDoorbell(options?: { release?: boolean; input?: string }): void;
  setOverride(command: string, override: ResponderOverride | undefined): void;
  /** Resolves with the next request for `command` (already recorded ones do not count). */
  nextRequest(command: string): Promise<RecordedRequest>;
  /** Changes options at run time (password, stream URL, clock, ...). */
  configure(changes: Partial<OnvifResponderOptions>): void;
  /** Simulates a reboot: drops every connection and subscription, refuses connections for `downMs`. */
  reboot(downMs?: number): Promise<void>;
  close(): Promise<void>;
}

const SERVICE_BY_NAMESPACE: Record<string, string> = {
  'http://www.onvif.org/ver10/device/wsdl': 'device',
  'http://www.onvif.org/ver10/media/wsdl': 'media',
  'http://www.onvif.org/ver20/media/wsdl': 'media2',
  'http://www.onvif.org/ver10/events/wsdl': 'events',
  'http://docs.oasis-open.org/wsn/b-2': 'events',
  'http://www.onvif.org/ver20/ptz/wsdl': 'ptz',
  'http://www.onvif.org/ver20/imaging/wsdl': 'imaging',
};

const SUB_TOKENS = new Set(['Profile_sub', 'Profile_2']);

interface PullWaiter {
  respond: () => void;
  timer: TimerHandle;
}

interface ResponderSubscription {
  id: number;
  expiresAt: number;
  queue: string[];
  waiter: PullWaiter | undefined;
}

function readFixture(file: string): string {
  return readFileSync(join(ONVIF_FIXTURES, file), 'utf8');
}

/** Parses the xsd:duration forms cameras receive (`PT5S`, `PT1M`, `PT0.5S`). */
function parseDuration(text: string | undefined, fallbackMs: number): number {
  const m = /^P(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?$/.exec((text ?? '').trim());
  if (!m) return fallbackMs;
  return ((Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) * 1000;
}

function replaceElementText(xml: string, localName: string, value: string): string {
  return xml.replace(new RegExp(`(<(?:[\\w-]+:)?${localName}(?:\\s[^>]*)?>)[\\s\\S]*?(</(?:[\\w-]+:)?${localName}>)`, 'g'), `$1${escapeXml(value)}$2`);
}

export async function startOnvifResponder(initial: OnvifResponderOptions = {}): Promise<OnvifResponder> {
  const options: OnvifResponderOptions = { username: 'admin', password: 'password', ...initial };
  const overrides = new Map(Object.entries(options.overrides ?? {}));
  const requestWaiters: Array<{ command: string; resolve: (request: RecordedRequest) => void }> = [];
  const requests: RecordedRequest[] = [];
  const counters = { subscriptions: 0, renewals: 0, unsubscribes: 0, pulls: 0, probes: 0 };
  const subscriptions = new Map<number, ResponderSubscription>();
  const digestNonces = new Set<string>();
  let nextSubscription = 1;
  let motionActive = false;
  let port = 0;
  const host = '127.0.0.1';
  const cameraNow = (): number => (options.now ?? Date.now)() + (options.clockOffsetMs ?? 0);
  const timers = (): TimerSeam => options.timers ?? plainTimers;
  const ttl = (): number => options.subscriptionTtlMs ?? 5000;
  const templateValues = (pullPointUrl = '/onvif/subscription?Idx=0'): Record<string, unknown> => ({ hostname: host, port, pullPointUrl });
  const render = (file: string, pullPointUrl?: string): string => renderDotTemplate(readFixture(file), templateValues(pullPointUrl), { now: cameraNow });

  // --- responses -------------------------------------------------------------------------------

  type Reply = { status: number; contentType: string; body: string | Buffer; headers?: Record<string, string> } | 'timeout' | 'close';
  const soapReply = (body: string, status = 200): Reply => ({ status, contentType: 'application/soap+xml; charset=utf-8', body });
  const fixtureReply = (file: string, status = 200, contentType?: string): Reply => ({
    status,
    contentType: contentType ?? (file.endsWith('.html') ? 'text/html' : 'application/soap+xml; charset=utf-8'),
    body: render(file),
  });
  const fromOverride = (override: ResponderOverride): Reply => {
    switch (override.kind) {
      case 'timeout':
        return 'timeout';
      case 'close':
        return 'close';
      case 'raw':
        return { status: override.status ?? 200, contentType: override.contentType ?? 'application/soap+xml', body: override.body };
      case 'fixture':
        return fixtureReply(override.file, override.status ?? (override.file.includes('fault') || override.file.endsWith('Error.xml') ? 400 : 200), override.contentType);
    }
  };
  const authFailure = (): Reply => {
    switch (options.authFailure ?? 'soap-fault') {
      case 'soap-fault':
        return fixtureReply('quirks/fault.NotAuthorized.xml', 400);
      case 'soap11-fault':
        return fixtureReply('quirks/fault.soap11-auth.xml', 500, 'text/xml; charset=utf-8');
      case 'html-401':
        return fixtureReply('quirks/html-401.html', 401, 'text/html; charset=iso-8859-1');
    }
  };

  const checkWsSecurity = (envelope: ReturnType<typeof descendant>): boolean => {
    const token = descendant(path(envelope, 'Header', 'Security'), 'UsernameToken');
    if (!token) return false;
    const username = textAt(token, 'Username');
    const digest = textAt(token, 'Password');
    const nonce = textAt(token, 'Nonce');
    const created = textAt(token, 'Created');
    if (username !== options.username || !digest || !nonce || !created) return false;
    const expected = passwordDigest(Buffer.from(nonce, 'base64'), created, options.password ?? '');
    if (expected !== digest) return false;
    const createdAt = Date.parse(created);
    return Number.isFinite(createdAt) && Math.abs(createdAt - cameraNow()) <= (options.clockToleranceMs ?? 60_000);
  };

  const streamUrlFor = (token: string | undefined): string => {
    const main = options.streamUrl ?? 'rtsp://127.0.0.1:8554/h264main';
    const chosen = token && SUB_TOKENS.has(token) ? options.subStreamUrl ?? `${main.replace(/\/$/, '')}/sub` : main;
    const url = new URL(chosen);
    if (options.streamUriHost) url.hostname = options.streamUriHost;
    if (options.streamUriPort !== undefined) url.port = String(options.streamUriPort);
    return url.href;
  };

  const snapshotUrl = (): string =>
    `http://${options.snapshot?.uriHost ?? host}:${port}/onvif-cgi/jpg/image.cgi?resolution=800x600&compression=20&camera=1`;

  /** One wsnt:NotificationMessage, as a camera writes it. */
  const notificationMessage = (event: EmitEventOptions): string => {
    const op = event.operation === 'none' ? '' : ` PropertyOperation="${event.operation ?? 'Changed'}"`;
    const utc = new Date(cameraNow()).toISOString();
    const items = (values: Record<string, string> | undefined): string =>
      Object.entries(values ?? {}).map(([name, value]) => `<tt:SimpleItem Name="${escapeXml(name)}" Value="${escapeXml(value)}"/>`).join('');
    const topicNs = event.topicNamespaces ? ` ${event.topicNamespaces}` : '';
    return (
      `<wsnt:NotificationMessage><wsnt:SubscriptionReference><wsa5:Address>http://${host}:${port}/onvif/subscription</wsa5:Address></wsnt:SubscriptionReference>` +
      `<wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"${topicNs}>${event.topic}</wsnt:Topic>` +
      `<wsnt:Message><tt:Message UtcTime="${utc}"${op}><tt:Source>${items(event.source)}</tt:Source><tt:Data>${items(event.data)}</tt:Data></tt:Message></wsnt:Message>` +
      `</wsnt:NotificationMessage>`
    );
  };

  const motionMessage = (style: MotionTopicStyle, active: boolean, operation: EmitMotionOptions['operation']): string => {
    const state = String(active);
    switch (style) {
      case 'cell':
        return notificationMessage({
          topic: 'tns1:RuleEngine/CellMotionDetector/Motion',
          source: { VideoSourceConfigurationToken: '000', VideoAnalyticsConfigurationToken: '000', Rule: '000' },
          data: { IsMotion: state },
          ...(operation ? { operation } : {}),
        });
      case 'alarm':
        return notificationMessage({ topic: 'tns1:VideoSource/MotionAlarm', source: { Source: '000' }, data: { State: state }, ...(operation ? { operation } : {}) });
      case 'vendor':
        return notificationMessage({ topic: 'tns1:VideoAnalytics/tnsaxis:MotionDetection', source: { window: '0' }, data: { motion: active ? '1' : '0' }, ...(operation ? { operation } : {}) });
      case 'suffix':
        return notificationMessage({
          topic: 'tnsvendor:RuleEngine/FieldDetector/MotionDetector/Motion',
          topicNamespaces: 'xmlns:tnsvendor="http://www.example.com/vendor/topics"',
          source: { Rule: 'MotionRule1' },
          data: { IsMotion: state },
          ...(operation ? { operation } : {}),
        });
    }
  };

  const queueMessages = (messages: string[]): void => {
    for (const subscription of subscriptions.values()) {
      subscription.queue.push(...messages);
      subscription.waiter?.respond();
    }
  };

  const pullResponse = (subscription: ResponderSubscription, limit: number): string => {
    let xml = render('agsh-onvif-v0.x/PullMessages.xml', `/onvif/subscription?Idx=${subscription.id}`);
    xml = replaceElementText(xml, 'CurrentTime', new Date(cameraNow()).toISOString());
    xml = replaceElementText(xml, 'TerminationTime', new Date(subscription.expiresAt).toISOString());
    const messages = subscription.queue.splice(0, Math.max(1, limit));
    return xml.replace(/(<\/(?:[\w-]+:)?PullMessagesResponse>)/, `${messages.join('')}$1`);
  };

  const handlePull = (subscription: ResponderSubscription, request: ReturnType<typeof child>, res: http.ServerResponse): void => {
    counters.pulls++;
    const timeout = parseDuration(textAt(request, 'Timeout'), 10_000);
    const limit = Number(textAt(request, 'MessageLimit') ?? 16) || 16;
    const respond = (): void => {
      if (subscription.waiter) {
        timers().clearTimeout(subscription.waiter.timer);
        subscription.waiter = undefined;
      }
      if (res.writableEnded || res.destroyed) return;
      res.writeHead(200, { 'content-type': 'application/soap+xml; charset=utf-8' });
      res.end(pullResponse(subscription, limit));
    };
    if (subscription.queue.length > 0) {
      respond();
      return;
    }
    if (subscription.waiter) {
      // A second concurrent pull replaces the first (the camera answers the old one empty).
      subscription.waiter.respond();
    }
    subscription.waiter = { respond, timer: timers().setTimeout(respond, Math.min(timeout, 60_000)) };
    res.on('close', () => {
      if (subscription.waiter?.respond === respond) {
        timers().clearTimeout(subscription.waiter.timer);
        subscription.waiter = undefined;
      }
    });
  };

  const dispatch = (
    command: string,
    service: string,
    envelope: NonNullable<ReturnType<typeof child>>,
    requestElement: NonNullable<ReturnType<typeof child>>,
    url: URL,
    res: http.ServerResponse,
  ): Reply | undefined => {
    const mode = options.profiles ?? 'fixture';
    switch (command) {
      case 'GetSystemDateAndTime': {
        const now = new Date(cameraNow());
        let xml = render('agsh-onvif-v0.x/GetSystemDateAndTime.xml');
        const utcBlock = /<tt:UTCDateTime>[\s\S]*?<\/tt:UTCDateTime>/.exec(xml)?.[0] ?? '';
        let block = utcBlock;
        for (const [name, value] of [
          ['Hour', now.getUTCHours()], ['Minute', now.getUTCMinutes()], ['Second', now.getUTCSeconds()],
          ['Year', now.getUTCFullYear()], ['Month', now.getUTCMonth() + 1], ['Day', now.getUTCDate()],
        ] as const) {
          block = replaceElementText(block, name, String(value));
        }
        xml = xml.replace(utcBlock, block);
        return soapReply(xml);
      }
      case 'GetServices': {
        let xml = render('agsh-onvif-v0.x/GetServices.xml');
        if (mode === 'media2-only') xml = xml.replace('Namespace>http://www.onvif.org/ver10/media/wsdl<', 'Namespace>http://www.onvif.org/ver20/media/wsdl<');
        if (options.media2 && mode !== 'media2-only') {
          xml = xml.replace(
            /(<\/(?:[\w-]+:)?Service>)/,
            '$1<tds:Service><tds:Namespace>http://www.onvif.org/ver20/media/wsdl</tds:Namespace><tds:XAddr>http://192.168.68.111/onvif/media2</tds:XAddr>' +
              '<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>',
          );
        }
        if (options.ptz === false) xml = xml.replace(/<tds:Service>(?:(?!<\/tds:Service>)[\s\S])*?ver20\/ptz\/wsdl[\s\S]*?<\/tds:Service>/, '');
        return soapReply(xml);
      }
      case 'GetCapabilities': {
        let xml = render('agsh-onvif-v0.x/GetCapabilities.xml');
        if (options.ptz === false) xml = xml.replace(/<tt:PTZ>[\s\S]*?<\/tt:PTZ>/, '');
        return soapReply(xml);
      }
      case 'GetNodes':
      case 'GetConfigurationOptions': {
        if (service !== 'ptz') return upstreamReply(command, service);
        if (options.ptz === false) return fixtureReply('quirks/fault.PTZNotSupported.xml', 500);
        let xml = render(`agsh-onvif-v0.x/${command}.xml`);
        const ptz = options.ptz ?? {};
        if (ptz.continuous === false) xml = xml.replace(/<tt:Continuous(PanTilt|Zoom)VelocitySpace>[\s\S]*?<\/tt:Continuous\1VelocitySpace>/g, '');
        if (ptz.maxVelocity !== undefined) {
          const v = String(ptz.maxVelocity);
          xml = xml.replace(/<tt:Continuous(PanTilt|Zoom)VelocitySpace>[\s\S]*?<\/tt:Continuous\1VelocitySpace>/g, (block) =>
            block.replace(/<tt:Min>-1<\/tt:Min>/g, `<tt:Min>-${v}</tt:Min>`).replace(/<tt:Max>1<\/tt:Max>/g, `<tt:Max>${v}</tt:Max>`),
          );
        }
        return soapReply(xml);
      }
      case 'ContinuousMove':
      case 'RelativeMove':
      case 'Stop':
      case 'GetPresets':
      case 'GotoPreset':
      case 'GotoHomePosition': {
        if (service !== 'ptz') return upstreamReply(command, service);
        if (options.ptz === false) return fixtureReply('quirks/fault.PTZNotSupported.xml', 500);
        if (command === 'ContinuousMove' && options.ptz?.continuous === false) return fixtureReply('quirks/fault.ActionNotSupported.xml', 500);
        return fixtureReply(`agsh-onvif-v0.x/ptz.${command}.xml`);
      }
      case 'GetVideoEncoderConfigurations': {
        if (service !== 'media2') return fixtureReply('agsh-onvif-v0.x/media.GetVideoEncoderConfigurations.xml');
        const token = textAt(requestElement, 'ProfileToken') ?? '';
        try {
          return fixtureReply(`quirks/media2.GetVideoEncoderConfigurations.${token.replace(/[^\w-]/g, '')}.xml`);
        } catch {
          return fixtureReply('quirks/fault.Sender-InvalidArgVal-NoProfile.xml', 400);
        }
      }
      case 'GetDeviceInformation':
        return fixtureReply(options.deviceInformation === 'placeholders' ? 'quirks/GetDeviceInformation.placeholders.xml' : 'agsh-onvif-v0.x/GetDeviceInformation.xml');
      case 'GetProfiles':
        if (service === 'media2') return fixtureReply('quirks/media2.GetProfiles.xml');
        if (mode === 'media2-only') return fixtureReply('quirks/fault.ActionNotSupported.xml', 400);
        return fixtureReply(mode === 'multi' ? 'quirks/GetProfiles.multi.xml' : 'agsh-onvif-v0.x/GetProfiles.xml');
      case 'GetStreamUri': {
        const uri = streamUrlFor(textAt(requestElement, 'ProfileToken'));
        if (service === 'media2') return soapReply(replaceElementText(render('quirks/media2.GetStreamUri.xml'), 'Uri', uri));
        if (mode === 'media2-only') return fixtureReply('quirks/fault.ActionNotSupported.xml', 400);
        return soapReply(replaceElementText(render('agsh-onvif-v0.x/GetStreamUri.xml'), 'Uri', uri));
      }
      case 'GetSnapshotUri':
        if (service === 'media2') return soapReply(replaceElementText(render('quirks/media2.GetSnapshotUri.xml'), 'Uri', snapshotUrl()));
        if (mode === 'media2-only') return fixtureReply('quirks/fault.ActionNotSupported.xml', 400);
        return soapReply(replaceElementText(render('agsh-onvif-v0.x/GetSnapshotUri.xml'), 'Uri', snapshotUrl()));
      case 'CreatePullPointSubscription': {
        counters.subscriptions++;
        const id = nextSubscription++;
        const subscription: ResponderSubscription = { id, expiresAt: cameraNow() + ttl(), queue: [], waiter: undefined };
        subscriptions.set(id, subscription);
        if (options.initialStateStyle !== false) subscription.queue.push(motionMessage(options.initialStateStyle ?? 'cell', motionActive, 'Initialized'));
        let xml = render('agsh-onvif-v0.x/events.CreatePullPointSubscription.xml', options.referenceParameters ? '/onvif/services' : `/onvif/subscription?Idx=${id}`);
        xml = replaceElementText(xml, 'TerminationTime', new Date(subscription.expiresAt).toISOString());
        if (options.referenceParameters) {
          xml = xml.replace(
            /(<\/wsa5:Address>)/,
            `$1<wsa5:ReferenceParameters><dom0:SubscriptionId xmlns:dom0="http://www.axis.com/2009/event">${id}</dom0:SubscriptionId></wsa5:ReferenceParameters>`,
          );
        }
        return soapReply(xml);
      }
      case 'PullMessages':
      case 'Renew':
      case 'Unsubscribe': {
        const id = Number(url.searchParams.get('Idx') ?? textAt(envelope, 'Header', 'SubscriptionId'));
        const subscription = subscriptions.get(id);
        if (!subscription || subscription.expiresAt < cameraNow()) {
          if (subscription) {
            subscription.waiter?.respond();
            subscriptions.delete(id);
          }
          return fixtureReply('quirks/fault.ResourceUnknown.xml', 400);
        }
        if (command === 'PullMessages') {
          handlePull(subscription, requestElement, res);
          return undefined;
        }
        if (command === 'Renew') {
          counters.renewals++;
          const requested = textAt(requestElement, 'TerminationTime');
          subscription.expiresAt = cameraNow() + Math.min(ttl(), parseDuration(requested, ttl()));
          const now = new Date(cameraNow()).toISOString();
          return soapReply(
            '<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2">' +
              `<env:Body><wsnt:RenewResponse><wsnt:TerminationTime>${new Date(subscription.expiresAt).toISOString()}</wsnt:TerminationTime>` +
              `<wsnt:CurrentTime>${now}</wsnt:CurrentTime></wsnt:RenewResponse></env:Body></env:Envelope>`,
          );
        }
        counters.unsubscribes++;
        subscription.waiter?.respond();
        subscriptions.delete(id);
        return fixtureReply('agsh-onvif-v0.x/Unsubscribe.xml');
      }
      default:
        return upstreamReply(command, service);
    }
  };

  /** The upstream mock's rule: `<service>.<Command>.xml`, then `<Command>.xml`, else its generic fault. */
  const upstreamReply = (command: string, service: string): Reply => {
    for (const file of [`${service}.${command}.xml`, `${command}.xml`, `${service}.${command}`]) {
      try {
        return { status: 200, contentType: 'application/soap+xml; charset=utf-8', body: render(`agsh-onvif-v0.x/${file}`) };
      } catch {
        // next candidate
      }
    }
    return fixtureReply('agsh-onvif-v0.x/Error.xml', 500);
  };

  // --- HTTP Digest (snapshots, and SOAP when soapHttpDigest is set) ------------------------------

  const digestChallenge = (): string => {
    const nonce = randomBytes(12).toString('hex');
    digestNonces.add(nonce);
    return `Digest realm="onvif-responder", qop="auth", nonce="${nonce}", opaque="${randomBytes(4).toString('hex')}", algorithm=MD5`;
  };

  const checkHttpDigest = (req: http.IncomingMessage): boolean => {
    const header = req.headers.authorization ?? '';
    if (!header.startsWith('Digest ')) return false;
    const params = new Map<string, string>();
    for (const m of header.slice(7).matchAll(/(\w+)=(?:"([^"]*)"|([^\s,]+))/g)) params.set(m[1]!, m[2] ?? m[3] ?? '');
    const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
    const nonce = params.get('nonce') ?? '';
    const ha1 = md5(`${options.username}:onvif-responder:${options.password}`);
    const ha2 = md5(`${req.method ?? 'GET'}:${params.get('uri') ?? ''}`);
    const expected = md5(`${ha1}:${nonce}:${params.get('nc') ?? ''}:${params.get('cnonce') ?? ''}:${params.get('qop') ?? ''}:${ha2}`);
    return digestNonces.has(nonce) && params.get('username') === options.username && params.get('response') === expected && params.get('uri') === req.url;
  };

  // --- HTTP snapshot ----------------------------------------------------------------------------

  const handleSnapshot = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const snapshot = options.snapshot ?? {};
    const serve = snapshot.serve ?? 'jpeg';
    if (serve === 'html-401') {
      res.writeHead(401, { 'content-type': 'text/html' });
      res.end(readFixture('quirks/html-401.html'));
      return;
    }
    const authMode = snapshot.auth ?? 'digest';
    const header = req.headers.authorization ?? '';
    let ok = authMode === 'none';
    if (authMode === 'basic' && header.startsWith('Basic ')) {
      ok = Buffer.from(header.slice(6), 'base64').toString() === `${options.username}:${options.password}`;
    }
    if (authMode === 'digest') ok = checkHttpDigest(req);
    if (!ok) {
      const challenge = authMode === 'basic' ? 'Basic realm="onvif-responder"' : digestChallenge();
      res.writeHead(401, { 'content-type': 'text/html', 'www-authenticate': challenge });
      res.end(readFixture('quirks/html-401.html'));
      return;
    }
    if (serve === 'html') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(readFixture('quirks/html-login.html'));
      return;
    }
    const jpeg = snapshot.jpeg ?? Buffer.from([0xff, 0xd8, 0xff, 0xd9]);
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': String(jpeg.length) });
    res.end(jpeg);
  };

  // --- HTTP server ------------------------------------------------------------------------------

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 1024 * 1024) chunks.push(c);
    });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', `http://${host}:${port}`);
      if (url.pathname === '/onvif-cgi/jpg/image.cgi') {
        handleSnapshot(req, res);
        return;
      }
      if (options.soapHttpDigest && !checkHttpDigest(req)) {
        res.writeHead(401, { 'content-type': 'text/html', 'www-authenticate': digestChallenge() });
        res.end(readFixture('quirks/html-401.html'));
        return;
      }
      const parsed = tryParseXml(Buffer.concat(chunks));
      const envelope = parsed.ok ? parsed.root : undefined;
      const requestElement = path(envelope, 'Body')?.children[0];
      if (!envelope || !requestElement) {
        res.writeHead(400, { 'content-type': 'application/soap+xml' });
        res.end(render('agsh-onvif-v0.x/Error.xml'));
        return;
      }
      const command = requestElement.name;
      const service = SERVICE_BY_NAMESPACE[requestElement.namespace ?? ''] ?? '';
      const record: RecordedRequest = { command, service, path: url.pathname + url.search, authenticated: undefined, element: requestElement };
      requests.push(record);
      for (let i = requestWaiters.length - 1; i >= 0; i--) {
        const waiter = requestWaiters[i]!;
        if (waiter.command !== command) continue;
        requestWaiters.splice(i, 1);
        waiter.resolve(record);
      }
      let reply: Reply | undefined;
      const override = overrides.get(command) ?? options.serviceOverrides?.[`${service}.${command}`];
      if (override) {
        reply = fromOverride(override);
      } else if (options.auth !== false && command !== 'GetSystemDateAndTime' && !(record.authenticated = checkWsSecurity(envelope))) {
        reply = authFailure();
      } else {
        reply = dispatch(command, service, envelope, requestElement, url, res);
      }
      if (reply === undefined) return; // answered later (long poll)
      if (reply === 'timeout') return; // never answered; close() destroys the socket
      if (reply === 'close') {
        req.socket.destroy();
        return;
      }
      res.writeHead(reply.status, { 'content-type': reply.contentType, ...reply.headers });
      res.end(reply.body);
    });
  });

  const listen = (wantedPort: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(wantedPort, host, () => {
        server.off('error', reject);
        port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  await listen(0);

  // --- WS-Discovery -------------------------------------------------------------------------------

  const discoveryOptions: DiscoveryResponderOptions | undefined =
    options.discovery === true ? {} : options.discovery === false ? undefined : options.discovery;
  const udpSockets: dgram.Socket[] = [];
  let discoveryTarget: { address: string; port: number } | undefined;
  if (discoveryOptions) {
    const bindUdp = (address: string): Promise<dgram.Socket> =>
      new Promise((resolve, reject) => {
        const socket = dgram.createSocket('udp4');
        socket.once('error', reject);
        socket.bind({ address, port: 0 }, () => {
          socket.off('error', reject);
          socket.on('error', () => undefined);
          resolve(socket);
        });
      });
    const primary = await bindUdp(host);
    udpSockets.push(primary);
    const secondary = discoveryOptions.secondAddress ? await bindUdp(discoveryOptions.secondAddress) : undefined;
    if (secondary) udpSockets.push(secondary);
    discoveryTarget = { address: host, port: primary.address().port };

    const probeMatches = (relatesTo: string, xaddrHost: string): string => {
      const ws = discoveryOptions.whitespace;
      const xaddrs = [`http://${xaddrHost}:${port}/onvif/device_service`, ...(discoveryOptions.extraXAddrs ?? [])];
      let xml = readFixture('agsh-onvif-v0.x/Probe.xml')
        .replace('RELATES_TO', escapeXml(relatesTo))
        .replace('SERVICE_URI', escapeXml(ws ? `\n\t  ${xaddrs.join(' \n\t ')}  \n` : xaddrs.join(' ')));
      if (discoveryOptions.endpoint) xml = xml.replace('uuid:c9790c3a-701b-464d-a189-0060351c8ada', discoveryOptions.endpoint);
      if (discoveryOptions.name) xml = xml.replace('name/PREDATOR', `name/${encodeURIComponent(discoveryOptions.name)}`);
      if (discoveryOptions.hardware) xml = xml.replace('hardware/HD_PREDATOR', `hardware/${encodeURIComponent(discoveryOptions.hardware)}`);
      if (ws) xml = xml.replace(/(<wsdd:Scopes>)([^<]*)(<\/wsdd:Scopes>)/, (_a, open: string, scopes: string, close: string) => `${open}\n\t\t${scopes.trim().split(' ').join('\n\t\t  ')}\n\t${close}`);
      if (discoveryOptions.renamePrefixes) {
        const names: Record<string, string> = { 'SOAP-ENV': 'e', wsdd: 'dd', wsa: 'adr' };
        xml = xml.replace(/xmlns:(SOAP-ENV|wsdd|wsa)=/g, (_a, p: string) => `xmlns:${names[p]}=`).replace(/\b(SOAP-ENV|wsdd|wsa):/g, (_a, p: string) => `${names[p]}:`);
      }
      return xml;
    };
    const garbage = [
      randomBytes(64),
      Buffer.from('<?xml version="1.0"?><nope'),
      Buffer.from('<html><body>hello</body></html>'),
      Buffer.from('{"probe": "match"}'),
      Buffer.from(
        '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><d:Hello xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"/></s:Body></s:Envelope>',
      ),
      Buffer.from(
        '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><d:ProbeMatches xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"/></s:Body></s:Envelope>',
      ),
      Buffer.alloc(0),
    ];
    primary.on('message', (packet, remote) => {
      const parsed = tryParseXml(packet);
      if (!parsed.ok) return;
      const probe = path(parsed.root, 'Body', 'Probe');
      if (!probe) return;
      const types = textOf(child(probe, 'Types')) ?? '';
      if (types && !/NetworkVideoTransmitter|Device/.test(types)) return;
      counters.probes++;
      if (counters.probes <= (discoveryOptions.ignoreProbes ?? 0)) return;
      const messageId = textAt(parsed.root, 'Header', 'MessageID') ?? '';
      if (discoveryOptions.garbage) for (const g of garbage) primary.send(g, remote.port, remote.address);
      primary.send(Buffer.from(probeMatches(messageId, host)), remote.port, remote.address);
      if (secondary && discoveryOptions.secondAddress) {
        secondary.send(Buffer.from(probeMatches(messageId, discoveryOptions.secondAddress)), remote.port, remote.address);
      }
    });
  }

  // --- control -------------------------------------------------------------------------------------

  const dropSubscriptions = (): void => {
    for (const subscription of subscriptions.values()) {
      if (subscription.waiter) timers().clearTimeout(subscription.waiter.timer);
    }
    subscriptions.clear();
  };

  const closeHttp = (): Promise<void> =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });

  return {
    host,
    get port() {
      return port;
    },
    get deviceUrl() {
      return `http://${host}:${port}/onvif/device_service`;
    },
    discoveryTarget,
    requests,
    counters,
    activeSubscriptions: () => subscriptions.size,
    emitMotion(active, emitOptions = {}) {
      motionActive = active;
      const styles: MotionTopicStyle[] = emitOptions.topicStyle === 'both' ? ['cell', 'alarm'] : [emitOptions.topicStyle ?? 'cell'];
      queueMessages(styles.map((style) => motionMessage(style, active, emitOptions.operation)));
    },
    emitEvent(event) {
      queueMessages([notificationMessage(event)]);
    },
    emitDoorbell(doorbellOptions = {}) {
      const input = { topic: 'tns1:Device/Trigger/DigitalInput', source: { InputToken: doorbellOptions.input ?? 'DIGIT_IN_0' } };
      queueMessages([
        notificationMessage({ ...input, data: { LogicalState: 'true' } }),
        ...(doorbellOptions.release ? [notificationMessage({ ...input, data: { LogicalState: 'false' } })] : []),
      ]);
    },
    nextRequest(command) {
      return new Promise<RecordedRequest>((resolve) => requestWaiters.push({ command, resolve }));
    },
    setOverride(command, override) {
      if (override) overrides.set(command, override);
      else overrides.delete(command);
    },
    configure(changes) {
      Object.assign(options, changes);
    },
    async reboot(downMs = 300) {
      dropSubscriptions();
      const samePort = port;
      await closeHttp();
      await new Promise((r) => setTimeout(r, downMs));
      await listen(samePort);
    },
    async close() {
      dropSubscriptions();
      for (const socket of udpSockets) socket.close();
      await closeHttp();
    },
  };
}

