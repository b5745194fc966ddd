/**
 * What a gateway answers is checked before it is used (the real Janus is in janus-scale-out.test.ts;
 * this covers the replies a real one does not give on demand): malformed and hostile replies give a
 * clear JanusError without the secret, a plugin error is an error, the ports Janus chose are read
 * only when they are ports, and mountpoint ids and secrets are stable per plugin and camera.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { JanusError, JanusSession, printableJanusUrl } from '../../src/scaleout/janus-api.js';
import { mountpointCreateBody, mountpointId, mountpointSecret, readMountpointPorts } from '../../src/scaleout/janus-mountpoint.js';
import { RtpForwarder } from '../../src/scaleout/rtp-forwarder.js';
import type { MediaFrame } from '../../src/media/types.js';

const SECRET = 'the-API-secret-42';
const endpoint = { url: `http://127.0.0.1:1/janus?apisecret=${SECRET}`, apiSecret: SECRET };

/** POSTs get the replies in order; the long poll (GET) waits until it is aborted. */
function fakeFetch(replies: unknown[]): typeof fetch {
  return (async (_url: string, init?: RequestInit) => {
    if (!init?.method || init.method === 'GET') {
      return new Promise<Response>((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(new Error('aborted'))));
    }
    const next = replies.shift();
    if (next instanceof Error) throw next;
    return new Response(typeof next === 'string' ? next : JSON.stringify(next));
  }) as typeof fetch;
}

describe('Janus replies', () => {
  it('refuses malformed and hostile replies with a clear error that never carries the secret', async () => {
    const cases: Array<[unknown, RegExp]> = [
      ['not json at all', /did not answer/],
      [[1, 2, 3], /not a JSON object/],
      [{ janus: 'success', data: { id: 'seven' } }, /unexpected reply to create/],
      [{ janus: 'error', error: { code: 403, reason: 'Unauthorized request (wrong or missing secret/token)' } }, /Unauthorized request .*\(403\)/],
      [new Error(`connect ECONNREFUSED (${SECRET})`), /did not answer/],
    ];
    for (const [reply, expected] of cases) {
      const error = await JanusSession.create(endpoint, { fetch: fakeFetch([reply]) }).then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof JanusError, String(error));
      assert.match(error.message, expected);
      assert.ok(!error.message.includes('apisecret='), error.message);
    }
    assert.equal(printableJanusUrl(endpoint.url), 'http://127.0.0.1:1/janus');
  });

  it('a plugin error in a synchronous reply is thrown with its code', async () => {
    const session = await JanusSession.create(endpoint, { fetch: fakeFetch([{ janus: 'success', data: { id: 11 } }, { janus: 'success', data: { id: 22 } }, { janus: 'success', plugindata: { plugin: 'janus.plugin.streaming', data: { streaming: 'event', error_code: 457, error: 'Unauthorized (wrong admin_key)' } } }]) });
    try {
      const handle = await session.attach('janus.plugin.streaming');
      await assert.rejects(handle.request({ request: 'create' }), (error: unknown) => error instanceof JanusError && error.code === 457 && /wrong admin_key/.test(error.message));
    } finally {
      await session.destroy();
    }
  });

  it('reads only real ports from a created mountpoint', () => {
    assert.deepEqual(readMountpointPorts({ stream: { id: 5, ports: [{ type: 'video', mid: 'v', port: 10001, rtcp_port: 10002 }, { type: 'audio', mid: 'a', port: 10000 }] } }), { id: 5, video: { port: 10001, rtcpPort: 10002 }, audio: { port: 10000 } });
    assert.deepEqual(readMountpointPorts({ stream: { id: 5, ports: [{ type: 'video', port: 70000 }, { type: 'audio', port: -1 }, null, 'x'] } }), { id: 5 });
    assert.throws(() => readMountpointPorts({}), /no stream description/);
    assert.throws(() => readMountpointPorts({ stream: { id: '5', ports: [] } }), /no ports/);
  });

  it('asks for H.264 or VP8 with a buffered keyframe, G.711 or Opus sound, and never for what Janus cannot relay', () => {
    const body = mountpointCreateBody({ cameraId: 'yard', description: 'Yard', video: 'H264', audio: 'PCMA', instanceKey: 'k', adminKey: 'ak', srtpKey: 'S'.repeat(40) });
    assert.equal(body['id'], mountpointId('k', 'yard'));
    assert.equal(body['secret'], mountpointSecret('k', 'yard'));
    assert.equal(body['admin_key'], 'ak');
    assert.equal(body['srtpsuite'], 80);
    assert.deepEqual((body['media'] as Array<Record<string, unknown>>).map((m) => [m['type'], m['codec'], m['pt'], m['bufferkf']]), [['video', 'h264', 96, true], ['audio', 'pcma', 8, undefined]]);
    assert.throws(() => mountpointCreateBody({ cameraId: 'x', description: 'x', video: 'H265', instanceKey: 'k' }), /cannot relay H265/);
    assert.throws(() => mountpointCreateBody({ cameraId: 'x', description: 'x', audio: 'AAC', instanceKey: 'k' }), /nothing to relay/);
    // Stable per plugin and camera, different across either.
    assert.equal(mountpointId('k', 'yard'), mountpointId('k', 'yard'));
    assert.notEqual(mountpointId('k', 'yard'), mountpointId('k', 'gate'));
    assert.notEqual(mountpointId('k', 'yard'), mountpointId('other', 'yard'));
    assert.ok(mountpointId('k', 'yard') > 0 && mountpointId('k', 'yard') < 2 ** 31);
  });
});

describe('RtpForwarder', () => {
  it('writes RTP with its own sequence numbers, sends a sender report to the RTCP port first, and counts keyframe requests', async () => {
    const media = createSocket('udp4');
    const rtcp = createSocket('udp4');
    await Promise.all([new Promise<void>((r) => media.bind(0, '127.0.0.1', r)), new Promise<void>((r) => rtcp.bind(0, '127.0.0.1', r))]);
    const report = once(rtcp, 'message') as Promise<[Buffer, { port: number }]>;
    const forwarder = await RtpForwarder.open({ host: '127.0.0.1', video: { port: media.address().port, rtcpPort: rtcp.address().port, payloadType: 96, clockRate: 90000 } });
    try {
      const [sr, from] = await report;
      assert.equal(sr[1], 200, 'an RTCP sender report');
      const packets: Buffer[] = [];
      media.on('message', (m) => packets.push(m));
      const frame: MediaFrame = { kind: 'video', codec: 'H264', clockRate: 90000, timestamp: 1234, sequenceNumber: 9, keyframe: true, units: [], packets: [{ payload: Buffer.from([0x65, 1]), marker: false }, { payload: Buffer.from([0x65, 2]), marker: true }], receivedAt: 0 };
      assert.equal(forwarder.write(frame), true);
      while (packets.length < 2) await new Promise((r) => setTimeout(r, 10));
      const [first, second] = packets as [Buffer, Buffer];
      assert.equal(first[1]! & 0x7f, 96);
      assert.equal(second[1]! & 0x80, 0x80, 'the marker on the last packet');
      assert.equal((second.readUInt16BE(2) - first.readUInt16BE(2)) & 0xffff, 1);
      assert.equal(first.readUInt32BE(4), 1234);
      assert.deepEqual(second.subarray(12), Buffer.from([0x65, 2]));
      // A PLI and a FIR back to where the report came from, then garbage.
      const pli = Buffer.from([0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]);
      const fir = Buffer.from([0x84, 206, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0]);
      for (const message of [pli, fir, Buffer.from('junk'), Buffer.alloc(0)]) rtcp.send(message, from.port, '127.0.0.1');
      const deadline = Date.now() + 2000;
      while (forwarder.counters.keyframeRequests < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(forwarder.counters.keyframeRequests, 2);
      assert.equal(forwarder.counters.videoPackets, 2);
    } finally {
      forwarder.close();
      media.close();
      rtcp.close();
    }
  });
});
