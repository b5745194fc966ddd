// The Home app's microphone into the talk channel: its clock read off the packets, silence that
// neither takes nor holds the floor, a busy floor, a lost turn. The channel here is a recorder;
// test/e2e/homekit-talk.test.ts runs it against the real camera.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReturnAudio, SILENT_OPUS_MAX_BYTES } from '../../src/homekit/return-audio.js';
import type { TalkChannel, TalkHolder, TalkTurn } from '../../src/media/talk-channel.js';
import { memoryLogger } from './camera-rig.js';

/** A talk channel that records: who took it, what was said, and can be busy or end a turn. */
class RecordingChannel implements TalkChannel {
  holder: TalkHolder | undefined;
  busyWith: string | undefined;
  takes = 0;
  voiced: Array<{ payload: Buffer; timestamp: number }> = [];
  released = 0;
  private onEnd: ((message: string) => void) | undefined;

  take(holder: TalkHolder, onEnd: (message: string) => void): TalkTurn | { busy: string } {
    this.takes++;
    if (this.busyWith) return { busy: this.busyWith };
    this.holder = holder;
    this.onEnd = onEnd;
    return {
      voice: (payload, timestamp) => this.voiced.push({ payload, timestamp }),
      release: () => {
        this.released++;
        this.holder = undefined;
      },
    };
  }

  watch(): () => void {
    return () => undefined;
  }

  /** The floor ends the turn (the talker went quiet, the camera hung up). */
  end(message: string): void {
    this.holder = undefined;
    this.onEnd?.(message);
  }
}

/** A 20 ms CELT Opus packet (TOC config 31, one frame: 960 samples at 48 kHz) of `size` bytes. */
function opus(size: number, fill = 1): Buffer {
  const packet = Buffer.alloc(size, fill);
  packet[0] = 0xf8;
  return packet;
}

function rig(sampleRateHz = 24_000) {
  const channel = new RecordingChannel();
  const clock = { now: 0 };
  const log = memoryLogger();
  const audio = new ReturnAudio({ talk: channel, holder: { id: 'homekit-1', name: 'the Home app' }, sampleRateHz, log, now: () => clock.now });
  return { channel, clock, log, audio };
}

describe('the Home app\'s microphone (return audio)', () => {
  for (const [clockHz, step] of [[48_000, 960], [24_000, 480], [16_000, 320]] as const) {
    it(`an Opus clock of ${clockHz / 1000} kHz is read off the packets and handed on as 48 kHz`, () => {
      // The negotiated rate says 24 kHz either way: the packets decide.
      const { channel, audio } = rig(24_000);
      const base = 0xffff_fe00; // wraps within the run
      for (let i = 0; i < 5; i++) audio.packet({ payload: opus(60), sequenceNumber: 100 + i, timestamp: (base + i * step) >>> 0 });
      assert.equal(audio.clockRateHz, clockHz);
      const steps = channel.voiced.slice(1).map((v, i) => (v.timestamp - channel.voiced[i]!.timestamp) >>> 0);
      assert.deepEqual(steps, [960, 960, 960, 960]);
    });
  }

  it('silence neither takes the floor nor holds it; a pause reaches the channel as a timestamp gap', () => {
    const { channel, audio } = rig();
    let seq = 0;
    let ts = 0;
    const send = (size: number): void => {
      audio.packet({ payload: opus(size), sequenceNumber: seq++, timestamp: ts });
      ts += 480;
    };
    for (let i = 0; i < 50; i++) send(SILENT_OPUS_MAX_BYTES);
    assert.equal(channel.takes, 0, 'a muted microphone does not take the floor');
    send(SILENT_OPUS_MAX_BYTES + 1);
    send(60);
    assert.equal(channel.takes, 1);
    for (let i = 0; i < 10; i++) send(3); // 200 ms of silence: not passed on
    send(60);
    assert.equal(channel.voiced.length, 3);
    const [, second, third] = channel.voiced;
    assert.equal(((third!.timestamp - second!.timestamp) >>> 0), 11 * 960, 'the pause is there, in 48 kHz ticks');
    assert.equal(audio.stats.forwarded, 3);
  });

  it('a busy floor: refused, said once, asked again a second later; then talking', () => {
    const { channel, clock, log, audio } = rig();
    channel.busyWith = 'alice';
    let seq = 0;
    const send = (): void => audio.packet({ payload: opus(60), sequenceNumber: seq, timestamp: 480 * seq++ });
    for (let i = 0; i < 20; i++) send();
    assert.equal(channel.takes, 1, 'not asked for every packet');
    assert.equal(audio.stats.refused, 20);
    clock.now += 1000;
    send();
    assert.equal(channel.takes, 2);
    assert.equal(log.lines.filter((l) => /not passed on: alice is talking/.test(l)).length, 1, 'said once');
    channel.busyWith = undefined;
    clock.now += 1000;
    send();
    assert.equal(channel.holder?.name, 'the Home app');
    assert.equal(channel.voiced.length, 1);
    assert.ok(log.lines.some((l) => /the Home app talks through the camera/.test(l)));
  });

  it('a turn the floor ends is taken again with the next word, a second later; close() lets go', () => {
    const { channel, clock, log, audio } = rig();
    let seq = 0;
    const send = (): void => audio.packet({ payload: opus(60), sequenceNumber: seq, timestamp: 480 * seq++ });
    send();
    channel.end('The camera ended the talk channel.');
    assert.ok(log.lines.some((l) => /no longer reaches the camera: The camera ended the talk channel/.test(l)));
    send();
    assert.equal(channel.takes, 1, 'not at once');
    clock.now += 1000;
    send();
    assert.equal(channel.takes, 2);
    audio.close();
    assert.equal(channel.released, 1);
    send();
    assert.equal(channel.voiced.length, 2, 'nothing after close');
  });

  it('what is not Opus is counted and dropped', () => {
    const { channel, audio } = rig();
    audio.packet({ payload: Buffer.alloc(0), sequenceNumber: 1, timestamp: 0 });
    audio.packet({ payload: Buffer.from([0xfb]), sequenceNumber: 2, timestamp: 0 }); // code 3 without its frame count
    assert.equal(audio.stats.malformed, 2);
    assert.equal(channel.takes, 0);
  });
});
