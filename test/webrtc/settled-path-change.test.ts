/**
 * A settled viewer whose address changes while it watches (viewer-settle.ts): a home router or a
 * mobile network's NAT drops the viewer's mapping and gives its next packet a new source port, with
 * nothing said to either end. The real peers: Chromium (and a werift viewer) over WHEP and the
 * server's ViewerPeer, through a NAT on loopback (two UDP sockets that forward both ways; the test's
 * HTTP front puts the NAT's ports in the SDP both ways; `rebind()` moves the outside port as such a
 * router does). The viewer must keep its picture, the server following it to the new port once
 * the viewer has answered a consent check there; datagrams for the old port go nowhere. An address
 * that only forges the viewer's source (its authentic SRTCP diverted there) gets a check, no media.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { classes, Message, methods } from 'werift';
import type { ViewerPeer } from '../../src/webrtc/viewer-peer.js';
import { launchChromium, summarizeRtcStats, waitForFramesDecoded, waitForRtcStats } from '../helpers/browser.js';
import { cleanupAll } from '../helpers/processes.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { WeriftReceiver } from './werift-client.js';
import { startWhepServer } from './whep-server.js';

after(cleanupAll);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function boundSocket(): Promise<Socket> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return socket;
}

/**
 * A NAT on loopback between one viewer and one server address: the viewer talks to `inside`, the
 * server sees the viewer at `outside`. Only the server's packets to the current outside port reach
 * the viewer, as behind a real NAT.
 */
class RebindingNat {
  server: [string, number] | undefined;
  private viewer: RemoteInfo | undefined;
  forwardedToViewer = 0;
  /** The viewer's next RTCP leaves from this socket instead (and only that one). */
  divertRtcp: Socket | undefined;

  private constructor(
    readonly inside: Socket,
    private outside: Socket,
  ) {
    inside.on('message', (data, from) => {
      this.viewer = from;
      if (!this.server) return;
      // RTCP: version 2 and a packet type 200-206 in the second byte.
      if (this.divertRtcp && (data[0]! & 0xc0) === 0x80 && data[1]! >= 200 && data[1]! <= 206) {
        const via = this.divertRtcp;
        this.divertRtcp = undefined;
        via.send(data, this.server[1], this.server[0]);
        return;
      }
      this.outside.send(data, this.server[1], this.server[0]);
    });
    this.wire(outside);
  }

  static async open(): Promise<RebindingNat> {
    return new RebindingNat(await boundSocket(), await boundSocket());
  }

  get insidePort(): number {
    return this.inside.address().port;
  }

  get outsidePort(): number {
    return this.outside.address().port;
  }

  /** The mapping is dropped: the viewer's next packet leaves from a new port, the old one is gone. */
  async rebind(): Promise<void> {
    const old = this.outside;
    this.outside = await boundSocket();
    this.wire(this.outside);
    old.close();
  }

  close(): void {
    for (const socket of [this.inside, this.outside]) {
      try {
        socket.close();
      } catch {
        // Closed already.
      }
    }
  }

  private wire(outside: Socket): void {
    outside.on('message', (data, from) => {
      if (!this.viewer || !this.server || from.address !== this.server[0] || from.port !== this.server[1]) return;
      if (outside !== this.outside) return;
      this.forwardedToViewer++;
      this.inside.send(data, this.viewer.port, this.viewer.address);
    });
  }
}

/** The ports of the answer's UDP candidates on 127.0.0.1 (each once: bundled sections repeat them). */
function loopbackCandidatePorts(sdp: string): number[] {
  return sdp
    .split(/\r?\n/)
    .filter((l) => l.startsWith('a=candidate:'))
    .map((l) => l.split(' '))
    .filter((f) => f[2]?.toLowerCase() === 'udp' && f[4] === '127.0.0.1')
    .map((f) => Number(f[5]))
    .filter((port, i, all) => all.indexOf(port) === i);
}

/** Every UDP candidate moved to 127.0.0.1:`port` (the NAT's side facing the reader); the rest removed. */
function candidatesAt(sdp: string, port: number): string {
  return sdp
    .split(/\r?\n/)
    .filter((l) => !l.startsWith('a=candidate:') || l.split(' ')[2]?.toLowerCase() === 'udp')
    .map((l) => {
      if (!l.startsWith('a=candidate:')) return l;
      const f = l.split(' ');
      f[4] = '127.0.0.1';
      f[5] = String(port);
      return f.join(' ');
    })
    .join('\r\n');
}

describe('a settled viewer behind a NAT that changes its port', () => {
  let source: SyntheticSource;
  let base: string;
  const viewers: ViewerPeer[] = [];
  /** The NAT the next WHEP POST goes through: its ports go into the offer and the answer. */
  let nat: RebindingNat | undefined;

  async function settled(viewer: ViewerPeer): Promise<void> {
    const deadline = performance.now() + 10_000;
    while (!viewer.stats().weriftReleased) {
      assert.ok(performance.now() < deadline, `not settled: ${JSON.stringify(viewer.stats())}`);
      await sleep(20);
    }
  }

  /** A werift viewer through the NAT, playing, and the server's viewer for it, settled; the SDPs as the viewer saw them. */
  async function weriftThrough(receiver: WeriftReceiver): Promise<{ viewer: ViewerPeer; offer: string; answer: string }> {
    const offer = await receiver.offer();
    const res = await fetch(`${base}/whep/cam1`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: offer });
    assert.equal(res.status, 201);
    const answer = await res.text();
    await receiver.applyAnswer(answer);
    await receiver.waitFor(() => receiver.accessUnits >= 10, 10_000, 'video through the NAT');
    const viewer = viewers.at(-1)!;
    await settled(viewer);
    return { viewer, offer, answer };
  }

  /** `a=ice-ufrag` / `a=ice-pwd` of an SDP. */
  function iceCredentials(sdp: string): { ufrag: string; pwd: string } {
    const value = (name: string): string => /^a=ice-(?:ufrag|pwd):(.*)$/m.exec(sdp.split(/\r?\n/).find((l) => l.startsWith(`a=ice-${name}:`)) ?? '')?.[1]?.trim() ?? '';
    return { ufrag: value('ufrag'), pwd: value('pwd') };
  }

  before(async () => {
    source = await SyntheticSource.create({ id: 'cam1', gop: 25 });
    ({ base } = await startWhepServer({
      source,
      onViewer: (viewer) => viewers.push(viewer),
      // The server sees the viewer at the NAT's outside port, the viewer the server at its inside one.
      rewriteOffer: (offer) => (nat ? candidatesAt(offer, nat.outsidePort) : offer),
      rewriteAnswer: (answer) => {
        if (!nat) return answer;
        const [serverPort] = loopbackCandidatePorts(answer);
        if (serverPort) nat.server = ['127.0.0.1', serverPort];
        return candidatesAt(answer, nat.insidePort);
      },
    }));
  });
  after(() => source.close());

  test('a werift viewer keeps its picture: the server checks the new port and follows it there', async () => {
    const through = (nat = await RebindingNat.open());
    const receiver = new WeriftReceiver({ keepVideo: false });
    try {
      const { viewer } = await weriftThrough(receiver);
      const oldPort = through.outsidePort;
      await through.rebind();
      assert.notEqual(through.outsidePort, oldPort);
      const units = receiver.accessUnits;
      const rebound = performance.now();
      await receiver.waitFor(() => receiver.accessUnits > units, 8_000, 'a frame after the NAT moved the viewer');
      const outage = performance.now() - rebound;
      await receiver.waitFor(() => receiver.accessUnits >= units + 25, 8_000, 'a second of video after the move');
      const stats = viewer.stats();
      assert.equal(stats.pathChanges, 1, JSON.stringify(stats));
      assert.equal(stats.rtcpRefused, 0);
      assert.equal(viewer.phase, 'connected');
      // The move loses what was on its way to the old port, and the resent packets come back in a
      // burst: an access unit or a few may be damaged. From the next keyframe on the picture is whole.
      const from = receiver.auKinds.length;
      await receiver.waitFor(() => /I.{5}/.test(receiver.auKinds.slice(from)), 8_000, 'a keyframe and five frames more');
      const sinceKeyframe = receiver.auKinds.slice(from + receiver.auKinds.slice(from).indexOf('I'));
      assert.ok(!sinceKeyframe.includes('x'), `damaged after the next keyframe (I: IDR, p: other, x: damaged): ${receiver.auKinds}`);
      // werift's receiver reports come every second or so; the first from the new port moves the media.
      assert.ok(outage < 4_000, `the picture stopped for ${outage.toFixed(0)} ms`);
    } finally {
      await receiver.close();
      through.close();
      nat = undefined;
    }
  });

  test('another address gets nothing: not for the viewer\'s credentials (a backup path, answered), nor for its authentic SRTCP (asked, never answered)', async () => {
    // What a viewer that forges its source address (to aim a camera's stream at someone) can send:
    // its own, authentic, fresh SRTCP. The server asks that address first, and nobody there answers.
    const through = (nat = await RebindingNat.open());
    const victim = await boundSocket();
    const received: number[] = [];
    victim.on('message', (data) => received.push(data[0]!));
    const receiver = new WeriftReceiver({ keepVideo: false });
    try {
      const { viewer, offer, answer } = await weriftThrough(receiver);
      // A Binding request with the viewer's credentials from that address, as a browser checks a
      // backup path: answered there, and nothing more.
      const server = iceCredentials(answer);
      const ownUfrag = iceCredentials(offer).ufrag;
      const check = new Message(methods.BINDING, classes.REQUEST);
      check.setAttribute('USERNAME', `${server.ufrag}:${ownUfrag}`);
      check.setAttribute('PRIORITY', 1845501695);
      check.setAttribute('ICE-CONTROLLING', 5n);
      victim.send(check.addMessageIntegrity(Buffer.from(server.pwd)).addFingerprint().bytes, through.server![1], through.server![0]);
      const answered = performance.now() + 3_000;
      while (!received.includes(1)) {
        assert.ok(performance.now() < answered, 'the check from the new address was not answered');
        await sleep(20);
      }
      through.divertRtcp = victim;
      const deadline = performance.now() + 5_000;
      while (through.divertRtcp) {
        assert.ok(performance.now() < deadline, 'the viewer sent no RTCP to divert');
        await sleep(20);
      }
      const units = receiver.accessUnits;
      await receiver.waitFor(() => receiver.accessUnits >= units + 50, 8_000, 'two seconds of video after the forged report');
      const stats = viewer.stats();
      assert.equal(stats.rtcpRefused, 0, 'the diverted report was authentic');
      assert.equal(stats.pathChanges, 0, JSON.stringify(stats));
      // The address got the answer to its check (first byte 1) and our consent check (a Binding
      // request: first byte 0), and no media.
      assert.ok(received.length >= 2 && received.length <= 5, `the address got ${received.length} datagrams`);
      assert.deepEqual([...new Set(received)].sort(), [0, 1]);
    } finally {
      await receiver.close();
      victim.close();
      through.close();
      nat = undefined;
    }
  });

  test('Chromium keeps its picture: its consent checks are answered at the new port and its media follow it', async () => {
    const through = (nat = await RebindingNat.open());
    const chromium = await launchChromium();
    try {
      const page = await chromium.openPage(`${base}/`);
      const before = await waitForFramesDecoded(page, 25, 20_000);
      const viewer = viewers.at(-1)!;
      await settled(viewer);
      const decoded = Math.max(...before.map((pc) => pc.video?.framesDecoded ?? 0));
      await through.rebind();
      // Two seconds of video (25 fps) after the move, in a connection Chromium still calls connected.
      const after = await waitForRtcStats(page, (all) => all.some((pc) => (pc.video?.framesDecoded ?? 0) >= decoded + 75), { timeoutMs: 15_000 }).catch(
        async (error: unknown) => assert.fail(`${String(error)}; server viewer ${JSON.stringify(viewer.stats())}; ${summarizeRtcStats(await waitForRtcStats(page, () => true).catch(() => []))}`),
      );
      const pc = after.find((p) => (p.video?.framesDecoded ?? 0) >= decoded + 75)!;
      assert.equal(pc.connectionState, 'connected', summarizeRtcStats(after));
      const stats = viewer.stats();
      assert.equal(stats.pathChanges, 1, JSON.stringify(stats));
      assert.equal(stats.rtcpRefused, 0);
      assert.equal(viewer.phase, 'connected');
    } finally {
      await chromium.close();
      through.close();
      nat = undefined;
    }
  });
});
