// OriginPolicy: which browser origins may use the API, WHEP and the WebSocket, and the CORS answer.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';

import { OriginPolicy } from '../../src/web/origin-policy.js';

function req(headers: Record<string, string>, method = 'GET'): IncomingMessage {
  return { headers, method } as unknown as IncomingMessage;
}

function res(): { res: ServerResponse; headers: Map<string, string[]> } {
  const headers = new Map<string, string[]>();
  const fake = {
    appendHeader(name: string, value: string) {
      headers.set(name, [...(headers.get(name) ?? []), value]);
      return fake;
    },
    setHeader(name: string, value: string) {
      headers.set(name, [value]);
      return fake;
    },
  };
  return { res: fake as unknown as ServerResponse, headers };
}

describe('OriginPolicy', () => {
  it('treats no Origin and the page\'s own origin (any case) as not cross-origin', () => {
    const policy = new OriginPolicy([], false);
    assert.equal(policy.crossOrigin(req({ host: 'cams.local:8080' })), undefined);
    assert.equal(policy.crossOrigin(req({ host: 'Cams.Local:8080', origin: 'http://cams.local:8080' })), undefined);
    assert.equal(policy.permits(req({ host: 'cams.local:8080', origin: 'HTTP://CAMS.LOCAL:8080' })), true);
  });

  it('the scheme must match the server\'s: an http page is cross-origin to a TLS server', () => {
    const tls = new OriginPolicy([], true);
    assert.equal(tls.crossOrigin(req({ host: 'cams.local', origin: 'http://cams.local' })), 'http://cams.local');
    assert.equal(tls.crossOrigin(req({ host: 'cams.local', origin: 'https://cams.local' })), undefined);
    assert.equal(tls.permits(req({ host: 'cams.local', origin: 'http://cams.local' })), false);
  });

  it('an Origin without a Host header is always cross-origin', () => {
    assert.equal(new OriginPolicy([], false).crossOrigin(req({ origin: 'http://x' })), 'http://x');
  });

  it('permits configured origins, compared without trailing slash or case', () => {
    const policy = new OriginPolicy([' https://Dash.Example/ '], false);
    assert.equal(policy.permits(req({ host: 'cams.local', origin: 'https://dash.example' })), true);
    assert.equal(policy.permits(req({ host: 'cams.local', origin: 'https://dash.example:444' })), false);
    assert.equal(policy.permits(req({ host: 'cams.local', origin: 'https://evil.example' })), false);
    assert.equal(policy.permits(req({ host: 'cams.local', origin: 'null' })), false);
  });

  it('"*" permits any origin', () => {
    const policy = new OriginPolicy(['*'], false);
    assert.equal(policy.permits(req({ host: 'cams.local', origin: 'https://anywhere.example' })), true);
  });

  it('bearer WHEP: only allowed origins, only with a Bearer token (or a preflight asking for Authorization)', () => {
    const policy = new OriginPolicy([], false, (origin) => origin === 'http://hb.local:8581');
    const from = (headers: Record<string, string>, method = 'POST') => req({ host: 'cams.local', origin: 'http://hb.local:8581', ...headers }, method);
    assert.equal(policy.permitsBearer(from({ authorization: 'Bearer abc' })), true);
    assert.equal(policy.permitsBearer(from({ authorization: 'bearer   abc' })), true);
    assert.equal(policy.permitsBearer(from({ authorization: 'Bearer ' })), false, 'no token');
    assert.equal(policy.permitsBearer(from({ authorization: 'Basic abc' })), false);
    assert.equal(policy.permitsBearer(from({})), false);
    assert.equal(policy.permitsBearer(from({ 'access-control-request-headers': 'content-type, Authorization' }, 'OPTIONS')), true);
    assert.equal(policy.permitsBearer(from({ 'access-control-request-headers': 'content-type, x-authorization' }, 'OPTIONS')), false);
    assert.equal(policy.permitsBearer(from({}, 'OPTIONS')), false);
    assert.equal(policy.permitsBearer(req({ host: 'cams.local', origin: 'http://other:8581', authorization: 'Bearer abc' })), false);
    assert.equal(policy.permitsBearer(req({ host: 'cams.local', authorization: 'Bearer abc' })), false, 'same-origin needs no bearer exception');
  });

  it('CORS: Vary always; Allow-Origin and exposed headers only for a permitted cross-origin request', () => {
    const policy = new OriginPolicy(['https://dash.example'], false, (o) => o === 'http://hb.local');
    const same = res();
    policy.applyCors(req({ host: 'cams.local' }), same.res);
    assert.deepEqual([...same.headers.keys()], ['Vary']);

    const refused = res();
    policy.applyCors(req({ host: 'cams.local', origin: 'https://evil.example' }), refused.res);
    assert.deepEqual([...refused.headers.keys()], ['Vary']);

    const allowed = res();
    policy.applyCors(req({ host: 'cams.local', origin: 'https://dash.example' }), allowed.res);
    assert.deepEqual(allowed.headers.get('Access-Control-Allow-Origin'), ['https://dash.example']);
    assert.match(allowed.headers.get('Access-Control-Expose-Headers')![0]!, /Location, ETag/);
    assert.equal(allowed.headers.has('Access-Control-Allow-Methods'), false, 'no preflight fields on a plain request');

    const preflight = res();
    policy.applyCors(req({ host: 'cams.local', origin: 'https://dash.example' }, 'OPTIONS'), preflight.res, { methods: ['POST', 'PATCH'] });
    assert.deepEqual(preflight.headers.get('Access-Control-Allow-Methods'), ['POST, PATCH']);
    assert.deepEqual(preflight.headers.get('Access-Control-Max-Age'), ['600']);

    const bearer = { host: 'cams.local', origin: 'http://hb.local', authorization: 'Bearer t' };
    const withoutException = res();
    policy.applyCors(req(bearer), withoutException.res);
    assert.equal(withoutException.headers.has('Access-Control-Allow-Origin'), false, 'bearer origins only where the route allows them');
    const withException = res();
    policy.applyCors(req(bearer), withException.res, undefined, true);
    assert.deepEqual(withException.headers.get('Access-Control-Allow-Origin'), ['http://hb.local']);
  });
});
