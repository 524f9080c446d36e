import { randomBytes } from "node:crypto";
import { renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { link, mkdir, open, readdir, readFile, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { hostname } from "node:os";
import { join } from "node:path";
import { errorCode, parseOwner, StoreLockedError, unlessAbsent, type StoreOwner } from "@aiokv/core";
import { answers, isAlive, thisProcess, type OwnerRecord } from "./owner-record.js";

/** The locks this process holds, released at exit. */
const held = new Set<OwnerLock>();
let exitHookInstalled = false;

/** How often (ms) a holder marks its lock as alive, as a share of the stale time. */
const refreshShare = 1 / 3;

/**
 * The owner lock of a state file: the directory `<file>.lock`, holding one file per generation of
 * ownership, `<n>.json`, each the record of its holder, who is the one with the highest number.
 * Taking a free, dead or stale lock means creating the next generation's file with `link()`, which
 * fails when it exists: of any number of contenders that saw generation `n`, exactly one creates
 * `n + 1`. A loser removes nothing but its candidate; a winner removes the generations before its
 * own; a holder gives its lock up by renaming its file to `<n>.released`, and the directory stays,
 * so that the numbers never go back (a contender that saw an older generation can then never make
 * one that counts as the latest). A holder checks before each write that its own file is still
 * there (fencing: a winner removes the generations before its own before it reads the document),
 * and rewrites its record while it lives, which gives the file a new mtime from
 * the kernel's clock: staleness compares that mtime with the mtime of a file just written, so it
 * needs no clock of this process (fake timers fake them all) and agrees across the hosts of a
 * network file system.
 */
export class OwnerLock {
  readonly #directory: string;
  readonly #generation: number;
  readonly #handle: FileHandle;
  /** The lock file's inode, kept from reuse by the open handle: a file at its path with another is not this holder's. */
  readonly #ino: number;
  readonly #record: Uint8Array;
  readonly #owner: StoreOwner;
  /** Answers for this holder while it lives: see `isAlive`. */
  readonly #listener: Server | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lost = false;

  private constructor(directory: string, taken: Taken & { listener: Server | undefined }, record: OwnerRecord, staleAfter: number) {
    this.#directory = directory;
    this.#generation = taken.generation;
    this.#handle = taken.handle;
    this.#ino = taken.ino;
    this.#listener = taken.listener;
    this.#record = Buffer.from(JSON.stringify(record));
    this.#owner = { pid: record.pid, host: record.host, since: record.since };
    // Unref'd: an idle store must not keep its process alive. A fake timer never fires, and the
    // lock then lapses while idle, which costs nothing: a lapsed lock nobody took is taken back.
    this.#timer = setInterval(() => this.#refresh(), Math.ceil(staleAfter * refreshShare));
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
    await mkdir(directory, { recursive: true });
    const token = randomBytes(8).toString("hex");
    const listener = await listen(join(directory, `.${token}${socketSuffix}`));
    const record: OwnerRecord = {
      ...(await thisProcess()),
      host: hostname(),
      since: new Date().toISOString(),
      token,
      socket: listener && `.${token}${socketSuffix}`,
    };
    try {
      // A contender that lost a race to a generation, or whose candidate a winner removed, looks
      // again (and then meets the winner's live lock): a few rounds are plenty.
      for (let attempt = 0; attempt < 20; attempt++) {
        const outcome = await attemptOnce(directory, record, location, staleAfter);
        if (outcome === "again") continue;
        const lock = new OwnerLock(directory, { ...outcome, listener }, record, staleAfter);
        held.add(lock);
        releaseAtExit();
        return lock;
      }
      throw new StoreLockedError(location, undefined, { cause: new Error(`The lock ${directory} kept changing while it was being taken`) });
    } catch (error) {
      closeListener(listener);
      throw error;
    }
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
      if (await this.#isMine()) this.#refresh();
      else this.#lost = true;
    }
    if (this.#lost) throw new StoreLockedError(location, await readOwner(this.#directory), { cause: new Error(`The lock ${this.#directory} was taken over`) });
  }

  /**
   * Gives the lock up: renames this generation's file to `<n>.released`, unless a later generation
   * took it over. The directory stays: its numbers must never go back, or a contender that saw an
   * older generation could make one that counts as the latest.
   */
  async release(): Promise<void> {
    if (!this.#stop()) return;
    // A takeover between the check and the rename only marks this, an earlier generation, released.
    if (!this.#lost && (await this.#isMine())) await rename(this.#path, this.#releasedPath).catch(() => {});
    await this.#handle.close().catch(() => {});
  }

  /** Gives the lock up synchronously, as the process exits. */
  releaseNow(): void {
    if (!this.#stop() || this.#lost) return;
    try {
      if (statSync(this.#path).ino === this.#ino) renameSync(this.#path, this.#releasedPath);
    } catch {
      // Left for the next owner: a dead holder's lock is taken over at once on this host.
    }
  }

  /**
   * Whether this holder's file is still in place: one stat. A takeover's winner removes the earlier
   * generations, this one's file included, before it reads the document, so a write that finds the
   * file here lands before that read. The inode tells this holder's file from another's of the same
   * number (a lock directory removed by hand); the open handle keeps it from being reused.
   */
  async #isMine(): Promise<boolean> {
    return (await stat(this.#path).then((s) => s.ino, () => undefined)) === this.#ino;
  }

  get #path(): string {
    return join(this.#directory, `${this.#generation}.json`);
  }

  get #releasedPath(): string {
    return join(this.#directory, `${this.#generation}.released`);
  }


  /** Stops refreshing and answering; false when already stopped. */
  #stop(): boolean {
    if (this.#timer === undefined) return false;
    clearInterval(this.#timer);
    this.#timer = undefined;
    held.delete(this);
    closeListener(this.#listener);
    return true;
  }

  // Writing the same bytes again sets the file's mtime from the kernel's clock. Synchronously: a
  // write of a few bytes to a file the kernel has cached, where an async one would queue behind
  // whatever fills libuv's thread pool (slow DNS look-ups, a blocked open), and the lock of a live,
  // responsive owner would go stale.
  #refresh(): void {
    if (this.#lost || this.#timer === undefined) return;
    try {
      writeSync(this.#handle.fd, this.#record, 0, this.#record.length, 0);
    } catch {
      // A failed refresh only lets the lock age; the next write's check says whether it is still ours.
    }
  }
}

interface Taken {
  generation: number;
  handle: FileHandle;
  ino: number;
}

/**
 * One try at taking the lock: write this process's record to a candidate file, read who holds
 * the latest generation, and link the candidate as the next generation when that holder is gone.
 */
async function attemptOnce(directory: string, record: OwnerRecord, location: string, staleAfter: number): Promise<"again" | Taken> {
  await mkdir(directory, { recursive: true });
  const candidate = join(directory, `.${record.token}${candidateSuffix}`);
  try {
    const written = await writeCandidate(candidate, record);
    // Removed by a winner's clean-up (or the directory by hand) since it was made: start again.
    if (written === undefined) return "again";
    const names = await readdir(directory);
    const current = latest(names);
    if (current !== undefined && !current.released && !(await isFree(directory, current.generation, written.mtimeMs, staleAfter))) {
      throw new StoreLockedError(location, await readOwner(directory));
    }
    const generation = (current?.generation ?? 0) + 1;
    const path = join(directory, `${generation}.json`);
    try {
      await link(candidate, path);
    } catch (error) {
      // EEXIST: another contender took this generation first; ENOENT: a winner removed the candidate.
      if (errorCode(error) === "EEXIST" || errorCode(error) === "ENOENT") return "again";
      throw error;
    }
    // A contender that saw an older generation made one that is not the latest: it lost, and
    // leaves its file to the winner's clean-up (removing it by name could hit another's).
    const after = await readdir(directory);
    if (latest(after)?.generation !== generation) return "again";
    const handle = await open(path, "r+");
    await clearEarlier(directory, after, generation);
    return { generation, handle, ino: written.ino };
  } finally {
    await unlink(candidate).catch(() => {});
  }
}

const candidateSuffix = ".candidate";

/**
 * Writes the candidate record; resolves its mtime (the kernel's now) and inode (the generation's
 * once linked), or undefined when the directory went away.
 */
async function writeCandidate(path: string, record: OwnerRecord): Promise<{ mtimeMs: number; ino: number } | undefined> {
  const handle = await unlessAbsent(open(path, "wx", 0o600));
  if (handle === undefined) return undefined;
  try {
    await handle.writeFile(JSON.stringify(record));
    const { mtimeMs, ino } = await handle.stat();
    return { mtimeMs, ino };
  } finally {
    // On a full disk too: the caller removes the candidate, so nothing stays to block anyone.
    await handle.close().catch(() => {});
  }
}

/** Whether the holder of `generation` is gone: dead on this host, or stale. */
async function isFree(directory: string, generation: number, now: number, staleAfter: number): Promise<boolean> {
  const path = join(directory, `${generation}.json`);
  const modified = (await unlessAbsent(stat(path)))?.mtimeMs;
  // Cleared by a newer holder in the meantime: look again.
  if (modified === undefined) return true;
  const holder = await readRecord(path);
  const socket = typeof holder?.socket === "string" && isSocketName(holder.socket) ? join(directory, holder.socket) : undefined;
  if (holder !== undefined && holder.host === hostname() && !(await isAlive(holder, socket))) return true;
  return now - modified > staleAfter;
}

const socketSuffix = ".sock";

function isSocketName(name: string): boolean {
  return /^\.[0-9a-f]{16}\.sock$/.test(name);
}

/**
 * Listens on a Unix socket at `path`, refusing nothing and keeping no process alive; `undefined`
 * where that cannot be done (a path longer than a socket's, a file system without sockets).
 */
function listen(path: string): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer((socket) => socket.destroy());
    server.once("error", () => resolve(undefined));
    server.listen(path, () => {
      server.unref();
      resolve(server);
    });
  });
}

function closeListener(listener: Server | undefined): void {
  if (listener === undefined) return;
  const path = listener.address();
  listener.close();
  if (typeof path === "string") {
    try {
      unlinkSync(path);
    } catch {
      // Gone already.
    }
  }
}

/**
 * Removes the generations before `generation`, every other contender's candidate, and the sockets
 * of holders and contenders that are gone (a socket that refuses a connection).
 */
async function clearEarlier(directory: string, names: string[], generation: number): Promise<void> {
  const earlier = names.filter((name) => {
    const entry = generationOf(name);
    return entry === undefined ? name.endsWith(candidateSuffix) : entry.generation < generation;
  });
  const sockets = names.filter(isSocketName).map((name) => join(directory, name));
  const dead = await Promise.all(sockets.map(async (path) => ((await answers(path)) === false ? [path] : [])));
  await Promise.all([...earlier.map((name) => join(directory, name)), ...dead.flat()].map((path) => unlink(path).catch(() => {})));
}

interface Generation {
  generation: number;
  /** Its holder gave it up. */
  released: boolean;
}

/** The latest generation among a lock directory's names. */
function latest(names: readonly string[]): Generation | undefined {
  let found: Generation | undefined;
  for (const name of names) {
    const entry = generationOf(name);
    if (entry !== undefined && (found === undefined || entry.generation > found.generation)) found = entry;
  }
  return found;
}

function generationOf(name: string): Generation | undefined {
  const match = /^([1-9]\d{0,14})\.(json|released)$/.exec(name);
  return match ? { generation: Number(match[1]), released: match[2] === "released" } : undefined;
}

/** The holder named by the latest generation, when it can be read. */
async function readOwner(directory: string): Promise<StoreOwner | undefined> {
  const current = latest(await readdir(directory).catch(() => []));
  if (current === undefined || current.released) return undefined;
  return readRecord(join(directory, `${current.generation}.json`));
}

async function readRecord(path: string): Promise<OwnerRecord | undefined> {
  // Unreadable (a power loss after the link, before the data): judged by its age alone.
  return parseOwner(await readFile(path, "utf8").catch(() => "")) as OwnerRecord | undefined;
}

function releaseAtExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const lock of held) lock.releaseNow();
  });
}
