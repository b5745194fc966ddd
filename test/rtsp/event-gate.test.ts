// The RTSP session's delivery gate (src/rtsp/event-gate.ts): events held until open, in order,
// bounded except the essential ones; a throwing handler logged once and never thrown on.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { EventGate } from '../../src/rtsp/event-gate.js';
import type { Logger } from '../../src/util/logger.js';

function recordingLogger(): { log: Logger; errors: string[] } {
  const errors: string[] = [];
  const ignore = (): void => undefined;
  const log: Logger = { error: (message: string) => void errors.push(message), warn: ignore, info: ignore, debug: ignore };
  return { log, errors };
}

describe('EventGate', () => {
  it('holds media until open (up to its bound, essential events always), then runs them in order', () => {
    const { log } = recordingLogger();
    const gate = new EventGate(3, log);
    const ran: string[] = [];
    const record = (kind: string, n: number, ageMs: number): void => {
      ran.push(`${kind}${n}${ageMs > 0 ? `+${ageMs}` : ''}`);
    };
    gate.deliverCall(record, 'rtp', 1, 0);
    gate.deliver(() => ran.push('sr'));
    gate.deliverCall(record, 'rtp', 2, 40);
    gate.deliverCall(record, 'rtp', 3, 0); // beyond the bound of 3: dropped
    gate.deliver(() => ran.push('close'), true); // essential: kept
    assert.deepEqual(ran, []);
    gate.open();
    assert.deepEqual(ran, ['rtp1', 'sr', 'rtp2+40', 'close']);
    gate.deliverCall(record, 'rtp', 4, 0);
    assert.deepEqual(ran.at(-1), 'rtp4', 'runs at once when open');
  });

  it('catches a throwing handler, logs the first only, and goes on delivering', () => {
    const { log, errors } = recordingLogger();
    const gate = new EventGate(10, log);
    gate.open();
    let delivered = 0;
    const handler = (n: number): void => {
      delivered++;
      if (n % 2 === 0) throw new Error(`broken on ${n}`);
    };
    for (let n = 0; n < 6; n++) gate.deliverCall(handler, n, undefined, undefined);
    gate.deliver(() => {
      throw new Error('another');
    });
    assert.equal(delivered, 6);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /a media handler threw \(further ones are not logged\): Error: broken on 0/);
  });
});
