import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatPath, genericPath, parseInstancePath, printableUrl, schemaAt } from '../../src/config/errors.js';

describe('config error helpers', () => {
  it('formats and parses paths', () => {
    assert.equal(formatPath(['cameras', 1, 'onvif', 'port']), 'cameras[1].onvif.port');
    assert.equal(genericPath(['cameras', 1, 'onvif', 'port']), 'cameras[].onvif.port');
    assert.equal(genericPath(['ice', 'stunServers', 0]), 'ice.stunServers[]');
    assert.deepEqual(parseInstancePath('/onvif/port'), ['onvif', 'port']);
    assert.deepEqual(parseInstancePath('/stunServers/2'), ['stunServers', 2]);
    assert.deepEqual(parseInstancePath('/a~1b'), ['a/b']);
    assert.deepEqual(parseInstancePath(''), []);
  });

  it('finds schema nodes', () => {
    const root = { type: 'object', properties: { list: { type: 'array', items: { type: 'object', properties: { x: { type: 'string', title: 'X' } } } } } };
    assert.equal(schemaAt(root, ['list', 3, 'x'])?.title, 'X');
    assert.equal(schemaAt(root, ['nope', 'x']), undefined);
  });

  it('prints typed URLs without any of the password, even one with a raw @', () => {
    assert.equal(printableUrl('rtsp://admin:p@ss@192.168.0.20/x'), 'rtsp://admin:***@192.168.0.20/x');
    assert.equal(printableUrl('rtsp://admin:pw@h/x?next=http://a:b@c/'), 'rtsp://admin:***@h/x?next=http://a:***@c/');
    assert.equal(printableUrl('rtsp://h/x'), 'rtsp://h/x');
    assert.equal(printableUrl('not a url'), 'not a url');
  });
});
