// The sign-in and share-link pages: every dynamic value escaped, no script, the right referrer policy.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { escapeHtml, linkInvalidPage, linkLandingPage, loginPage, tooManyAttemptsPage } from '../../src/web/auth/pages.js';

describe('auth pages', () => {
  it('escapeHtml escapes the five characters that matter in text and attributes', () => {
    assert.equal(escapeHtml(`<a href="x" onclick='y'>&</a>`), '&#60;a href=&#34;x&#34; onclick=&#39;y&#39;&#62;&#38;&#60;/a&#62;');
    assert.equal(escapeHtml('plain text'), 'plain text');
  });

  it('the sign-in form escapes the message, the user name and the CSRF token, and keeps its Origin', () => {
    const page = loginPage({ csrfToken: 'tok"en', message: '<script>alert(1)</script>', username: '"><img src=x onerror=alert(1)>' });
    assert.doesNotMatch(page, /<script|<img/);
    assert.match(page, /name="csrf" value="tok&#34;en"/);
    assert.match(page, /value="&#34;&#62;&#60;img src=x onerror=alert\(1\)&#62;"/);
    assert.match(page, /data-tone="bad">&#60;script&#62;/);
    assert.match(page, /<meta name="referrer" content="same-origin">/, 'a no-referrer page would POST with Origin: null');
    assert.doesNotMatch(page, /No viewer accounts/);
    assert.match(loginPage({ csrfToken: 't', noAccounts: true, message: 'x', tone: 'info' }), /No viewer accounts are set up yet[\s\S]*data-tone="info">x/);
  });

  it('the other pages send no referrer and carry no script', () => {
    for (const page of [linkLandingPage(), linkInvalidPage(), tooManyAttemptsPage(30)]) {
      assert.match(page, /<meta name="referrer" content="no-referrer">/);
      assert.doesNotMatch(page, /<script/i);
    }
    assert.match(linkLandingPage(), /http-equiv="refresh" content="0; url=\/"/);
    assert.match(tooManyAttemptsPage(30), /wait 30 s/);
  });
});
