import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { collectSecrets, urlPassword } from '../../src/config/secrets.js';

describe('collectSecrets', () => {
  it('finds passwords in URLs, raw and decoded, even in malformed URLs', () => {
    assert.deepEqual(urlPassword('rtsp://user:pa%40ss@h/x'), ['pa%40ss', 'pa@ss']);
    assert.deepEqual(urlPassword('rtsp://user:p@ss@h/x'), ['p@ss']);
    assert.deepEqual(urlPassword('http://u:pw@h:99999999/'), ['pw']);
    assert.deepEqual(urlPassword('rtsp://user@h/x'), []);
    assert.deepEqual(urlPassword('rtsp://h/x'), []);
    assert.deepEqual(urlPassword('rtsp://u:bad%zz@h/'), ['bad%zz']);
  });

  it('finds password-like keys at any depth and URL passwords in any string', () => {
    const secrets = collectSecrets({
      a: { password: 'p1', nested: [{ credential: 'p2' }, { apiToken: 'p3' }] },
      urls: ['rtsp://x:p4@h/'],
      clientSecret: 'p5',
      username: 'not-a-secret',
      passwordEmpty: '',
      count: 3,
    });
    assert.deepEqual([...secrets].sort(), ['p1', 'p2', 'p3', 'p4', 'p5']);
  });

  it('copes with anything', () => {
    for (const value of [undefined, null, 1, 'x', [], {}]) assert.equal(collectSecrets(value).size, 0);
  });
});
