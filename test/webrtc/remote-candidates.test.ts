// Issue 12, item 4: a viewer's ICE candidates must not make the server send STUN wherever the
// viewer likes. A UDP listener on loopback stands for a local service: candidates naming it, sent
// in a WHEP offer and trickled by PATCH by a viewer that connects from elsewhere, reach it with no
// packet; the same offer from a viewer on this machine does reach it (so the trap works), and no
// more than MAX_REMOTE_CANDIDATES distinct candidates are ever checked.
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/util/logger.js';
import { LOOPBACK_ICE_SETTINGS } from '../../src/webrtc/ice-config.js';
import { MAX_REMOTE_CANDIDATES, OWN_ADDRESSES_MAX_AGE_MS, RemoteCandidateFilter, judgeCandidate, ownAddresses } from '../../src/webrtc/remote-candidates.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import { createWhepHandler, type WhepEndpoint } from '../../src/webrtc/whep.js';
import type { CallerContext } from '../../src/web/types.js';
import { cleanupAll } from '../helpers/processes.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { EVERYONE, registryOf } from './harness.js';

after(cleanupAll);

const here = dirname(fileURLToPath(import.meta.url));
const BARE_OFFER = readFileSync(join(here, 'fixtures', 'chromium-recvonly-offer.sdp'), 'utf8').replace(/^a=candidate:[^\r\n]*\r?\n/gm, '');
// Stands for a viewer on the LAN (TEST-NET-1: only ever a label here, nothing is sent to it).
const ELSEWHERE = '192.0.2.10';

function caller(remoteAddress: string): CallerContext {
  return { principal: EVERYONE, remoteAddress, request: new IncomingMessage(new Socket()), log: silentLogger };
}

/** UDP listeners on 127.0.0.1 that count STUN binding requests (type 0x0001, magic cookie). */
class Trap {
  readonly hits = new Map<number, number>();
  private readonly sockets: UdpSocket[] = [];
  private waiters: Array<() => void> = [];

  static async open(count: number): Promise<Trap> {
    const trap = new Trap();
    for (let i = 0; i < count; i++) {
      const socket = createSocket('udp4');
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
      const port = socket.address().port;
      socket.on('message', (packet: Buffer) => {
        if (packet.length >= 20 && packet.readUInt16BE(0) === 0x0001 && packet.readUInt32BE(4) === 0x2112a442) {
          trap.hits.set(port, (trap.hits.get(port) ?? 0) + 1);
          for (const w of trap.waiters.splice(0)) w();
        }
      });
      trap.sockets.push(socket);
    }
    return trap;
  }

  get ports(): number[] {
    return this.sockets.map((s) => s.address().port);
  }

  get total(): number {
    return [...this.hits.values()].reduce((a, b) => a + b, 0);
  }

  /** Resolves at the first STUN request (or rejects after `timeoutMs`). */
  firstHit(timeoutMs: number): Promise<void> {
    if (this.total > 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no STUN request arrived')), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  close(): void {
    for (const s of this.sockets) s.close();
  }
}

function offerWith(ports: number[], address = '127.0.0.1'): string {
  const candidates = ports.map((port, i) => `a=candidate:${1000 + i} 1 udp 2122194687 ${address} ${port} typ host`).join('\r\n');
  // After the first section's ice-ufrag line, like a browser's offer.
  return BARE_OFFER.replace(/(a=ice-ufrag:[^\r\n]*\r?\n)/, `$1${candidates}\r\n`);
}

describe('remote ICE candidates', () => {
  let source: SyntheticSource;
  let whep: WhepEndpoint;

  before(async () => {
    source = await SyntheticSource.create({ id: 'cam1', gop: 50 });
    whep = createWhepHandler({ registry: registryOf([source]), limits: new ViewerLimiter({ maxViewersPerCamera: 10 }), ice: LOOPBACK_ICE_SETTINGS });
  });
  after(async () => {
    await whep.closeAll();
    source.close();
  });

  it('are judged: no loopback, link-local, multicast, unspecified or own address, unless it is the viewer\'s own', () => {
    const line = (address: string) => `candidate:1 1 udp 2122194687 ${address} 5000 typ host`;
    const own = new Set(['192.168.1.5']);
    for (const address of ['127.0.0.1', '127.0.0.2', '::1', '169.254.1.1', 'fe80::1', '224.0.0.251', 'ff02::fb', '0.0.0.0', '::', '255.255.255.255', '192.168.1.5', '::ffff:127.0.0.1', 'evil.example']) {
      assert.equal(judgeCandidate(line(address), ELSEWHERE, own).ok, false, address);
    }
    for (const address of ['192.168.1.20', '10.0.0.7', '2001:db8::5', '198.51.100.4', 'd3b1c1a0-1b2c-4d5e-8f90-123456789abc.local']) {
      assert.equal(judgeCandidate(line(address), ELSEWHERE, own).ok, true, address);
    }
    assert.equal(judgeCandidate(line('127.0.0.1'), '127.0.0.1', own).ok, true, 'a viewer on this machine names its own address');
    assert.equal(judgeCandidate(line('192.168.1.5'), '127.0.0.1', own).ok, true, 'a viewer on this machine offers its LAN address (Firefox)');
    assert.equal(judgeCandidate(line('169.254.1.1'), '127.0.0.1', own).ok, false);
    assert.equal(judgeCandidate(line('192.168.1.5'), '::ffff:192.168.1.5', own).ok, true);
    assert.equal(judgeCandidate(line('127.0.0.1'), undefined, own).ok, false, 'unknown viewer address: nothing special passes');
    const filter = new RemoteCandidateFilter(ELSEWHERE);
    const verdicts = Array.from({ length: 20 }, (_v, i) => filter.admit(`candidate:${i} 1 udp 1 10.0.0.${i + 1} 5000 typ host`).ok);
    assert.equal(verdicts.filter(Boolean).length, MAX_REMOTE_CANDIDATES);
    assert.equal(filter.admit('candidate:0 1 udp 1 10.0.0.1 5000 typ host').ok, true, 'a repeat of an accepted one is not a new one');
  });

  it('the server\'s own addresses are listed once for a burst of joins and listed again after a second (interfaces come and go)', () => {
    const listed = new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((info) => info.address)));
    const start = 1e9; // far from any reading a test before made
    const first = ownAddresses(start);
    assert.ok(first.has('127.0.0.1') && [...listed].every((address) => first.has(address.toLowerCase())), [...first].join(' '));
    assert.equal(ownAddresses(start + OWN_ADDRESSES_MAX_AGE_MS - 1), first, 'the same reading within the window');
    const later = ownAddresses(start + OWN_ADDRESSES_MAX_AGE_MS);
    assert.notEqual(later, first, 'listed again once the window is over');
    assert.deepEqual([...later].sort(), [...first].sort());
    assert.notEqual(ownAddresses(start), later, 'a clock that went back reads them again');
  });

  it('a WHEP offer and PATCH naming a loopback port send it no STUN; a viewer on this machine gets at most the cap checked', async () => {
    const attacked = await Trap.open(20);
    const control = await Trap.open(20);
    try {
      // The attack: 20 loopback candidates from a viewer that connects from elsewhere, then trickled.
      const attack = await whep.handlePost('cam1', offerWith(attacked.ports), caller(ELSEWHERE));
      assert.equal(attack.status, 201, String(attack.body));
      const location = attack.headers?.['Location'] ?? '';
      const sessionId = location.split('/').pop()!;
      const fragment = `a=mid:0\r\n${attacked.ports.map((p, i) => `a=candidate:${2000 + i} 1 udp 2122194687 127.0.0.1 ${p} typ host`).join('\r\n')}\r\n`;
      assert.equal((await whep.handlePatch('cam1', sessionId, fragment, caller(ELSEWHERE))).status, 204);

      // The control: the same from a viewer on this machine reaches its listeners, capped.
      const allowed = await whep.handlePost('cam1', offerWith(control.ports), caller('127.0.0.1'));
      assert.equal(allowed.status, 201);
      await control.firstHit(10_000);
      // Let werift's checks (retransmitted every few hundred ms) run on: wait for more control hits.
      const seen = control.total;
      await new Promise<void>((resolve, reject) => {
        const deadline = Date.now() + 15_000;
        const check = setInterval(() => {
          if (control.total >= seen + 10) {
            clearInterval(check);
            resolve();
          } else if (Date.now() > deadline) {
            clearInterval(check);
            reject(new Error(`werift stopped checking the control candidates (${control.total} requests)`));
          }
        }, 50);
      });
      assert.equal(attacked.total, 0, `STUN requests reached the attacked listeners: ${JSON.stringify([...attacked.hits])}`);
      assert.ok(control.hits.size <= MAX_REMOTE_CANDIDATES, `checked ${control.hits.size} distinct candidates`);
    } finally {
      attacked.close();
      control.close();
    }
  });
});
