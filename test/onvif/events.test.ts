import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { connectOnvifDevice } from '../../src/onvif/device.js';
import { OnvifError } from '../../src/onvif/errors.js';
import {
  OnvifMotionEvents,
  isMotionTopic,
  motionFromNotification,
  normalizeTopic,
  parseNotificationMessages,
  type MotionEvent,
} from '../../src/onvif/events.js';
import { parseXml, path } from '../../src/onvif/xml.js';
import { FakeTime } from '../helpers/fake-time.js';
import { recordingLogger } from '../helpers/onvif-log.js';
import {
  ONVIF_FIXTURES,
  renderDotTemplate,
  startOnvifResponder,
  type MotionTopicStyle,
  type OnvifResponder,
  type OnvifResponderOptions,
} from '../helpers/onvif-responder.js';

const responders: OnvifResponder[] = [];
const running: OnvifMotionEvents[] = [];
after(async () => {
  await Promise.all(running.map((e) => e.stop()));
  await Promise.all(responders.map((r) => r.close()));
});

function motionEvents(response: string): MotionEvent[] {
  const body = path(parseXml(response), 'Body')!.children[0]!;
  return parseNotificationMessages(body)
    .map(motionFromNotification)
    .filter((e): e is MotionEvent => e !== undefined);
}

describe('motion topic mapping', () => {
  it('normalises topics with any prefixes and suffixes', () => {
    assert.equal(normalizeTopic('  tns1:RuleEngine/CellMotionDetector/Motion  '), 'RuleEngine/CellMotionDetector/Motion');
    assert.equal(normalizeTopic('tns1:VideoAnalytics/tnsaxis:MotionDetection'), 'VideoAnalytics/MotionDetection');
    assert.equal(normalizeTopic('tnsvendor:RuleEngine/FieldDetector/MotionDetector/Motion//.'), 'RuleEngine/FieldDetector/MotionDetector/Motion');
    for (const topic of ['RuleEngine/CellMotionDetector/Motion', 'VideoSource/MotionAlarm', 'VideoAnalytics/MotionDetection', 'RuleEngine/MotionRegionDetector/Motion']) {
      assert.ok(isMotionTopic(topic), topic);
    }
    for (const topic of ['VideoSource/GlobalSceneChange/ImagingService', 'RuleEngine/TamperDetector/Tamper', 'Device/Trigger/DigitalInput', 'Configuration/MotionDetector']) {
      assert.ok(!isMotionTopic(topic), topic);
    }
  });

  it('reads the upstream PullMessages template (CellMotionDetector, IsMotion)', () => {
    const rendered = renderDotTemplate(readFileSync(join(ONVIF_FIXTURES, 'agsh-onvif-v0.x', 'PullMessages.xml'), 'utf8'), { hostname: 'h', port: 1, pullPointUrl: '/p' }, { random: () => 0 });
    const events = motionEvents(rendered);
    assert.equal(events.length, 2);
    assert.ok(events.every((e) => e.active && e.operation === undefined && e.topic === 'tns1:RuleEngine/CellMotionDetector/Motion'));
  });

  it('reads motion as both topics (cell IsMotion + MotionAlarm State) as two sources', () => {
    const events = motionEvents(readFileSync(join(ONVIF_FIXTURES, 'quirks', 'PullMessages.both-topics.xml'), 'utf8'));
    assert.equal(events.length, 2);
    assert.ok(events.every((e) => e.active && e.operation === 'Changed'));
    assert.notEqual(events[0]!.key, events[1]!.key);
  });

  it('reads vendor variants (tnsaxis motion=1 Initialized, vendor .../MotionDetector/Motion) and ignores other topics', () => {
    const events = motionEvents(readFileSync(join(ONVIF_FIXTURES, 'quirks', 'PullMessages.vendor.xml'), 'utf8'));
    assert.deepEqual(
      events.map((e) => [e.topic, e.active, e.operation]),
      [
        ['tns1:VideoAnalytics/tnsaxis:MotionDetection', true, 'Initialized'],
        ['tnsvendor:RuleEngine/FieldDetector/MotionDetector/Motion//.', false, 'Changed'],
      ],
    );
  });
});

/**
 * The camera is a real loopback responder, so its requests travel in real time; everything that
 * waits runs on one manual clock: the motion state's reset timeout (so "held for the reset timeout"
 * is checked to the millisecond), the subscription's renewal and backoff, and the camera's clock and
 * long polls. Time moves only when a test advances it.
 */
async function setup(options: OnvifResponderOptions = {}, resetTimeoutMs = 250, extra: Partial<ConstructorParameters<typeof OnvifMotionEvents>[0]> = {}) {
  const time = new FakeTime();
  // Near the real time: the device stamps WS-Security headers from the real clock plus the offset it read.
  time.now = Date.now();
  const r = await startOnvifResponder({ password: 'secret', now: time.clock, timers: time, ...options });
  responders.push(r);
  const log = recordingLogger();
  const device = await connectOnvifDevice({ name: 'Porch', host: r.host, port: r.port, username: 'admin', password: 'secret', log, timeoutMs: 2000 });
  const events = new OnvifMotionEvents({
    device,
    motion: { resetTimeoutMs, now: time.clock, timers: time },
    backoffInitialMs: 100,
    backoffMaxMs: 400,
    now: time.clock,
    timers: time,
    ...extra,
  });
  running.push(events);
  const changes: boolean[] = [];
  events.motion.on('change', (d) => changes.push(d));
  const subscribed = new Promise<void>((resolve) => events.once('subscribed', () => resolve()));
  events.start();
  await subscribed;
  // Let the first PullMessages reach the responder.
  await waitFor(() => r.counters.pulls > 0, 2000);
  return { r, events, changes, log, time };
}

/** Resolves on the next motion notification from the camera saying `active`. */
function nextMotion(events: OnvifMotionEvents, active: boolean): Promise<MotionEvent> {
  return new Promise((resolve) => {
    const listener = (e: MotionEvent): void => {
      if (e.active !== active) return;
      events.off('motion', listener);
      resolve(e);
    };
    events.on('motion', listener);
  });
}

/** Resolves on the next failure of the subscription loop (its backoff timer is set by then). */
function nextFailure(events: OnvifMotionEvents): Promise<OnvifError> {
  return new Promise((resolve) => events.once('failure', resolve));
}

/** The longest first backoff in setup(): 100 ms with +25 % jitter. */
const FIRST_BACKOFF_MS = 125;

/** Waits for a real peer's reply (the loopback camera), not for time to pass. */
async function waitFor(condition: () => boolean, timeoutMs: number, label = 'condition'): Promise<number> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) assert.fail(`timed out waiting for ${label}`);
    await sleep(10);
  }
  return Date.now() - start;
}

describe('PullPoint motion events from the loopback responder', () => {
  for (const style of ['cell', 'alarm', 'vendor', 'suffix'] as MotionTopicStyle[]) {
    it(`${style} topic: motion turns the state on, then off after the reset timeout`, async () => {
      const { r, events, changes, time } = await setup({ initialStateStyle: style });
      r.emitMotion(true, { topicStyle: style });
      await waitFor(() => events.motion.detected, 2000, 'motion on');
      const noMotion = nextMotion(events, false);
      r.emitMotion(false, { topicStyle: style });
      await noMotion;
      await time.advance(150);
      assert.equal(events.motion.detected, true, 'held for the reset timeout');
      await time.advance(99);
      assert.equal(events.motion.detected, true, 'held until the last millisecond of the reset timeout');
      await time.advance(1);
      assert.equal(events.motion.detected, false, 'off exactly the reset timeout later');
      assert.deepEqual(changes, [true, false]);
      await events.stop();
      assert.equal(r.counters.unsubscribes, 1);
    });
  }

  it('a pulse without a property operation turns motion on, and off after the reset timeout', async () => {
    const { r, events, changes, time } = await setup();
    r.emitMotion(true, { operation: 'none' });
    await waitFor(() => events.motion.detected, 2000, 'motion on');
    await time.advance(249);
    assert.equal(events.motion.detected, true);
    await time.advance(1);
    assert.equal(events.motion.detected, false, 'off the reset timeout after the pulse');
    assert.deepEqual(changes, [true, false]);
  });

  it('Initialized: motion already in progress when subscribing turns the state on', async () => {
    const r = await startOnvifResponder({ password: 'secret', initialStateStyle: 'alarm' });
    responders.push(r);
    r.emitMotion(true); // no subscriber yet: only sets the camera's state
    const device = await connectOnvifDevice({ name: 'Yard', host: r.host, port: r.port, username: 'admin', password: 'secret', log: recordingLogger() });
    const events = new OnvifMotionEvents({ device, motion: { resetTimeoutMs: 100 } });
    running.push(events);
    const seen: MotionEvent[] = [];
    events.on('motion', (e) => seen.push(e));
    events.start();
    await waitFor(() => events.motion.detected, 2000, 'motion on from Initialized');
    assert.equal(seen[0]?.operation, 'Initialized');
    await events.stop();
  });

  it('motion as both topics: stays on until both topics say no motion', async () => {
    const { r, events, changes, time } = await setup({}, 100);
    r.emitMotion(true, { topicStyle: 'both' });
    await waitFor(() => events.motion.detected, 2000, 'motion on');
    const cellOff = nextMotion(events, false);
    r.emitMotion(false, { topicStyle: 'cell' });
    await cellOff;
    await time.advance(300);
    assert.equal(events.motion.detected, true, 'MotionAlarm still says motion');
    const alarmOff = nextMotion(events, false);
    r.emitMotion(false, { topicStyle: 'alarm' });
    await alarmOff;
    await time.advance(99);
    assert.equal(events.motion.detected, true, 'held for the reset timeout');
    await time.advance(1);
    assert.equal(events.motion.detected, false, 'off once both topics said no motion and the reset timeout ran out');
    assert.deepEqual(changes, [true, false]);
  });

  it('renews a short-lived subscription instead of losing it', async () => {
    const { r, events, time } = await setup({ subscriptionTtlMs: 1500 });
    // A 1.5 s subscription is renewed at half its life; each long poll is cut to 1 s so it ends first.
    for (let i = 1; i <= 3; i++) {
      await time.advance(1000);
      await waitFor(() => r.counters.renewals >= i && r.counters.pulls > i, 2000, `renewal ${i} and the pull after it`);
    }
    assert.ok(r.counters.renewals >= 2, `renewals ${r.counters.renewals}`);
    assert.equal(r.counters.subscriptions, 1, 'never had to re-subscribe');
    r.emitMotion(true);
    await waitFor(() => events.motion.detected, 2000, 'motion on after renewals');
  });

  it('re-subscribes after a camera reboot, and motion works again', async () => {
    const { r, events, log, time } = await setup({}, 100);
    const failures: OnvifError[] = [];
    events.on('failure', (e) => failures.push(e));
    const failed = nextFailure(events);
    const resubscribed = new Promise<void>((resolve) => events.once('subscribed', () => resolve()));
    await r.reboot(400);
    await failed;
    await time.advance(FIRST_BACKOFF_MS);
    await resubscribed;
    assert.ok(failures.length >= 1);
    assert.ok(failures.every((f) => f instanceof OnvifError && f.camera === 'Porch'));
    assert.equal(r.counters.subscriptions, 2);
    await waitFor(() => r.activeSubscriptions() === 1, 2000);
    r.emitMotion(true);
    await waitFor(() => events.motion.detected, 2000, 'motion on after reboot');
    assert.ok(log.lines.some((l) => /motion events resumed/.test(l)));
    // One warning per kind of failure, not one per retry.
    const warnings = log.lines.filter((l) => l.startsWith('warn'));
    assert.ok(warnings.length <= failures.length && warnings.length >= 1);
  });

  it('a CreatePullPointSubscription the camera does not support is sent once per connection, not on every retry', async () => {
    const r = await startOnvifResponder({
      password: 'secret',
      overrides: { CreatePullPointSubscription: { kind: 'fixture', file: 'quirks/fault.ActionNotSupported.xml' } },
    });
    responders.push(r);
    const device = await connectOnvifDevice({ name: 'Attic', host: r.host, port: r.port, username: 'admin', password: 'secret', log: recordingLogger() });
    const events = new OnvifMotionEvents({ device, motion: { resetTimeoutMs: 100 }, backoffInitialMs: 20, backoffMaxMs: 50 });
    running.push(events);
    const failures: OnvifError[] = [];
    events.on('failure', (e) => failures.push(e));
    events.start();
    await waitFor(() => failures.length >= 4, 3000, 'four failures');
    await events.stop();
    assert.ok(failures.every((f) => f.code === 'ACTION_NOT_SUPPORTED' && !f.retryable));
    assert.equal(r.requests.filter((q) => q.command === 'CreatePullPointSubscription').length, 1);
  });

  it('keeps retrying with backoff when subscriptions fail, and recovers', async () => {
    // A passing fault (env:Receiver ter:Action): asked again on every retry, unlike "not supported".
    const r = await startOnvifResponder({
      password: 'secret',
      overrides: { CreatePullPointSubscription: { kind: 'fixture', file: 'quirks/fault.Receiver-Action.xml', status: 500 } },
    });
    responders.push(r);
    const log = recordingLogger();
    const device = await connectOnvifDevice({ name: 'Attic', host: r.host, port: r.port, username: 'admin', password: 'secret', log });
    const events = new OnvifMotionEvents({ device, motion: { resetTimeoutMs: 100 }, backoffInitialMs: 50, backoffMaxMs: 200 });
    running.push(events);
    const failures: OnvifError[] = [];
    events.on('failure', (e) => failures.push(e));
    events.start();
    await waitFor(() => failures.length >= 3, 3000, 'three failures');
    assert.equal(failures[0]!.code, 'SOAP_FAULT');
    assert.ok(r.requests.filter((q) => q.command === 'CreatePullPointSubscription').length >= 3);
    assert.match(failures[0]!.message, /"Attic".*CreatePullPointSubscription/);
    assert.equal(log.lines.filter((l) => l.startsWith('warn')).length, 1, 'logged once');
    r.setOverride('CreatePullPointSubscription', undefined);
    await waitFor(() => r.activeSubscriptions() === 1 && r.counters.pulls > 0, 3000, 'subscribed');
    r.emitMotion(true);
    await waitFor(() => events.motion.detected, 2000, 'motion on');
    await events.stop();
  });

  it('PullMessages failures (fault, dropped connection, timeout) lead to a new subscription', async () => {
    const { r, events, time } = await setup({}, 100);
    r.setOverride('PullMessages', { kind: 'fixture', file: 'agsh-onvif-v0.x/Error.xml', status: 500 });
    let failed = nextFailure(events);
    r.emitMotion(false); // wake the pending pull so the next one hits the override
    await failed;
    // The next subscription's first pull finds its connection dropped.
    r.setOverride('PullMessages', { kind: 'close' });
    failed = nextFailure(events);
    await time.advance(FIRST_BACKOFF_MS);
    await waitFor(() => r.counters.subscriptions >= 2, 3000, 're-subscription after a fault');
    await failed;
    r.setOverride('PullMessages', undefined);
    const pulls = r.counters.pulls;
    await time.advance(FIRST_BACKOFF_MS);
    await waitFor(() => r.counters.subscriptions >= 3, 3000, 're-subscription after a dropped connection');
    await waitFor(() => r.activeSubscriptions() >= 1 && !!events.running, 3000);
    await waitFor(() => r.counters.pulls > pulls, 3000, 'pulling again');
    r.emitMotion(true);
    await waitFor(() => events.motion.detected, 2000, 'motion on');
  });

  it('echoes ReferenceParameters (Axis style subscription id) on pull, renew and unsubscribe', async () => {
    const { r, events, time } = await setup({ referenceParameters: true, subscriptionTtlMs: 1500 }, 100);
    // The first 1 s long poll ends past the renewal time (half of 1.5 s).
    await time.advance(1000);
    await waitFor(() => r.counters.renewals >= 1, 2000, 'renewal');
    assert.ok(r.counters.renewals >= 1);
    r.emitMotion(true, { topicStyle: 'vendor' });
    await waitFor(() => events.motion.detected, 2000, 'motion on');
    assert.equal(r.counters.subscriptions, 1);
    await events.stop();
    assert.equal(r.counters.unsubscribes, 1);
    assert.ok(r.requests.filter((q) => q.command === 'PullMessages').every((q) => q.path === '/onvif/services'));
  });

  it('stop unsubscribes and makes no more requests', async () => {
    const { r, events, time } = await setup();
    await events.stop();
    assert.equal(r.counters.unsubscribes, 1);
    assert.equal(r.activeSubscriptions(), 0);
    const count = r.requests.length;
    await time.advance(60_000);
    assert.equal(time.pending, 0, 'no renewal or retry left waiting');
    assert.equal(r.requests.length, count);
    await events.stop(); // idempotent
  });

  it('two cameras, one with broken events: the other still reports motion', async () => {
    const good = await setup({}, 100);
    const broken = await startOnvifResponder({ password: 'secret', overrides: { CreatePullPointSubscription: { kind: 'timeout' } } });
    responders.push(broken);
    const device = await connectOnvifDevice({ name: 'Broken', host: broken.host, port: broken.port, username: 'admin', password: 'secret', log: recordingLogger(), timeoutMs: 300 });
    const brokenEvents = new OnvifMotionEvents({ device, backoffInitialMs: 50, backoffMaxMs: 100 });
    running.push(brokenEvents);
    const failures: OnvifError[] = [];
    brokenEvents.on('failure', (e) => failures.push(e));
    brokenEvents.start();
    await waitFor(() => failures.length >= 1, 3000, 'broken camera failure');
    assert.equal(failures[0]!.code, 'TIMEOUT');
    good.r.emitMotion(true);
    await waitFor(() => good.events.motion.detected, 2000, 'good camera motion');
    await brokenEvents.stop();
  });
});
