/**
 * Issue 17: ONVIF events beyond motion. Topic mapping (doorbell inputs, vendor doorbell topics, the
 * user's own topic, tamper, line crossing / field detection) on hand-written notifications, and
 * against the loopback responder: a DigitalInput press reaches OnvifLink once per press (its release
 * and the state replayed on subscribing do not ring), tamper and crossing reach their sensors, and
 * every topic the camera sends is logged once.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { OnvifLink } from '../../src/homekit/onvif-link.js';
import { connectOnvifDevice } from '../../src/onvif/device.js';
import { classifyTopic, eventFromNotification, isDoorbellPress, type NotificationMessage, type PropertyOperation } from '../../src/onvif/notifications.js';
import { DoorbellPresses } from '../../src/runtime/doorbell.js';
import { recordingLogger } from '../helpers/onvif-log.js';
import { startOnvifResponder, type OnvifResponder } from '../helpers/onvif-responder.js';

/** `operation` 'none': a message without a PropertyOperation (a pulse). */
function message(topicPath: string, data: Record<string, string>, operation: PropertyOperation | 'none' = 'Changed', source: Record<string, string> = { InputToken: 'DIGIT_IN_0' }): NotificationMessage {
  return { topic: `tns1:${topicPath}`, topicPath, operation: operation === 'none' ? undefined : operation, utcTime: undefined, source: new Map(Object.entries(source)), data: new Map(Object.entries(data)) };
}

describe('ONVIF topic mapping beyond motion', () => {
  it('classifies doorbell, tamper, crossing and motion topics, and nothing else', () => {
    assert.equal(classifyTopic('Device/Trigger/DigitalInput'), 'doorbell');
    assert.equal(classifyTopic('RuleEngine/MyRuleDetector/Visitor'), 'doorbell');
    assert.equal(classifyTopic('ruleengine/myruledetector/visitor'), 'doorbell', 'case-insensitive');
    for (const topic of ['VideoSource/GlobalSceneChange/ImagingService', 'VideoSource/GlobalSceneChange/AnalyticsService', 'VideoSource/ImageTooBlurry/ImagingService', 'VideoSource/ImageTooDark/AnalyticsService', 'VideoSource/ImageTooBright/RecordingService', 'RuleEngine/TamperDetector/Tamper']) {
      assert.equal(classifyTopic(topic), 'tamper', topic);
    }
    assert.equal(classifyTopic('RuleEngine/LineDetector/Crossed'), 'crossing');
    assert.equal(classifyTopic('RuleEngine/FieldDetector/ObjectsInside'), 'crossing');
    // A vendor's motion detector under FieldDetector is motion, not field detection.
    assert.equal(classifyTopic('RuleEngine/FieldDetector/MotionDetector/Motion'), 'motion');
    assert.equal(classifyTopic('RuleEngine/CellMotionDetector/Motion'), 'motion');
    for (const topic of ['Device/Trigger/Relay', 'Monitoring/ProcessorUsage', 'RuleEngine/LineDetectorX/Crossed', 'VideoSource/GlobalSceneChangeX']) {
      assert.equal(classifyTopic(topic), undefined, topic);
    }
  });

  it('takes the user\'s doorbell topic with or without prefixes, and it wins over motion', () => {
    assert.equal(classifyTopic('RuleEngine/Bell/Pressed'), undefined);
    assert.equal(classifyTopic('RuleEngine/Bell/Pressed', ['tnsvendor:RuleEngine/tnsvendor:Bell/Pressed']), 'doorbell');
    assert.equal(classifyTopic('VideoSource/MotionAlarm', ['VideoSource/MotionAlarm']), 'doorbell');
  });

  it('reads each kind\'s state item: LogicalState, State, IsTamper, IsInside; a crossing is a pulse whatever its ObjectId', () => {
    const press = eventFromNotification(message('Device/Trigger/DigitalInput', { LogicalState: 'true' }));
    assert.deepEqual([press?.kind, press?.active, press?.pulse], ['doorbell', true, false]);
    assert.equal(isDoorbellPress(press!), true);
    const release = eventFromNotification(message('Device/Trigger/DigitalInput', { LogicalState: 'false' }));
    assert.equal(release?.active, false);
    assert.equal(isDoorbellPress(release!), false);
    const reolink = eventFromNotification(message('RuleEngine/MyRuleDetector/Visitor', { State: 'true' }, 'Changed', { Source: '000' }));
    assert.equal(isDoorbellPress(reolink!), true);
    const tamper = eventFromNotification(message('RuleEngine/TamperDetector/Tamper', { IsTamper: 'true' }, 'Changed', { Rule: 'T1' }));
    assert.deepEqual([tamper?.kind, tamper?.active], ['tamper', true]);
    const scene = eventFromNotification(message('VideoSource/GlobalSceneChange/ImagingService', { State: 'false' }, 'Changed', { Source: 'VS0' }));
    assert.deepEqual([scene?.kind, scene?.active], ['tamper', false]);
    const inside = eventFromNotification(message('RuleEngine/FieldDetector/ObjectsInside', { IsInside: 'false' }, 'Changed', { Rule: 'F1' }));
    assert.deepEqual([inside?.kind, inside?.active], ['crossing', false]);
    const crossed = eventFromNotification(message('RuleEngine/LineDetector/Crossed', { ObjectId: '0' }, 'none', { Rule: 'L1' }));
    assert.deepEqual([crossed?.kind, crossed?.active, crossed?.pulse], ['crossing', true, true]);
    // The same with a PropertyOperation (some firmwares): still something crossed, a pulse.
    const marked = eventFromNotification(message('RuleEngine/LineDetector/Crossed', { ObjectId: '3' }, 'Changed', { Rule: 'L1' }));
    assert.deepEqual([marked?.kind, marked?.active, marked?.pulse], ['crossing', true, true]);
    // Two inputs are tracked apart.
    const other = eventFromNotification(message('Device/Trigger/DigitalInput', { LogicalState: 'true' }, 'Changed', { InputToken: 'DIGIT_IN_1' }));
    assert.notEqual(other?.key, press?.key);
  });

  it('does not ring for the state replayed on subscribing, nor for a deleted property', () => {
    const replay = eventFromNotification(message('Device/Trigger/DigitalInput', { LogicalState: 'true' }, 'Initialized'));
    assert.equal(replay?.active, true);
    assert.equal(isDoorbellPress(replay!), false);
    const deleted = eventFromNotification(message('Device/Trigger/DigitalInput', { LogicalState: 'true' }, 'Deleted'));
    assert.equal(isDoorbellPress(deleted!), false);
    assert.equal(eventFromNotification(message('Device/Trigger/DigitalInput', { LogicalState: 'maybe' })), undefined);
  });
});

describe('DoorbellPresses: debounce', () => {
  it('rings once per 3 s, whatever the origin, and again after that', () => {
    let now = 1_000_000;
    const rings: string[] = [];
    const log = recordingLogger();
    const presses = new DoorbellPresses({ ring: (origin) => rings.push(origin), log, now: () => now });
    assert.equal(presses.press('onvif'), true);
    now += 500;
    assert.equal(presses.press('http'), false);
    now += 2499; // 2999 ms after the accepted press
    assert.equal(presses.press('onvif'), false);
    now += 1;
    assert.equal(presses.press('http'), true);
    assert.deepEqual(rings, ['onvif', 'http']);
    assert.equal(log.lines.filter((l) => l.startsWith('info Doorbell pressed')).length, 2);
  });

  it('measures from the last accepted press, so a held button does not ring every 3 s of bouncing', () => {
    let now = 0;
    let rings = 0;
    const presses = new DoorbellPresses({ ring: () => rings++, log: recordingLogger(), now: () => now, debounceMs: 1000 });
    for (let i = 0; i < 10; i++) {
      presses.press('onvif');
      now += 300;
    }
    // Accepted at 0, 1200 and 2400 ms: each press inside the second after an accepted one is dropped.
    assert.equal(rings, 3);
  });
});

describe('doorbell, tamper and crossing events from the loopback ONVIF responder', () => {
  const responders: OnvifResponder[] = [];
  const links: OnvifLink[] = [];
  after(async () => {
    await Promise.all(links.map((l) => l.stop()));
    await Promise.all(responders.map((r) => r.close()));
  });

  async function waitFor(condition: () => boolean, timeoutMs: number, label: string): Promise<void> {
    const start = Date.now();
    while (!condition()) {
      if (Date.now() - start > timeoutMs) assert.fail(`timed out waiting for ${label}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it('a DigitalInput press is one press (its release and the replayed state are none); tamper and crossing reach their sensors; topics logged once', async () => {
    const r = await startOnvifResponder({ password: 'secret' });
    responders.push(r);
    const log = recordingLogger();
    const onvifPresses: number[] = [];
    const tamper: boolean[] = [];
    const crossing: boolean[] = [];
    let rings = 0;
    const presses = new DoorbellPresses({ ring: () => rings++, log });
    const link = new OnvifLink({
      connect: () => connectOnvifDevice({ name: 'Door', host: r.host, port: r.port, username: 'admin', password: 'secret', log, timeoutMs: 2000 }),
      log,
      motion: false,
      motionResetSeconds: 1,
      doorbell: { topics: [] },
      tamper: true,
      crossing: true,
      onDoorbell: () => {
        onvifPresses.push(Date.now());
        presses.press('onvif');
      },
      onTamper: (on) => tamper.push(on),
      onCrossing: (on) => crossing.push(on),
    });
    links.push(link);
    link.start();
    await waitFor(() => r.activeSubscriptions() === 1 && r.counters.pulls > 0, 5000, 'the subscription');
    // The camera's input is already "on" when we subscribe (a stuck button): no ring.
    r.emitEvent({ topic: 'tns1:Device/Trigger/DigitalInput', source: { InputToken: 'DIGIT_IN_0' }, data: { LogicalState: 'true' }, operation: 'Initialized' });
    r.emitDoorbell({ release: true });
    await waitFor(() => onvifPresses.length === 1, 5000, 'the press');
    // Later pulls deliver nothing more: the release is no press.
    const pulls = r.counters.pulls;
    await waitFor(() => r.counters.pulls >= pulls + 1, 5000, 'another pull');
    assert.equal(onvifPresses.length, 1);
    assert.equal(rings, 1);

    // A second press right away reaches the link, but the debounce keeps the Home app to one ring.
    r.emitDoorbell({ release: true });
    await waitFor(() => onvifPresses.length === 2, 5000, 'the second press');
    assert.equal(rings, 1);

    r.emitEvent({ topic: 'tns1:VideoSource/GlobalSceneChange/ImagingService', source: { Source: 'VS0' }, data: { State: 'true' } });
    await waitFor(() => tamper.includes(true), 5000, 'tamper');
    r.emitEvent({ topic: 'tns1:RuleEngine/LineDetector/Crossed', source: { Rule: 'Line1' }, data: { ObjectId: '0' }, operation: 'none' });
    await waitFor(() => crossing.includes(true), 5000, 'a crossing');
    // The crossing was a pulse: the sensor goes off after the reset time (1 s).
    await waitFor(() => crossing.at(-1) === false, 5000, 'the crossing sensor to reset');

    const topicLines = log.lines.filter((l) => l.startsWith('info ONVIF event topic from the camera: '));
    assert.deepEqual(topicLines.filter((l) => l.includes('Device/Trigger/DigitalInput')), ['info ONVIF event topic from the camera: Device/Trigger/DigitalInput (doorbell)']);
    assert.ok(topicLines.some((l) => l.includes('RuleEngine/CellMotionDetector/Motion (motion)')), topicLines.join('\n'));
    assert.ok(topicLines.some((l) => l.includes('VideoSource/GlobalSceneChange/ImagingService (tamper)')));
    assert.ok(topicLines.some((l) => l.includes('RuleEngine/LineDetector/Crossed (crossing)')));
  });

  it('a vendor topic given as doorbell.topic rings; without it, the same topic is only logged', async () => {
    const r = await startOnvifResponder({ password: 'secret' });
    responders.push(r);
    const run = async (topics: string[]): Promise<{ presses: number; log: ReturnType<typeof recordingLogger> }> => {
      const log = recordingLogger();
      let presses = 0;
      const link = new OnvifLink({
        connect: () => connectOnvifDevice({ name: 'Gate', host: r.host, port: r.port, username: 'admin', password: 'secret', log, timeoutMs: 2000 }),
        log,
        motion: false,
        motionResetSeconds: 1,
        doorbell: { topics },
        onDoorbell: () => presses++,
      });
      links.push(link);
      const before = r.counters.subscriptions;
      link.start();
      await waitFor(() => r.counters.subscriptions > before && r.activeSubscriptions() >= 1, 5000, 'the subscription');
      await waitFor(() => r.counters.pulls > 0, 5000, 'a pull');
      r.emitEvent({ topic: 'tnsvendor:Door/Bell', topicNamespaces: 'xmlns:tnsvendor="http://www.example.com/vendor/topics"', source: { Button: '1' }, data: { Pressed: 'true' } });
      await waitFor(() => log.lines.some((l) => l.includes('ONVIF event topic from the camera: Door/Bell')), 5000, 'the topic line');
      await link.stop();
      return { presses, log };
    };
    const without = await run([]);
    assert.equal(without.presses, 0);
    assert.ok(without.log.lines.some((l) => l === 'info ONVIF event topic from the camera: Door/Bell (not used by the plugin)'));
    const withTopic = await run(['tnsvendor:Door/Bell']);
    assert.equal(withTopic.presses, 1);
  });
});
