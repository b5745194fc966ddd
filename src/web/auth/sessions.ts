/**
 * Server-side sessions behind the cookie. The cookie carries 32 random bytes; the server keeps only
 * their SHA-256 (so the session file, or a backup of it, cannot be replayed as cookies), with who
 * the session is for (`user` + name, or `link` + link id) and its times. Sessions slide: each use
 * moves the idle deadline, up to an absolute cap. They are saved to `sessions.json` (debounced), so
 * a Homebridge restart does not sign the family out, and the principal is rebuilt from the current
 * accounts and links on load: a removed viewer or a revoked link does not come back.
 *
 * The CSRF token of a session is an HMAC of its id: bound to the session, nothing extra to store.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Logger } from '../../util/logger.js';
import type { AccessPrincipal } from './principals.js';
import { readJsonFile, writeFileAtomic } from '../../util/storage.js';

export const SESSIONS_FILE = 'sessions.json';
const ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export type SessionKind = 'user' | 'link';

export interface SessionLifetime {
  /** Idle time after which a session ends (sliding). */
  idleMs: number;
  /** Absolute lifetime of a session. */
  maxAgeMs: number;
}

export interface SessionSettings {
  user: SessionLifetime;
  /**
   * Share-link sessions live longer: the person holding the link bookmarks the page, not the
   * link, and a sign-in form is a dead end for them. Revoking or expiring the link still ends the
   * session at once.
   */
  link: SessionLifetime;
  maxSessions: number;
}

export const DEFAULT_SESSION_SETTINGS: Readonly<SessionSettings> = Object.freeze({
  user: { idleMs: 12 * 3_600_000, maxAgeMs: 7 * 86_400_000 },
  link: { idleMs: 30 * 86_400_000, maxAgeMs: 400 * 86_400_000 },
  maxSessions: 10_000,
});

export interface Session {
  readonly key: string;
  readonly kind: SessionKind;
  /** User name, or link id. */
  readonly subject: string;
  readonly createdAt: number;
  lastSeenAt: number;
  /** Absolute end (creation + max age, or the link's expiry when sooner). */
  readonly endsAt: number;
  readonly principal: AccessPrincipal;
}

export interface SessionStoreOptions {
  dir: string;
  csrfKey: Buffer;
  settings: SessionSettings;
  now: () => number;
  log: Logger;
  /** Builds the principal of a session, or `undefined` when its user or link no longer exists. */
  resolve(kind: SessionKind, subject: string, key: string): AccessPrincipal | undefined;
  /** Whether a session may still be used (its link still active...), asked on every use. */
  stillValid(session: Session): boolean;
}

function keyOf(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  private readonly file: string;
  private saveTimer: NodeJS.Timeout | undefined;
  private saveSoon = false;
  private dirty = false;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly options: SessionStoreOptions) {
    this.file = path.join(options.dir, SESSIONS_FILE);
  }

  async load(): Promise<void> {
    let raw: unknown;
    try {
      raw = await readJsonFile(this.file);
    } catch (error) {
      this.options.log.warn(`Saved sign-ins could not be read (${error instanceof Error ? error.message : String(error)}); everyone signs in again.`);
      return;
    }
    if (typeof raw !== 'object' || raw === null || !Array.isArray((raw as { sessions?: unknown }).sessions)) return;
    const now = this.options.now();
    for (const entry of (raw as { sessions: unknown[] }).sessions) {
      if (typeof entry !== 'object' || entry === null) continue;
      const { key, kind, subject, createdAt, lastSeenAt, endsAt } = entry as Record<string, unknown>;
      if (typeof key !== 'string' || !ID_PATTERN.test(key)) continue;
      if ((kind !== 'user' && kind !== 'link') || typeof subject !== 'string') continue;
      if (typeof createdAt !== 'number' || typeof lastSeenAt !== 'number' || typeof endsAt !== 'number') continue;
      if (now >= endsAt || now - lastSeenAt >= this.options.settings[kind].idleMs) continue;
      const principal = this.options.resolve(kind, subject, key);
      if (!principal) continue;
      const session: Session = { key, kind, subject, createdAt, lastSeenAt, endsAt, principal };
      if (!this.options.stillValid(session)) continue;
      this.sessions.set(key, session);
      if (this.sessions.size >= this.options.settings.maxSessions) break;
    }
  }

  get size(): number {
    return this.sessions.size;
  }

  /** A new session; returns its id (the cookie value). `endsBy` caps its life (a link's expiry). */
  create(kind: SessionKind, subject: string, endsBy?: number): { id: string; session: Session } | undefined {
    const now = this.options.now();
    const id = randomBytes(32).toString('base64url');
    const key = keyOf(id);
    const principal = this.options.resolve(kind, subject, key);
    if (!principal) return undefined;
    const endsAt = Math.min(now + this.options.settings[kind].maxAgeMs, endsBy ?? Number.POSITIVE_INFINITY);
    const session: Session = { key, kind, subject, createdAt: now, lastSeenAt: now, endsAt, principal };
    // Full: the least recently used session makes room (Map order is refreshed on every use).
    while (this.sessions.size >= this.options.settings.maxSessions) {
      const oldest = this.sessions.keys().next();
      if (oldest.done) break;
      this.sessions.delete(oldest.value);
    }
    this.sessions.set(key, session);
    this.scheduleSave(true);
    return { id, session };
  }

  /** The live session for a cookie value, after the expiry and validity checks; slides its idle deadline. */
  get(id: string): Session | undefined {
    if (!ID_PATTERN.test(id)) return undefined;
    const key = keyOf(id);
    const session = this.sessions.get(key);
    if (!session) return undefined;
    const now = this.options.now();
    if (this.ended(session, now)) {
      this.sessions.delete(key);
      this.scheduleSave(true);
      return undefined;
    }
    session.lastSeenAt = now;
    this.sessions.delete(key);
    this.sessions.set(key, session);
    this.scheduleSave(false);
    return session;
  }

  private ended(session: Session, now: number): boolean {
    return now >= session.endsAt || now - session.lastSeenAt >= this.options.settings[session.kind].idleMs || !this.options.stillValid(session);
  }

  /** The session's CSRF token: an HMAC of its id, so it is bound to this session and needs no storage. */
  csrfToken(id: string): string {
    return createHmac('sha256', this.options.csrfKey).update(`csrf|${id}`).digest('base64url');
  }

  delete(id: string): Session | undefined {
    if (!ID_PATTERN.test(id)) return undefined;
    const key = keyOf(id);
    const session = this.sessions.get(key);
    if (!session) return undefined;
    this.sessions.delete(key);
    this.scheduleSave(true);
    return session;
  }

  /** Ends every session that matches; returns them. */
  deleteWhere(predicate: (session: Session) => boolean): Session[] {
    const removed: Session[] = [];
    for (const [key, session] of this.sessions) {
      if (!predicate(session)) continue;
      this.sessions.delete(key);
      removed.push(session);
    }
    if (removed.length > 0) this.scheduleSave(true);
    return removed;
  }

  /** Drops expired sessions (called by the periodic sweep); returns them, so their open streams can be closed. */
  sweep(): Session[] {
    const now = this.options.now();
    const removed = this.deleteWhere((s) => this.ended(s, now));
    // Sliding deadlines are saved lazily, at most once a minute.
    if (this.dirty && !this.saveTimer) this.scheduleSave(false);
    return removed;
  }

  async flush(): Promise<void> {
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = undefined;
      this.save();
    }
    await this.writing;
  }

  /** Membership changes are saved within a second; a mere "last seen" update within a minute. */
  private scheduleSave(important: boolean): void {
    this.dirty = true;
    // A pending timer is never pushed back (a steady stream of sign-ins must not starve the save).
    if (this.saveTimer && (this.saveSoon || !important)) return;
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveSoon = important;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.save();
    }, important ? 1000 : 60_000);
    this.saveTimer.unref();
  }

  private save(): void {
    this.dirty = false;
    const sessions = [...this.sessions.values()].map(({ key, kind, subject, createdAt, lastSeenAt, endsAt }) => ({
      key,
      kind,
      subject,
      createdAt,
      lastSeenAt,
      endsAt,
    }));
    const text = `${JSON.stringify({ version: 1, sessions })}\n`;
    this.writing = this.writing
      .then(() => writeFileAtomic(this.file, text))
      .catch((error: unknown) => {
        this.options.log.warn(`Sign-ins could not be saved: ${error instanceof Error ? error.message : String(error)}`);
      });
  }
}
