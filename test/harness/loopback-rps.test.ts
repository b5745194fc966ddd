// `BENCH_RPS=1 npm run bench:webrtc` moves loopback's receive processing to the receivers' core:
// the mask sysfs is given, that the setting goes back exactly as it was, and the error where it
// cannot be changed. The sysfs file is a stand-in here: the real one is machine-wide.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cpuMask, steerLoopbackReceive } from '../../bench/loopback-rps.js';

function fakeSysfs(initial: string, failWrite = false): { read(): string; write(value: string): void; writes: string[] } {
  let value = initial;
  const writes: string[] = [];
  return {
    read: () => value,
    write: (next) => {
      if (failWrite) throw new Error('EACCES: permission denied');
      writes.push(next);
      value = next;
    },
    writes,
  };
}

describe('loopback receive steering (bench)', () => {
  test('one CPU as the hexadecimal mask sysfs takes, in 32-CPU groups', () => {
    assert.equal(cpuMask(0), '1');
    assert.equal(cpuMask(1), '2');
    assert.equal(cpuMask(4), '10');
    assert.equal(cpuMask(31), '80000000');
    assert.equal(cpuMask(33), '2,00000000');
    assert.throws(() => cpuMask(-1), RangeError);
    assert.throws(() => cpuMask(1.5), RangeError);
  });

  test('sets the mask, then puts back what was there, once', () => {
    const file = fakeSysfs('00000000,00000004');
    const steering = steerLoopbackReceive(1, file);
    assert.equal(file.read(), '2');
    assert.match(steering.description, /CPU 1 .*mask 2; it was 00000000,00000004/);
    steering.restore();
    steering.restore();
    assert.deepEqual(file.writes, ['2', '00000000,00000004']);
  });

  test('says what it needs where the setting cannot be changed', () => {
    assert.throws(() => steerLoopbackReceive(1, fakeSysfs('0', true)), /BENCH_RPS=1 needs root .*rps_cpus.*EACCES/);
  });
});
