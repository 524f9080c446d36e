import type { Backend } from "./backend.js";
import { CommitQueue } from "./commit-queue.js";
import { isStoreFormatError, isStoreLockedError, StoreIOError, StoreReadOnlyError } from "./errors.js";
import { Follower, type FollowedChange } from "./follower.js";
import { checkKey, toJson, type JsonObject, type JsonValue } from "./json-value.js";
import { Lock } from "./lock.js";
import { SchemaChecks, type StoreSchemaOf } from "./schema.js";
import { parseJson } from "./json-parse.js";
import type { JsonCompatible, JsonShape, StoreChange, StoreContents, StoreEntry, StoreKey, StoreShape, StoreValue, TimestampKey, UntypedKey } from "./types.js";

/** Where `delete()` and `clear()` report the errors they resolve `false` for. */
export interface Logger {
  error(message: string, error: unknown): void;
}

/** Options of {@link AioKV}. */
export interface AioKVOptions<T = JsonObject> {
  /**
   * Milliseconds since the epoch, read by `set(key)` for its timestamp default and by
   * `quarantine()` for the name it gives a bad document. Inject one to make them deterministic.
   * @default Date.now
   */
  readonly clock?: () => number;
  /**
   * Receives the errors that `delete()`, `deleteMany()` and `clear()` resolve `false` for, and
   * where `quarantine()` moved a bad document.
   * @default console
   */
  readonly logger?: Logger;
  /**
   * Take the backend's owner lock on first use, so that a second store on the same document (in
   * this process or another) gets `StoreLockedError` instead of overwriting this one's changes.
   * Turn it off only when something else guarantees a single writer.
   * @default true
   */
  readonly lock?: boolean;
  /**
   * A zod object schema: every value is checked against its key's schema on `set()` (a
   * `TypeError` naming the key, before any I/O) and on load (a `SchemaMismatchError`). Keys are
   * optional; a key the schema does not name is refused unless the schema is loose
   * (`z.looseObject`, `.catchall()`). The store's type is inferred from it.
   */
  readonly schema?: StoreSchemaOf<T>;
  /**
   * Values that `get()` (and `update()`) see for a key that is not stored; they are never written
   * until set, and `has()`, `keys()`, `size()`, `getAll()` and `entries()` report only what is
   * stored. Checked as `set()` checks values (the schema included) when the store is made. A
   * fallback passed to `get()` or `update()` wins over them.
   */
  readonly defaults?: StoreContents<T>;
  /**
   * Open the document as a follower of the store that owns it (in this process or another):
   * no lock is taken, every change (`set`, `delete`, `clear`, ...) rejects with
   * `StoreReadOnlyError`, and reads follow the owner's writes. On a backend with `watch()` (the
   * file, memory) the document is read again whenever the backend says it changed, so reads
   * see a write within a bounded delay, and `watch()` reports what changed between the documents
   * read; on a backend without it, every read reads the document again.
   * @default false
   */
  readonly readOnly?: boolean;
  /**
   * Append each write to a journal beside the document (`<location>.journal`, one line per write,
   * synced as the backend syncs) instead of rewriting the whole document, so that a write costs
   * what it changes, not the document's size. The document is rewritten (compacted) once the
   * journal outgrows it (or 64 KiB), and on `close()` and `compact()`, which leave the document
   * alone holding everything. Needs a backend that can append (`appendJournal`: the file, memory).
   * Every store reads and applies a journal it finds, whatever this says.
   * @default false
   */
  readonly journal?: boolean;
}

/**
 * An async key/value store kept in one JSON document. Operations take effect in the order they
 * are called; writes that arrive while one is in flight go to the backend together in the next
 * write, and each resolves once the write holding it is done.
 *
 * Give it a document type (`AioKV<{ last_command: string; seen: number[] }>`) or a `schema` to
 * type every key and value; without one, any string key holds any JSON value.
 *
 * @example
 * ```ts
 * import { AioKV } from "@aiokv/core";
 * import { MemoryBackend } from "@aiokv/memory-backend";
 *
 * const kv = new AioKV(new MemoryBackend());
 * await kv.set("last_command", "ping");
 * await kv.get("last_command"); // "ping"
 * ```
 */
export class AioKV<T extends StoreShape<T> = JsonObject> {
  readonly #backend: Backend;
  readonly #clock: () => number;
  readonly #logger: Logger;
  readonly #lock = new Lock();
  readonly #queue: CommitQueue;
  readonly #locking: boolean;
  /** `journal: true`, on a store that writes. */
  readonly #journaling: boolean;
  readonly #schema: SchemaChecks | undefined;
  /** Each default's JSON text: every `get()` parses its own copy. */
  readonly #defaults = new Map<string, string>();
  readonly #watchers = new Set<(change: StoreChange<T>) => void>();
  /** With `readOnly`: keeps the document current; every change is refused. */
  readonly #follower: Follower | undefined;
  #owned = false;
  #closing: Promise<void> | undefined;

  /**
   * @param backend Where the document lives. Nothing is read until the first operation.
   * @param options The clock, the logger, the schema, and whether to take the backend's owner lock.
   * @throws {TypeError} When `backend` is not a Backend, or `schema` not a zod object schema.
   */
  constructor(backend: Backend, options: AioKVOptions<T> = {}) {
    if (typeof (backend as Partial<Backend> | null)?.read !== "function") {
      throw new TypeError(
        `Cannot create store: expected a Backend, received ${typeof backend === "string" ? JSON.stringify(backend) : backend === null ? "null" : typeof backend} (a path needs AioKV from "aiokv")`,
      );
    }
    this.#backend = backend;
    if (options.journal !== undefined && typeof options.journal !== "boolean") {
      throw new TypeError(`Cannot create store ${JSON.stringify(backend.location)}: the journal option must be true or false, received ${typeof options.journal}`);
    }
    const appends = ["readJournal", "writeJournal", "appendJournal", "cutJournal"] as const;
    if (options.journal === true && appends.some((method) => typeof backend[method] !== "function")) {
      throw new TypeError(
        `Cannot create store ${JSON.stringify(backend.location)} with journal: true: its backend cannot append (it has no ${appends.filter((method) => typeof backend[method] !== "function").join(", ")})`,
      );
    }
    this.#schema = options.schema === undefined ? undefined : new SchemaChecks(options.schema);
    // Date.now looked up at each call: a test's fake timers replace it after the store is made.
    this.#clock = options.clock ?? (() => Date.now());
    this.#logger = options.logger ?? console;
    this.#journaling = options.journal === true && options.readOnly !== true;
    this.#queue = new CommitQueue(backend, this.#schema?.forLoad(backend.location), () => this.#lock.caughtUp(), {
      journal: this.#journaling,
      onError: (message, error) => this.#logger.error(message, error),
    });
    this.#locking = (options.lock ?? true) && options.readOnly !== true;
    for (const [key, value] of defaultEntries(options.defaults)) {
      try {
        this.#defaults.set(key, this.#toJson(key, value));
      } catch (error) {
        throw new TypeError(`Cannot create store: the default of key ${JSON.stringify(key)} is refused (${(error as Error).message})`, { cause: error });
      }
    }
    this.#queue.onWritten = (batch) => this.#report(batch);
    this.#follower = options.readOnly === true ? new Follower(backend, this.#queue, (changes) => this.#reportFollowed(changes), () => this.#watchers.size > 0) : undefined;
  }

  /** Whether the store was opened with `readOnly: true`: a follower, which refuses every change. */
  get readOnly(): boolean {
    return this.#follower !== undefined;
  }

  /** Where the document lives: the backend's location. */
  get location(): string {
    return this.#backend.location;
  }

  /**
   * The value stored under `key`: a fresh copy, so changing it changes nothing stored.
   *
   * @param key Any string (a key of the document type, when the store is typed).
   * @param fallback What to resolve when the key is absent (before the store's `defaults`).
   * @returns The value, or `fallback` when the key is absent, or its default when no fallback is
   *   given (`undefined` when it has none).
   * @throws {TypeError} When `key` is not a string.
   * @throws {StoreFormatError} When the document is not valid JSON, not an object, or not what the schema allows.
   * @throws {StoreIOError} When the backend cannot lock or read the document.
   * @throws {StoreLockedError} When another store owns the document.
   */
  get<V extends JsonShape<V> = JsonValue>(key: UntypedKey<T>): Promise<V | undefined>;
  get<V extends JsonShape<V> = JsonValue, F = V>(key: UntypedKey<T>, fallback: F): Promise<V | F>;
  get<K extends StoreKey<T>>(key: K): Promise<StoreValue<T, K> | undefined>;
  get<K extends StoreKey<T>, F>(key: K, fallback: F): Promise<StoreValue<T, K> | F>;
  async get(key: string, ...fallback: [unknown?]): Promise<unknown> {
    checkKey(key, "get");
    this.#checkOpen("get");
    const json = (await this.#step("open", () => this.#queue.lookup(key))) ?? (fallback.length > 0 ? undefined : this.#defaults.get(key));
    return json === undefined ? fallback[0] : parseJson(json);
  }

  /**
   * Stores `value` under `key`; resolves once the backend holds it.
   *
   * @param key Any string, `""` and `"__proto__"` included.
   * @param value JSON data; omitted or `undefined`: the current unix time in whole seconds.
   *   `-0` is stored as `0`, as JSON writes it.
   * @throws {TypeError} When `key` is not a string, or `value` is not JSON data or not what the schema allows; nothing is written.
   * @throws {StoreFormatError} When the document is not valid JSON, not an object, or not what the schema allows.
   * @throws {StoreIOError} When the backend cannot write; the store keeps its previous value.
   * @throws {StoreLockedError} When another store owns the document, or took it over from this one.
   * @throws {StoreReadOnlyError} When the store was opened with `readOnly: true`; nothing is written.
   */
  set<V>(key: UntypedKey<T>, value?: V & JsonCompatible<V>): Promise<void>;
  set<K extends StoreKey<T>>(key: K, value: StoreValue<T, K>): Promise<void>;
  set(key: TimestampKey<T>, value?: undefined): Promise<void>;
  set(key: string, value?: unknown): Promise<void> {
    // Not async: on the fast path every set of a batch returns the batch's one promise, so a
    // burst of sets allocates no promise per call. Errors still come back as rejections.
    try {
      checkKey(key, "set");
      this.#checkOpen("set");
      this.#checkWritable("set");
      const json = this.#toJson(key, value === undefined ? Math.floor(this.#clock() / 1000) : value);
      const staged = this.#step("open", () => this.#queue.stage((batch) => batch.changes.set(key, json)));
      return staged instanceof Promise ? staged.then(({ done }) => done) : staged.done;
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /**
   * Replaces the value under `key` with what `fn` makes of it, with no other operation between
   * the read and the write: the counter and rate-limit case that a `get` then `set` races on.
   *
   * @param key Any string (a key of the document type, when the store is typed).
   * @param fn Receives a copy of the current value, or of `fallback` (or the key's default) when the key is absent;
   *   returns (or resolves) the new value, which is checked as `set()` checks it. Other operations
   *   on the store wait until it is done. A current value whose write is still in flight is
   *   given to `fn` once that write has succeeded (or, when it failed, the value before it).
   * @param fallback What `fn` receives a copy of when the key is absent (`undefined` when not given).
   * @returns The value stored, once the backend holds it.
   * @throws {TypeError} When `key` is not a string, `fn` returns `undefined` or a value `set()`
   *   refuses, or `fallback` cannot be copied (structuredClone); nothing is written.
   * @throws What `fn` throws; nothing is written.
   * @throws {Error} When `fn` is async and the pending write of the value it was given failed
   *   meanwhile (`cause`: that write's error); nothing is written.
   * @throws {StoreFormatError} {StoreIOError} {StoreLockedError} {StoreReadOnlyError} As `set()`.
   */
  update<V extends JsonShape<V> = JsonValue>(key: UntypedKey<T>, fn: (current: V | undefined) => V | PromiseLike<V>): Promise<V>;
  update<V extends JsonShape<V> = JsonValue, F = V>(key: UntypedKey<T>, fn: (current: V | F) => V | PromiseLike<V>, fallback: F): Promise<V>;
  update<K extends StoreKey<T>>(
    key: K,
    fn: (current: StoreValue<T, K> | undefined) => StoreValue<T, K> | PromiseLike<StoreValue<T, K>>,
  ): Promise<StoreValue<T, K>>;
  update<K extends StoreKey<T>, F>(
    key: K,
    fn: (current: StoreValue<T, K> | F) => StoreValue<T, K> | PromiseLike<StoreValue<T, K>>,
    fallback: F,
  ): Promise<StoreValue<T, K>>;
  async update(key: string, fn: (current: never) => unknown, ...fallback: [unknown?]): Promise<unknown> {
    checkKey(key, "update");
    if (typeof fn !== "function") throw new TypeError(`Cannot update key ${JSON.stringify(key)}: expected a function, received ${typeof fn}`);
    this.#checkOpen("update");
    this.#checkWritable("update");
    const cannot = `Cannot update key ${JSON.stringify(key)}`;
    // Always under the lock, not the synchronous fast path: `fn` may await, and nothing may run between.
    const { done, json } = await this.#locked("open", async () => {
      // A value from a write in flight may yet fail: build on that write's outcome, not on it.
      for (let writing = this.#queue.inFlightFor(key); writing; writing = this.#queue.inFlightFor(key)) {
        await writing.catch(() => {});
        await this.#queue.ready();
      }
      const current = this.#queue.lookup(key) ?? (fallback.length > 0 ? undefined : this.#defaults.get(key));
      const from = this.#queue.pendingFor(key);
      const result = (fn as (current: unknown) => unknown)(current === undefined ? copy(fallback[0], cannot) : parseJson(current));
      // No await for a plain value: the pending batch it came from must not start before this joins it.
      const next = isPromiseLike(result) ? await this.#lock.park(result) : result;
      if (from !== undefined && !this.#queue.isPending(from)) {
        // That batch started while fn ran; the result may be stored only if the value it came from was.
        await from.catch((error: unknown) => {
          throw new Error(`${cannot}: the value it was computed from was not stored`, { cause: error });
        });
      }
      if (next === undefined) {
        throw new TypeError(`${cannot}: the function returned undefined (return a value, or use delete())`);
      }
      const text = this.#toJson(key, next);
      return { ...this.#queue.stage((batch) => batch.changes.set(key, text)), json: text };
    });
    await done;
    return parseJson(json);
  }

  /**
   * Whether `key` is stored.
   * @throws As `get()`.
   */
  async has(key: StoreKey<T>): Promise<boolean> {
    checkKey(key, "has");
    this.#checkOpen("has");
    return this.#step("open", () => this.#queue.has(key));
  }

  /**
   * The stored keys, in the file's order (new keys last).
   * @throws As `getAll()`.
   */
  async keys(): Promise<Array<StoreKey<T>>> {
    this.#checkOpen("keys");
    return this.#step("open", () => this.#queue.keys() as Array<StoreKey<T>>);
  }

  /**
   * How many keys are stored.
   * @throws As `getAll()`.
   */
  async size(): Promise<number> {
    this.#checkOpen("size");
    return this.#step("open", () => this.#queue.keys().length);
  }

  /**
   * Every key and value, in the file's order: copies of what was stored when the iteration
   * started (the first `next()`), so that changes made meanwhile neither show nor break it.
   * `for await (const [key, value] of kv)` does the same.
   * @throws As `getAll()`, from the first `next()`.
   */
  async *entries(): AsyncGenerator<StoreEntry<T>, void, undefined> {
    this.#checkOpen("entries");
    const { keys, text } = await this.#step("open", () => ({ keys: this.#queue.keys(), text: this.#queue.render() }));
    // One parse copies every value; JSON.parse keeps "__proto__" as an own key.
    const values = parseJson(text) as Record<string, unknown>;
    for (const key of keys) yield [key, values[key]] as unknown as StoreEntry<T>;
  }

  [Symbol.asyncIterator](): AsyncGenerator<StoreEntry<T>, void, undefined> {
    return this.entries();
  }

  /**
   * Removes `key`, reporting whether it was stored: decided in call order with the other
   * operations, so two callers removing one key see `true` once. Unlike `delete()` it rejects
   * on errors (the key stays, as after a failed `set()`).
   *
   * @returns `true` when the key was stored, once a write has removed it; `false` when it was
   *   absent, once the writes called before it are done.
   * @throws {TypeError} When `key` is not a string.
   * @throws {StoreFormatError} {StoreIOError} {StoreLockedError} {StoreReadOnlyError} As `set()`.
   */
  async remove(key: StoreKey<T>): Promise<boolean> {
    checkKey(key, "remove");
    this.#checkOpen("remove");
    this.#checkWritable("remove");
    return (await this.#removeKeys(() => [key])) > 0;
  }

  /**
   * Removes several keys in one write, reporting how many were stored; rejects on errors, as
   * `remove()` does.
   *
   * @param keys An iterable of keys (an array, a Set), not a string; a key given twice counts once.
   *   Or a function that picks, from the keys stored when the removal runs (after every call made
   *   before it), those to remove: `removeMany((key) => key.startsWith("cache:"))`.
   * @returns How many of the keys were stored.
   * @throws {TypeError} When `keys` is a string or not iterable, or a key is not a string; nothing is removed.
   * @throws {StoreFormatError} {StoreIOError} {StoreLockedError} {StoreReadOnlyError} As `set()`.
   */
  async removeMany(keys: (Iterable<StoreKey<T>> & object) | ((key: StoreKey<T>) => boolean)): Promise<number> {
    this.#checkOpen("removeMany");
    this.#checkWritable("removeMany");
    // A predicate picks from the keys stored when the removal runs, after every call before it.
    if (typeof keys === "function") return this.#removeKeys(() => this.#queue.keys().filter(keys as (key: string) => boolean));
    const names = [...new Set(keyList(keys, "remove"))];
    return this.#removeKeys(() => names);
  }

  /**
   * Calls `listener` with each change once the backend holds it (on disk, with a synced file), in
   * the order of the writes: `{ type: "set", key, value }` (a copy for each listener),
   * `{ type: "delete", key }`, and `{ type: "clear" }` before the changes written with a clear.
   * A write that failed is not reported. An error thrown by the listener is logged, never thrown
   * into the store.
   *
   * On a follower (`readOnly: true`), it reports what changed between each document read and
   * the next (keys removed, then keys added or changed, in file order; `{ type: "clear" }` when
   * the document was removed), starting from the first document read: changes the owner made
   * between two reads may come as one. It starts the follower watching, if no read has yet.
   *
   * @returns A function that stops the calls.
   */
  watch(listener: (change: StoreChange<T>) => void): () => void {
    if (typeof listener !== "function") throw new TypeError(`Cannot watch store ${JSON.stringify(this.location)}: expected a function, received ${typeof listener}`);
    // A function per call, so that watching twice with one listener is stopped twice.
    const watcher = (change: StoreChange<T>): void => listener(change);
    this.#watchers.add(watcher);
    if (!this.#closing) this.#follower?.start();
    return () => void this.#watchers.delete(watcher);
  }

  /**
   * Stores several values in one write: all of them, or (when one is refused) none.
   *
   * @param entries An object of keys and values, or `[key, value]` pairs (for keys such as
   *   `"__proto__"` that an object literal would not hold as its own).
   * @throws {TypeError} When a key or value is refused; nothing is written.
   * @throws {StoreFormatError} {StoreIOError} {StoreLockedError} {StoreReadOnlyError} As `set()`.
   */
  async setMany(entries: StoreContents<T> | Iterable<StoreEntry<T>>): Promise<void> {
    this.#checkOpen("setMany");
    this.#checkWritable("setMany");
    const pairs = entryPairs(entries);
    const changes = pairs.map(([key, value]): [string, string] => {
      checkKey(key, "set");
      if (value === undefined) throw new TypeError(`Cannot set key ${JSON.stringify(key)}: setMany() takes no undefined values`);
      return [key, this.#toJson(key, value)];
    });
    // Nothing to write still resolves only after the writes called before it.
    if (changes.length === 0) return this.#step("none", () => this.#queue.tail()).then(() => undefined);
    const staged = await this.#step("open", () =>
      this.#queue.stage((batch) => {
        for (const [key, json] of changes) batch.changes.set(key, json);
      }),
    );
    await staged.done;
  }

  /**
   * Removes several keys in one write. Never rejects for I/O or format errors: it logs them and resolves `false`.
   *
   * @param keys An iterable of keys (an array, a Set), not a string: that is one key, not its characters.
   * @returns `true` when the keys are gone (or were absent), `false` on error.
   * @throws {TypeError} When `keys` is a string or not iterable, or a key is not a string; nothing is removed.
   * @throws {StoreReadOnlyError} When the store was opened with `readOnly: true`.
   */
  async deleteMany(keys: Iterable<StoreKey<T>> & object): Promise<boolean> {
    this.#checkOpen("deleteMany");
    this.#checkWritable("deleteMany");
    const names = keyList(keys, "delete");
    return this.#deleteKeys(names, `Cannot delete keys ${names.map((key) => JSON.stringify(key)).join(", ")}`);
  }

  /**
   * Removes `key`. Never rejects for I/O or format errors: it logs them and resolves `false`.
   *
   * @param key Any string.
   * @returns `true` when the key is gone (or was absent), `false` on error. Either way only once
   *   every change called before it has settled, and `true` for a key that an earlier call removed
   *   only once a write has removed it.
   * @throws {TypeError} When `key` is not a string.
   * @throws {StoreReadOnlyError} When the store was opened with `readOnly: true`.
   */
  async delete(key: StoreKey<T>): Promise<boolean> {
    checkKey(key, "delete");
    this.#checkOpen("delete");
    this.#checkWritable("delete");
    return this.#deleteKeys([key], `Cannot delete key ${JSON.stringify(key)}`);
  }

  /**
   * Every key and value: a fresh object, so changing it changes nothing stored.
   *
   * @returns The document as a plain object; `{}` when there is none.
   * @throws {StoreFormatError} When the document is not valid JSON, not an object, or not what the schema allows.
   * @throws {StoreIOError} When the backend cannot lock or read the document.
   * @throws {StoreLockedError} When another store owns the document.
   */
  async getAll(): Promise<StoreContents<T>> {
    this.#checkOpen("getAll");
    const text = await this.#step("open", () => this.#queue.render());
    // Parsing makes the copy, and defines `__proto__` as an own key, not a prototype.
    return parseJson(text) as StoreContents<T>;
  }

  /**
   * Removes every key and the document itself. Works on a corrupt document: it is the way out.
   * Never rejects: it logs errors and resolves `false`.
   *
   * @returns `true` when the document is gone (or was absent), `false` on error.
   * @throws {StoreReadOnlyError} When the store was opened with `readOnly: true` (a misuse, not an error it logs).
   */
  async clear(): Promise<boolean> {
    this.#checkOpen("clear");
    this.#checkWritable("clear");
    return this.#tolerate("Cannot clear", "own", () =>
      this.#queue.stage((batch) => {
        batch.cleared = true;
        batch.changes.clear();
      }),
    );
  }

  /**
   * Resolves once every change called before it is in the backend (on disk, with a synced file).
   * Each change's own promise says the same; this is for callers that did not await them.
   *
   * @throws The first write failure since the previous `flush()` call (a `StoreIOError`,
   *   `StoreLockedError`): of a write it waited for, or of one that had already failed when it
   *   was called. Each failure is reported by one `flush()` (and by those called while it was in
   *   flight); the next call starts clean.
   */
  async flush(): Promise<void> {
    this.#checkOpen("flush");
    const { written } = await this.#step("none", () => ({ written: this.#queue.written() }));
    await written;
  }

  /**
   * The way out of a bad document that keeps the evidence: moves a document that does not load
   * (not JSON, not an object, refused by the schema) aside to `<location>.corrupt-<time>`, logs
   * where it went, and leaves the store empty. A document that loads is never moved.
   *
   * @returns Where the document went; `undefined` when there was none.
   * @throws {Error} When the document loads without error (use `clear()` to empty a valid store),
   *   or the backend cannot move a document aside.
   * @throws {StoreIOError} When the backend fails to read the document or to move it.
   * @throws {StoreLockedError} When another store owns the document.
   * @throws {StoreReadOnlyError} When the store was opened with `readOnly: true`; nothing is moved.
   */
  async quarantine(): Promise<string | undefined> {
    this.#checkOpen("quarantine");
    this.#checkWritable("quarantine");
    return this.#locked("own", async () => {
      await this.#queue.settled();
      let problem: unknown;
      try {
        await this.#queue.ready();
      } catch (error) {
        if (!isStoreFormatError(error)) throw error;
        problem = error;
      }
      if (problem === undefined) {
        if (this.#queue.keys().length === 0 && (await this.#queue.readStored()) === undefined) return undefined;
        throw new Error(`Cannot quarantine store ${JSON.stringify(this.location)}: it loads without error (clear() empties it)`);
      }
      const moveAside = this.#backend.moveAside?.bind(this.#backend);
      if (moveAside === undefined) {
        throw new Error(`Cannot quarantine store ${JSON.stringify(this.location)}: its backend cannot move a document aside (clear() removes it)`);
      }
      const stamp = new Date(this.#clock()).toISOString().replaceAll(":", "-");
      let moved: string | undefined;
      try {
        moved = await moveAside(`corrupt-${stamp}`);
      } catch (error) {
        if (!isStoreLockedError(error)) throw new StoreIOError("move", this.location, error);
        // As after a refused write: what is in memory is stale, and the next operation finds out who owns the file.
        this.#queue.oust();
        throw error;
      }
      this.#queue.forget();
      this.#logger.error(`Moved the unreadable store ${JSON.stringify(this.location)} aside to ${JSON.stringify(moved)}; the store is empty`, problem);
      return moved;
    });
  }

  /**
   * Rewrites the document with every change in it and empties its journal (`journal: true`, or a
   * journal left by a store that did not close), after the writes called before it: the document
   * alone then holds the whole store, as it does after `close()`. Without a journal, it waits for
   * the writes called before it.
   *
   * @throws {StoreIOError} When the rewrite or emptying the journal fails; the journal then stays, and still applies.
   * @throws {StoreLockedError} When another store owns the document.
   * @throws {StoreReadOnlyError} When the store was opened with `readOnly: true`.
   */
  async compact(): Promise<void> {
    this.#checkOpen("compact");
    this.#checkWritable("compact");
    await this.#locked("open", () => this.#queue.checkpoint());
  }

  /**
   * Waits for every pending write, then releases the owner lock (a follower stops watching). Later
   * calls reject; calls made before it still complete. Resolves when called again. Also
   * `await using kv = new AioKV(...)`.
   *
   * @returns Resolves once the store is closed; a failed pending write rejects its own caller, not this.
   */
  close(): Promise<void> {
    this.#closing ??= this.#lock.run(async () => {
      // After the calls made before it, which a follower still answers.
      this.#follower?.close();
      await this.#queue.settled();
      // In journal mode, the document alone holds everything again, for readers that know nothing
      // of journals (a store without the lock included: it writes as an owner does). A store
      // without it that only read a journal left by another writes nothing for it.
      if (this.#journaling && this.#isOwned) await this.#logFailure("rewrite the journal into the document of", () => this.#queue.checkpoint());
      if (this.#owned) {
        this.#owned = false;
        await this.#logFailure("release the lock of", () => this.#backend.unlock?.());
      }
      await this.#logFailure("close the backend of", () => this.#backend.close?.());
    });
    return this.#closing;
  }

  /** Runs `step`; logs its error (`Cannot <what> store "…"`) instead of rejecting. */
  async #logFailure(what: string, step: () => Promise<void> | undefined): Promise<void> {
    try {
      await step();
    } catch (error) {
      this.#logger.error(`Cannot ${what} store ${JSON.stringify(this.location)}`, error);
    }
  }

  /** Closes the store: `await using kv = new AioKV(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #checkOpen(method: string): void {
    if (this.#closing) throw new Error(`Cannot call ${method}() on store ${JSON.stringify(this.location)}: it is closed`);
  }

  #checkWritable(method: string): void {
    if (this.#follower) throw new StoreReadOnlyError(method, this.location);
  }

  /** The JSON text to store under `key`: the schema's output for `value`, checked as JSON data. */
  #toJson(key: string, value: unknown): string {
    return toJson(key, this.#schema ? this.#schema.forSet(key, value) : value);
  }

  /**
   * Runs `step` once every operation called before it has run its own, with the store owned and,
   * for "open", its document read. Synchronously when nothing is waiting and that is already so.
   */
  #step<R>(needs: Needs, step: () => R): R | Promise<R> {
    if (this.#lock.idle && (needs === "none" || (this.#isOwned && (needs === "own" || this.#isCurrent)))) return step();
    return this.#locked(needs, step);
  }

  /** Runs `step`, which may await, under the lock, once what `needs` says is true. */
  #locked<R>(needs: Needs, step: () => R | Promise<R>): Promise<R> {
    return this.#lock.run(async () => {
      if (needs !== "none") await this.#own();
      if (needs === "open") await (this.#follower ? this.#follower.ready() : this.#queue.ready());
      return step();
    });
  }

  /**
   * Removes `keys` in one write; resolves `false`, logged as `action`, on error. A key absent only
   * because a write not yet done removes it is removed again, so that its `true` waits for a write
   * that removes it. With nothing to remove, it waits for the writes called before it.
   */
  #deleteKeys(keys: string[], action: string): Promise<boolean> {
    return this.#tolerate(action, "open", () => {
      const staged = keys.filter((key) => this.#queue.has(key) || this.#queue.isUnwritten(key));
      if (staged.length === 0) return { done: this.#queue.tail() };
      return this.#queue.stage((batch) => {
        for (const key of staged) batch.changes.set(key, undefined);
      });
    });
  }

  /**
   * Removes the (distinct) keys `choose` names when the removal runs, in call order with the other
   * operations, in one write; resolves how many were stored, or rejects as `set()` does.
   */
  async #removeKeys(choose: () => string[]): Promise<number> {
    const { done, count } = await this.#step("open", () => {
      const keys = choose();
      const present = keys.filter((key) => this.#queue.has(key));
      // A key absent only because an unwritten change removes it waits for that write too.
      const staged = keys.filter((key) => this.#queue.has(key) || this.#queue.isUnwritten(key));
      if (staged.length === 0) return { done: this.#queue.tail(), count: 0 };
      const { done } = this.#queue.stage((batch) => {
        for (const key of staged) batch.changes.set(key, undefined);
      });
      return { done, count: present.length };
    });
    await done;
    return count;
  }

  /** Tells the watchers what a batch the backend now holds changed. */
  #report(batch: { readonly cleared: boolean; readonly changes: ReadonlyMap<string, string | undefined> }): void {
    if (this.#watchers.size === 0) return;
    const changes: FollowedChange[] = batch.cleared ? [{ type: "clear" }] : [];
    for (const [key, json] of batch.changes) changes.push(json === undefined ? { type: "delete", key } : { type: "set", key, json });
    this.#reportFollowed(changes);
  }

  /** Tells each watcher `changes`, in order, each set with its own copy of the value. */
  #reportFollowed(changes: readonly FollowedChange[]): void {
    for (const watcher of [...this.#watchers]) {
      try {
        for (const change of changes) {
          if (change.type === "clear") watcher({ type: "clear" });
          else if (change.type === "delete") watcher({ type: "delete", key: change.key as StoreKey<T> });
          else watcher({ type: "set", key: change.key as StoreKey<T>, value: parseJson(change.json) } as StoreChange<T>);
        }
      } catch (error) {
        this.#logger.error(`A watch() listener threw for store ${JSON.stringify(this.location)}`, error);
      }
    }
  }

  /** Whether reads may use the document in memory as it is: read (an owner's), or kept current (a follower's). */
  get #isCurrent(): boolean {
    return this.#follower ? this.#follower.isCurrent : this.#queue.isReady;
  }

  get #isOwned(): boolean {
    return (this.#owned && !this.#queue.ousted) || !this.#locking || this.#backend.lock === undefined;
  }

  async #own(): Promise<void> {
    if (this.#owned && this.#queue.ousted) {
      // Another owner took the document over (this one was paused past the stale time): the
      // writes staged since fail as the first did; then this store starts again as a new owner,
      // from the document as the other left it, or gets StoreLockedError while it still holds it.
      await this.#queue.settled();
      this.#owned = false;
      this.#queue.forget();
      await this.#logFailure("release the lost lock of", () => this.#backend.unlock?.());
    }
    if (this.#owned || !this.#locking || !this.#backend.lock) return;
    try {
      await this.#backend.lock();
    } catch (error) {
      throw isStoreLockedError(error) ? error : new StoreIOError("lock", this.location, error);
    }
    this.#owned = true;
  }

  async #tolerate(action: string, needs: Needs, step: () => { done: unknown }): Promise<boolean> {
    try {
      const { done } = await this.#step(needs, step);
      await done;
      return true;
    } catch (error) {
      this.#logger.error(`${action} in store ${JSON.stringify(this.location)}`, error);
      return false;
    }
  }
}

/** What an operation needs before it runs: nothing, the owner lock, or the document read too. */
type Needs = "none" | "own" | "open";

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null && typeof (value as Partial<PromiseLike<unknown>>).then === "function";
}

/** A copy of an update's fallback, so that `fn` changing what it is given changes nothing of the caller's. */
function copy(fallback: unknown, cannot: string): unknown {
  try {
    return structuredClone(fallback);
  } catch (error) {
    throw new TypeError(`${cannot}: the fallback cannot be copied (${error instanceof Error ? error.message : String(error)})`, { cause: error });
  }
}

/** The keys of `deleteMany()` or `removeMany()`: an iterable of strings, not a string. */
function keyList(keys: unknown, verb: "delete" | "remove"): string[] {
  if (typeof keys !== "object" || keys === null || typeof (keys as Partial<Iterable<unknown>>)[Symbol.iterator] !== "function") {
    const kind = keys === null || keys === undefined ? String(keys) : typeof keys === "object" ? "a non-iterable object" : `a ${typeof keys}`;
    throw new TypeError(`Cannot ${verb} keys: expected an iterable of keys, received ${kind}`);
  }
  const list = Array.from(keys as Iterable<unknown>);
  for (const key of list) checkKey(key, verb);
  return list as string[];
}

/** The `defaults` option's pairs, own keys only. */
function defaultEntries(defaults: unknown): Array<[string, unknown]> {
  if (defaults === undefined) return [];
  if (typeof defaults !== "object" || defaults === null || Array.isArray(defaults)) {
    throw new TypeError(`Cannot create store: the defaults option must be an object of keys and values, received ${defaults === null ? "null" : Array.isArray(defaults) ? "an array" : typeof defaults}`);
  }
  return Object.entries(defaults);
}

function entryPairs(entries: unknown): Array<[unknown, unknown]> {
  if (typeof entries !== "object" || entries === null) {
    throw new TypeError(`Cannot set keys: expected an object or [key, value] pairs, received ${entries === null ? "null" : typeof entries}`);
  }
  if (!(Symbol.iterator in entries)) return Object.entries(entries);
  return Array.from(entries as Iterable<unknown>, (pair) => {
    if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError("Cannot set keys: each pair must be [key, value]");
    return [pair[0], pair[1]];
  });
}

