/**
 * Share links: "grandma opens a link". A link is a signed token,
 * `wrc1.<id>.<expiry>.<HMAC-SHA256>`, where the MAC covers the id, the expiry and the camera list
 * under a key derived from the secret in the storage path. The link list is kept in
 * `share-links.json` (the only place camera lists live, so tokens stay short) and doubles as an
 * allow-list: a token is valid only while its link is listed, not revoked and not expired. Losing
 * or damaging the list therefore revokes links rather than resurrecting them (fail closed).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import { EXPIRY_MS } from '../../config/share-link-expiry.js';
import type { ShareLinkExpiry } from '../../config/types.js';
import type { Logger } from '../../util/logger.js';
import { readJsonFile, writeFileAtomic } from '../../util/storage.js';

export const SHARE_LINKS_FILE = 'share-links.json';
export const EXPIRY_PRESETS = EXPIRY_MS;
export type ExpiryPreset = ShareLinkExpiry;
export const MIN_EXPIRY_MS = EXPIRY_PRESETS['1h'];
export const MAX_EXPIRY_MS = EXPIRY_PRESETS['30d'];
/** Revoked and expired links stay listed this long (so the admin sees what happened), then go. */
const KEEP_ENDED_MS = 30 * 86_400_000;
export const MAX_LABEL_LENGTH = 80;
const TOKEN = /^wrc1\.([A-Za-z0-9_-]{22})\.([0-9a-z]{1,11})\.([A-Za-z0-9_-]{43})$/;
const LINK_ID = /^[A-Za-z0-9_-]{22}$/;
export const MAX_TOKEN_LENGTH = 128;

export interface ShareLink {
  readonly id: string;
  readonly label: string;
  readonly cameras: 'all' | ReadonlyArray<string>;
  readonly createdAt: number;
  /** `null`: never expires. */
  readonly expiresAt: number | null;
  readonly createdBy: string;
  readonly revokedAt: number | null;
}

export type ShareLinkState = 'active' | 'expired' | 'revoked';

export type VerifyResult = { ok: true; link: ShareLink } | { ok: false; reason: 'malformed' | 'unknown' | 'bad-signature' | 'expired' | 'revoked' };

export interface NewShareLink {
  cameras: 'all' | ReadonlyArray<string>;
  /** `null`: never. */
  expiresInMs: number | null;
  label: string;
  createdBy: string;
}

export function isLinkId(value: string): boolean {
  return LINK_ID.test(value);
}

/** A label as stored and shown: control characters removed, trimmed, bounded. */
export function cleanLabel(value: string): string {
  // eslint-disable-next-line no-control-regex -- stripping control characters is the point
  return value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ').trim().slice(0, MAX_LABEL_LENGTH);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseStoredLink(value: unknown): ShareLink | undefined {
  if (!isRecord(value)) return undefined;
  const { id, label, cameras, createdAt, expiresAt, createdBy, revokedAt } = value;
  if (typeof id !== 'string' || !isLinkId(id)) return undefined;
  if (typeof label !== 'string' || typeof createdBy !== 'string' || typeof createdAt !== 'number') return undefined;
  if (!(expiresAt === null || (typeof expiresAt === 'number' && expiresAt % 1000 === 0))) return undefined;
  if (!(revokedAt === null || typeof revokedAt === 'number')) return undefined;
  let list: 'all' | string[];
  if (cameras === 'all') list = 'all';
  else if (Array.isArray(cameras) && cameras.length > 0 && cameras.every((c) => typeof c === 'string')) list = cameras as string[];
  else return undefined;
  return Object.freeze({ id, label: cleanLabel(label), cameras: list, createdAt, expiresAt, createdBy, revokedAt });
}

export class ShareLinkStore {
  private readonly links = new Map<string, ShareLink>();
  private readonly file: string;
  private writing: Promise<void> = Promise.resolve();
  private readonly reportedEnded = new Set<string>();

  constructor(
    private readonly options: { dir: string; key: Buffer; now: () => number; log: Logger; maxLinks: number },
  ) {
    this.file = path.join(options.dir, SHARE_LINKS_FILE);
  }

  /** Reads the list. A damaged file is set aside and every link in it stops working (fail closed). */
  async load(): Promise<void> {
    let raw: unknown;
    try {
      raw = await readJsonFile(this.file);
    } catch (error) {
      this.options.log.error(
        `The share-link list (${SHARE_LINKS_FILE}) could not be read (${error instanceof Error ? error.message : String(error)}); ` +
          'existing share links do not work until new ones are made.',
      );
      return;
    }
    if (raw === undefined) return;
    const entries = isRecord(raw) && Array.isArray(raw['links']) ? raw['links'] : [];
    let dropped = 0;
    for (const entry of entries) {
      const link = parseStoredLink(entry);
      if (link) this.links.set(link.id, link);
      else dropped++;
    }
    if (dropped > 0) this.options.log.warn(`${dropped} damaged entr${dropped === 1 ? 'y was' : 'ies were'} dropped from the share-link list.`);
    // Links that had already ended before this start must not be "newly expired" at the first sweep.
    const now = this.options.now();
    for (const link of this.links.values()) if (this.stateOf(link, now) !== 'active') this.reportedEnded.add(link.id);
  }

  stateOf(link: ShareLink, now = this.options.now()): ShareLinkState {
    if (link.revokedAt !== null) return 'revoked';
    if (link.expiresAt !== null && now >= link.expiresAt) return 'expired';
    return 'active';
  }

  /** Every remembered link, newest first. */
  list(): Array<ShareLink & { state: ShareLinkState }> {
    const now = this.options.now();
    return [...this.links.values()].sort((a, b) => b.createdAt - a.createdAt).map((link) => ({ ...link, state: this.stateOf(link, now) }));
  }

  get(id: string): ShareLink | undefined {
    return this.links.get(id);
  }

  isActive(id: string): boolean {
    const link = this.links.get(id);
    return link !== undefined && this.stateOf(link) === 'active';
  }

  async create(input: NewShareLink): Promise<{ link: ShareLink; token: string }> {
    const now = this.options.now();
    this.prune(now);
    if (this.links.size >= this.options.maxLinks) {
      throw new Error(`There are already ${this.links.size} share links; revoke some first`);
    }
    // Whole seconds, so that the expiry in the token is exact.
    const expiresAt = input.expiresInMs === null ? null : Math.ceil((now + input.expiresInMs) / 1000) * 1000;
    const cameras = input.cameras === 'all' ? 'all' : Object.freeze([...new Set(input.cameras)].sort());
    const link: ShareLink = Object.freeze({
      id: randomBytes(16).toString('base64url'),
      label: cleanLabel(input.label),
      cameras,
      createdAt: now,
      expiresAt,
      createdBy: input.createdBy,
      revokedAt: null,
    });
    this.links.set(link.id, link);
    await this.save();
    return { link, token: this.tokenFor(link) };
  }

  /** Marks a link revoked (persisted before this resolves). `undefined` when there is no such link. */
  async revoke(id: string): Promise<ShareLink | undefined> {
    const link = this.links.get(id);
    if (!link) return undefined;
    if (link.revokedAt !== null) return link;
    const revoked = Object.freeze({ ...link, revokedAt: this.options.now() });
    this.links.set(id, revoked);
    this.reportedEnded.add(id);
    await this.save();
    return revoked;
  }

  verify(token: string): VerifyResult {
    if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
    const match = TOKEN.exec(token);
    if (!match) return { ok: false, reason: 'malformed' };
    const [, id, expiry, mac] = match as unknown as [string, string, string, string];
    const link = this.links.get(id);
    if (!link) return { ok: false, reason: 'unknown' };
    // The signature is compared as the text the link was issued with, not as decoded bytes: a 32-byte
    // MAC's last base64url character carries 2 unused bits, so decoding would accept 4 spellings of
    // every token (a "tampered" token that still works, and a link that is not one fixed string).
    const expected = Buffer.from(this.mac(link).toString('base64url'));
    const given = Buffer.from(mac);
    if (expiry !== expiryField(link) || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return { ok: false, reason: 'bad-signature' };
    }
    const state = this.stateOf(link);
    if (state !== 'active') return { ok: false, reason: state };
    return { ok: true, link };
  }

  /** Links that expired since the last call (for the sweep that closes their sockets). */
  takeNewlyExpired(): ShareLink[] {
    const now = this.options.now();
    const ended: ShareLink[] = [];
    for (const link of this.links.values()) {
      if (this.reportedEnded.has(link.id)) continue;
      if (this.stateOf(link, now) !== 'active') {
        this.reportedEnded.add(link.id);
        ended.push(link);
      }
    }
    return ended;
  }

  /** Resolves once every pending write is on disk. */
  async flush(): Promise<void> {
    await this.writing;
  }

  private tokenFor(link: ShareLink): string {
    return `wrc1.${link.id}.${expiryField(link)}.${this.mac(link).toString('base64url')}`;
  }

  private mac(link: ShareLink): Buffer {
    const cameras = link.cameras === 'all' ? '*' : link.cameras.join(',');
    return createHmac('sha256', this.options.key).update(`wrc1|${link.id}|${expiryField(link)}|${cameras}`).digest();
  }

  private prune(now: number): void {
    for (const link of this.links.values()) {
      const endedAt = link.revokedAt ?? (link.expiresAt !== null && link.expiresAt <= now ? link.expiresAt : null);
      if (endedAt !== null && now - endedAt > KEEP_ENDED_MS) {
        this.links.delete(link.id);
        this.reportedEnded.delete(link.id);
      }
    }
  }

  /** Writes are chained so that two quick changes cannot land on disk in the wrong order. */
  private save(): Promise<void> {
    const snapshot = JSON.stringify({ version: 1, links: [...this.links.values()] }, null, 2);
    const next = this.writing.then(() => writeFileAtomic(this.file, `${snapshot}\n`));
    this.writing = next.catch((error: unknown) => {
      this.options.log.error(`The share-link list could not be saved: ${error instanceof Error ? error.message : String(error)}`);
    });
    return next;
  }
}

function expiryField(link: ShareLink): string {
  return link.expiresAt === null ? '0' : (link.expiresAt / 1000).toString(36);
}

/** `expiresIn` as the API takes it: a preset, `never`, or seconds from 1 h to 30 days. */
export function parseExpiresIn(value: unknown, fallbackMs: number | null): number | null {
  if (value === undefined) return fallbackMs;
  if (value === 'never') return null;
  if (typeof value === 'string' && value in EXPIRY_PRESETS) return EXPIRY_PRESETS[value as ExpiryPreset];
  if (typeof value === 'number' && Number.isInteger(value) && value * 1000 >= MIN_EXPIRY_MS && value * 1000 <= MAX_EXPIRY_MS) {
    return value * 1000;
  }
  throw new RangeError('expiresIn must be "1h", "1d", "7d", "30d", "never" or a number of seconds from 3600 to 2592000');
}
