/**
 * The PTZ controls' CSRF token (src/web/page/ptz.js), with fetch stubbed: a failed /api/session is
 * not kept for the page's life, and a 403 "csrf" refusal fetches a fresh token and retries once.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';

interface PtzPage {
  postWithCsrf(url: string, body: object): Promise<Response>;
}
type Handler = (url: string, init?: RequestInit) => Response;
const realFetch = globalThis.fetch;
let calls: Array<{ url: string; token: string | undefined }> = [];

function stubFetch(handler: Handler): void {
  calls = [];
  globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
    const url = String(input);
    const token = (init?.headers as Record<string, string> | undefined)?.['X-CSRF-Token'];
    calls.push({ url, token });
    return Promise.resolve(handler(url, init));
  }) as typeof fetch;
}

const json = (status: number, body: unknown): Response => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

describe('PTZ page: CSRF token', () => {
  afterEach(() => {
    globalThis.fetch = realFetch;
  });

  it('a failed /api/session is asked again; a stale token gets one retry with a fresh one', async () => {
    // A fresh module: the token cache is per page. (Plain browser JavaScript: typed here by hand.)
    const { postWithCsrf } = (await import(`../../src/web/page/ptz.js?fresh=${Date.now()}`)) as PtzPage;
    let sessionOk = false;
    let current = 'tok-1';
    stubFetch((url, init) => {
      if (url === '/api/session') return sessionOk ? json(200, { csrfToken: current }) : json(502, {});
      const token = (init?.headers as Record<string, string>)['X-CSRF-Token'];
      return token === current ? json(200, { ok: true }) : json(403, { error: 'csrf', message: 'reload' });
    });
    const url = '/api/cameras/dome/ptz/stop';
    assert.equal((await postWithCsrf(url, {})).status, 403, 'no token while /api/session fails');
    sessionOk = true;
    assert.equal((await postWithCsrf(url, {})).status, 200, 'the failure was not kept');
    assert.deepEqual(calls.filter((c) => c.url === url).map((c) => c.token), [undefined, undefined, 'tok-1']);

    // The session was renewed: the old token is refused once, then a fresh one is used.
    current = 'tok-2';
    calls = [];
    assert.equal((await postWithCsrf(url, {})).status, 200);
    assert.deepEqual(calls.map((c) => [c.url, c.token]), [[url, 'tok-1'], ['/api/session', undefined], [url, 'tok-2']]);

    // Another 403 (not csrf, e.g. no PTZ right) is not retried.
    stubFetch(() => json(403, { error: 'forbidden', message: 'no' }));
    assert.equal((await postWithCsrf(url, {})).status, 403);
    assert.equal(calls.length, 1);
  });
});
