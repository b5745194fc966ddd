/**
 * The two small HTML pages access control serves itself: the sign-in form and the share-link
 * landing page. They are generated (the sign-in form carries its CSRF token in a hidden field, so
 * it works without JavaScript) and contain no script at all, inline or not; every dynamic value is
 * HTML-escaped. They use the watch page's head (web/page-head.ts) and style sheets.
 */
import { escapeHtml, htmlDocument, type PageHead } from '../page-head.js';

export { escapeHtml };

/**
 * `referrer` is `no-referrer` like the watch page, except on the sign-in form: a browser sends
 * `Origin: null` with a form POST from a no-referrer page, and the server (rightly) refuses a null
 * origin for a state-changing request. `same-origin` keeps the Origin for our own form and still
 * sends nothing to other sites.
 */
function shell(title: string, body: string, { referrer = 'no-referrer', refreshTo }: Partial<Pick<PageHead, 'referrer' | 'refreshTo'>> = {}): string {
  return htmlDocument(
    { title, referrer, styles: ['account.css'], refreshTo },
    `<body>
  <header class="bar"><h1 class="bar-title">Cameras</h1></header>
  <main class="content auth-content">
${body}
  </main>
</body>
`,
  );
}

export interface LoginPageOptions {
  csrfToken: string;
  /** Shown above the form (a failed attempt, a lock-out, a signed-out note). */
  message?: string;
  tone?: 'bad' | 'info';
  username?: string;
  /** No viewer accounts exist: say how to add one instead of letting people guess. */
  noAccounts?: boolean;
}

export function loginPage(options: LoginPageOptions): string {
  const message = options.message
    ? `    <p class="notice auth-notice" role="alert" data-tone="${options.tone ?? 'bad'}">${escapeHtml(options.message)}</p>\n`
    : '';
  const setup = options.noAccounts
    ? '    <p class="notice auth-notice" data-tone="info">No viewer accounts are set up yet. In the Homebridge UI open the ' +
      'WebRTC Cameras plugin settings, section &ldquo;Viewers and share links&rdquo;, and add a viewer.</p>\n'
    : '';
  return shell(
    'Sign in · Cameras',
    `    <form class="auth-card" method="post" action="/login" autocomplete="on">
      <h2 class="auth-title">Sign in</h2>
${setup}${message}      <input type="hidden" name="csrf" value="${escapeHtml(options.csrfToken)}">
      <label class="auth-field">User name
        <input name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="128" value="${escapeHtml(options.username ?? '')}">
      </label>
      <label class="auth-field">Password
        <input name="password" type="password" autocomplete="current-password" required maxlength="1024">
      </label>
      <button class="button auth-submit" type="submit">Sign in</button>
      <p class="auth-hint">Someone sent you a link? Open that link again instead.</p>
    </form>`,
    { referrer: 'same-origin' },
  );
}

/**
 * After a share link is opened: a same-origin page that moves on to `/`. A plain 303 would not do:
 * when the link is clicked in a web mail, the redirect still counts as cross-site, and the browser
 * would hold back the brand-new SameSite=Strict cookie and show the sign-in form instead.
 */
export function linkLandingPage(): string {
  return shell(
    'Opening · Cameras',
    `    <div class="auth-card">
      <h2 class="auth-title">Opening the cameras&hellip;</h2>
      <p><a class="button" href="/">Open the cameras</a></p>
    </div>`,
    { refreshTo: '/' },
  );
}

export function linkInvalidPage(): string {
  return shell(
    'Link not valid · Cameras',
    `    <div class="auth-card">
      <h2 class="auth-title">This link does not work any more</h2>
      <p>It has expired or was withdrawn. Ask the person who sent it for a new one.</p>
    </div>`,
  );
}

export function tooManyAttemptsPage(retryAfterSeconds: number): string {
  return shell(
    'Please wait · Cameras',
    `    <div class="auth-card">
      <h2 class="auth-title">Too many attempts</h2>
      <p>Please wait ${retryAfterSeconds} s before trying again.</p>
    </div>`,
  );
}
