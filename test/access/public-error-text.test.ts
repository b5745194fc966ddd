// publicErrorText replaces URLs in the errors any viewer may read (camera API, signalling state). A
// URL used to swallow the rest of its word, so the Source's 'Camera "Front" (rtsp://...): refused'
// reached the page as 'Camera "Front" (<camera url> refused'. The URL now ends at a bracket or quote
// and trailing punctuation stays in the text, without letting any part of the URL through.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { publicErrorText } from '../../src/access/public-error.js';

test('a URL in parentheses or before punctuation is replaced and the sentence keeps its shape', () => {
  assert.equal(
    publicErrorText('Camera "Front" (rtsp://127.0.0.1:35179/live1.sdp): connection refused'),
    'Camera "Front" (<camera url>): connection refused',
  );
  assert.equal(publicErrorText('cannot reach rtsp://cam.local:554/live.'), 'cannot reach <camera url>.');
  assert.equal(publicErrorText('from "rtsp://10.0.0.2/a", giving up'), 'from "<camera url>", giving up');
});

test('nothing of the URL leaks: credentials, IPv6 hosts, odd passwords', () => {
  const cases = [
    ['Camera (rtsp://admin:pa)ss-77@10.0.0.5:554/x): 401', ['10.0.0.5', 'pa)ss-77', 'ss-77', 'admin']],
    ['Camera (rtsp://[fe80::1]:554/live): timeout', ['fe80', '554', 'live']],
    ['Camera (rtsp://user:p%40ss@cam.lan/s1): 401', ['cam.lan', 'p%40ss', 'user']],
  ] as const;
  for (const [input, leaks] of cases) {
    const out = publicErrorText(input) ?? '';
    for (const leak of leaks) assert.ok(!out.includes(leak), `${leak} leaked from ${input}: ${out}`);
    assert.match(out, /<camera url>/);
  }
});
