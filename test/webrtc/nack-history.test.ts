import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PacketizedPayload } from '../../src/media/types.js';
import { MAX_FRAMES, NackHistory } from '../../src/webrtc/nack-history.js';
import { OutboundStream, type RetransmissionLimits } from '../../src/webrtc/outbound-stream.js';
import { RetransmissionBudget } from '../../src/webrtc/retransmission-budget.js';
import { randomSessionKeys, SRTP_PROFILE_AEAD_AES_128_GCM, SrtpStreamWriter } from '../../src/rtp/srtp-writer.js';

/** A NACK's limits: 100 ms between resends of a packet, 1 s of age, and a budget. */
function limits(budget = new RetransmissionBudget()): RetransmissionLimits {
  return { minIntervalMs: 100, maxAgeMs: 1000, budget };
}

/** A frame of `count` packets whose payloads say which frame and packet they are. */
function frame(id: number, count: number): PacketizedPayload[] {
  return Array.from({ length: count }, (_, i) => ({ payload: Buffer.from(`f${id}p${i}`), marker: i === count - 1 }));
}

describe('NACK history (per frame)', () => {
  test('finds each packet of the kept frames by sequence number, with its marker and timestamp', () => {
    const history = new NackHistory(100);
    history.record(1000, 90_000, frame(1, 3));
    history.record(1003, 93_600, frame(2, 1));
    history.record(1004, 97_200, frame(3, 5));
    assert.equal(history.size, 9);
    for (const [seq, text, marker, timestamp] of [
      [1000, 'f1p0', false, 90_000],
      [1002, 'f1p2', true, 90_000],
      [1003, 'f2p0', true, 93_600],
      [1006, 'f3p2', false, 97_200],
      [1008, 'f3p4', true, 97_200],
    ] as const) {
      const kept = history.find(seq);
      assert.ok(kept, `seq ${seq}`);
      assert.equal(kept.payload.toString(), text);
      assert.equal(kept.marker, marker);
      assert.equal(kept.timestamp, timestamp);
    }
    assert.equal(history.find(999), undefined, 'before the first frame');
    assert.equal(history.find(1009), undefined, 'not sent yet');
  });

  test('a frame across the sequence-number wrap is found on both sides of it', () => {
    const history = new NackHistory(100);
    history.record(65534, 1, frame(1, 4));
    assert.equal(history.find(65534)?.payload.toString(), 'f1p0');
    assert.equal(history.find(65535)?.payload.toString(), 'f1p1');
    assert.equal(history.find(0)?.payload.toString(), 'f1p2');
    assert.equal(history.find(1)?.payload.toString(), 'f1p3');
    assert.equal(history.find(2), undefined);
  });

  test('keeps the newest whole frames that fit its packet capacity; one larger frame is kept alone', () => {
    const history = new NackHistory(10);
    let seq = 0;
    for (let id = 0; id < 6; id++) {
      history.record(seq, id, frame(id, 3));
      seq += 3;
    }
    // 18 packets sent; the last three frames (9 packets) fit in 10.
    assert.equal(history.size, 9);
    assert.equal(history.find(8), undefined, 'frame 2 went');
    assert.equal(history.find(9)?.payload.toString(), 'f3p0');
    assert.equal(history.find(17)?.payload.toString(), 'f5p2');
    history.record(seq, 6, frame(6, 25));
    assert.equal(history.size, 25, 'a keyframe larger than the capacity is kept whole, alone');
    assert.equal(history.find(17), undefined);
    assert.equal(history.find(seq + 24)?.payload.toString(), 'f6p24');
    history.record(seq + 25, 7, frame(7, 1));
    assert.equal(history.size, 1, 'and goes once a later frame is sent');
  });

  test('more one-packet frames than slots: the ring wraps and keeps the newest', () => {
    const history = new NackHistory(4);
    for (let i = 0; i < 11; i++) history.record(i, i, frame(i, 1));
    assert.equal(history.size, 4);
    assert.deepEqual([6, 7, 8, 9, 10].map((seq) => history.find(seq)?.payload.toString()), [undefined, 'f7p0', 'f8p0', 'f9p0', 'f10p0']);
  });

  test(`at most ${MAX_FRAMES} frames are kept, however many packets the capacity allows`, () => {
    const history = new NackHistory(2048);
    for (let i = 0; i < MAX_FRAMES + 44; i++) history.record(i * 2, i, frame(i, 2));
    assert.equal(history.size, MAX_FRAMES * 2);
    assert.equal(history.find(87), undefined, 'frame 43 went');
    assert.equal(history.find(88)?.payload.toString(), 'f44p0');
    assert.equal(history.find((MAX_FRAMES + 43) * 2 + 1)?.payload.toString(), `f${MAX_FRAMES + 43}p1`);
  });

  test('a packet is resent at most once per interval, and its record goes with its frame', () => {
    const history = new NackHistory(4);
    history.record(0, 0, frame(0, 2));
    assert.equal(history.resentWithin(1, 1000, 100), false);
    history.noteResent(1, 1000);
    assert.equal(history.resentWithin(1, 1050, 100), true, 'a repeated NACK within 100 ms');
    assert.equal(history.resentWithin(1, 1100, 100), false);
    history.noteResent(1, 1100);
    history.record(2, 1, frame(1, 3)); // frame 0 goes
    history.record(5, 2, frame(2, 1));
    assert.equal(history.find(1), undefined);
    // After the wrap the same number is a new packet: not held back by the old resend.
    history.record(65535, 3, frame(3, 4));
    assert.equal(history.resentWithin(1, 1101, 100), false);
  });

  test('clear() lets go of every payload', () => {
    const history = new NackHistory(10);
    history.record(0, 0, frame(0, 3));
    history.clear();
    assert.equal(history.size, 0);
    assert.equal(history.find(0), undefined);
    history.record(3, 0, frame(1, 2));
    assert.equal(history.find(4)?.payload.toString(), 'f1p1');
  });
});

/** A video stream with a JavaScript writer, which can protect retransmissions. */
function writerStream(): OutboundStream {
  const { key, salt, authKey } = randomSessionKeys(SRTP_PROFILE_AEAD_AES_128_GCM);
  const keys = { profile: SRTP_PROFILE_AEAD_AES_128_GCM, srtpSessionKey: key, srtpSessionSalt: salt, srtpSessionAuthTag: authKey };
  return new OutboundStream({ kind: 'video', ssrc: 9, payloadType: 102, clockRate: 90000, historySize: 64, writer: new SrtpStreamWriter(keys, 9) });
}

describe('OutboundStream frames', () => {
  test('reserve() numbers a frame consecutively, counts it for sender reports and keeps it for NACKs', () => {
    const out = new OutboundStream({ kind: 'video', ssrc: 5, payloadType: 102, clockRate: 90000, historySize: 64 });
    const packets = frame(1, 3);
    const first = out.reserve(3600, packets);
    assert.equal(out.sequenceNumber, (first + 3) & 0xffff);
    assert.equal(out.packetsSent, 3);
    assert.equal(out.octetsSent, 12);
    const second = out.reserve(7200, frame(2, 2));
    assert.equal(second, (first + 3) & 0xffff);
    // No writer (this stream sends through werift): nothing to protect a retransmission with.
    assert.equal(out.retransmission(first, 0, limits()), undefined);
  });

  test('a retransmission is the very packet sent, protected again, and a repeat within 100 ms is not answered', () => {
    const { key, salt, authKey } = randomSessionKeys(SRTP_PROFILE_AEAD_AES_128_GCM);
    const keys = { profile: SRTP_PROFILE_AEAD_AES_128_GCM, srtpSessionKey: key, srtpSessionSalt: salt, srtpSessionAuthTag: authKey };
    const out = new OutboundStream({ kind: 'video', ssrc: 9, payloadType: 102, clockRate: 90000, historySize: 64, writer: new SrtpStreamWriter(keys, 9) });
    const packets = frame(1, 4);
    const first = out.reserve(7200, packets);
    const sent = packets.map((p, i) => Buffer.concat(out.protect((first + i) & 0xffff, p.marker, 7200, p.payload)));
    const nack = limits();
    for (let i = 0; i < packets.length; i++) {
      const again = out.retransmission((first + i) & 0xffff, 1000, nack);
      assert.ok(again, `packet ${i}`);
      assert.ok(Buffer.concat(again).equals(sent[i]!), `packet ${i}: the same bytes`);
    }
    assert.equal(out.retransmission(first, 1050, nack), undefined);
    assert.ok(out.retransmission(first, 1100, nack));
    out.clearHistory();
    assert.equal(out.retransmission((first + 1) & 0xffff, 5000, nack), undefined);
  });

  test('a packet more than a second behind the newest frame is not resent, and is counted', () => {
    const out = writerStream();
    const old = out.reserve(90_000, frame(1, 2));
    out.reserve(90_000 + 90_000, frame(2, 1)); // exactly 1 s later: still answered
    assert.ok(out.retransmission(old, 0, limits()));
    const newest = out.reserve(90_000 + 90_001, frame(3, 1)); // 1 s and one tick later
    assert.equal(out.retransmission((old + 1) & 0xffff, 0, limits()), undefined);
    assert.equal(out.retransmissionsTooOld, 1);
    assert.ok(out.retransmission(newest, 0, limits()), 'the newest frame is answered');
    // Across the 32-bit timestamp wrap, age is still the difference.
    const wrapped = writerStream();
    const before = wrapped.reserve(0xffff_fff0, frame(4, 1));
    wrapped.reserve(0x10, frame(5, 1));
    assert.ok(wrapped.retransmission(before, 0, limits()));
    assert.equal(wrapped.retransmissionsTooOld, 0);
  });

  test('resends stop when the budget is spent, and the budget refills with the video sent', () => {
    const out = writerStream();
    const packets = Array.from({ length: 10 }, (_, i) => ({ payload: Buffer.alloc(1000, i), marker: i === 9 }));
    const first = out.reserve(3600, packets);
    // Room for three 1000-byte payloads; then each 4000 bytes of video earn one more (a quarter).
    const budget = new RetransmissionBudget(0.25, 3000);
    const nack = limits(budget);
    const answered = (): number => packets.filter((_, i) => out.retransmission((first + i) & 0xffff, 0, nack) !== undefined).length;
    assert.equal(answered(), 3);
    assert.equal(budget.refused, 7);
    budget.earn(3999);
    assert.equal(budget.available, 999.75);
    assert.equal(answered(), 0, 'the ones resent at 0 ms are not sent again, and 999.75 bytes pay for none');
    budget.earn(1);
    assert.equal(out.retransmission((first + 5) & 0xffff, 0, nack) !== undefined, true);
    budget.earn(1e9);
    assert.equal(budget.available, 3000, 'the bucket holds no more than its burst');
  });
});
