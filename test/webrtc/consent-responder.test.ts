/**
 * ConsentResponder's choices, over real loopback UDP sockets: a plain check on the selected pair
 * is answered here and never reaches werift; anything that could change ICE state, or comes from
 * elsewhere, is handed on untouched. (Real peers answering through it: viewer-werift.test.ts and
 * viewer-browser.test.ts.)
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, test } from 'node:test';
import { classes, Message, methods, parseMessage } from 'werift';
import { ConsentResponder, type IceAgentLike } from '../../src/webrtc/consent-responder.js';

const LOCAL = { username: 'srv1', password: 'server-password-0123456789' };
const REMOTE_USERNAME = 'view';

let serverSocket: Socket;
let viewerSocket: Socket;
let viewerAddr: [string, number];

before(async () => {
  serverSocket = createSocket('udp4');
  viewerSocket = createSocket('udp4');
  serverSocket.bind(0, '127.0.0.1');
  viewerSocket.bind(0, '127.0.0.1');
  await Promise.all([once(serverSocket, 'listening'), once(viewerSocket, 'listening')]);
  viewerAddr = ['127.0.0.1', viewerSocket.address().port];
});
after(() => {
  serverSocket.close();
  viewerSocket.close();
});

function check(options: { username?: string; useCandidate?: boolean; role?: 'ICE-CONTROLLING' | 'ICE-CONTROLLED' } = {}): Buffer {
  const message = new Message(methods.BINDING, classes.REQUEST);
  message.setAttribute('USERNAME', options.username ?? `${LOCAL.username}:${REMOTE_USERNAME}`);
  message.setAttribute('PRIORITY', 1);
  message.setAttribute(options.role ?? 'ICE-CONTROLLED', 7n);
  if (options.useCandidate) message.setAttribute('USE-CANDIDATE', null);
  return message.addMessageIntegrity(Buffer.from(LOCAL.password)).addFingerprint().bytes;
}

const REMOTE_PASSWORD = 'viewer-password-0123456789';

function setUp(): { responder: ConsentResponder; handedOn: Buffer[]; transport: { onData: (data: Buffer, addr: [string, number]) => void; socket: Socket } } {
  const handedOn: Buffer[] = [];
  const protocol = { transport: { onData: (data: Buffer) => void handedOn.push(data), socket: serverSocket } };
  const agent: IceAgentLike = {
    nominated: { protocol, remoteAddr: viewerAddr },
    localUsername: LOCAL.username,
    localPassword: LOCAL.password,
    remoteUsername: REMOTE_USERNAME,
    remotePassword: REMOTE_PASSWORD,
    iceControlling: true,
  };
  return { responder: new ConsentResponder(agent), handedOn, transport: protocol.transport };
}

test('a plain check from the selected pair is answered here, and werift verifies the answer', async () => {
  const { responder, handedOn, transport } = setUp();
  const request = check();
  const answered = once(viewerSocket, 'message') as Promise<[Buffer]>;
  transport.onData(request, viewerAddr);
  const [answer] = await answered;
  const parsed = parseMessage(answer, Buffer.from(LOCAL.password));
  assert.ok(parsed, 'MESSAGE-INTEGRITY with our password, and FINGERPRINT');
  assert.deepEqual(parsed.transactionId, request.subarray(8, 20));
  assert.deepEqual(parsed.getAttributeValue('XOR-MAPPED-ADDRESS'), viewerAddr);
  assert.equal(responder.answered, 1);
  assert.equal(handedOn.length, 0, 'werift never saw it');
  responder.close();
  transport.onData(check(), viewerAddr);
  assert.equal(handedOn.length, 1, 'after close, werift gets everything again');
  assert.equal(responder.answered, 1);
});

test('what could change ICE state, or is not from the selected pair, goes to werift untouched', () => {
  const { responder, handedOn, transport } = setUp();
  const cases: Array<[string, Buffer, [string, number]]> = [
    ['nomination (USE-CANDIDATE)', check({ useCandidate: true }), viewerAddr],
    ['a role conflict (both controlling)', check({ role: 'ICE-CONTROLLING' }), viewerAddr],
    ["an ICE restart's new username", check({ username: `other:${REMOTE_USERNAME}` }), viewerAddr],
    ['another port (a new path)', check(), ['127.0.0.1', viewerAddr[1] + 1]],
    ['another address', check(), ['127.0.0.2', viewerAddr[1]]],
    ['media', Buffer.from([0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]), viewerAddr],
    ['a truncated check', check().subarray(0, 30), viewerAddr],
  ];
  for (const [, data, addr] of cases) transport.onData(data, addr);
  assert.equal(responder.answered, 0);
  assert.equal(handedOn.length, cases.length);
  cases.forEach(([what, data], i) => assert.equal(handedOn[i], data, what));
  // Signed with another password: not ours to answer.
  const forged = new Message(methods.BINDING, classes.REQUEST);
  forged.setAttribute('USERNAME', `${LOCAL.username}:${REMOTE_USERNAME}`);
  transport.onData(forged.addMessageIntegrity(Buffer.from('guessed-password')).addFingerprint().bytes, viewerAddr);
  assert.equal(responder.answered, 0);
  assert.equal(handedOn.length, cases.length + 1);
  responder.close();
});

test('a pair that is not UDP (TCP, TURN) is left to werift entirely', () => {
  const tcpProtocol = { transport: { write: () => undefined } };
  const agent: IceAgentLike = { nominated: { protocol: tcpProtocol, remoteAddr: viewerAddr }, localUsername: 'a', localPassword: 'b', remoteUsername: 'c', iceControlling: false };
  const responder = new ConsentResponder(agent);
  assert.equal(responder.answered, 0);
  assert.deepEqual(Object.keys(tcpProtocol.transport), ['write'], 'nothing hooked');
  responder.close();
});

test('frozen (werift let go): werift gets its path back, a copy of the credentials answers on the settled socket, nomination and a new address included', async () => {
  const { responder, handedOn, transport } = setUp();
  assert.equal(responder.freeze(), true);
  transport.onData(check(), viewerAddr);
  assert.equal(handedOn.length, 1, 'freeze() hands werift its own path back');
  for (const request of [check(), check({ useCandidate: true })]) {
    const answered = once(viewerSocket, 'message') as Promise<[Buffer]>;
    assert.equal(responder.answerSettled(request, viewerAddr, serverSocket), true);
    const [answer] = await answered;
    assert.ok(parseMessage(answer, Buffer.from(LOCAL.password)), 'signed with our password');
  }
  // The viewer's NAT gave it a new port: its consent checks, with its credentials, are answered there.
  const elsewhere = createSocket('udp4');
  elsewhere.bind(0, '127.0.0.1');
  await once(elsewhere, 'listening');
  try {
    const answered = once(elsewhere, 'message') as Promise<[Buffer]>;
    assert.equal(responder.answerSettled(check(), ['127.0.0.1', elsewhere.address().port], serverSocket), true);
    const [answer] = await answered;
    assert.ok(parseMessage(answer, Buffer.from(LOCAL.password)), 'answered at the new address, signed with our password');
  } finally {
    elsewhere.close();
  }
  // Still not answered: a role conflict, another username, another password (from any address).
  const forged = new Message(methods.BINDING, classes.REQUEST);
  forged.setAttribute('USERNAME', `${LOCAL.username}:${REMOTE_USERNAME}`);
  const refused: Array<[Buffer, [string, number]]> = [
    [check({ role: 'ICE-CONTROLLING' }), viewerAddr],
    [check({ username: `other:${REMOTE_USERNAME}` }), viewerAddr],
    [forged.addMessageIntegrity(Buffer.from('guessed-password')).addFingerprint().bytes, viewerAddr],
    [forged.bytes, ['127.0.0.1', viewerAddr[1] + 1]],
  ];
  for (const [data, addr] of refused) assert.equal(responder.answerSettled(data, addr, serverSocket), false);
  assert.equal(responder.answered, 3);
  // Before freeze() nothing is answered on the settled path.
  assert.equal(setUp().responder.answerSettled(check(), viewerAddr, serverSocket), false);
});

test('frozen: our own consent check of an address, signed with the viewer\'s password; only its answer from there counts, once', async () => {
  const { responder } = setUp();
  assert.equal(responder.checkConsent(viewerAddr, serverSocket), false, 'nothing is checked before freeze()');
  assert.equal(responder.freeze(), true);
  const arrived = once(viewerSocket, 'message') as Promise<[Buffer]>;
  assert.equal(responder.checkConsent(viewerAddr, serverSocket, 1_000), true);
  const [request] = await arrived;
  const parsed = parseMessage(request, Buffer.from(REMOTE_PASSWORD));
  assert.ok(parsed, 'werift verifies it with the viewer\'s password');
  assert.equal(parsed.getAttributeValue('USERNAME'), `${REMOTE_USERNAME}:${LOCAL.username}`);
  assert.ok(parsed.getAttributeValue('ICE-CONTROLLING') !== undefined, 'our role');
  // Again within the interval: not sent.
  assert.equal(responder.checkConsent(viewerAddr, serverSocket, 1_100), false);
  const answer = (password: string, transactionId: Buffer = Buffer.from(parsed.transactionId)): Buffer => {
    const message = new Message(methods.BINDING, classes.RESPONSE, transactionId);
    message.setAttribute('XOR-MAPPED-ADDRESS', ['127.0.0.1', serverSocket.address().port]);
    return message.addMessageIntegrity(Buffer.from(password)).addFingerprint().bytes;
  };
  assert.equal(responder.readConsent(answer(LOCAL.password), viewerAddr, 1_050), false, 'signed with the wrong password');
  assert.equal(responder.readConsent(answer(REMOTE_PASSWORD, randomBytes(12)), viewerAddr, 1_050), false, 'for a check never sent');
  assert.equal(responder.readConsent(answer(REMOTE_PASSWORD), ['127.0.0.1', viewerAddr[1] + 1], 1_050), false, 'from another address');
  assert.equal(responder.readConsent(answer(REMOTE_PASSWORD), viewerAddr, 1_050), true);
  assert.equal(responder.readConsent(answer(REMOTE_PASSWORD), viewerAddr, 1_060), false, 'once');
  // A late answer (after 2 s) counts for nothing.
  assert.equal(responder.checkConsent(viewerAddr, serverSocket, 5_000), true);
  const [late] = (await once(viewerSocket, 'message')) as [Buffer];
  assert.equal(responder.readConsent(answer(REMOTE_PASSWORD, Buffer.from(late.subarray(8, 20))), viewerAddr, 7_500), false);
  // At most four checks wait at once.
  const sent = [1, 2, 3, 4, 5, 6].map((n) => responder.checkConsent(['127.0.0.1', 9 + n], serverSocket, 10_000));
  assert.deepEqual(sent, [true, true, true, true, false, false]);
});

test('frozen without the viewer\'s password (a werift without it): no check is sent, so nothing follows a new address', () => {
  const handedOn: Buffer[] = [];
  const protocol = { transport: { onData: (data: Buffer) => void handedOn.push(data), socket: serverSocket } };
  const responder = new ConsentResponder({ nominated: { protocol, remoteAddr: viewerAddr }, localUsername: 'a', localPassword: 'b', remoteUsername: 'c', iceControlling: false });
  assert.equal(responder.freeze(), true);
  assert.equal(responder.checkConsent(viewerAddr, serverSocket), false);
});
