/**
 * The plugin's private folder under Homebridge's storage path, `<storage>/webrtc-cameras/` (mode
 * 0700), and its atomic private writer: access control keeps the signing secret, the share-link list,
 * the session list and the self-signed certificate there, the local admin its secret, and the
 * snapshot store the last pictures, each file mode 0600. It is a leaf (src/util) because those three
 * live in different layers. File names are constants; nothing a client sends ever becomes part of a
 * path.
 */
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';

export const STORAGE_FOLDER = 'webrtc-cameras';
export const SECRET_FILE = 'secret.key';
const SECRET_BYTES = 32;

/** Creates (or tightens) `<storagePath>/webrtc-cameras` and returns its path. */
export async function ensureStorageDir(storagePath: string): Promise<string> {
  if (!path.isAbsolute(storagePath)) throw new Error(`The storage path must be absolute (got "${storagePath}")`);
  const dir = path.join(storagePath, STORAGE_FOLDER);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode is filtered by the umask and ignored for an existing folder.
  await chmod(dir, 0o700).catch(() => undefined);
  return dir;
}

/**
 * Writes `data` to a new temp file beside `file`, private from its first byte (created 0600, never
 * chmod-ed afterwards) and on disk before it is renamed or linked into place; returns its path.
 */
async function writePrivateTemp(file: string, data: string | Buffer): Promise<string> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return tmp;
}

/**
 * Writes a file so that readers see the old or the new content, never half of it, and so that
 * it is private from its first byte (created 0600, not chmod-ed afterwards).
 */
export async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  const tmp = await writePrivateTemp(file, data);
  try {
    await rename(tmp, file);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
}

/** Reads a JSON file; `undefined` when it does not exist. Throws on unreadable or invalid content. */
export async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return JSON.parse(text) as unknown;
}

/**
 * The HMAC secret: 32 random bytes made once and kept in `secret.key`. Creation is exclusive (a
 * hard link of a fully written temp file), so two processes starting at once agree on one secret.
 * A file with loose permissions is tightened; a damaged one is an error rather than silently
 * replaced, because replacing it would invalidate every share link without telling anyone.
 */
export async function readOrCreateSecret(dir: string): Promise<{ key: Buffer; created: boolean }> {
  const file = path.join(dir, SECRET_FILE);
  const existing = await readSecret(file);
  if (existing) return { key: existing, created: false };
  const key = randomBytes(SECRET_BYTES);
  const tmp = await writePrivateTemp(file, key);
  try {
    await link(tmp, file);
    return { key, created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // Someone else won the race: use theirs.
    const theirs = await readSecret(file);
    if (!theirs) throw new Error(`${SECRET_FILE} appeared but could not be read`);
    return { key: theirs, created: false };
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

async function readSecret(file: string): Promise<Buffer | undefined> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if (data.length !== SECRET_BYTES) {
    throw new Error(
      `${file} is damaged (${data.length} bytes instead of ${SECRET_BYTES}). Delete it to make a new one; existing share links then stop working.`,
    );
  }
  const info = await stat(file);
  if ((info.mode & 0o077) !== 0) await chmod(file, 0o600);
  return data;
}
