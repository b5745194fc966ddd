/**
 * Viewer accounts from the config. Plaintext passwords (what the Homebridge UI stores in
 * config.json) are hashed once at start-up and compared only through the hash; this module does
 * not keep the plaintext (access control keeps it only to mask it in logs). Values already written
 * as `scrypt$...` are used as they are.
 *
 * `authenticate` always runs exactly one scrypt, against the account's hash or, for an unknown
 * user, against a dummy hash with the default cost, so the answer time does not tell which user
 * names exist. scrypt calls are capped (each takes 32 MiB) and queued; a full queue is refused
 * rather than grown, so a login flood cannot exhaust memory.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../util/logger.js';
import { hashPassword, isPasswordHash, parsePasswordHash, verifyPassword, type PasswordHash } from './password.js';

export interface ViewerAccountConfig {
  username: string;
  password: string;
  /** Camera ids; empty means every camera. */
  cameras: ReadonlyArray<string>;
  admin: boolean;
  /** May move PTZ cameras (the config's `ptz`); absent means no. */
  ptz?: boolean;
  /** May talk through cameras with a speaker (the config's `talk`); absent means no. */
  talk?: boolean;
}

export interface Account {
  readonly username: string;
  /** Admins see every camera, whatever their list says. */
  readonly cameras: 'all' | ReadonlyArray<string>;
  readonly admin: boolean;
  /** May move PTZ cameras; admins may anyway (`canMoveCamera`). */
  readonly ptz: boolean;
  /** May talk through cameras with a speaker; admins may anyway (`canTalk`). */
  readonly talk: boolean;
}

interface StoredAccount extends Account {
  readonly hash: PasswordHash;
}

export const MAX_USERNAME_LENGTH = 128;
export const MAX_PASSWORD_LENGTH = 1024;

/** Raised when too many logins wait for scrypt at once; the route answers 503 with Retry-After. */
export class LoginBusyError extends Error {
  constructor() {
    super('Too many sign-ins at once');
    this.name = 'LoginBusyError';
  }
}

class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly limit: number,
    private readonly maxQueue: number,
  ) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) {
      if (this.waiting.length >= this.maxQueue) throw new LoginBusyError();
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

export class AccountStore {
  private readonly accounts = new Map<string, StoredAccount>();
  private readonly gate = new Semaphore(2, 32);

  private constructor(private readonly dummy: PasswordHash) {}

  /** Hashes the configured passwords. Viewers that cannot be used are logged (by name) and skipped. */
  static async create(viewers: ReadonlyArray<ViewerAccountConfig>, log: Logger): Promise<AccountStore> {
    const store = new AccountStore(await hashPassword(randomBytes(16).toString('hex')));
    for (const viewer of viewers) {
      const username = viewer.username;
      if (!username || username.length > MAX_USERNAME_LENGTH || store.accounts.has(username)) {
        log.error(`Viewer '${username.slice(0, 64)}' is ignored: the user name is empty, too long or used twice.`);
        continue;
      }
      let hash: PasswordHash;
      if (isPasswordHash(viewer.password)) {
        try {
          hash = parsePasswordHash(viewer.password);
        } catch (error) {
          log.error(`Viewer '${username}' cannot log in: ${error instanceof Error ? error.message : String(error)}.`);
          continue;
        }
      } else {
        if (viewer.password.length === 0 || viewer.password.length > MAX_PASSWORD_LENGTH) {
          log.error(`Viewer '${username}' cannot log in: the password must be 1 to ${MAX_PASSWORD_LENGTH} characters.`);
          continue;
        }
        hash = await hashPassword(viewer.password);
      }
      const cameras = viewer.admin || viewer.cameras.length === 0 ? 'all' : Object.freeze([...viewer.cameras]);
      store.accounts.set(username, Object.freeze({ username, cameras, admin: viewer.admin, ptz: viewer.admin || viewer.ptz === true, talk: viewer.admin || viewer.talk === true, hash }));
    }
    return store;
  }

  get size(): number {
    return this.accounts.size;
  }

  get(username: string): Account | undefined {
    const account = this.accounts.get(username);
    return account ? { username: account.username, cameras: account.cameras, admin: account.admin, ptz: account.ptz, talk: account.talk } : undefined;
  }

  /** The account when user name and password match; `undefined` otherwise (same cost either way). */
  async authenticate(username: string, password: string): Promise<Account | undefined> {
    const account = username.length <= MAX_USERNAME_LENGTH ? this.accounts.get(username) : undefined;
    // Over-long input is cut rather than refused early, so it costs the same as any other guess.
    const guess = password.slice(0, MAX_PASSWORD_LENGTH);
    const ok = await this.gate.run(() => verifyPassword(guess, account?.hash ?? this.dummy));
    if (!ok || !account || password.length > MAX_PASSWORD_LENGTH) return undefined;
    return this.get(username);
  }
}
