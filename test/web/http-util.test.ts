// The routes' HTTP helpers: bounded body reading, UTF-8 decoding, media types, id checks, JSON answers.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';

import {
  applySecurityHeaders,
  decodeUtf8,
  HttpError,
  isCameraId,
  isSessionId,
  mediaType,
  readBody,
  sendError,
  sendJson,
} from '../../src/web/http-util.js';

function request(headers: Record<string, string> = {}, method = 'POST'): PassThrough & IncomingMessage {
  return Object.assign(new PassThrough(), { headers, method, complete: true }) as unknown as PassThrough & IncomingMessage;
}

function response(headersSent = false) {
  const headers = new Map<string, unknown>();
  const state = { status: 0, body: undefined as unknown, ended: false, destroyed: false };
  const res = {
    headersSent,
    set statusCode(value: number) {
      state.status = value;
    },
    setHeader(name: string, value: unknown) {
      headers.set(name.toLowerCase(), value);
    },
    end(body?: unknown) {
      state.ended = true;
      state.body = body;
    },
    destroy() {
      state.destroyed = true;
    },
  };
  return { res: res as unknown as ServerResponse, headers, state };
}

async function rejection(promise: Promise<unknown>): Promise<HttpError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof HttpError, String(error));
    return error;
  }
  assert.fail('expected a rejection');
}

describe('readBody', () => {
  it('reads a body of up to the limit, in chunks', async () => {
    const req = request();
    const body = readBody(req, 6);
    req.write('abc');
    req.end('def');
    assert.equal((await body).toString(), 'abcdef');
  });

  it('refuses a declared Content-Length over the limit before reading anything', async () => {
    const req = request({ 'content-length': '7' });
    const error = await rejection(readBody(req, 6));
    assert.equal(error.status, 413);
    assert.equal(error.code, 'too-large');
    assert.equal(req.listenerCount('data'), 0, 'never started reading');
  });

  it('cuts off a chunked body as soon as it passes the limit, and stops listening', async () => {
    const req = request();
    const body = readBody(req, 4);
    req.write('abc');
    req.write('de');
    const error = await rejection(body);
    assert.equal(error.status, 413);
    assert.equal(req.listenerCount('end'), 0);
  });

  it('a stream error or an aborted request is a 400', async () => {
    const broken = request();
    const first = readBody(broken, 10);
    broken.destroy(new Error('socket hang up'));
    const error = await rejection(first);
    assert.equal(error.status, 400);
    assert.match(error.message, /socket hang up/);

    const aborted = request();
    const second = readBody(aborted, 10);
    aborted.emit('aborted');
    assert.equal((await rejection(second)).status, 400);
  });
});

describe('small helpers', () => {
  it('decodeUtf8 refuses invalid bytes instead of mangling them', () => {
    assert.equal(decodeUtf8(Buffer.from('v=0 ✓', 'utf8')), 'v=0 ✓');
    assert.throws(() => decodeUtf8(Buffer.from([0x76, 0xff, 0xfe])), (e: unknown) => e instanceof HttpError && e.status === 400);
  });

  it('mediaType drops parameters and case', () => {
    assert.equal(mediaType(request({ 'content-type': 'Application/SDP; charset=utf-8' })), 'application/sdp');
    assert.equal(mediaType(request({})), '');
  });

  it('isCameraId accepts config slugs only; isSessionId a bounded token', () => {
    assert.equal(isCameraId('front-door'), true);
    for (const bad of ['', '../etc', 'Front', 'a b', 'http://x', 'x'.repeat(1000)]) assert.equal(isCameraId(bad), false, bad);
    assert.equal(isSessionId('abc_DEF-123'), true);
    assert.equal(isSessionId('x'.repeat(128)), true);
    for (const bad of ['', 'x'.repeat(129), 'a/b', 'a.b']) assert.equal(isSessionId(bad), false, bad);
  });

  it('applySecurityHeaders sets the CSP without inline script and the no-frame, no-sniff headers', () => {
    const { res, headers } = response();
    applySecurityHeaders(res);
    assert.match(String(headers.get('content-security-policy')), /script-src 'self';/);
    assert.doesNotMatch(String(headers.get('content-security-policy')), /unsafe-inline/);
    assert.equal(headers.get('x-frame-options'), 'DENY');
    assert.equal(headers.get('x-content-type-options'), 'nosniff');
  });
});

describe('JSON answers', () => {
  it('sendJson: status, no-store, byte length, extra headers; no body for HEAD', () => {
    const get = response();
    sendJson(request({}, 'GET'), get.res, 201, { name: 'Café' }, { ETag: '"1"' });
    assert.equal(get.state.status, 201);
    assert.equal(get.headers.get('cache-control'), 'no-store');
    assert.equal(get.headers.get('content-length'), Buffer.byteLength('{"name":"Café"}'));
    assert.equal(get.headers.get('etag'), '"1"');
    assert.equal(get.state.body, '{"name":"Café"}');
    const head = response();
    sendJson(request({}, 'HEAD'), head.res, 200, { a: 1 });
    assert.equal(head.state.body, undefined);
    assert.equal(head.headers.get('content-length'), 7, 'HEAD still says how long the body would be');
  });

  it('sendError answers { error, message }; a 413 closes the connection; after headers it can only cut', () => {
    const tooLarge = response();
    sendError(request(), tooLarge.res, new HttpError(413, 'too-large', 'too big', { 'Retry-After': '1' }));
    assert.equal(tooLarge.state.status, 413);
    assert.equal(tooLarge.headers.get('connection'), 'close');
    assert.equal(tooLarge.headers.get('retry-after'), '1');
    assert.deepEqual(JSON.parse(String(tooLarge.state.body)), { error: 'too-large', message: 'too big' });

    const late = response(true);
    sendError(request(), late.res, new HttpError(500, 'internal', 'x'));
    assert.equal(late.state.destroyed, true);
    assert.equal(late.state.ended, false);
  });
});
