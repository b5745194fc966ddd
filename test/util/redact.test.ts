import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redactText, redactUrl } from '../../src/util/redact.js';
import { redactingLogger, type Logger } from '../../src/util/logger.js';

test('redactUrl masks the password and keeps the user, host and path', () => {
  assert.equal(redactUrl('rtsp://admin:secret@192.168.0.20:554/live1.sdp'), 'rtsp://admin:***@192.168.0.20:554/live1.sdp');
  assert.equal(redactUrl('rtsp://192.168.0.20/live1.sdp'), 'rtsp://192.168.0.20/live1.sdp');
  assert.equal(redactUrl('see rtsp://a:b@h/x and http://c:d@e/y'), 'see rtsp://a:***@h/x and http://c:***@e/y');
});

test('a raw @ in the password is masked whole', () => {
  const out = redactUrl('rtsp://u:p@ss@host/live');
  assert.equal(out, 'rtsp://u:***@host/live');
  assert.ok(!out.includes('ss@'));
});

test('an @ in the path or query is not taken for user info', () => {
  assert.equal(redactUrl('rtsp://host/path?mail=a@b'), 'rtsp://host/path?mail=a@b');
});

test('redactText removes literal and percent-encoded secrets; the redacting logger cleans messages, parameters and errors', () => {
  assert.equal(redactText('pw is p@ss! or p%40ss!', ['p@ss!']), 'pw is *** or ***');
  const lines: string[] = [];
  const sink: Logger = { info: (m, ...p) => lines.push([m, ...p].join(' ')), warn: () => undefined, error: (m, ...p) => lines.push([m, ...p].join(' ')), debug: () => undefined };
  const log = redactingLogger(sink, new Set(['hunter2']));
  log.info('password hunter2', 'again hunter2');
  log.error('failed', new Error('auth with hunter2 refused'));
  assert.ok(lines.every((l) => !l.includes('hunter2')), lines.join('\n'));
  assert.equal(lines.length, 2);
});
