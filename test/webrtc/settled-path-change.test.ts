/**
 * A settled viewer whose address changes while it watches (viewer-settle.ts): a home router or a
 * mobile network's NAT drops the viewer's mapping and gives its next packet a new source port, with
 * nothing said to either end. The real peers: a werift WHEP viewer and the server's ViewerPeer,
 * through a NAT on loopback (two UDP sockets that forward both ways; `rebind()` moves the outside
 * port as such a router does). The viewer must keep its picture, the server following its
 * authentic SRTCP to the new port; datagrams for the old port go nowhere.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { LOOPBACK_ICE_SETTINGS } from '../../src/webrtc/ice-config.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import type { ViewerPeer } from '../../src/webrtc/viewer-peer.js';
import { createWhepHandler, type WhepEndpoint } from '../../src/webrtc/whep.js';
import { silentLogger } from '../../src/util/logger.js';
import { cleanupAll, registerCleanup } from '../helpers/processes.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { EVERYONE, registryOf } from './harness.js';
import { WeriftReceiver } from './werift-client.js';

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

  private constructor(
    readonly inside: Socket,
    private outside: Socket,
  ) {
    inside.on('message', (data, from) => {
      this.viewer = from;
      if (this.server) this.outside.send(data, this.server[1], this.server[0]);
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

/** The ports of the offer's (or answer's) UDP candidates on 127.0.0.1 (each once: bundled sections repeat them). */
function loopbackCandidatePorts(sdp: string): number[] {
  return sdp
    .split(/\r?\n/)
    .filter((l) => l.startsWith('a=candidate:'))
    .map((l) => l.split(' '))
    .filter((f) => f[2]?.toLowerCase() === 'udp' && f[4] === '127.0.0.1')
    .map((f) => Number(f[5]))
    .filter((port, i, all) => all.indexOf(port) === i);
}

/** Candidates on 127.0.0.1 UDP moved to `port`; every other candidate removed. */
function candidatesAt(sdp: string, port: number): string {
  return sdp
    .split(/\r?\n/)
    .filter((l) => {
      if (!l.startsWith('a=candidate:')) return true;
      const f = l.split(' ');
      return f[2]?.toLowerCase() === 'udp' && f[4] === '127.0.0.1';
    })
    .map((l) => {
      if (!l.startsWith('a=candidate:')) return l;
      const f = l.split(' ');
      f[5] = String(port);
      return f.join(' ');
    })
    .join('\r\n');
}

describe('a settled viewer behind a NAT that changes its port', () => {
  let source: SyntheticSource;
  let whep: WhepEndpoint;
  let server: Server;
  let base: string;
  const viewers: ViewerPeer[] = [];

  before(async () => {
    source = await SyntheticSource.create({ id: 'cam1', gop: 25 });
    whep = createWhepHandler({
      registry: registryOf([source]),
      limits: new ViewerLimiter({ maxViewersPerCamera: 10 }),
      ice: LOOPBACK_ICE_SETTINGS,
      onViewer: (viewer) => viewers.push(viewer),
    });
    server = createServer((req: IncomingMessage, res) => {
      void (async () => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const answer = req.method === 'POST' && req.url === '/whep/cam1'
          ? await whep.handlePost('cam1', Buffer.concat(chunks).toString('utf8'), { principal: EVERYONE, remoteAddress: '127.0.0.1', request: req, log: silentLogger })
          : { status: 404 };
        res.writeHead(answer.status, answer.headers ?? {}).end(answer.body);
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    registerCleanup(async () => {
      await whep.closeAll();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
  });
  after(() => source.close());

  test('keeps its picture: the server follows its SRTCP to the new port within a receiver report or two', async () => {
    const nat = await RebindingNat.open();
    const receiver = new WeriftReceiver({ keepVideo: false });
    try {
      const offer = await receiver.offer();
      assert.equal(loopbackCandidatePorts(offer).length, 1, offer);
      const res = await fetch(`${base}/whep/cam1`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: candidatesAt(offer, nat.outsidePort) });
      assert.equal(res.status, 201);
      const answer = await res.text();
      const [serverPort] = loopbackCandidatePorts(answer);
      assert.ok(serverPort, answer);
      nat.server = ['127.0.0.1', serverPort];
      await receiver.applyAnswer(candidatesAt(answer, nat.insidePort));
      await receiver.waitFor(() => receiver.accessUnits >= 10, 10_000, 'video through the NAT');
      const viewer = viewers.at(-1)!;
      const deadline = performance.now() + 10_000;
      while (!viewer.stats().weriftReleased) {
        assert.ok(performance.now() < deadline, `not settled: ${JSON.stringify(viewer.stats())}`);
        await sleep(20);
      }
      const oldPort = nat.outsidePort;
      await nat.rebind();
      assert.notEqual(nat.outsidePort, oldPort);
      const units = receiver.accessUnits;
      const rebound = performance.now();
      await receiver.waitFor(() => receiver.accessUnits > units, 8_000, 'a frame after the NAT moved the viewer');
      const outage = performance.now() - rebound;
      await receiver.waitFor(() => receiver.accessUnits >= units + 25, 8_000, 'a second of video after the move');
      const stats = viewer.stats();
      assert.equal(stats.pathChanges, 1, JSON.stringify(stats));
      assert.equal(stats.rtcpRefused, 0);
      assert.equal(viewer.phase, 'connected');
      assert.equal(receiver.damaged <= 1, true, `at most the access unit the move cut (I: IDR, p: other, x: damaged): ${receiver.auKinds}`);
      // A receiver report or two: werift's come every second or so.
      assert.ok(outage < 4_000, `the picture stopped for ${outage.toFixed(0)} ms`);
    } finally {
      await receiver.close();
      nat.close();
    }
  });
});
