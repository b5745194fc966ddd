// RtspHeaders: case-insensitive names, repeated fields kept in order.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { RtspHeaders } from '../../src/rtsp/headers.js';

describe('RtspHeaders', () => {
  it('finds a field however the camera capitalised it', () => {
    const headers = new RtspHeaders([['CSEQ', '3'], ['content-LENGTH', '12']]);
    assert.equal(headers.get('CSeq'), '3');
    assert.equal(headers.get('Content-Length'), '12');
    assert.equal(headers.has('cseq'), true);
    assert.equal(headers.get('Session'), undefined);
    assert.equal(headers.has('Session'), false);
  });

  it('keeps every value of a repeated field in order; get gives the first', () => {
    const headers = new RtspHeaders();
    headers.append('WWW-Authenticate', 'Digest realm="a"');
    headers.append('www-authenticate', 'Basic realm="a"');
    assert.equal(headers.get('WWW-Authenticate'), 'Digest realm="a"');
    assert.deepEqual(headers.getAll('WWW-AUTHENTICATE'), ['Digest realm="a"', 'Basic realm="a"']);
    assert.equal(headers.size, 1, 'one distinct name');
    assert.deepEqual([...headers.entries()], [['www-authenticate', 'Digest realm="a"'], ['www-authenticate', 'Basic realm="a"']]);
  });

  it('trims the name on append; getAll hands out a copy', () => {
    const headers = new RtspHeaders([[' Session ', '42']]);
    assert.equal(headers.get('session'), '42');
    const all = headers.getAll('session');
    all.push('injected');
    assert.deepEqual(headers.getAll('session'), ['42']);
    assert.deepEqual(headers.getAll('missing'), []);
  });
});
