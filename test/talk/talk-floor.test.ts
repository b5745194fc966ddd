/**
 * The talk floor (src/talk/talk-floor.ts): one talker at a time, the others told who; a talker who
 * goes quiet without letting go loses it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TalkHolder } from '../../src/media/talk-channel.js';
import { TalkFloor } from '../../src/talk/talk-floor.js';
import { FakeTime } from '../helpers/fake-time.js';

const alice: TalkHolder = { id: 'viewer-a', name: 'alice' };
const bob: TalkHolder = { id: 'viewer-b', name: 'bob' };
const ignore = (): void => undefined;

test('one holder at a time; the others are told who; letting go frees it for the next', () => {
  const time = new FakeTime();
  const floor = new TalkFloor(time, 5000);
  const heard: Array<string | undefined> = [];
  floor.watch((holder) => heard.push(holder?.name));
  assert.deepEqual(floor.take(alice, ignore), { taken: true });
  assert.deepEqual(floor.take(bob, ignore), { taken: false, holder: alice });
  assert.deepEqual(floor.take(alice, ignore), { taken: true }, 'taking it again keeps it, without a second change');
  assert.equal(floor.release(bob.id), false, 'bob cannot let go of what alice holds');
  assert.equal(floor.holder?.name, 'alice');
  assert.equal(floor.release(alice.id), true);
  assert.deepEqual(floor.take(bob, ignore), { taken: true });
  assert.deepEqual(heard, ['alice', undefined, 'bob']);
});

test('a holder that sends no voice for idleMs loses the floor; voice keeps it', async () => {
  const time = new FakeTime();
  const floor = new TalkFloor(time, 5000);
  floor.take(alice, ignore);
  for (let i = 0; i < 10; i++) {
    await time.advance(1000);
    floor.heardFrom(alice.id);
  }
  floor.heardFrom(bob.id); // not the holder: changes nothing
  assert.equal(floor.holder?.name, 'alice', 'ten seconds of voice keep it');
  await time.advance(4999);
  assert.equal(floor.holder?.name, 'alice');
  await time.advance(1);
  assert.equal(floor.holder, undefined, 'five seconds of silence release it');
  assert.deepEqual(floor.take(bob, ignore), { taken: true });
});

test('a listener that throws does not keep the others from hearing', () => {
  const floor = new TalkFloor(new FakeTime(), 5000);
  const heard: string[] = [];
  floor.watch(() => {
    throw new Error('broken page');
  });
  const unwatch = floor.watch((holder) => heard.push(holder?.name ?? 'nobody'));
  floor.take(alice, ignore);
  unwatch();
  floor.release(alice.id);
  assert.deepEqual(heard, ['alice']);
});
