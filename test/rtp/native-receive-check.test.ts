// The check the addon's camera receive passes once per process before a camera depends on it
// (src/rtp/native-receive-check.ts): the real binary passes it over real loopback sockets; a
// receive that cuts, reorders, loses or misdates datagrams fails it, and cameras then use dgram.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { nativeFanout, type NativeFanout, type NativeFanoutStatus, type UdpBatchHandler } from '../../src/rtp/native-fanout.js';
import { checkNativeReceive, nativeReceive, nativeReceiveCheckError } from '../../src/rtp/native-receive-check.js';
import { openRtpReceiver } from '../../src/rtp/rtp-receiver.js';

function loaded(): Extract<NativeFanoutStatus, { loaded: true }> {
  const status = nativeFanout();
  assert.ok(status.loaded, `the native addon loads on this machine: ${status.loaded ? '' : status.reason}`);
  return status;
}

/** The real addon, with what its receive hands to JavaScript altered by `alter`. */
function withReceive(fanout: NativeFanout, alter: (deliver: UdpBatchHandler) => UdpBatchHandler): NativeFanout {
  // The addon's functions are neither enumerable nor writable (N-API's default): the rest are
  // inherited, and this one is defined over them.
  const openUdpReceiver: NativeFanout['openUdpReceiver'] = (ip, port, bytes, onBatch) => fanout.openUdpReceiver(ip, port, bytes, alter(onBatch));
  return Object.create(fanout, { openUdpReceiver: { value: openUdpReceiver } }) as NativeFanout;
}

describe('the native receive check', () => {
  it("passes with this machine's binary, and cameras then read through it", async () => {
    const status = loaded();
    assert.equal(await nativeReceiveCheckError(status.fanout), undefined);
    assert.equal(await checkNativeReceive(status), status);
    assert.equal((await nativeReceive()).loaded, true);
    const receiver = await openRtpReceiver('127.0.0.1', 0, 0);
    try {
      assert.equal(receiver.path, 'native');
    } finally {
      receiver.close();
    }
  });

  it('fails a receive that cuts a datagram short, and says which', async () => {
    const { fanout } = loaded();
    const cutting = withReceive(fanout, (deliver) => (slab, offset, lengths, count, foreign, arrivals, at) => {
      for (let i = 0; i < count; i++) if (lengths[i]! > 1000) lengths[i] = 1000;
      deliver(slab, offset, lengths, count, foreign, arrivals, at);
    });
    assert.match((await nativeReceiveCheckError(cutting)) ?? '', /as they came: datagram 3 \(1400 bytes\) came back as 1000 other bytes/);
  });

  it('fails a receive that loses datagrams, within its time limit', async () => {
    const { fanout } = loaded();
    const losing = withReceive(fanout, (deliver) => (slab, offset, lengths, count, foreign, arrivals, at) => {
      if (count > 1) deliver(slab, offset, lengths, count - 1, foreign, arrivals, at);
    });
    const started = performance.now();
    const error = await nativeReceiveCheckError(losing, 300);
    assert.match(error ?? '', /of 4 datagrams arrived in 300 ms/);
    assert.ok(performance.now() - started < 2_000, 'it gives up at its limit');
  });

  it('fails a receive whose held datagrams come with impossible ages (a receive time read wrongly)', async () => {
    const { fanout } = loaded();
    const misdating = withReceive(fanout, (deliver) => (slab, offset, lengths, count, foreign, arrivals, at) => {
      for (let i = 0; i < count; i++) arrivals[i] = at + 5_000; // from the future
      deliver(slab, offset, lengths, count, foreign, arrivals, at);
    });
    assert.match((await nativeReceiveCheckError(misdating)) ?? '', /held datagrams came with impossible ages \(-5000\.0/);
  });

  it('a failed check turns the addon off for camera receives only, with the reason', async () => {
    const status = loaded();
    const broken: NativeFanoutStatus = { ...status, fanout: withReceive(status.fanout, () => () => undefined) };
    const checked = await checkNativeReceive(broken, 200);
    assert.equal(checked.loaded, false);
    assert.match(checked.loaded ? '' : checked.reason, /^its UDP receive failed a check on loopback: 0 of 4 datagrams arrived in 200 ms$/);
    const receiver = await openRtpReceiver('127.0.0.1', 0, 0, checked);
    try {
      assert.equal(receiver.path, 'dgram');
    } finally {
      receiver.close();
    }
    // An addon that did not load is passed on as it is.
    const absent: NativeFanoutStatus = { loaded: false, reason: 'turned off (WEBRTC_CAMERAS_NATIVE)' };
    assert.equal(await checkNativeReceive(absent), absent);
  });
});
