/**
 * werift 0.25 asks Google's STUN server whenever it is given none; the plugin's peers must not
 * (src/webrtc/werift-stun.ts). Watched here in this process: every host name looked up and every
 * UDP datagram sent while real ViewerPeers make their offers (without internet the look-up of
 * stun.l.google.com fails before any datagram leaves, so the look-up is what shows werift trying).
 * With no STUN server set, nothing is looked up or sent towards Google or port 19302; with one set
 * (a UDP socket of the test on loopback), its binding request arrives there.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import dns from 'node:dns';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_ICE_SETTINGS, LOOPBACK_ICE_SETTINGS } from '../../src/webrtc/ice-config.js';
import { ViewerPeer } from '../../src/webrtc/viewer-peer.js';
import { cleanupAll } from '../helpers/processes.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';

after(cleanupAll);

/** Destinations ("host:port") of every datagram sent in this process while recording. */
const sentTo: string[] = [];
const send = dgram.Socket.prototype.send;
const lookup = dns.lookup;
const lookupPromise = dns.promises.lookup;

describe('ICE gathering asks only the STUN servers the user set', { timeout: 60_000 }, () => {
  let source: SyntheticSource;

  before(async () => {
    source = await SyntheticSource.create({ id: 'cam', gop: 25, seconds: 2 });
    dgram.Socket.prototype.send = function recordingSend(this: dgram.Socket, ...args: unknown[]): void {
      // send(msg, [offset, length,] port, [address,] [callback])
      const portIndex = args.findIndex((a, i) => i > 0 && typeof a === 'number' && (i === 1 || typeof args[i + 1] !== 'number'));
      const port = args[portIndex];
      const address = typeof args[portIndex + 1] === 'string' ? args[portIndex + 1] : '(default)';
      sentTo.push(`${String(address)}:${String(port)}`);
      return (send as (...a: unknown[]) => void).apply(this, args);
    } as typeof send;
    // dgram resolves a host name given to send() with dns.lookup, read when the socket is made.
    dns.lookup = function recordingLookup(hostname: string, ...rest: unknown[]): void {
      sentTo.push(`lookup ${hostname}`);
      return (lookup as (...a: unknown[]) => void).call(dns, hostname, ...rest);
    } as typeof lookup;
    // werift resolves a STUN server's name itself, with dns.promises.lookup.
    dns.promises.lookup = function recordingLookup(hostname: string, ...rest: unknown[]): Promise<unknown> {
      sentTo.push(`lookup ${hostname}`);
      return (lookupPromise as (...a: unknown[]) => Promise<unknown>).call(dns.promises, hostname, ...rest);
    } as typeof lookupPromise;
  });

  after(async () => {
    dgram.Socket.prototype.send = send;
    dns.lookup = lookup;
    dns.promises.lookup = lookupPromise;
    await source?.close();
  });

  async function offerWith(ice: typeof DEFAULT_ICE_SETTINGS): Promise<string> {
    const viewer = new ViewerPeer({ source, ice });
    try {
      await viewer.waitForTracks(10_000);
      const offer = await viewer.createOffer();
      // Gathering is done when the offer is made; give a late request time to show.
      await new Promise((r) => setTimeout(r, 300));
      return offer;
    } finally {
      await viewer.close();
    }
  }

  it('no STUN server set: the offer is made and no datagram goes to Google or port 19302', async () => {
    sentTo.length = 0;
    const started = performance.now();
    for (const ice of [DEFAULT_ICE_SETTINGS, LOOPBACK_ICE_SETTINGS]) {
      const offer = await offerWith(ice);
      assert.match(offer, /a=candidate:/);
    }
    const stun = sentTo.filter((to) => /google|:19302$/i.test(to));
    assert.deepEqual(stun, [], `look-ups and datagrams: ${sentTo.join(', ')}`);
    console.log(`# two offers with gathering in ${(performance.now() - started).toFixed(0)} ms; look-ups and datagrams: ${sentTo.length}`);
  });

  it('a STUN server set is asked: its binding request arrives', async () => {
    const stunServer = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => stunServer.bind(0, '127.0.0.1', resolve));
    const requests: Buffer[] = [];
    stunServer.on('message', (message) => requests.push(message));
    try {
      const port = (stunServer.address() as AddressInfo).port;
      await offerWith({ ...DEFAULT_ICE_SETTINGS, iceServers: [{ urls: `stun:127.0.0.1:${port}` }] });
      assert.ok(requests.length > 0, 'the configured STUN server got a request');
      assert.equal(requests[0]!.readUInt16BE(0), 0x0001, 'a STUN Binding Request');
      assert.equal(requests[0]!.readUInt32BE(4), 0x2112a442, 'the STUN magic cookie');
      assert.ok(sentTo.includes(`127.0.0.1:${port}`), 'seen by the recorder too');
    } finally {
      stunServer.close();
    }
  });
});
