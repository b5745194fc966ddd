/**
 * The one place the server's HTML documents are opened: the doctype and the head every page shares
 * (charset, viewport, color scheme, referrer policy, icon, the page style sheet). The watch page at
 * `/` is its static body (page/index.html) put under this head once when the server starts, so it
 * is still one cached asset with one ETag; the sign-in and share-link pages (auth/pages.ts) put
 * their generated bodies under it on every request.
 */
import { assetOf, type StaticAsset } from './static-files.js';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface PageHead {
  title: string;
  /** `no-referrer` except where a page says why not (the sign-in form, auth/pages.ts). */
  referrer: 'no-referrer' | 'same-origin';
  /** Style sheets under `/static/` after `style.css`. */
  styles?: readonly string[];
  /** The page's module script under `/static/`; the account pages have none (no script at all). */
  script?: string;
  /** Moves on to this same-site URL at once (`<meta http-equiv="refresh">`, no script needed). */
  refreshTo?: string;
}

/** A whole document: the shared head, then `body` (its `<body>` element, with its own newline). */
export function htmlDocument(head: PageHead, body: string): string {
  const styles = ['style.css', ...(head.styles ?? [])].map((name) => `  <link rel="stylesheet" href="/static/${name}">\n`).join('');
  const script = head.script ? `  <script type="module" src="/static/${head.script}"></script>\n` : '';
  const refresh = head.refreshTo === undefined ? '' : `  <meta http-equiv="refresh" content="0; url=${escapeHtml(head.refreshTo)}">\n`;
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
  <meta name="color-scheme" content="dark light">
  <meta name="referrer" content="${head.referrer}">
  <title>${escapeHtml(head.title)}</title>
  <link rel="icon" href="/static/icon.svg" type="image/svg+xml">
${styles}${script}${refresh}</head>
${body}</html>
`;
}

/** The watch page served at `/`: page/index.html (its `<body>`) under the shared head. */
export function watchPageAsset(body: StaticAsset): StaticAsset {
  const html = htmlDocument({ title: 'Cameras', referrer: 'no-referrer', script: 'app.js' }, body.body.toString('utf8'));
  return assetOf(Buffer.from(html, 'utf8'), body.contentType);
}
