/**
 * DtlsAlertReader's edges: which records count as the viewer's own alert. The records are sealed
 * here as RFC 5246/5288 describe (AES-GCM, implicit salt + explicit nonce, the record header as
 * additional data); that a real browser's close_notify opens is viewer-browser.test.ts's proof.
 */
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { DtlsAlertReader, dtlsAlertReaderFromWerift } from '../../src/webrtc/dtls-alert.js';

const KEY = randomBytes(16);
const SALT = randomBytes(4);

function sealedRecord(options: { type?: number; epoch?: number; seq?: number; key?: Buffer; plain?: Buffer } = {}): Buffer {
  const type = options.type ?? 21;
  const plain = options.plain ?? Buffer.from([1, 0]); // warning, close_notify
  const header = Buffer.alloc(13);
  header[0] = type;
  header.writeUInt16BE(0xfefd, 1);
  header.writeUInt16BE(options.epoch ?? 1, 3);
  header.writeUIntBE(options.seq ?? 7, 5, 6);
  const explicit = randomBytes(8);
  const aad = Buffer.alloc(13);
  header.copy(aad, 0, 3, 11);
  aad[8] = type;
  header.copy(aad, 9, 1, 3);
  aad.writeUInt16BE(plain.length, 11);
  const cipher = createCipheriv('aes-128-gcm', options.key ?? KEY, Buffer.concat([SALT, explicit]), { authTagLength: 16 });
  cipher.setAAD(aad, { plaintextLength: plain.length });
  const body = Buffer.concat([explicit, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  header.writeUInt16BE(body.length, 11);
  return Buffer.concat([header, body]);
}

const reader = new DtlsAlertReader({ algorithm: 'aes-128-gcm', writeKey: KEY, implicitNonce: Buffer.concat([SALT, Buffer.alloc(8)]) });

test("the viewer's sealed alert is one; the same sealed under another key, or altered, is not", () => {
  assert.equal(reader.isAuthenticAlert(sealedRecord()), true);
  assert.equal(reader.isAuthenticAlert(sealedRecord({ plain: Buffer.from([2, 40]) })), true, 'a fatal alert ends it too');
  assert.equal(reader.isAuthenticAlert(sealedRecord({ key: randomBytes(16) })), false);
  for (const at of [0 + 13 + 2, 13 + 8, -1]) {
    const altered = sealedRecord();
    const i = at < 0 ? altered.length + at : at;
    altered[i]! ^= 1;
    assert.equal(reader.isAuthenticAlert(altered), false, `byte ${i} flipped`);
  }
  const wrongSeq = sealedRecord();
  wrongSeq[10]! ^= 1; // the sequence number is in the additional data
  assert.equal(reader.isAuthenticAlert(wrongSeq), false);
});

test('plain-text and non-alert records, broken framing and short datagrams are not alerts', () => {
  assert.equal(reader.isAuthenticAlert(sealedRecord({ epoch: 0 })), false, 'epoch 0 (before the handshake ended)');
  assert.equal(reader.isAuthenticAlert(sealedRecord({ type: 22 })), false, 'a handshake record');
  assert.equal(reader.isAuthenticAlert(sealedRecord({ type: 23 })), false, 'application data');
  assert.equal(reader.isAuthenticAlert(Buffer.from('15fefd000100000000000700020100', 'hex')), false, 'a plain 2-byte alert');
  const cut = sealedRecord();
  assert.equal(reader.isAuthenticAlert(cut.subarray(0, cut.length - 1)), false, 'one byte short');
  assert.equal(reader.isAuthenticAlert(Buffer.alloc(0)), false);
  assert.equal(reader.isAuthenticAlert(Buffer.alloc(12, 21)), false);
});

test('an alert after another record in the same datagram is found', () => {
  assert.equal(reader.isAuthenticAlert(Buffer.concat([sealedRecord({ type: 23, plain: Buffer.from('hello') }), sealedRecord()])), true);
  assert.equal(reader.isAuthenticAlert(Buffer.concat([sealedRecord({ type: 23 }), sealedRecord({ key: randomBytes(16) })])), false);
});

test("werift's cipher: the key the viewer writes with is the one read, and an unknown shape reads nothing", () => {
  const other = randomBytes(16);
  const cipher = { blockAlgorithm: 'aes-128-gcm', clientWriteKey: KEY, clientNonce: Buffer.concat([SALT, Buffer.alloc(8)]), serverWriteKey: other, serverNonce: Buffer.alloc(12) };
  // We are the DTLS server (2): the viewer is the client and seals with the client's key.
  assert.equal(dtlsAlertReaderFromWerift({ dtls: { sessionType: 2, cipher: { cipher } } })?.isAuthenticAlert(sealedRecord()), true);
  // We are the client (1): the viewer seals with the server's key, so this record is not its.
  assert.equal(dtlsAlertReaderFromWerift({ dtls: { sessionType: 1, cipher: { cipher } } })?.isAuthenticAlert(sealedRecord()), false);
  assert.equal(dtlsAlertReaderFromWerift(undefined), undefined);
  assert.equal(dtlsAlertReaderFromWerift({ dtls: {} }), undefined);
  assert.equal(dtlsAlertReaderFromWerift({ dtls: { sessionType: 2, cipher: { cipher: { ...cipher, blockAlgorithm: 'chacha20-poly1305' } } } }), undefined);
  assert.equal(dtlsAlertReaderFromWerift({ dtls: { sessionType: 2, cipher: { cipher: { ...cipher, clientWriteKey: 'not a buffer' } } } }), undefined);
});
