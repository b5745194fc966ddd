import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { tcpReachable } from '../../src/util/tcp-probe.js';

test('tcpReachable: true for a listening port (which sees no byte), false once it is closed', async () => {
  const received: Buffer[] = [];
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('data', (data: Buffer) => received.push(data));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  assert.equal(await tcpReachable('127.0.0.1', port, 1000), true);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(sockets.length, 1, 'one connection');
  assert.deepEqual(received, [], 'no request was sent');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.equal(await tcpReachable('127.0.0.1', port, 1000), false);
});

test('tcpReachable: an aborted probe resolves false at once', async () => {
  const controller = new AbortController();
  controller.abort();
  assert.equal(await tcpReachable('127.0.0.1', 9, 1000, controller.signal), false);
});
