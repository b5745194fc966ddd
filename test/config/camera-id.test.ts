import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CAMERA_ID_MAX_LENGTH, CAMERA_ID_PATTERN, cameraIdFromName } from '../../src/config/camera-id.js';

describe('cameraIdFromName', () => {
  it('makes URL-safe slugs', () => {
    const cases: Array<[string, string]> = [
      ['Front Door', 'front-door'],
      ['  Küche 2 ', 'kuche-2'],
      ['Garage (left) #3', 'garage-left-3'],
      ['Crème Brûlée Cam', 'creme-brulee-cam'],
      ['---', 'fallback'],
      ['玄関', 'fallback'],
    ];
    for (const [name, id] of cases) assert.equal(cameraIdFromName(name, 'fallback'), id, name);
  });

  it('stays within the length limit without a trailing dash', () => {
    const id = cameraIdFromName(`${'a'.repeat(39)} b`, 'x');
    assert.ok(id.length <= CAMERA_ID_MAX_LENGTH);
    assert.match(id, CAMERA_ID_PATTERN);
    assert.ok(!id.endsWith('-'));
  });
});
