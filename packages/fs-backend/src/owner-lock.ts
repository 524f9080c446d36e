import { rmdirSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import type { BigIntStats } from "node:fs";
import { join } from "node:path";
import { StoreLockedError, type StoreOwner } from "@aiokv/core";
import type { LockOptions } from "proper-lockfile";

const ownerFile = "owner.json";

/** The locks this process holds, released at exit by `releaseAtExit`. */
const held = new Set<OwnerLock>();
let exitHookInstalled = false;

/**
 * The owner lock of a state file: proper-lockfile's `<file>.lock` directory (created atomically,
 * its mtime refreshed while held, stale after `staleAfter` ms), plus an `owner.json` inside it
 * naming the holder's pid and host, so that the lock of a dead process on this host is taken over
 * at once instead of after the stale time.
 */
export class OwnerLock {
  readonly #directory: string;
  readonly #owner: StoreOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  #release: (() => Promise<void>) | undefined;
  /** The identity of the owner file this holder wrote: a new holder's file has another. */
  #written: BigIntStats | undefined;
  #lost: Error | undefined;

  private constructor(directory: string) {
    this.#directory = directory;
  }

  /**
   * Takes the lock of `target`, taking over a dead or stale holder's.
   *
   * @throws {StoreLockedError} When a live holder has it.
   */
  static async acquire(target: string, location: string, staleAfter: number): Promise<OwnerLock> {
    const lock = new OwnerLock(`${target}.lock`);
    await lock.#take(target, location, staleAfter);
    held.add(lock);
    releaseAtExit();
    const temp = join(lock.#directory, `${ownerFile}.tmp`);
    await writeFile(temp, JSON.stringify(lock.#owner));
    await rename(temp, join(lock.#directory, ownerFile));
    lock.#written = await stat(join(lock.#directory, ownerFile), { bigint: true });
    return lock;
  }

  async #take(target: string, location: string, staleAfter: number): Promise<void> {
    const lockfile = await loadLockfile();
    const options: LockOptions = {
      realpath: false,
      lockfilePath: this.#directory,
      stale: staleAfter,
      update: Math.max(1000, Math.floor(staleAfter / 2)),
      retries: 0,
      onCompromised: (error: Error) => {
        this.#lost = error;
      },
    };
    try {
      this.#release = await lockfile.lock(target, options);
      return;
    } catch (error) {
      // ENOTEMPTY: proper-lockfile found the lock stale, and its rmdir met the owner file.
      const code = (error as { code?: unknown }).code;
      if (code !== "ELOCKED" && code !== "ENOTEMPTY") throw error;
      const owner = await readOwner(this.#directory);
      if (!(await takeOver(this.#directory, owner, staleAfter))) throw new StoreLockedError(location, owner, { cause: error });
    }
    try {
      this.#release = await lockfile.lock(target, options);
    } catch (error) {
      if ((error as { code?: unknown }).code !== "ELOCKED") throw error;
      throw new StoreLockedError(location, await readOwner(this.#directory), { cause: error });
    }
  }

  /**
   * Checks, right before a write replaces the file, that this holder still owns it: proper-lockfile
   * notices a takeover only at its next refresh, so a holder that was paused past the stale time
   * would otherwise write over its successor's file.
   *
   * @throws {StoreLockedError} When the lock was taken over or removed.
   */
  async assertHeld(location: string): Promise<void> {
    if (this.#lost === undefined) {
      // One stat, not a read: a takeover removes this file, and the new holder's has another identity.
      const now = await stat(join(this.#directory, ownerFile), { bigint: true }).catch(() => undefined);
      const written = this.#written;
      if (now?.ino !== written?.ino || now?.mtimeNs !== written?.mtimeNs || now?.ctimeNs !== written?.ctimeNs) {
        this.#lost = new Error(`The lock ${this.#directory} is no longer this process's`);
      }
    }
    if (this.#lost !== undefined) {
      throw new StoreLockedError(location, await readOwner(this.#directory), { cause: this.#lost });
    }
  }

  async release(): Promise<void> {
    held.delete(this);
    if (this.#lost !== undefined) return;
    // proper-lockfile removes the directory with rmdir, which needs it empty.
    await rm(join(this.#directory, ownerFile), { force: true });
    await this.#release?.();
  }

  /** Releases the lock synchronously, as the process exits. */
  releaseNow(): void {
    if (this.#lost !== undefined) return;
    rmSync(join(this.#directory, ownerFile), { force: true });
    try {
      rmdirSync(this.#directory);
    } catch {
      // Someone else's by now, or already gone: nothing of ours to remove.
    }
  }
}

// proper-lockfile releases locks on exit through signal-exit, which re-raises SIGXFSZ: a signal Node
// ignores, so that a write past RLIMIT_FSIZE fails with EFBIG. While signal-exit is its only listener
// it kills the process instead, so it is loaded only when a lock is taken, after a listener of ours
// that keeps Node's default.
async function loadLockfile(): Promise<typeof import("proper-lockfile")> {
  if (process.platform !== "win32" && process.listenerCount("SIGXFSZ") === 0) process.on("SIGXFSZ", () => {});
  return (await import("proper-lockfile")).default;
}

// proper-lockfile's own exit hook runs first and fails on the non-empty directory. A process killed
// by a signal gets no exit event: its lock is taken over at once by the next owner on this host.
function releaseAtExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const lock of held) lock.releaseNow();
  });
}

async function readOwner(directory: string): Promise<StoreOwner | undefined> {
  try {
    const owner = JSON.parse(await readFile(join(directory, ownerFile), "utf8")) as Partial<StoreOwner>;
    return typeof owner.pid === "number" && typeof owner.host === "string" && typeof owner.since === "string"
      ? { pid: owner.pid, host: owner.host, since: owner.since }
      : undefined;
  } catch {
    // Absent while a new holder is between taking the directory and naming itself: not stale.
    return undefined;
  }
}

/** Readies a dead or stale holder's lock for proper-lockfile to take over; false when it is live. */
async function takeOver(directory: string, owner: StoreOwner | undefined, staleAfter: number): Promise<boolean> {
  const dead = owner !== undefined && owner.host === hostname() && !isAlive(owner.pid);
  const updated = await stat(directory).then((s) => s.mtimeMs, () => 0);
  if (!dead && Date.now() - updated <= staleAfter) return false;
  await rm(join(directory, ownerFile), { force: true });
  // An old mtime is what proper-lockfile calls stale: it then replaces the directory itself.
  // (Removing the owner file has just made the directory's mtime new.)
  await utimes(directory, 0, 0).catch(() => {});
  return true;
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, but another user's.
    return (error as { code?: unknown }).code === "EPERM";
  }
}
