// SessionStore on a manual clock and a temporary folder: sliding idle deadlines under an absolute
// cap, validity checks on every use, least-recently-used eviction, CSRF tokens, and what is saved
// (hashes, never the cookie values) and restored.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import type { AccessPrincipal } from '../../src/web/auth/principals.js';
import { SESSIONS_FILE, SessionStore, type Session, type SessionKind, type SessionSettings } from '../../src/web/auth/sessions.js';

const HOUR = 3_600_000;
const SETTINGS: SessionSettings = {
  user: { idleMs: 2 * HOUR, maxAgeMs: 10 * HOUR },
  link: { idleMs: 5 * HOUR, maxAgeMs: 100 * HOUR },
  maxSessions: 3,
};

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function store(options: { dir?: string; known?: Set<string>; valid?: (s: Session) => boolean; settings?: SessionSettings; startAt?: number } = {}) {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'sessions-'));
  if (!options.dir) dirs.push(dir);
  const clock = { now: options.startAt ?? 1_000_000 };
  const warnings: string[] = [];
  const known = options.known ?? new Set(['ann', 'bob', 'cat', 'dan', 'link-1']);
  const s = new SessionStore({
    dir,
    csrfKey: Buffer.alloc(32, 7),
    settings: options.settings ?? SETTINGS,
    now: () => clock.now,
    log: { info: () => undefined, debug: () => undefined, error: () => undefined, warn: (m: string) => void warnings.push(m) },
    resolve: (kind: SessionKind, subject: string, key: string): AccessPrincipal | undefined =>
      known.has(subject) ? { name: kind === 'link' ? `link:${subject}` : subject, kind, cameras: 'all', admin: false, sessionKey: key } : undefined,
    stillValid: options.valid ?? (() => true),
  });
  return { s, clock, dir, warnings };
}

describe('SessionStore', () => {
  it('creates a session behind a random 43-character cookie value and finds it again', () => {
    const { s } = store();
    const created = s.create('user', 'ann')!;
    assert.match(created.id, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(created.session.key, created.id, 'only a hash of the id is kept');
    assert.equal(s.get(created.id)?.subject, 'ann');
    assert.equal(s.get(created.id)?.principal.sessionKey, created.session.key);
    assert.notEqual(s.create('user', 'ann')!.id, created.id);
  });

  it('refuses a subject that does not resolve, and ids that are not ids', () => {
    const { s } = store();
    assert.equal(s.create('user', 'mallory'), undefined);
    assert.equal(s.size, 0);
    for (const bad of ['', 'short', 'x'.repeat(44), `${'x'.repeat(42)}=`]) assert.equal(s.get(bad), undefined, bad);
    assert.equal(s.delete('nope'), undefined);
  });

  it('slides the idle deadline on every use, up to the absolute cap', () => {
    const { s, clock } = store();
    const { id } = s.create('user', 'ann')!;
    for (let i = 0; i < 4; i++) {
      clock.now += 2 * HOUR - 1;
      assert.ok(s.get(id), `still signed in after ${i + 1} uses`);
    }
    // 8 h minus 4 ms have passed; the session ends at 10 h however active it is.
    clock.now += 2 * HOUR - 1;
    assert.ok(s.get(id), 'at 10 h - 5 ms');
    clock.now += 5;
    assert.equal(s.get(id), undefined, 'at 10 h');
    assert.equal(s.size, 0, 'and it is gone');
  });

  it('ends a session idle for exactly idleMs', () => {
    const { s, clock } = store();
    const { id } = s.create('user', 'ann')!;
    clock.now += 2 * HOUR;
    assert.equal(s.get(id), undefined);
  });

  it('link sessions have their own lifetime and end at the link\'s expiry when that is sooner', () => {
    const { s, clock } = store();
    const long = s.create('link', 'link-1')!;
    const capped = s.create('link', 'link-1', clock.now + HOUR)!;
    assert.equal(long.session.endsAt, clock.now + 100 * HOUR);
    assert.equal(capped.session.endsAt, clock.now + HOUR);
    clock.now += 3 * HOUR;
    assert.ok(s.get(long.id), 'a link session idles up to 5 h');
    assert.equal(s.get(capped.id), undefined);
  });

  it('asks stillValid on every use: a revoked link ends its sessions at once', () => {
    let revoked = false;
    const { s } = store({ valid: () => !revoked });
    const { id } = s.create('link', 'link-1')!;
    assert.ok(s.get(id));
    revoked = true;
    assert.equal(s.get(id), undefined);
    revoked = false;
    assert.equal(s.get(id), undefined, 'deleted, not just hidden');
  });

  it('when full, evicts the least recently used session, not the oldest', () => {
    const { s, clock } = store();
    const ann = s.create('user', 'ann')!;
    clock.now += 1;
    const bob = s.create('user', 'bob')!;
    clock.now += 1;
    const cat = s.create('user', 'cat')!;
    assert.ok(s.get(ann.id)); // ann is now the most recently used
    s.create('user', 'dan');
    assert.equal(s.size, 3);
    assert.ok(s.get(ann.id));
    assert.equal(s.get(bob.id), undefined, 'bob was the least recently used');
    assert.ok(s.get(cat.id));
  });

  it('deleteWhere and sweep end the matching and the expired sessions', () => {
    const { s, clock } = store();
    const ann = s.create('user', 'ann')!;
    const link = s.create('link', 'link-1')!;
    assert.deepEqual(s.deleteWhere((x) => x.kind === 'link').map((x) => x.subject), ['link-1']);
    assert.equal(s.get(link.id), undefined);
    clock.now += 2 * HOUR;
    s.sweep();
    assert.equal(s.size, 0);
    assert.equal(s.get(ann.id), undefined);
  });

  it('the CSRF token is bound to the session id and the server key', () => {
    const { s } = store();
    const a = s.create('user', 'ann')!;
    const b = s.create('user', 'bob')!;
    assert.equal(s.csrfToken(a.id), s.csrfToken(a.id));
    assert.notEqual(s.csrfToken(a.id), s.csrfToken(b.id));
    assert.match(s.csrfToken(a.id), /^[A-Za-z0-9_-]{43}$/);
  });

  it('saves hashes and times, never the cookie values, and restores what is still valid', async () => {
    const first = store();
    const ann = first.s.create('user', 'ann')!;
    const bob = first.s.create('user', 'bob')!;
    const link = first.s.create('link', 'link-1')!;
    await first.s.flush();
    const text = readFileSync(join(first.dir, SESSIONS_FILE), 'utf8');
    for (const { id } of [ann, bob, link]) assert.ok(!text.includes(id), 'a cookie value in the file');
    assert.equal(JSON.parse(text).version, 1);

    // Restart an hour later; bob was removed from the accounts meanwhile.
    const second = store({ dir: first.dir, known: new Set(['ann', 'link-1']), startAt: first.clock.now + HOUR });
    await second.s.load();
    assert.equal(second.s.size, 2, 'bob no longer resolves');
    assert.equal(second.s.get(ann.id)?.subject, 'ann');
    assert.equal(second.s.get(bob.id), undefined);
    // Three idle hours: the user session ends, the link session (5 h idle limit) lives.
    second.clock.now += 3 * HOUR;
    assert.equal(second.s.get(ann.id), undefined);
    assert.ok(second.s.get(link.id));
  });

  it('load skips malformed and expired entries, and survives an unreadable file', async () => {
    const { s, dir, clock, warnings } = store();
    const good = s.create('user', 'ann')!;
    await s.flush();
    const saved = JSON.parse(readFileSync(join(dir, SESSIONS_FILE), 'utf8')) as { sessions: Array<Record<string, unknown>> };
    const entry = saved.sessions[0]!;
    saved.sessions.push(
      { ...entry, key: 'not-a-key' },
      { ...entry, kind: 'admin' },
      { ...entry, createdAt: 'yesterday' },
      { ...entry, key: 'A'.repeat(43), endsAt: clock.now },
      null as unknown as Record<string, unknown>,
    );
    writeFileSync(join(dir, SESSIONS_FILE), JSON.stringify(saved));
    const again = store({ dir, startAt: clock.now });
    await again.s.load();
    assert.equal(again.s.size, 1);
    assert.ok(again.s.get(good.id));

    writeFileSync(join(dir, SESSIONS_FILE), '{ not json');
    const broken = store({ dir });
    await broken.s.load();
    assert.equal(broken.s.size, 0);
    assert.match(broken.warnings.join('\n'), /Saved sign-ins could not be read/);
    assert.deepEqual(warnings, []);
  });
});
