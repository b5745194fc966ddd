/**
 * The secret of each doorbell camera's HTTP trigger (`POST /doorbell/<camera>/<token>`), made once
 * and kept in `<storage>/webrtc-cameras/doorbell-tokens.json` (mode 0600), so the address the user
 * typed into the camera keeps working across restarts. One store per plugin: cameras start in
 * parallel, and the file is read and written by one queue so two new tokens cannot overwrite each
 * other. Delete a camera's entry to make a new address (the old one then stops working).
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { ensureStorageDir, readJsonFile, writeFileAtomic } from '../util/storage.js';

export const DOORBELL_TOKEN_FILE = 'doorbell-tokens.json';
const TOKEN = /^[A-Za-z0-9_-]{32,128}$/;

export interface DoorbellToken {
  token: string;
  /** Made just now: the only time the address is written to the log. */
  created: boolean;
}

export class DoorbellTokens {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly storagePath: string) {}

  /** The camera's token, made (and saved) when it has none. */
  tokenFor(cameraId: string): Promise<DoorbellToken> {
    const next = this.queue.then(() => this.readOrCreate(cameraId));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async readOrCreate(cameraId: string): Promise<DoorbellToken> {
    const file = path.join(await ensureStorageDir(this.storagePath), DOORBELL_TOKEN_FILE);
    const stored = await readJsonFile(file);
    const tokens = new Map<string, string>();
    if (stored !== undefined) {
      if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) throw new Error(`${file} is damaged (not an object); delete it to make new doorbell addresses`);
      for (const [id, token] of Object.entries(stored)) if (typeof token === 'string' && TOKEN.test(token)) tokens.set(id, token);
    }
    const existing = tokens.get(cameraId);
    if (existing) return { token: existing, created: false };
    const token = randomBytes(24).toString('base64url');
    tokens.set(cameraId, token);
    await writeFileAtomic(file, `${JSON.stringify(Object.fromEntries(tokens), null, 2)}\n`);
    return { token, created: true };
  }
}
