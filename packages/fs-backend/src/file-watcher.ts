import { readlinkSync, realpathSync, statSync, watch, type BigIntStats, type FSWatcher } from "node:fs";
import { stat } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { errorCode } from "@aiokv/core";

/**
 * Tells a follower when a state file may have changed. Two sources, either enough alone:
 *
 * - `fs.watch` on the file's directory, filtered to the file's name: the owner replaces the file
 *   by renaming a temp file over it, which gives it a new inode, so a watch on the file itself
 *   would go on watching the old one. It reports a change at once, on this host.
 * - a poll, every `interval` ms, of the file's identity, size and times (`stat`), which catches
 *   what `fs.watch` does not see (a network file system written from another host, a watch that
 *   failed or was never possible because the directory did not exist yet, which it tries again).
 *
 * Neither keeps the process alive (`persistent: false`, an unref'd timer), and `stop()` ends both.
 * Spurious notices are harmless (the follower reads the file again and finds nothing new).
 */
export class FileWatcher {
  readonly #file: string;
  readonly #onChange: () => void;
  /** Turned off for good when the system has no watches left (ENOSPC, EMFILE): the poll does the work. */
  #useFsWatch: boolean;
  readonly #timer: NodeJS.Timeout;
  #watcher: FSWatcher | undefined;
  /** What the last poll saw: the file's identity, size and times, or why it could not see it. */
  #last: string;
  #polling = false;
  #stopped = false;

  /**
   * @param file The state file (symlinks are followed: its target's directory is watched).
   * @param onChange Called, with no arguments, when the file may have changed.
   * @param interval Milliseconds between two polls.
   * @param useFsWatch Whether to watch the directory with `fs.watch` too.
   */
  constructor(file: string, onChange: () => void, interval: number, useFsWatch: boolean) {
    this.#file = file;
    this.#onChange = onChange;
    this.#useFsWatch = useFsWatch;
    // Synchronously, before the follower's first read: a change after this is a change the poll sees.
    this.#last = signatureNow(file);
    this.#watchDirectory();
    this.#timer = setInterval(() => void this.#poll(), interval);
    this.#timer.unref();
  }

  /** Stops both sources; no notice comes after it. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  #notify(): void {
    if (this.#stopped) return;
    try {
      this.#onChange();
    } catch {
      // The follower's callback does not throw; a notice is never worth a crash of the watcher.
    }
  }

  /** Starts `fs.watch` on the directory, unless it runs or is not wanted; a failure leaves the poll alone, to try again. */
  #watchDirectory(): void {
    if (!this.#useFsWatch || this.#watcher !== undefined || this.#stopped) return;
    const target = resolveLinks(this.#file);
    const name = basename(target);
    try {
      const watcher = watch(dirname(target), { persistent: false }, (_event, filename) => {
        // No name (a platform that gives none): any change in the directory may be this one.
        if (filename !== null && filename !== name) return;
        // Seen now, so that the next poll does not report (and the follower re-read) it again.
        this.#last = signatureNow(this.#file);
        this.#notify();
      });
      watcher.on("error", () => {
        // The directory went away, or the watch broke: the poll goes on, and starts another.
        watcher.close();
        if (this.#watcher === watcher) this.#watcher = undefined;
      });
      this.#watcher = watcher;
    } catch (error) {
      // No directory yet (ENOENT): the poll tries again. No watches left: it stops trying, as
      // each try is a blocking call on every poll for as long as the process runs.
      const code = errorCode(error);
      if (code === "ENOSPC" || code === "EMFILE") this.#useFsWatch = false;
    }
  }

  async #poll(): Promise<void> {
    if (this.#polling || this.#stopped) return;
    this.#polling = true;
    try {
      this.#watchDirectory();
      const seen = await signature(this.#file);
      if (seen !== this.#last) {
        this.#last = seen;
        // A change fs.watch did not report: its watch may have died silently (the directory was
        // removed and made again, a symlink now points elsewhere); a new one is cheap.
        this.#watcher?.close();
        this.#watcher = undefined;
        this.#watchDirectory();
        this.#notify();
      }
    } finally {
      this.#polling = false;
    }
  }
}

/** The file's identity, size and times, or why it cannot be seen, as one comparable string. */
function signature(file: string): Promise<string> {
  return stat(file, { bigint: true }).then(describeStats, describeError);
}

/** `signature()`, synchronously: the same string for the same file. */
function signatureNow(file: string): string {
  try {
    const stats = statSync(file, { bigint: true, throwIfNoEntry: false });
    return stats === undefined ? "absent" : describeStats(stats);
  } catch (error) {
    return describeError(error);
  }
}

function describeError(error: unknown): string {
  return errorCode(error) === "ENOENT" ? "absent" : `error ${errorCode(error) ?? String(error)}`;
}

// A rename gives the file a new inode, but a freed inode number may come back: size and the
// nanosecond times tell those apart, as far as the file system's clock ticks.
const describeStats = (stats: BigIntStats): string => `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeNs}:${stats.ctimeNs}`;

/** The file a path names, following symlinks even when what they point to is absent; the path itself when it cannot tell. */
export function resolveLinks(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    // Absent (or unreadable): follow what links there are by hand.
  }
  let current = path;
  for (let hops = 0; hops < 40; hops++) {
    try {
      current = resolve(dirname(current), readlinkSync(current));
    } catch {
      return current;
    }
  }
  return path;
}
