import type { Backend } from "./backend.js";
import type { CommitQueue } from "./commit-queue.js";
import type { StoredDocument } from "./document.js";
import { parseJson } from "./json-parse.js";

/** A change a follower found between two documents it read: a value as its JSON text. */
export type FollowedChange = { readonly type: "set"; readonly key: string; readonly json: string } | { readonly type: "delete"; readonly key: string } | { readonly type: "clear" };

/** No document read yet: nothing to report changes against. */
const unread = Symbol("unread");

/**
 * The reading side of a store opened with `readOnly: true`: it keeps a document that another
 * store owns current by reading it again whenever the backend's `watch()` says it may have
 * changed (or, on a backend without `watch()`, before every read), and swaps each document it
 * reads into the queue whole, in one synchronous step, so a read sees one version or the next,
 * never a mix. A document that does not load makes reads reject with its error until one loads
 * again; the follower keeps going.
 *
 * Re-reads run one at a time: notices that arrive during one start one more after it, however
 * many arrive (a burst of changes costs two reads at most). No timer is involved: fake timers
 * leave reads alone.
 */
export class Follower {
  readonly #backend: Backend;
  readonly #queue: CommitQueue;
  readonly #report: (changes: FollowedChange[]) => void;
  readonly #wantsChanges: () => boolean;
  /** Stops the backend's notices; set once watching. */
  #unwatch: (() => void) | undefined;
  #started = false;
  #closed = false;
  /** The last document read that loaded (`undefined`: there was none): what changes are found against. */
  #seen: StoredDocument | undefined | typeof unread = unread;
  /** The last read's error, while the document does not load (or cannot be read). */
  #error: unknown;
  #failing = false;
  #running: Promise<void> | undefined;
  /** A re-read asked for while one runs: it starts once that one is done. */
  #requested: Promise<void> | undefined;

  /**
   * @param backend Where the document lives; its `watch()`, if any, says when to read it again.
   * @param queue Where each document read goes (`adopt`), and what reads it (`readDocument`).
   * @param report Called with the changes each re-read found, in order, when `wantsChanges()`.
   * @param wantsChanges Whether anyone listens: without listeners, no comparison is made.
   */
  constructor(backend: Backend, queue: CommitQueue, report: (changes: FollowedChange[]) => void, wantsChanges: () => boolean) {
    this.#backend = backend;
    this.#queue = queue;
    this.#report = report;
    this.#wantsChanges = wantsChanges;
  }

  /** Whether reads may use what the queue holds now: the backend tells of changes, and the last read loaded. */
  get isCurrent(): boolean {
    return this.#unwatch !== undefined && this.#seen !== unread && !this.#failing;
  }

  /** Starts watching (before the first read, so that no change falls between) and reads the document. Once. */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#unwatch = this.#backend.watch?.(() => void this.refresh());
    void this.refresh();
  }

  /**
   * Resolves once reads may go ahead; rejects with the error of a document that does not load.
   * Watching, a read waits for the re-read running, if any; otherwise (a backend without
   * `watch()`, or a document that failed to load) it reads the document again first.
   */
  async ready(): Promise<void> {
    const starting = !this.#started;
    this.start();
    // The read start() began is the one to wait for, watched or not: a second would read the same.
    if (starting && this.#running !== undefined) await this.#running;
    else if (!this.isCurrent) await (this.#unwatch !== undefined && this.#running !== undefined && this.#seen === unread ? this.#running : this.refresh());
    if (this.#failing) throw this.#error;
  }

  /** Reads the document again, after the re-read running if there is one; never rejects. */
  refresh(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#running === undefined) return this.#run();
    this.#requested ??= this.#running.then(() => {
      this.#requested = undefined;
      // Closed while it waited: no read after close().
      return this.#closed ? undefined : this.#run();
    });
    return this.#requested;
  }

  /** Stops watching; a re-read under way changes nothing once it is done. */
  close(): void {
    this.#closed = true;
    const unwatch = this.#unwatch;
    this.#unwatch = undefined;
    unwatch?.();
  }

  #run(): Promise<void> {
    const running = this.#reload().finally(() => {
      this.#running = undefined;
    });
    this.#running = running;
    return running;
  }

  async #reload(): Promise<void> {
    let document: StoredDocument | undefined;
    try {
      document = await this.#queue.readDocument();
    } catch (error) {
      if (this.#closed) return;
      this.#error = error;
      this.#failing = true;
      return;
    }
    if (this.#closed) return;
    const before = this.#seen;
    const changes = before !== unread && this.#wantsChanges() ? changesBetween(before, document) : [];
    this.#seen = document;
    this.#failing = false;
    this.#error = undefined;
    this.#queue.adopt(document);
    if (changes.length > 0) this.#report(changes);
  }
}

/**
 * What changed from `before` to `after` (`undefined`: no document): a removed document is a clear;
 * otherwise the keys gone, in `before`'s order, then the keys added or changed, in `after`'s.
 */
export function changesBetween(before: StoredDocument | undefined, after: StoredDocument | undefined): FollowedChange[] {
  if (after === undefined) return before === undefined ? [] : [{ type: "clear" }];
  const changes: FollowedChange[] = [];
  const keys = after.keys();
  if (before !== undefined) {
    const kept = new Set(keys);
    for (const key of before.keys()) if (!kept.has(key)) changes.push({ type: "delete", key });
  }
  for (const key of keys) {
    const json = after.get(key);
    if (json === undefined) continue;
    const was = before?.get(key);
    if (was === undefined || !sameValue(was, json)) changes.push({ type: "set", key, json });
  }
  return changes;
}

/**
 * Whether two values' JSON texts hold the same value: the same text, or the same once written as
 * JSON.stringify writes it (parsed as a load parses, keys as the text spells them).
 */
function sameValue(a: string, b: string): boolean {
  return a === b || JSON.stringify(parseJson(a)) === JSON.stringify(parseJson(b));
}
