// The account corner of the watch page: who is signed in, "Sign out", and for administrators a
// "Share" dialog that creates, lists and revokes share links. It asks /api/session first and adds
// nothing when the server has no access control. Like app.js: no inline script, server text only
// through textContent, and every state-changing request carries the session's CSRF token.

const EXPIRY_CHOICES = [
  ['1h', '1 hour'],
  ['1d', '1 day'],
  ['7d', '7 days'],
  ['30d', '30 days'],
  ['never', 'Never'],
];

/**
 * The signed-in session as /api/session describes it.
 * @typedef {object} AccountSession
 * @property {string} name
 * @property {string} kind 'user', 'link' or 'anonymous'
 * @property {boolean} admin
 * @property {string} [csrfToken]
 */

/**
 * A share link as /api/share-links lists it.
 * @typedef {object} ShareLink
 * @property {string} id
 * @property {string} [label]
 * @property {'all' | string[]} cameras
 * @property {string} state 'active', 'revoked' or 'expired'
 * @property {string | null} [expiresAt]
 */

/**
 * A new element: `class`, `text`, data-/aria- attributes and `for`/`role` are set as such, any
 * other key as the element's property of that name.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, unknown>} [properties]
 * @param {Array<Node | string>} [children]
 * @returns {HTMLElementTagNameMap[K]}
 */
function element(tag, properties = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(properties)) {
    // Every caller passes strings for these; the casts only tell the type checker so.
    if (key === 'class') node.className = /** @type {string} */ (value);
    else if (key === 'text') node.textContent = /** @type {string} */ (value);
    else if (key.startsWith('data-') || key.startsWith('aria-') || key === 'for' || key === 'role') node.setAttribute(key, /** @type {string} */ (value));
    else /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (node))[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

/**
 * A JSON call to the server; rejects with the server's message on an error status.
 * @param {string} path
 * @param {{ method?: string, body?: unknown, csrf?: string }} [options]
 * @returns {Promise<unknown>} the parsed answer (null for 204 or a body that is not JSON)
 */
async function api(path, { method = 'GET', body, csrf } = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (csrf) headers['X-CSRF-Token'] = csrf;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
  });
  /** @type {{ message?: string } | null} */
  let data = null;
  if (response.status !== 204) {
    try {
      data = /** @type {{ message?: string } | null} */ (await response.json());
    } catch {
      data = null;
    }
  }
  if (!response.ok) throw new Error(data?.message ?? `The server answered ${response.status}`);
  return data;
}

/** @param {string | null | undefined} iso */
function formatWhen(iso) {
  if (!iso) return 'never expires';
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

function addStyleSheet() {
  if (document.querySelector('link[href="/static/account.css"]')) return;
  document.head.append(element('link', { rel: 'stylesheet', href: '/static/account.css' }));
}

class ShareDialog {
  /** @param {AccountSession} session */
  constructor(session) {
    this.session = session;
    this.dialog = element('dialog', { id: 'share-dialog', class: 'player share-dialog', 'aria-labelledby': 'share-title' });
    this.cameraList = element('div', { class: 'share-cameras' });
    this.expiry = element('select', { id: 'share-expiry', name: 'expiresIn' });
    for (const [value, label] of EXPIRY_CHOICES) this.expiry.append(element('option', { value, text: label }));
    this.expiry.value = '1d';
    this.label = element('input', { id: 'share-label', name: 'label', type: 'text', maxLength: 80, placeholder: 'Grandma' });
    this.message = element('p', { class: 'share-message', role: 'status', 'aria-live': 'polite' });
    this.result = element('input', { id: 'share-url', type: 'text', readOnly: true, class: 'share-url', 'aria-label': 'New share link' });
    this.copy = element('button', { class: 'button', type: 'button', text: 'Copy' });
    this.resultRow = element('div', { class: 'share-result', hidden: true }, [this.result, this.copy]);
    this.links = element('ul', { id: 'share-links', class: 'share-links', 'aria-label': 'Share links' });
    const create = element('button', { class: 'button', type: 'submit', text: 'Create link' });
    const form = element('form', { class: 'share-form' }, [
      element('fieldset', {}, [element('legend', { text: 'Cameras' }), this.cameraList]),
      element('label', { for: 'share-expiry', text: 'Works for' }),
      this.expiry,
      element('label', { for: 'share-label', text: 'Name (optional)' }),
      this.label,
      create,
    ]);
    const close = element('button', { class: 'button icon-button', type: 'button', 'aria-label': 'Close', text: '\u2715' });
    this.dialog.append(
      element('div', { class: 'player-head' }, [element('h2', { id: 'share-title', class: 'player-title', text: 'Share cameras' }), close]),
      element('div', { class: 'share-body' }, [form, this.message, this.resultRow, element('h3', { text: 'Links' }), this.links]),
    );
    close.addEventListener('click', () => this.dialog.close());
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.create().catch((error) => this.say(error.message, 'bad'));
    });
    this.copy.addEventListener('click', () => {
      navigator.clipboard?.writeText(this.result.value).then(
        () => this.say('Copied.'),
        () => this.result.select(),
      );
    });
    document.body.append(this.dialog);
  }

  /**
   * @param {string} text
   * @param {string} [tone]
   */
  say(text, tone) {
    this.message.textContent = text;
    if (tone) this.message.dataset.tone = tone;
    else delete this.message.dataset.tone;
  }

  async open() {
    this.say('');
    this.resultRow.hidden = true;
    if (!this.dialog.open) this.dialog.showModal();
    const cameras = /** @type {Array<{ id: string, name: string }>} */ (await api('/api/cameras'));
    this.cameraList.replaceChildren(
      ...cameras.map((camera) =>
        element('label', { class: 'share-camera' }, [
          element('input', { type: 'checkbox', value: camera.id, name: 'camera' }),
          document.createTextNode(` ${camera.name}`),
        ]),
      ),
    );
    await this.refresh();
  }

  async create() {
    /** @type {NodeListOf<HTMLInputElement>} */
    const boxes = this.cameraList.querySelectorAll('input[type=checkbox]:checked');
    const chosen = [...boxes].map((box) => box.value);
    if (chosen.length === 0) {
      this.say('Choose at least one camera.', 'bad');
      return;
    }
    const link = /** @type {{ url?: string, path: string }} */ (await api('/api/share-links', {
      method: 'POST',
      csrf: this.session.csrfToken,
      body: { cameras: chosen, expiresIn: this.expiry.value, label: this.label.value.trim() },
    }));
    this.result.value = link.url ?? new URL(link.path, window.location.origin).href;
    this.resultRow.hidden = false;
    this.result.select();
    this.say('Send this link to whoever should watch. Anyone who has it can watch until it expires or you revoke it.');
    await this.refresh();
  }

  async refresh() {
    const links = /** @type {ShareLink[]} */ (await api('/api/share-links'));
    const items = links.map((link) => {
      const cameras = link.cameras === 'all' ? 'all cameras' : link.cameras.join(', ');
      const state =
        link.state === 'active' ? `until ${formatWhen(link.expiresAt)}` : link.state === 'revoked' ? 'revoked' : 'expired';
      const item = element('li', { class: 'share-link', 'data-link': link.id, 'data-state': link.state }, [
        element('span', { class: 'share-link-label', text: link.label || 'Unnamed link' }),
        element('span', { class: 'share-link-meta', text: `${cameras} \u00b7 ${state}` }),
      ]);
      if (link.state === 'active') {
        const revoke = element('button', { class: 'button', type: 'button', text: 'Revoke' });
        revoke.addEventListener('click', () => {
          api(`/api/share-links/${encodeURIComponent(link.id)}`, { method: 'DELETE', csrf: this.session.csrfToken })
            .then(() => this.refresh())
            .catch((error) => this.say(error.message, 'bad'));
        });
        item.append(revoke);
      }
      return item;
    });
    this.links.replaceChildren(...items);
    if (items.length === 0) this.links.append(element('li', { class: 'empty', text: 'No share links yet.' }));
  }
}

function signedIn() {
  return document.cookie.split(';').some((part) => part.trim() === 'wrc_account=1');
}

async function main() {
  // The server sets this marker with the session cookie; without it there is nothing to show.
  if (!signedIn()) return;
  /** @type {AccountSession} */
  let session;
  try {
    const response = await fetch('/api/session', { credentials: 'same-origin', cache: 'no-store' });
    if (!response.ok) return; // no access control on this server, or not signed in (app.js says so)
    session = /** @type {AccountSession} */ (await response.json());
  } catch {
    return;
  }
  addStyleSheet();
  const actions = document.querySelector('.bar-actions');
  if (!actions) return;
  const who = element('span', {
    id: 'account-name',
    class: 'account-name',
    text: session.kind === 'link' ? `Shared: ${session.name}` : session.kind === 'anonymous' ? 'This computer' : session.name,
  });
  actions.prepend(who);
  if (session.admin) {
    const dialog = new ShareDialog(session);
    const share = element('button', { id: 'share-open', class: 'button', type: 'button', text: 'Share' });
    share.addEventListener('click', () => dialog.open().catch((error) => dialog.say(error.message, 'bad')));
    actions.append(share);
  }
  if (session.csrfToken) {
    const signOut = element('button', { id: 'sign-out', class: 'button', type: 'button', text: 'Sign out' });
    signOut.addEventListener('click', async () => {
      try {
        await api('/logout', { method: 'POST', csrf: session.csrfToken });
      } finally {
        window.location.assign('/login');
      }
    });
    actions.append(signOut);
  }
}

main();
