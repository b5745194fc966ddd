import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { browserOrigins } from '../../src/runtime/plugin-services.js';

describe('browserOrigins', () => {
  it('adds the public address (as its origin) to the configured origins, once', () => {
    assert.deepEqual(browserOrigins({ allowedOrigins: ['https://dash.example.com'], publicUrl: 'https://cams.example.com:443/watch/' }), [
      'https://dash.example.com',
      'https://cams.example.com',
    ]);
    assert.deepEqual(browserOrigins({ allowedOrigins: ['https://cams.example.com'], publicUrl: 'https://cams.example.com/' }), ['https://cams.example.com']);
  });

  it('is only the configured origins without a public address, and nothing by default', () => {
    assert.deepEqual(browserOrigins({ allowedOrigins: ['http://10.0.0.5:8123'] }), ['http://10.0.0.5:8123']);
    assert.deepEqual(browserOrigins({ allowedOrigins: [] }), []);
  });
});
