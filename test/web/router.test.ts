// The router: literal and `:param` segments matched on the raw path, so an encoded "/" stays inside
// its segment; HEAD follows GET; the methods a path answers to; bad percent-encoding is a 400.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { HttpError } from '../../src/web/http-util.js';
import { Router, type Route } from '../../src/web/router.js';

const route = (method: string, path: string): Route => ({ method, path, auth: 'public', handle: () => undefined });

function router(): Router {
  return new Router()
    .add(route('GET', '/api/cameras'))
    .add(route('GET', '/api/cameras/:id/snapshot.jpg'))
    .add(route('POST', '/whep/:camera'))
    .add(route('PATCH', '/whep/:camera/:session'))
    .add(route('DELETE', '/whep/:camera/:session'));
}

describe('Router', () => {
  it('matches literal segments exactly and decodes parameters', () => {
    const match = router().match('GET', '/api/cameras/front%20door/snapshot.jpg');
    assert.equal(match.kind, 'route');
    assert.deepEqual(match.kind === 'route' && match.params, { id: 'front door' });
    assert.equal(router().match('GET', '/api/cameras/').kind, 'none', 'a trailing slash is another path');
    assert.equal(router().match('GET', '/API/cameras').kind, 'none', 'literals are case-sensitive');
  });

  it('keeps an encoded "/" inside its segment, so it cannot reach another route', () => {
    const match = router().match('POST', '/whep/a%2Fb');
    assert.equal(match.kind, 'route');
    assert.deepEqual(match.kind === 'route' && match.params, { camera: 'a/b' });
    assert.equal(router().match('POST', '/whep/a/b').kind, 'method', 'the unencoded form is the PATCH/DELETE path');
  });

  it('refuses empty and over-long parameters', () => {
    assert.equal(router().match('POST', '/whep/').kind, 'none');
    assert.equal(router().match('POST', `/whep/${'x'.repeat(513)}`).kind, 'none');
    assert.equal(router().match('POST', `/whep/${'x'.repeat(512)}`).kind, 'route');
  });

  it('bad percent-encoding in a parameter is a 400, not a crash', () => {
    assert.throws(() => router().match('POST', '/whep/%E0%A4%A'), (e: unknown) => e instanceof HttpError && e.status === 400);
  });

  it('HEAD matches a GET route; a known path with another method lists what it allows', () => {
    assert.equal(router().match('HEAD', '/api/cameras').kind, 'route');
    const wrong = router().match('PUT', '/whep/cam/s1');
    assert.deepEqual(wrong.kind === 'method' && wrong.allow.sort(), ['DELETE', 'OPTIONS', 'PATCH']);
    const getOnly = router().match('POST', '/api/cameras');
    assert.deepEqual(getOnly.kind === 'method' && getOnly.allow.sort(), ['GET', 'HEAD', 'OPTIONS']);
  });

  it('methodsFor lists a path\'s methods for OPTIONS, and nothing for an unknown path', () => {
    assert.deepEqual(router().methodsFor('/api/cameras/x/snapshot.jpg').sort(), ['GET', 'HEAD', 'OPTIONS']);
    assert.deepEqual(router().methodsFor('/nope'), []);
  });

  it('refuses a route path without a leading slash', () => {
    assert.throws(() => new Router().add(route('GET', 'api')), /must start with "\/"/);
  });
});
