/**
 * The secrets of the cameras' web triggers (`POST /<kind>/<camera>/<token>`, src/web/web-trigger.ts),
 * made once and kept per kind in `<storage>/webrtc-cameras/<kind>-tokens.json` (mode 0600):
 * `doorbell-tokens.json` as before web triggers were generic (so doorbell addresses already typed
 * into cameras keep working), and `motion-tokens.json`. The address the user typed into the camera
 * thus keeps working across restarts, and each kind has its own secret (a leaked motion address
 * cannot ring). One store per kind per plugin: cameras start in parallel, and the file is read and
 * written by one queue so two new tokens cannot overwrite each other. Delete a camera's entry to make
 * a new address (the old one then stops working). At start the entries of cameras no longer
 * configured with that trigger are removed (`prune`): a camera deleted, or its trigger turned off,
 * and later added again gets a new address, not the one it had.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { CameraConfig } from '../config/types.js';
import { ensureStorageDir, readJsonFile, writeFileAtomic } from '../util/storage.js';
import type { WebTriggerKind } from '../web/web-trigger.js';

/** The file a kind's secrets are kept in, inside the plugin's storage folder. */
export function triggerTokenFile(kind: WebTriggerKind): string {
  return `${kind}-tokens.json`;
}

const TOKEN = /^[A-Za-z0-9_-]{32,128}$/;

export interface TriggerToken {
  token: string;
  /** Made just now (the log says so, and where to find it; never the token itself). */
  created: boolean;
  /** The file it is kept in, for the log line that tells the user where to find the address. */
  file: string;
}

export class TriggerTokens {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly storagePath: string, private readonly kind: WebTriggerKind) {}

  /**
   * Forgets the tokens of every camera not in `keep` (the ids configured with this kind of trigger);
   * resolves to how many went. The file is rewritten only when something went, and never made.
   */
  prune(keep: Iterable<string>): Promise<number> {
    const wanted = new Set(keep);
    return this.enqueue(async () => {
      const { file, tokens } = await this.load();
      const stale = [...tokens.keys()].filter((id) => !wanted.has(id));
      if (stale.length === 0) return 0;
      for (const id of stale) tokens.delete(id);
      await save(file, tokens);
      return stale.length;
    });
  }

  /** The camera's token, made (and saved) when it has none. */
  tokenFor(cameraId: string): Promise<TriggerToken> {
    return this.enqueue(async () => {
      const { file, tokens } = await this.load();
      const existing = tokens.get(cameraId);
      if (existing) return { token: existing, created: false, file };
      const token = randomBytes(24).toString('base64url');
      tokens.set(cameraId, token);
      await save(file, tokens);
      return { token, created: true, file };
    });
  }

  /** One read-modify-write at a time, so parallel cameras cannot overwrite each other's tokens. */
  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async load(): Promise<{ file: string; tokens: Map<string, string> }> {
    const file = path.join(await ensureStorageDir(this.storagePath), triggerTokenFile(this.kind));
    const stored = await readJsonFile(file);
    const tokens = new Map<string, string>();
    if (stored !== undefined) {
      if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) throw new Error(`${file} is damaged (not an object); delete it to make new ${this.kind} addresses`);
      for (const [id, token] of Object.entries(stored)) if (typeof token === 'string' && TOKEN.test(token)) tokens.set(id, token);
    }
    return { file, tokens };
  }
}

function save(file: string, tokens: Map<string, string>): Promise<void> {
  return writeFileAtomic(file, `${JSON.stringify(Object.fromEntries(tokens), null, 2)}\n`);
}

const WANTED: Readonly<Record<WebTriggerKind, (camera: CameraConfig) => boolean>> = {
  doorbell: (camera) => camera.doorbell?.httpTrigger === true,
  motion: (camera) => camera.motionHttpTrigger,
};

/** Whether the camera's settings ask for its web trigger of this kind (so its secret is kept). */
export function wantsWebTrigger(camera: CameraConfig, kind: WebTriggerKind): boolean {
  return WANTED[kind](camera);
}
