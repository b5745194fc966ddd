// safeEqual: a constant-time comparison that is still a correct comparison.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { safeEqual } from '../../src/util/safe-equal.js';

describe('safeEqual', () => {
  it('is true only for identical strings', () => {
    assert.equal(safeEqual('token-123', 'token-123'), true);
    assert.equal(safeEqual('token-123', 'token-124'), false);
    assert.equal(safeEqual('Token-123', 'token-123'), false, 'case matters');
    assert.equal(safeEqual('', ''), true);
  });

  it('handles different lengths (including a prefix) without throwing', () => {
    assert.equal(safeEqual('abc', 'abcd'), false);
    assert.equal(safeEqual('', 'x'), false);
    assert.equal(safeEqual('x'.repeat(10_000), 'x'), false);
  });

  it('compares UTF-8 text, not UTF-16 code units', () => {
    assert.equal(safeEqual('pässwörd', 'pässwörd'), true);
    assert.equal(safeEqual('\u00e9', 'e\u0301'), false, 'no Unicode normalisation: the bytes differ');
  });
});
