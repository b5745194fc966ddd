/**
 * The last good snapshot of one camera, kept on disk so that a tile has a picture at once after a
 * restart, or while an idle camera is woken for a fresh one (3.6–4.2 s), instead of "No picture yet".
 *
 * It lives in `<storage>/webrtc-cameras/snapshots/<camera id>.jpg` (folder 0700, file 0600: these are
 * pictures of someone's home), written through the access-control storage's atomic private writer,
 * and its modification time is set to the capture time, so the file alone says how old it is. A
 * camera's pictures are saved at most once per `minIntervalMs` (default 30 s): the newest one offered
 * in between is written when the interval is over, so the disk sees one small write per camera per
 * half minute at most, however often the tiles and the Home app ask.
 */
import { mkdir, readdir, readFile, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { CAMERA_ID_MAX_LENGTH, CAMERA_ID_PATTERN } from '../config/camera-id.js';
import { realTimers, type TimerHandle, type TimerSeam } from '../media/timers.js';
import type { Logger } from '../util/logger.js';
import { STORAGE_FOLDER, ensureStorageDir, writeFileAtomic } from '../util/storage.js';
import { isJpeg } from './keyframe-snapshot.js';

export const SNAPSHOT_FOLDER = 'snapshots';
/** A saved picture larger than this is not a snapshot this plugin wrote: it is not loaded. */
const MAX_SAVED_BYTES = 8 * 1024 * 1024;

export interface SavedSnapshot {
  image: Buffer;
  /** When the picture was taken (ms since the epoch). */
  capturedAt: number;
}

export interface SnapshotStoreOptions {
  /** Homebridge's storage path (absolute). */
  storagePath: string;
  cameraId: string;
  log: Logger;
  /** At most one write per this long (default 30 000 ms). */
  minIntervalMs?: number;
  now?: () => number;
  timers?: TimerSeam;
}

/** A whole JPEG: starts with SOI and ends with EOI (a cut-off file does not). */
export function isCompleteJpeg(image: Buffer): boolean {
  return isJpeg(image) && image.length >= 4 && image[image.length - 2] === 0xff && image[image.length - 1] === 0xd9;
}

export class SnapshotStore {
  readonly file: string;
  private latest: SavedSnapshot | undefined;
  private loading: Promise<void> | undefined;
  private lastWriteAt = -Infinity;
  private dirty = false;
  private timer: TimerHandle | undefined;
  private writing: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly minIntervalMs: number;
  private readonly now: () => number;
  private readonly timers: TimerSeam;

  constructor(private readonly options: SnapshotStoreOptions) {
    // The id becomes a file name: only the config's own id syntax, checked again here, ever does.
    const id = options.cameraId;
    if (id.length > CAMERA_ID_MAX_LENGTH || !CAMERA_ID_PATTERN.test(id)) throw new Error(`"${id}" is not a valid camera id`);
    if (!path.isAbsolute(options.storagePath)) throw new Error(`The storage path must be absolute (got "${options.storagePath}")`);
    this.file = path.join(options.storagePath, STORAGE_FOLDER, SNAPSHOT_FOLDER, `${id}.jpg`);
    this.minIntervalMs = options.minIntervalMs ?? 30_000;
    this.now = options.now ?? Date.now;
    this.timers = options.timers ?? realTimers;
  }

  /** Reads the saved picture into memory (once). A missing, damaged or foreign file is ignored. */
  load(): Promise<void> {
    this.loading ??= this.readSaved().then((saved) => {
      // A picture offered while the file was being read is newer than the file.
      if (saved && !this.latest) this.latest = saved;
    });
    return this.loading;
  }

  /** The newest picture: offered in this run, else the one loaded from disk. */
  async last(): Promise<SavedSnapshot | undefined> {
    await this.load();
    return this.latest;
  }

  /** A fresh good picture: kept in memory at once, written now or when the write interval is over. */
  offer(image: Buffer, capturedAt = this.now()): void {
    if (this.closed || !isCompleteJpeg(image)) return;
    this.latest = { image, capturedAt };
    this.dirty = true;
    if (this.timer !== undefined) return;
    const wait = this.lastWriteAt + this.minIntervalMs - this.now();
    if (wait <= 0) this.writeNow();
    else this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      this.writeNow();
    }, wait);
  }

  /** Resolves when every write started so far is on disk (or has failed, which is logged). */
  written(): Promise<void> {
    return this.writing;
  }

  /** Stops the timer and writes a picture still waiting for its interval, so a restart finds it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.dirty) this.writeNow();
    await this.writing;
  }

  private writeNow(): void {
    const picture = this.latest;
    if (!picture || !this.dirty) return;
    this.dirty = false;
    this.lastWriteAt = this.now();
    this.writing = this.writing.then(() => this.write(picture));
  }

  private async write(picture: SavedSnapshot): Promise<void> {
    try {
      await ensureStorageDir(this.options.storagePath);
      await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
      await writeFileAtomic(this.file, picture.image);
      const at = new Date(picture.capturedAt);
      // The file's time is the capture time, which may be up to one interval before the write.
      await utimes(this.file, at, at);
      this.options.log.debug(`snapshot: saved the last good picture (${picture.image.length} bytes) for the next start`);
    } catch (error) {
      // A full or read-only disk costs the saved picture, never the camera.
      this.options.log.debug(`snapshot: could not save the last good picture: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private async readSaved(): Promise<SavedSnapshot | undefined> {
    try {
      const info = await stat(this.file);
      if (!info.isFile() || info.size > MAX_SAVED_BYTES) {
        this.options.log.debug(`snapshot: ignoring the saved picture ${this.file}: not a file of at most ${MAX_SAVED_BYTES} bytes`);
        return undefined;
      }
      const image = await readFile(this.file);
      if (!isCompleteJpeg(image)) {
        this.options.log.debug(`snapshot: ignoring the saved picture ${this.file}: it is not a complete JPEG (damaged?)`);
        return undefined;
      }
      return { image, capturedAt: info.mtimeMs };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.options.log.debug(`snapshot: could not read the saved picture ${this.file}: ${error instanceof Error ? error.message : String(error)}`);
      }
      return undefined;
    }
  }
}

/**
 * Deletes the saved pictures of cameras no longer in the config (and their temp files a crash left), so a
 * removed camera's picture of someone's home does not stay on disk. Only names this store writes are
 * touched; anything else in the folder is left alone. Failures are debug lines, never errors.
 */
export async function pruneSavedSnapshots(storagePath: string, cameraIds: Iterable<string>, log: Logger): Promise<string[]> {
  const folder = path.join(storagePath, STORAGE_FOLDER, SNAPSHOT_FOLDER);
  const keep = new Set([...cameraIds].map((id) => `${id}.jpg`));
  let names: string[];
  try {
    names = await readdir(folder);
  } catch {
    return []; // no folder yet: nothing was ever saved
  }
  const removed: string[] = [];
  for (const name of names) {
    const id = /^(.+)\.jpg(?:\.[0-9]+\.[0-9a-f]+\.tmp)?$/.exec(name)?.[1];
    // A configured camera's temp file may be a write in progress: left alone.
    if (id === undefined || id.length > CAMERA_ID_MAX_LENGTH || !CAMERA_ID_PATTERN.test(id) || keep.has(`${id}.jpg`)) continue;
    try {
      await unlink(path.join(folder, name));
      removed.push(name);
    } catch (error) {
      log.debug(`snapshot: could not delete ${name} (no camera uses it): ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (removed.length) log.debug(`snapshot: deleted saved pictures no configured camera uses: ${removed.join(', ')}`);
  return removed;
}
