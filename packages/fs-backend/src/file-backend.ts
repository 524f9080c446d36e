import { randomBytes } from "node:crypto";
import { close as closeCallback, closeSync, constants, fdatasync, ftruncate, open as openCallback, writev, type Stats } from "node:fs";
import { promisify } from "node:util";
import { link, lstat, mkdir, open, readdir, readFile, readlink, realpath, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { errorCode, StoreLockedError, unlessAbsent, UnsyncedWriteError, type Backend } from "@aiokv/core";
import { FileWatcher, resolveLinks } from "./file-watcher.js";
import { OwnerLock } from "./owner-lock.js";

/** Options of {@link FileBackend}. Its owner lock is on unless `AioKV`'s `lock` option is `false`. */
export interface FileBackendOptions {
  /**
   * Sync each write to disk (the file, then its directory after the rename) before it resolves,
   * so that a resolved write survives a power loss, not only a crash of the process. Off, a
   * write is still atomic and survives a process crash, at a fraction of the cost.
   * @default true
   */
  readonly sync?: boolean;
  /**
   * Permission bits of a state file that aiokv creates; an existing file keeps its own.
   * @default 0o600
   */
  readonly mode?: number;
  /**
   * How long (ms) after its holder last refreshed it an owner lock counts as stale and may be taken
   * over by another process. A holder refreshes it every `staleAfter / 3` ms and before each write;
   * the lock of a dead process on this host is taken over at once. From 2000 to 86400000 (a day).
   * @default 10000
   */
  readonly staleAfter?: number;
  /**
   * For a follower (`readOnly: true`): how often (ms) `watch()` polls the file's identity, size and
   * times, which catches what `fs.watch` misses (another host's writes on a network file system, a
   * directory created after the follower started). Each poll is one `stat`. From 10 to 3600000.
   * @default 1000
   */
  readonly pollInterval?: number;
  /**
   * For a follower: watch the file's directory with `fs.watch`, which reports a change at once.
   * `false` leaves the poll alone (where `fs.watch` is unreliable or costly).
   * @default true
   */
  readonly fsWatch?: boolean;
}

/**
 * A JSON document in one file, replaced atomically: the text goes to a temp file beside it, which
 * is synced and renamed over the file, so a crash leaves the old file or the new one.
 *
 * Not write-file-atomic: it ignores the count of its one `fs.write`, so on a filling disk it renames
 * a truncated temp file over the good one. Here every byte is written or the write fails.
 *
 * @example
 * ```ts
 * import { AioKV } from "@aiokv/core";
 * import { FileBackend } from "@aiokv/fs-backend";
 *
 * const kv = new AioKV(new FileBackend("state.json", { sync: false }));
 * ```
 */
export class FileBackend implements Backend {
  /** The file's absolute path. */
  readonly location: string;
  readonly #sync: boolean;
  readonly #mode: number;
  readonly #staleAfter: number;
  readonly #pollInterval: number;
  readonly #fsWatch: boolean;
  #lock: OwnerLock | undefined;
  /** The journal's descriptor, open between appends. */
  #journal: { fd: number } | undefined;
  /**
   * The journal's path, `<file>.journal` beside the file the path names (a symlink's target, where
   * the lock is too, so that every path to one file finds the one journal).
   */
  get journalLocation(): string {
    return `${resolveLinks(this.location)}.journal`;
  }

  /** {@link journalLocation}, without blocking. */
  async #journalPath(): Promise<string> {
    return `${await followLinks(this.location)}.journal`;
  }


  /**
   * @param file The state file's path; relative paths resolve against the current directory now.
   * @param options Syncing and the new file's mode.
   * @throws {TypeError} When `file` is not a non-empty string.
   * @throws {RangeError} When `mode` is not a whole number from 0 to 0o7777, or `staleAfter` or `pollInterval` is out of its range.
   */
  constructor(file: string, options: FileBackendOptions = {}) {
    if (typeof file !== "string" || file === "") {
      throw new TypeError(`Cannot open store: expected a file path, received ${JSON.stringify(file)}`);
    }
    const mode = options.mode ?? 0o600;
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
      throw new RangeError(`Cannot open store "${file}": mode must be a whole number from 0 to 0o7777, received ${mode}`);
    }
    const staleAfter = options.staleAfter ?? 10_000;
    if (!Number.isInteger(staleAfter) || staleAfter < minStaleAfter || staleAfter > maxStaleAfter) {
      throw new RangeError(
        `Cannot open store "${file}": staleAfter must be a whole number of milliseconds from ${minStaleAfter} to ${maxStaleAfter}, received ${staleAfter}`,
      );
    }
    const pollInterval = options.pollInterval ?? 1000;
    if (!Number.isInteger(pollInterval) || pollInterval < minPollInterval || pollInterval > maxPollInterval) {
      throw new RangeError(
        `Cannot open store "${file}": pollInterval must be a whole number of milliseconds from ${minPollInterval} to ${maxPollInterval}, received ${pollInterval}`,
      );
    }
    this.location = resolve(file);
    this.#sync = options.sync ?? true;
    this.#mode = mode;
    this.#staleAfter = staleAfter;
    this.#pollInterval = pollInterval;
    this.#fsWatch = options.fsWatch ?? true;
  }

  /**
   * Calls `onChange` soon after the file may have changed, written by any process, until the
   * returned function is called: `fs.watch` on the file's directory (filtered to its name, since
   * each write renames a new file into place) reports a change at once, and a poll of the file's
   * `stat` every `pollInterval` ms catches what that misses. Neither keeps the process alive.
   */
  watch(onChange: () => void): () => void {
    // The journal too: in journal mode, most writes append to it and leave the file alone.
    const watchers = [this.location, this.journalLocation].map((file) => new FileWatcher(file, onChange, this.#pollInterval, this.#fsWatch));
    return () => {
      for (const watcher of watchers) watcher.stop();
    };
  }

  /**
   * Takes the owner lock (`<file>.lock`), then removes the temp files that killed writers of this
   * file left behind: with the lock held, no one else is writing one.
   */
  async lock(): Promise<void> {
    if (this.#lock) throw new StoreLockedError(this.location, this.#lock.owner);
    const target = await followLinks(this.location);
    await mkdir(dirname(target), { recursive: true });
    this.#lock = await OwnerLock.acquire(target, this.location, this.#staleAfter);
    // The journal's too: a paused owner's temp journal, renamed later, would replace this owner's.
    await removeLeftovers(target, `${target}.journal`);
    await this.#sealJournal(`${target}.journal`);
  }

  /**
   * Copies a journal found on taking the lock into a new file in its place: an earlier owner,
   * paused between its lock check and its append while this one took over, may still hold the
   * old one open, and what it writes there must never be read.
   */
  async #sealJournal(path: string): Promise<void> {
    const bytes = await unlessAbsent(readFile(path));
    if (bytes === undefined) return;
    // Housekeeping, as the leftovers are: a full disk leaves the journal as it is, and the lock taken.
    await this.#replace(path, await unlessAbsent(stat(this.location)), [bytes]).catch(() => {});
  }

  async unlock(): Promise<void> {
    const lock = this.#lock;
    this.#lock = undefined;
    await this.#closeJournal();
    await lock?.release();
  }

  /** The journal's bytes, undecoded, as `read()` gives the file's. */
  async readJournal(): Promise<Uint8Array | undefined> {
    return unlessAbsent(readFile(await this.#journalPath()));
  }

  /**
   * Starts a journal: these bytes replace whatever is at its path, as `write()` replaces the file
   * (a temp file renamed over it, synced with its directory), with the state file's mode. A new
   * file each time: an owner paused while its lock was taken over may still hold the old one
   * open, and whatever it writes there is never read.
   */
  async writeJournal(pieces: readonly Uint8Array[]): Promise<void> {
    await this.#closeJournal();
    const [path, existing] = await Promise.all([this.#journalPath(), unlessAbsent(stat(this.location))]);
    await this.#replace(path, existing, pieces);
  }

  /**
   * Appends to the journal, which `writeJournal` started; rejects (ENOENT) where there is none,
   * never making one. Synced: `fdatasync` before it resolves. The journal stays open between
   * appends, opened while this handle held the lock: an owner taking the lock over copies the
   * journal into a new file (see `lock()`), so what this handle writes after losing the lock goes
   * to a file nobody reads, and the lock, checked after the write, says it was refused. Every
   * byte is written or it rejects (the store then cuts the journal back to where the record
   * began). A plain descriptor, closed by `close()`, `unlock()`, or when the backend is garbage
   * collected: a store that is never closed (a test's) leaks nothing and warns of nothing.
   */
  async appendJournal(pieces: readonly Uint8Array[]): Promise<void> {
    const fd = this.#journal?.fd ?? (await this.#openJournal());
    await writeAll((buffers) => writevFd(fd, buffers), pieces, null);
    await Promise.all([
      this.#sync
        ? fdatasyncFd(fd).catch((error: unknown) => {
            // The bytes are in the journal (a reader sees them): what failed is only making them durable.
            throw new UnsyncedWriteError(error);
          })
        : undefined,
      this.#lock?.assertHeld(this.location),
    ]);
  }

  /** Opens the journal to append, as its owner; kept until the journal is replaced, removed or the lock given up. */
  async #openJournal(): Promise<number> {
    const path = await this.#journalPath();
    const fd = await openFd(path, constants.O_WRONLY | constants.O_APPEND).catch(async (error: unknown) => {
      // Gone: removed by a new owner's compaction, while this one was paused, says the lock.
      await this.#lock?.assertHeld(this.location);
      throw error;
    });
    this.#journal = { fd };
    openJournals.register(this, fd, this);
    // After the open: a descriptor opened while this handle owns the file is to its own journal.
    await this.#lock?.assertHeld(this.location);
    return fd;
  }

  /** Closes the journal kept open for appends, if any. */
  async #closeJournal(): Promise<void> {
    const journal = this.#journal;
    if (journal === undefined) return;
    this.#journal = undefined;
    openJournals.unregister(this);
    await closeFd(journal.fd).catch(() => {});
  }

  /** Closes the journal kept open for appends. */
  async close(): Promise<void> {
    await this.#closeJournal();
  }

  /**
   * Cuts the journal to its first `length` bytes, through a handle opened before the lock is
   * checked (as an append writes). 0 removes it: renamed aside, the lock checked again (and the
   * journal put back if it was lost meanwhile, unless the new owner started one since), then
   * unlinked, so an owner paused in between never removes the new owner's journal. The directory
   * is not synced: a journal that comes back names the document before, so it is skipped.
   */
  async cutJournal(length: number): Promise<void> {
    const path = await this.#journalPath();
    if (length > 0) {
      const fd = this.#journal?.fd ?? (await this.#openJournal());
      await this.#lock?.assertHeld(this.location);
      await ftruncateFd(fd, length);
      return;
    }
    await this.#closeJournal();
    await this.#lock?.assertHeld(this.location);
    const aside = tempBeside(path);
    if ((await unlessAbsent(rename(path, aside).then(() => true))) === undefined) return;
    try {
      await this.#lock?.assertHeld(this.location);
    } catch (error) {
      await link(aside, path)
        .then(() => unlink(aside))
        .catch(() => {});
      throw error;
    }
    await unlessAbsent(unlink(aside));
  }

  /** The file's bytes, undecoded: AioKV decodes them strictly, so bytes that are not UTF-8 are reported, not replaced. */
  read(): Promise<Uint8Array | undefined> {
    return unlessAbsent(readFile(this.location));
  }

  async write(pieces: readonly Uint8Array[]): Promise<void> {
    const { target, existing } = await this.#target();
    await this.#replace(target, existing, pieces);
  }

  /**
   * Replaces `target` whole: a temp file beside it, written, synced, renamed over it, and the
   * directory synced. The new file takes `existing`'s mode (and owner, as root), else `mode`.
   */
  async #replace(target: string, existing: Stats | undefined, pieces: readonly Uint8Array[]): Promise<void> {
    const temp = tempBeside(target);
    let handle: FileHandle | undefined;
    try {
      const file = await openNew(temp);
      handle = file;
      // Independent calls on the thread pool run side by side: only the data is on the critical path.
      await Promise.all([
        writeAll((buffers, position) => file.writev(buffers, position), pieces),
        file.chmod(existing ? existing.mode & 0o7777 : this.#mode),
        existing && process.getuid?.() === 0 ? file.chown(existing.uid, existing.gid) : undefined,
      ]);
      if (this.#sync) await file.sync();
      handle = undefined;
      await Promise.all([file.close(), this.#lock?.assertHeld(this.location)]);
      await rename(temp, target);
    } catch (error) {
      await handle?.close().catch(() => {});
      await unlink(temp).catch(() => {});
      throw error;
    }
    if (this.#sync) {
      // The rename is done: the file holds the new text. Saying "failed" would make the store
      // roll back a change that is in place, so the error says what is true instead.
      await syncDirectory(dirname(target)).catch((error: unknown) => {
        throw new UnsyncedWriteError(error);
      });
    }
  }

  /** The file to replace and its stats: one lstat unless the state file is a symlink. */
  async #target(): Promise<{ target: string; existing: Stats | undefined }> {
    let info: Stats;
    try {
      info = await lstat(this.location);
    } catch (error) {
      if (errorCode(error) !== "ENOENT") throw error;
      const target = await followLinks(this.location);
      return { target, existing: target === this.location ? undefined : await unlessAbsent(stat(target)) };
    }
    if (!info.isSymbolicLink()) return { target: this.location, existing: info };
    const target = await followLinks(this.location);
    return { target, existing: await unlessAbsent(stat(target)) };
  }

  /**
   * Renames the file (a symlink's target) to `<file>.<suffix>` beside it, for `quarantine()`:
   * the evidence stays, and the next write starts a new file.
   */
  async moveAside(suffix: string): Promise<string | undefined> {
    const moved = (await this.#moveTarget((target) => `${target}.${suffix}`))?.moved;
    // The journal goes with it (after it: a journal left behind names the document that went, so it is skipped).
    await this.#closeJournal();
    const path = await this.#journalPath();
    const journal = await unlessAbsent(rename(path, `${path}.${suffix}`).then(() => `${path}.${suffix}`));
    return moved ?? journal;
  }

  /** Removes the file (a symlink's target, so that a link stays one): renamed to a temp name, then unlinked. */
  async remove(): Promise<void> {
    const done = await this.#moveTarget(tempBeside);
    // The rename, synced, removed the file; a temp file a crash leaves is the next owner's to
    // remove. Already gone: a new owner that took over while this one was paused removed it.
    if (done !== undefined) await unlessAbsent(unlink(done.moved));
  }

  /**
   * Renames the file to `to(target)` as its owner, and syncs the directory. Ownership is checked
   * again after the rename: an owner paused between its check and the rename, whose lock was
   * taken over meanwhile, puts the file back (unless the new owner has written one since) and is
   * refused, so that it never removes or moves the new owner's file.
   *
   * @returns The target and where it went; `undefined` when the file is absent.
   */
  async #moveTarget(to: (target: string) => string): Promise<{ target: string; moved: string } | undefined> {
    const target = await followLinks(this.location);
    await this.#lock?.assertHeld(this.location);
    // A rename would move a directory too, which unlink() refuses: a directory is not a state file.
    const info = await unlessAbsent(lstat(target));
    if (info === undefined) return undefined;
    if (info.isDirectory()) throw Object.assign(new Error(`EISDIR: illegal operation on a directory, unlink '${target}'`), { code: "EISDIR" });
    const moved = to(target);
    if ((await unlessAbsent(rename(target, moved).then(() => true))) === undefined) return undefined;
    try {
      await this.#lock?.assertHeld(this.location);
    } catch (error) {
      // link() fails when the new owner has written a file since: that one is newer.
      await link(moved, target)
        .then(() => unlink(moved))
        .catch(() => {});
      throw error;
    }
    await this.#syncDirectory(target);
    return { target, moved };
  }

  async #syncDirectory(target: string): Promise<void> {
    if (!this.#sync) return;
    await syncDirectory(dirname(target)).catch((error: unknown) => {
      throw new UnsyncedWriteError(error);
    });
  }
}

const openFd = promisify(openCallback);
const closeFd = promisify(closeCallback);
const fdatasyncFd = promisify(fdatasync);
const ftruncateFd = promisify(ftruncate);
const writevFd = (fd: number, buffers: Uint8Array[]): Promise<{ bytesWritten: number }> =>
  new Promise((resolve, reject) => writev(fd, buffers, (error, bytesWritten) => (error ? reject(error) : resolve({ bytesWritten }))));

/** Closes the journal descriptor of a backend collected without `close()`. */
const openJournals = new FinalizationRegistry<number>((fd) => {
  try {
    closeSync(fd);
  } catch {
    // Already closed: nothing to free.
  }
});

const tempSuffix = ".aiokv.tmp";

/** A new temp file's name beside `target`: rename is atomic only within one file system. */
function tempBeside(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString("hex")}${tempSuffix}`);
}

const minPollInterval = 10;
const maxPollInterval = 3_600_000;

const minStaleAfter = 2000;
// A day: far past any pause worth waiting out, and its refresh period fits a timer (2^31 ms).
const maxStaleAfter = 86_400_000;

/** Whether `name` is a temp file that a write of `target` makes: `.<name>.<pid>.<8 hex>.aiokv.tmp`. */
function isTempOf(target: string, name: string): boolean {
  const prefix = `.${basename(target)}.`;
  // Exactly that shape: "state.json.bak"'s temp files also start with ".state.json.".
  return name.startsWith(prefix) && name.endsWith(tempSuffix) && /^\d+\.[0-9a-f]{8}$/.test(name.slice(prefix.length, -tempSuffix.length));
}

// Housekeeping: a directory that cannot be listed keeps its leftovers, and the lock stays taken.
async function removeLeftovers(...targets: string[]): Promise<void> {
  // One listing: the targets share a directory (the file and its journal).
  const directory = dirname(targets[0] ?? "");
  const names = await readdir(directory).catch(() => []);
  const leftovers = names.filter((name) => targets.some((target) => isTempOf(target, name)));
  await Promise.all(leftovers.map((name) => unlink(join(directory, name)).catch(() => {})));
}

async function openNew(path: string, mode = 0o600, flags: string | number = "wx"): Promise<FileHandle> {
  try {
    return await open(path, flags, mode);
  } catch (error) {
    if (errorCode(error) !== "ENOENT") throw error;
    await mkdir(dirname(path), { recursive: true });
    return await open(path, flags, mode);
  }
}

// One writev of every piece. A short write (a filling disk, RLIMIT_FSIZE, more pieces than
// IOV_MAX) writes the rest again, which then fails with the real error (ENOSPC, EFBIG) instead of
// leaving a truncated file to be renamed into place.
async function writeAll(
  write: (buffers: Uint8Array[], position: number | undefined) => Promise<{ bytesWritten: number }>,
  pieces: readonly Uint8Array[],
  start: number | null = 0,
): Promise<void> {
  let rest = pieces.filter((piece) => piece.length > 0);
  // null: at the end of a file opened to append, where each write goes.
  let position = start;
  while (rest.length > 0) {
    const { bytesWritten } = await write(rest, position ?? undefined);
    if (bytesWritten <= 0) throw new Error(`Cannot write: the file system accepted 0 of ${byteLength(rest)} bytes`);
    if (position !== null) position += bytesWritten;
    rest = dropBytes(rest, bytesWritten);
  }
}

function byteLength(pieces: readonly Uint8Array[]): number {
  return pieces.reduce((total, piece) => total + piece.length, 0);
}

/** The pieces after their first `count` bytes. */
function dropBytes(pieces: readonly Uint8Array[], count: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  let skip = count;
  for (const piece of pieces) {
    if (skip >= piece.length) skip -= piece.length;
    else {
      rest.push(skip > 0 ? piece.subarray(skip) : piece);
      skip = 0;
    }
  }
  return rest;
}

/** The file a path names, following symlinks even when the file they point to is absent. */
async function followLinks(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (error) {
    if (errorCode(error) !== "ENOENT") throw error;
  }
  let current = path;
  for (let hops = 0; hops < 40; hops++) {
    let link: string;
    try {
      link = await readlink(current);
    } catch (error) {
      if (errorCode(error) === "EINVAL" || errorCode(error) === "ENOENT") return current;
      throw error;
    }
    current = resolve(dirname(current), link);
  }
  throw Object.assign(new Error(`Cannot follow "${path}": too many symbolic links`), { code: "ELOOP" });
}

async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
