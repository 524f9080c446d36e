import { randomBytes } from "node:crypto";
import { readdirSync, renameSync, rmSync } from "node:fs";
import { link, mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";
import { StoreLockedError, type StoreOwner } from "@aiokv/core";
import { isAlive, thisProcess, type OwnerRecord } from "./owner-record.js";

/** The locks this process holds, released at exit. */
const held = new Set<OwnerLock>();
let exitHookInstalled = false;

/** How often (ms) a holder marks its lock as alive, as a share of the stale time. */
const refreshShare = 1 / 3;

/**
 * The owner lock of a state file: the directory `<file>.lock`, holding one file per generation of
 * ownership, `<n>.json`, each the record of its holder. The holder is the one with the highest
 * generation. Taking a free, dead or stale lock means creating the next generation's file with
 * `link()`, which fails when it exists: of any number of contenders that saw generation `n`,
 * exactly one creates `n + 1`, and none removes anything but its own attempt, so no winner's lock
 * is ever removed by a loser. A holder checks, before each write, that no later generation exists
 * (fencing), and rewrites its record in place while it lives, which gives the file a new mtime
 * from the kernel's clock: staleness compares that mtime with the mtime of a file just written,
 * so it needs no clock of this process (fake timers fake them all) and agrees across the hosts of a
 * network file system.
 */
export class OwnerLock {
  readonly #directory: string;
  readonly #generation: number;
  readonly #handle: FileHandle;
  readonly #record: Uint8Array;
  readonly #owner: StoreOwner;
  #timer: NodeJS.Timeout | undefined;
  #refreshing = false;
  #lost = false;

  private constructor(directory: string, generation: number, handle: FileHandle, record: OwnerRecord, staleAfter: number) {
    this.#directory = directory;
    this.#generation = generation;
    this.#handle = handle;
    this.#record = Buffer.from(JSON.stringify(record));
    this.#owner = { pid: record.pid, host: record.host, since: record.since };
    // Unref'd: an idle store must not keep its process alive. A fake timer never fires, and the
    // lock then lapses while idle, which costs nothing: a lapsed lock nobody took is taken back.
    this.#timer = setInterval(() => void this.#refresh(), Math.ceil(staleAfter * refreshShare));
    this.#timer.unref();
  }

  /** Who holds this lock: this process. */
  get owner(): StoreOwner {
    return this.#owner;
  }

  /**
   * Takes the lock of `target`, taking over a released, dead or stale holder's.
   *
   * @param target The state file the lock guards (symlinks resolved).
   * @param location The store's location, for errors.
   * @param staleAfter How long (ms) after its last refresh a live holder's lock may be taken over.
   * @throws {StoreLockedError} When a live holder has it.
   */
  static async acquire(target: string, location: string, staleAfter: number): Promise<OwnerLock> {
    const directory = `${target}.lock`;
    const record: OwnerRecord = { ...(await thisProcess()), host: hostname(), since: new Date().toISOString(), token: randomBytes(8).toString("hex") };
    // A contender whose directory was replaced under it (a release removes it) starts again;
    // every other outcome ends the loop, so a few rounds are plenty.
    for (let attempt = 0; attempt < 20; attempt++) {
      const outcome = await attemptOnce(directory, record, location, staleAfter);
      if (outcome === "again") continue;
      const lock = new OwnerLock(directory, outcome.generation, outcome.handle, record, staleAfter);
      held.add(lock);
      releaseAtExit();
      return lock;
    }
    throw new StoreLockedError(location, undefined, { cause: new Error(`The lock ${directory} kept changing while it was being taken`) });
  }

  /**
   * Checks, right before a write replaces the file, that this holder still owns it, and marks the
   * lock alive. A lock that lapsed (a paused process) but that nobody took over is still this
   * holder's, and this makes it fresh again.
   *
   * @throws {StoreLockedError} When a later generation took it over, or the lock was removed.
   */
  async assertHeld(location: string): Promise<void> {
    if (!this.#lost) {
      // One listing: a takeover adds a later generation; a removed lock drops this one's file.
      const names = await readdir(this.#directory).catch(() => [] as string[]);
      if (latest(names) !== this.#generation || !names.includes(`${this.#generation}.json`)) this.#lose();
      // Not awaited: the timer keeps the lock fresh; this only brings a lapsed one back sooner.
      else void this.#refresh();
    }
    if (this.#lost) throw new StoreLockedError(location, await readOwner(this.#directory), { cause: new Error(`The lock ${this.#directory} was taken over`) });
  }

  /** Gives the lock up: removes the directory, unless a later generation took it over. */
  async release(): Promise<void> {
    if (!this.#stop()) return;
    await this.#handle.close().catch(() => {});
    if (this.#lost || latest(await readdir(this.#directory).catch(() => [])) !== this.#generation) return;
    await removeDirectory(this.#directory);
  }

  /** Gives the lock up synchronously, as the process exits. */
  releaseNow(): void {
    if (!this.#stop() || this.#lost) return;
    let names: string[];
    try {
      names = readdirSync(this.#directory);
    } catch {
      return;
    }
    if (latest(names) !== this.#generation) return;
    const gone = goneName(this.#directory);
    try {
      renameSync(this.#directory, gone);
      rmSync(gone, { recursive: true, force: true });
    } catch {
      // Left for the next owner: a dead holder's lock is taken over at once on this host.
    }
  }

  /** Stops refreshing; false when already stopped. */
  #stop(): boolean {
    if (this.#timer === undefined) return false;
    clearInterval(this.#timer);
    this.#timer = undefined;
    held.delete(this);
    return true;
  }

  #lose(): void {
    this.#lost = true;
  }

  // Writing the same bytes again sets the file's mtime from the kernel's clock.
  async #refresh(): Promise<void> {
    if (this.#refreshing || this.#lost || this.#timer === undefined) return;
    this.#refreshing = true;
    try {
      await this.#handle.write(this.#record, 0, this.#record.length, 0);
    } catch {
      // A failed refresh only lets the lock age; the next write's check says whether it is still ours.
    } finally {
      this.#refreshing = false;
    }
  }
}

type Attempt = "again" | { generation: number; handle: FileHandle };

/**
 * One try at taking the lock: write this process's record to a candidate file, read who holds
 * the latest generation, and link the candidate as the next generation when that holder is gone.
 */
async function attemptOnce(directory: string, record: OwnerRecord, location: string, staleAfter: number): Promise<Attempt> {
  await mkdir(directory, { recursive: true });
  const candidate = join(directory, `.${record.token}${candidateSuffix}`);
  try {
    const now = await writeCandidate(candidate, record);
    const names = now === undefined ? undefined : await readdir(directory).catch(ifAbsent(undefined));
    // The directory went away (its holder released it) since it was made: start again.
    if (now === undefined || names === undefined) return "again";
    const current = latest(names);
    if (current !== undefined && !(await isFree(join(directory, `${current}.json`), now, staleAfter))) {
      throw new StoreLockedError(location, await readOwner(directory));
    }
    const generation = (current ?? 0) + 1;
    const path = join(directory, `${generation}.json`);
    try {
      await link(candidate, path);
    } catch (error) {
      // EEXIST: another contender took this generation first; ENOENT: the directory was replaced.
      if (code(error) === "EEXIST" || code(error) === "ENOENT") return "again";
      throw error;
    }
    // A contender that saw an older generation can only have made one that is not the latest.
    const after = await readdir(directory).catch(() => [] as string[]);
    if (latest(after) !== generation || !after.includes(`${generation}.json`)) {
      await unlink(path).catch(() => {});
      return "again";
    }
    const handle = await open(path, "r+").catch(ifAbsent(undefined));
    if (handle === undefined) return "again";
    await clearEarlier(directory, after, generation);
    return { generation, handle };
  } finally {
    await unlink(candidate).catch(() => {});
  }
}

const candidateSuffix = ".candidate";

/** Writes the candidate record; resolves the file's mtime (the kernel's now), or undefined when the directory went away. */
async function writeCandidate(path: string, record: OwnerRecord): Promise<number | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, "wx", 0o600);
  } catch (error) {
    if (code(error) === "ENOENT") return undefined;
    throw error;
  }
  try {
    await handle.writeFile(JSON.stringify(record));
    return (await handle.stat()).mtimeMs;
  } finally {
    // On a full disk too: the caller removes the candidate, so nothing stays to block anyone.
    await handle.close().catch(() => {});
  }
}

/** Whether the holder of the lock file at `path` is gone: released, dead on this host, or stale. */
async function isFree(path: string, now: number, staleAfter: number): Promise<boolean> {
  let modified: number;
  try {
    modified = (await stat(path)).mtimeMs;
  } catch (error) {
    // Cleared by a newer holder in the meantime: look again.
    if (code(error) === "ENOENT") return true;
    throw error;
  }
  const holder = await readRecord(path);
  if (holder !== undefined && holder.host === hostname() && !(await isAlive(holder))) return true;
  return now - modified > staleAfter;
}

/** Removes the generations before `generation` and every other contender's candidate. */
async function clearEarlier(directory: string, names: string[], generation: number): Promise<void> {
  const earlier = names.filter((name) => {
    const n = generationOf(name);
    return n === undefined ? name.endsWith(candidateSuffix) : n < generation;
  });
  await Promise.all(earlier.map((name) => unlink(join(directory, name)).catch(() => {})));
  await removeGone(directory);
}

/** The latest generation among a lock directory's names. */
function latest(names: readonly string[]): number | undefined {
  let found: number | undefined;
  for (const name of names) {
    const n = generationOf(name);
    if (n !== undefined && (found === undefined || n > found)) found = n;
  }
  return found;
}

function generationOf(name: string): number | undefined {
  const match = /^([1-9]\d{0,14})\.json$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/**
 * Removes a lock directory: renamed aside first, so that a contender halfway through taking it
 * fails its `link()` and starts again on a new directory, instead of finishing in this one.
 */
async function removeDirectory(directory: string): Promise<void> {
  const gone = goneName(directory);
  try {
    await rename(directory, gone);
  } catch {
    return;
  }
  await rm(gone, { recursive: true, force: true });
}

function goneName(directory: string): string {
  return join(dirname(directory), `.${basename(directory)}.${randomBytes(4).toString("hex")}.gone`);
}

/** Removes what a release killed between its two steps left beside the lock directory. */
async function removeGone(directory: string): Promise<void> {
  const prefix = `.${basename(directory)}.`;
  const names = await readdir(dirname(directory)).catch(() => [] as string[]);
  const gone = names.filter((name) => name.startsWith(prefix) && /^[0-9a-f]{8}\.gone$/.test(name.slice(prefix.length)));
  await Promise.all(gone.map((name) => rm(join(dirname(directory), name), { recursive: true, force: true })));
}

/** The holder named by the latest generation, when it can be read. */
async function readOwner(directory: string): Promise<StoreOwner | undefined> {
  const current = latest(await readdir(directory).catch(() => []));
  if (current === undefined) return undefined;
  const record = await readRecord(join(directory, `${current}.json`));
  return record && { pid: record.pid, host: record.host, since: record.since };
}

async function readRecord(path: string): Promise<OwnerRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(path, "utf8")) as Partial<OwnerRecord>;
    if (typeof record.pid !== "number" || typeof record.host !== "string" || typeof record.since !== "string") return undefined;
    return record as OwnerRecord;
  } catch {
    // Unreadable (a power loss after the link, before the data): judged by its age alone.
    return undefined;
  }
}

function releaseAtExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const lock of held) lock.releaseNow();
  });
}

/** A rejection handler that turns ENOENT into `value` and rethrows anything else. */
function ifAbsent<T>(value: T): (error: unknown) => T {
  return (error) => {
    if (code(error) === "ENOENT") return value;
    throw error;
  };
}

function code(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}
