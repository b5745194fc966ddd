// Cookie parsing and the cookies access control sets: junk tolerated, limits kept, flags right.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';

import { cookieNames, readCookie, serializeCookie } from '../../src/web/auth/cookies.js';

const request = (cookie: string | undefined): IncomingMessage => ({ headers: cookie === undefined ? {} : { cookie } }) as IncomingMessage;

describe('readCookie', () => {
  it('finds a cookie among others, trimming spaces and one pair of quotes', () => {
    const req = request('a=1; wrc_session= "abc.def" ;b=2');
    assert.equal(readCookie(req, 'wrc_session'), 'abc.def');
    assert.equal(readCookie(req, 'a'), '1');
    assert.equal(readCookie(req, 'b'), '2');
  });

  it('matches the whole name, not a prefix or suffix of another', () => {
    const req = request('xwrc_session=evil; wrc_session_old=stale; wrc_session=good');
    assert.equal(readCookie(req, 'wrc_session'), 'good');
  });

  it('keeps "=" inside a value and returns the first of repeated names', () => {
    assert.equal(readCookie(request('t=a=b==; t=second'), 't'), 'a=b==');
  });

  it('tolerates junk: no header, parts without "=", a lone quote, an empty value', () => {
    assert.equal(readCookie(request(undefined), 'a'), undefined);
    assert.equal(readCookie(request(''), 'a'), undefined);
    assert.equal(readCookie(request('junk; ;;a'), 'a'), undefined);
    assert.equal(readCookie(request('a="'), 'a'), '"', 'one quote is not a quoted value');
    assert.equal(readCookie(request('a='), 'a'), '');
  });

  it('ignores a header over 8 KiB and cookies past the fiftieth', () => {
    assert.equal(readCookie(request(`a=1; pad=${'x'.repeat(8200)}`), 'a'), undefined);
    const fifty = Array.from({ length: 50 }, (_, i) => `c${i}=${i}`).join('; ');
    assert.equal(readCookie(request(`${fifty}; late=1`), 'late'), undefined);
    assert.equal(readCookie(request(`${fifty}; late=1`), 'c49'), '49');
  });
});

describe('cookie names and attributes', () => {
  it('uses the __Host- prefix for the secret cookies under TLS only; the marker never has it', () => {
    assert.deepEqual(cookieNames(true), { session: '__Host-wrc_session', login: '__Host-wrc_login', marker: 'wrc_account' });
    assert.deepEqual(cookieNames(false), { session: 'wrc_session', login: 'wrc_login', marker: 'wrc_account' });
  });

  it('serialises HttpOnly, SameSite=Strict, Path=/ and Secure under TLS', () => {
    assert.equal(serializeCookie('s', 'v', { secure: true, maxAgeSeconds: 3600 }), 's=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600; Secure');
    assert.equal(serializeCookie('s', 'v', { secure: false, maxAgeSeconds: 60 }), 's=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60');
  });

  it('leaves HttpOnly off only when asked, and keeps Max-Age a whole, non-negative number', () => {
    assert.equal(serializeCookie('m', '1', { secure: false, maxAgeSeconds: 59.9, httpOnly: false }), 'm=1; Path=/; SameSite=Strict; Max-Age=59');
    assert.match(serializeCookie('s', '', { secure: false, maxAgeSeconds: -5 }), /Max-Age=0(;|$)/);
  });
});
