// ConnectionGuard: per-address caps (IPv4, or an IPv6 /64), the global cap, and the slots kept for
// addresses that signed in recently; on fake sockets and a manual clock.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';

import { silentLogger } from '../../src/util/logger.js';
import { ConnectionGuard, type ConnectionLimits } from '../../src/web/connection-guard.js';

class FakeSocket extends EventEmitter {
  destroyed = false;
  constructor(readonly remoteAddress: string | undefined) {
    super();
  }
  destroy(): void {
    this.destroyed = true;
  }
  close(): void {
    this.emit('close');
  }
}

function guard(limits: Partial<ConnectionLimits> = {}, exempt: (address: string) => boolean = () => false) {
  let now = 0;
  const g = new ConnectionGuard({ maxConnections: 100, maxConnectionsPerAddress: 3, reservedForKnown: 0, ...limits }, exempt, silentLogger, () => now);
  const connect = (address: string | undefined): { socket: FakeSocket; admitted: boolean } => {
    const socket = new FakeSocket(address);
    return { socket, admitted: g.admit(socket as unknown as Socket) };
  };
  return { g, connect, advance: (ms: number) => { now += ms; } };
}

describe('ConnectionGuard', () => {
  it('caps connections per address and frees a slot when one closes', () => {
    const { g, connect } = guard();
    const open = [connect('192.168.1.5'), connect('192.168.1.5'), connect('::ffff:192.168.1.5')];
    assert.ok(open.every((c) => c.admitted), 'an IPv4-mapped address is the same client');
    const fourth = connect('192.168.1.5');
    assert.equal(fourth.admitted, false);
    assert.equal(fourth.socket.destroyed, true);
    assert.equal(connect('192.168.1.6').admitted, true, 'other addresses are not affected');
    assert.equal(g.open, 4);
    open[0]!.socket.close();
    assert.equal(g.open, 3);
    assert.equal(connect('192.168.1.5').admitted, true);
  });

  it('counts an IPv6 client by its /64', () => {
    const { connect } = guard({ maxConnectionsPerAddress: 2 });
    assert.equal(connect('2001:db8:1:2::a').admitted, true);
    assert.equal(connect('2001:db8:1:2:ffff::b').admitted, true);
    assert.equal(connect('2001:db8:1:2::c').admitted, false, 'same /64');
    assert.equal(connect('2001:db8:1:3::a').admitted, true, 'another /64');
  });

  it('does not cap exempt addresses (trusted proxies) per address, but still globally', () => {
    const { connect } = guard({ maxConnections: 5, maxConnectionsPerAddress: 1 }, (a) => a === '10.0.0.1');
    for (let i = 0; i < 5; i++) assert.equal(connect('10.0.0.1').admitted, true);
    assert.equal(connect('10.0.0.1').admitted, false, 'the global cap holds for everyone');
  });

  it('keeps the last reserved slots for addresses that made an authorised request', () => {
    const { g, connect } = guard({ maxConnections: 4, maxConnectionsPerAddress: 10, reservedForKnown: 2 });
    g.markKnown('::ffff:192.168.1.20');
    assert.equal(connect('203.0.113.1').admitted, true);
    assert.equal(connect('203.0.113.2').admitted, true);
    assert.equal(connect('203.0.113.3').admitted, false, 'an unknown address may not take a reserved slot');
    assert.equal(connect('192.168.1.20').admitted, true);
    assert.equal(connect('192.168.1.20').admitted, true);
    assert.equal(connect('192.168.1.20').admitted, false, 'the global cap holds for known addresses too');
  });

  it('forgets a known address a day after its last authorised request', () => {
    const { g, connect, advance } = guard({ maxConnections: 2, maxConnectionsPerAddress: 10, reservedForKnown: 2 });
    g.markKnown('192.168.1.20');
    advance(24 * 60 * 60_000);
    const inTime = connect('192.168.1.20');
    assert.equal(inTime.admitted, true, 'exactly a day later it still counts');
    inTime.socket.close();
    advance(1);
    assert.equal(connect('192.168.1.20').admitted, false);
    g.markKnown('192.168.1.20');
    assert.equal(connect('192.168.1.20').admitted, true, 'a new authorised request makes it known again');
  });

  it('keeps at most 4096 known addresses, dropping the least recently seen', () => {
    const { g, connect } = guard({ maxConnections: 1, maxConnectionsPerAddress: 10, reservedForKnown: 1 });
    g.markKnown('10.9.9.9');
    for (let i = 0; i < 4095; i++) g.markKnown(`10.1.${i >> 8}.${i & 0xff}`);
    g.markKnown('10.9.9.9'); // seen again: now the newest
    g.markKnown('10.2.0.0'); // one over the bound: the oldest (10.1.0.0) goes
    const kept = connect('10.9.9.9');
    assert.equal(kept.admitted, true);
    kept.socket.close();
    assert.equal(connect('10.1.0.0').admitted, false);
  });

  it('a socket without a remote address is counted as one "unknown" client', () => {
    const { connect } = guard({ maxConnectionsPerAddress: 1 });
    assert.equal(connect(undefined).admitted, true);
    assert.equal(connect(undefined).admitted, false);
  });
});
