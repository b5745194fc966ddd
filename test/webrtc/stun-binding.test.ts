/**
 * STUN Binding requests and answers against werift's STUN (an independent implementation): what
 * werift asks, we read; what we answer, werift verifies with the password (MESSAGE-INTEGRITY and
 * FINGERPRINT) and reads the mapped address from. Anything we cannot vouch for is not read.
 */
import assert from 'node:assert/strict';
import { createSecretKey, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { classes, Message, methods, parseMessage } from 'werift';
import { hasValidIntegrity, readBindingRequest, readBindingSuccess, writeBindingRequest, writeBindingSuccess } from '../../src/webrtc/stun-binding.js';

const PASSWORD = 'serverpassword0123456789';
const key = createSecretKey(Buffer.from(PASSWORD));

function request(options: { useCandidate?: boolean; role?: 'ICE-CONTROLLING' | 'ICE-CONTROLLED'; extra?: [string, unknown]; password?: string } = {}): Buffer {
  const message = new Message(methods.BINDING, classes.REQUEST);
  message.setAttribute('USERNAME', 'srv1:view');
  message.setAttribute('PRIORITY', 1853824767);
  if (options.role) message.setAttribute(options.role, 0x1234n);
  if (options.useCandidate) message.setAttribute('USE-CANDIDATE', null);
  if (options.extra) message.setAttribute(options.extra[0] as 'SOFTWARE', options.extra[1] as string);
  return message.addMessageIntegrity(Buffer.from(options.password ?? PASSWORD)).addFingerprint().bytes;
}

test("a consent check as werift sends it is read, with its integrity checked against our password", () => {
  const data = request({ role: 'ICE-CONTROLLING' });
  const read = readBindingRequest(data)!;
  assert.ok(read);
  assert.equal(read.username.toString(), 'srv1:view');
  assert.equal(read.senderRole, 'controlling');
  assert.equal(read.useCandidate, false);
  assert.deepEqual(read.transactionId, data.subarray(8, 20));
  assert.equal(hasValidIntegrity(data, read, key), true);
  assert.equal(hasValidIntegrity(data, read, createSecretKey(Buffer.from('another-password-entirely'))), false);
  const signedElsewhere = request({ password: 'not-our-password-at-all' });
  assert.equal(hasValidIntegrity(signedElsewhere, readBindingRequest(signedElsewhere)!, key), false);
  const nominating = readBindingRequest(request({ useCandidate: true, role: 'ICE-CONTROLLED' }))!;
  assert.equal(nominating.useCandidate, true);
  assert.equal(nominating.senderRole, 'controlled');
});

test('what is not a plain, intact Binding request is left alone (undefined), never thrown', () => {
  const data = request();
  const flipped = Buffer.from(data);
  flipped[30]! ^= 1;
  assert.equal(readBindingRequest(flipped), undefined, 'the FINGERPRINT no longer matches');
  assert.equal(readBindingRequest(data.subarray(0, data.length - 8)), undefined, 'no FINGERPRINT');
  const response = Buffer.from(data);
  response.writeUInt16BE(0x0101, 0);
  assert.equal(readBindingRequest(response), undefined, 'not a request');
  assert.equal(readBindingRequest(request({ extra: ['SOFTWARE', 'x'] })) !== undefined, true, 'SOFTWARE is comprehension-optional');
  const unknownRequired = new Message(methods.BINDING, classes.REQUEST);
  unknownRequired.setAttribute('USERNAME', 'a:b');
  unknownRequired.setAttribute('CHANNEL-NUMBER', 5);
  assert.equal(readBindingRequest(unknownRequired.addMessageIntegrity(Buffer.from(PASSWORD)).addFingerprint().bytes), undefined, 'an unknown comprehension-required attribute');
  const noIntegrity = new Message(methods.BINDING, classes.REQUEST);
  noIntegrity.setAttribute('USERNAME', 'a:b');
  assert.equal(readBindingRequest(noIntegrity.addFingerprint().bytes), undefined, 'no MESSAGE-INTEGRITY');
  for (let i = 0; i < 5000; i++) {
    const junk = randomBytes(20 + (i % 100));
    junk[0] = 0;
    junk[1] = 1;
    junk.writeUInt32BE(0x2112a442, 4);
    junk.writeUInt16BE(junk.length - 20, 2);
    readBindingRequest(junk);
  }
});

for (const [host, port] of [['192.168.1.20', 51234], ['fe80::1ff:fe23:4567:890a', 40000], ['::ffff:10.0.0.7', 9], ['2001:db8::1', 65535]] as const) {
  test(`the answer verifies in werift and maps back to ${host}:${port}`, () => {
    const transactionId = randomBytes(12);
    const answer = writeBindingSuccess(transactionId, host, port, key);
    const parsed = parseMessage(answer, Buffer.from(PASSWORD));
    assert.ok(parsed, 'werift accepts the MESSAGE-INTEGRITY and FINGERPRINT');
    assert.equal(parsed.messageMethod, methods.BINDING);
    assert.equal(parsed.messageClass, classes.RESPONSE);
    assert.deepEqual(parsed.transactionId, transactionId);
    const [mappedHost, mappedPort] = parsed.getAttributeValue('XOR-MAPPED-ADDRESS') as [string, number];
    assert.equal(mappedPort, port);
    const canonical = (text: string): string => (text.includes(':') ? new URL(`http://[${text}]`).hostname : text);
    assert.equal(canonical(mappedHost), canonical(host));
    assert.equal(parseMessage(answer, Buffer.from('wrong-password-for-this')), undefined, 'and only with our password');
  });
}

test('our own consent check reads in werift as a signed Binding request with our role, and werift\'s answer to it reads back here', () => {
  const viewerKey = createSecretKey(Buffer.from('viewerpassword0123456789'));
  const transactionId = randomBytes(12);
  const data = writeBindingRequest(transactionId, 'view:srv1', viewerKey, false, 0x0102030405060708n, 1862270975);
  const parsed = parseMessage(data, Buffer.from('viewerpassword0123456789'));
  assert.ok(parsed, 'werift verifies its MESSAGE-INTEGRITY and FINGERPRINT with the viewer\'s password');
  assert.equal(parsed.messageMethod, methods.BINDING);
  assert.equal(parsed.messageClass, classes.REQUEST);
  assert.deepEqual(Buffer.from(parsed.transactionId), transactionId);
  assert.equal(parsed.getAttributeValue('USERNAME'), 'view:srv1');
  assert.equal(parsed.getAttributeValue('PRIORITY'), 1862270975);
  assert.equal(parsed.getAttributeValue('ICE-CONTROLLED'), 0x0102030405060708n);
  assert.equal(parsed.getAttributeValue('ICE-CONTROLLING'), undefined);
  assert.equal(parseMessage(data, Buffer.from('another password')), undefined, 'signed with that password alone');

  // The viewer's answer, as werift builds one.
  const answer = new Message(methods.BINDING, classes.RESPONSE, transactionId);
  answer.setAttribute('XOR-MAPPED-ADDRESS', ['127.0.0.1', 40000]);
  const bytes = answer.addMessageIntegrity(Buffer.from('viewerpassword0123456789')).addFingerprint().bytes;
  assert.deepEqual(readBindingSuccess(bytes, viewerKey), transactionId);
  assert.equal(readBindingSuccess(bytes, key), undefined, 'an answer signed with another password');
  const tampered = Buffer.from(bytes);
  tampered[30] ^= 1;
  assert.equal(readBindingSuccess(tampered, viewerKey), undefined, 'a changed byte');
  assert.equal(readBindingSuccess(data, viewerKey), undefined, 'a request is no answer');
  assert.equal(readBindingSuccess(bytes.subarray(0, 30), viewerKey), undefined, 'a cut answer');
  const unsigned = new Message(methods.BINDING, classes.RESPONSE, transactionId).addFingerprint().bytes;
  assert.equal(readBindingSuccess(unsigned, viewerKey), undefined, 'an answer without MESSAGE-INTEGRITY');
});
