import type { Backend } from "./backend.js";
import { CommitQueue } from "./commit-queue.js";
import { isStoreLockedError, StoreIOError } from "./errors.js";
import { checkKey, toJson, type JsonObject, type JsonValue } from "./json-value.js";
import { Lock } from "./lock.js";

/** Where `delete()` and `clear()` report the errors they resolve `false` for. */
export interface Logger {
  error(message: string, error: unknown): void;
}

/** Options of {@link AioKV}. */
export interface AioKVOptions {
  /**
   * Milliseconds since the epoch, read by `set(key)` for its timestamp default. Inject one to
   * make timestamps deterministic in tests.
   * @default Date.now
   */
  readonly clock?: () => number;
  /**
   * Receives the errors that `delete()` and `clear()` resolve `false` for.
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
}

/**
 * An async key/value store kept in one JSON document. Operations take effect in the order they
 * are called; writes that arrive while one is in flight go to the backend together in the next
 * write, and each resolves once the write holding it is done.
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
export class AioKV {
  readonly #backend: Backend;
  readonly #clock: () => number;
  readonly #logger: Logger;
  readonly #lock = new Lock();
  readonly #queue: CommitQueue;
  readonly #locking: boolean;
  #owned = false;
  #closing: Promise<void> | undefined;

  /**
   * @param backend Where the document lives. Nothing is read until the first operation.
   * @param options The clock, the logger, and whether to take the backend's owner lock.
   * @throws {TypeError} When `backend` is not a Backend.
   */
  constructor(backend: Backend, options: AioKVOptions = {}) {
    if (typeof (backend as Partial<Backend> | null)?.read !== "function") {
      throw new TypeError(
        `Cannot create store: expected a Backend, received ${typeof backend === "string" ? JSON.stringify(backend) : backend === null ? "null" : typeof backend} (a path needs AioKV from "aiokv")`,
      );
    }
    this.#backend = backend;
    this.#queue = new CommitQueue(backend);
    this.#clock = options.clock ?? Date.now;
    this.#logger = options.logger ?? console;
    this.#locking = options.lock ?? true;
  }

  /** Where the document lives: the backend's location. */
  get location(): string {
    return this.#backend.location;
  }

  /**
   * The value stored under `key`: a fresh copy, so changing it changes nothing stored.
   *
   * @param key Any string.
   * @param fallback What to resolve when the key is absent.
   * @returns The value, or `fallback` (`undefined` when not given) when the key is absent.
   * @throws {TypeError} When `key` is not a string.
   * @throws {StoreFormatError} When the document is not valid JSON or not an object.
   * @throws {StoreIOError} When the backend cannot lock or read the document.
   * @throws {StoreLockedError} When another store owns the document.
   */
  get<T extends JsonValue = JsonValue>(key: string): Promise<T | undefined>;
  get<T extends JsonValue = JsonValue, F = T>(key: string, fallback: F): Promise<T | F>;
  async get(key: string, fallback?: unknown): Promise<unknown> {
    checkKey(key, "get");
    this.#checkOpen("get");
    const json = await this.#step("open", () => this.#queue.lookup(key));
    return json === undefined ? fallback : (JSON.parse(json) as unknown);
  }

  /**
   * Stores `value` under `key`; resolves once the backend holds it.
   *
   * @param key Any string, `""` and `"__proto__"` included.
   * @param value JSON data; omitted or `undefined`: the current unix time in whole seconds.
   *   `-0` is stored as `0`, as JSON writes it.
   * @throws {TypeError} When `key` is not a string, or `value` is not JSON data; nothing is written.
   * @throws {StoreFormatError} When the document is not valid JSON or not an object.
   * @throws {StoreIOError} When the backend cannot write; the store keeps its previous value.
   * @throws {StoreLockedError} When another store owns the document, or took it over from this one.
   */
  async set(key: string, value?: JsonValue): Promise<void> {
    checkKey(key, "set");
    this.#checkOpen("set");
    const json = toJson(key, value === undefined ? Math.floor(this.#clock() / 1000) : value);
    const staged = this.#step("open", () => this.#queue.stage((batch) => batch.changes.set(key, json)));
    // Awaited only when queued: awaiting a plain value would still cost a turn per set.
    await (staged instanceof Promise ? (await staged).done : staged.done);
  }

  /**
   * Removes `key`. Never rejects for I/O or format errors: it logs them and resolves `false`.
   *
   * @param key Any string.
   * @returns `true` when the key is gone (or was absent), `false` on error.
   * @throws {TypeError} When `key` is not a string.
   */
  async delete(key: string): Promise<boolean> {
    checkKey(key, "delete");
    this.#checkOpen("delete");
    return this.#tolerate(`Cannot delete key ${JSON.stringify(key)}`, "open", () =>
      this.#queue.has(key) ? this.#queue.stage((batch) => batch.changes.set(key, undefined)) : { done: undefined },
    );
  }

  /**
   * Every key and value: a fresh object, so changing it changes nothing stored.
   *
   * @returns The document as a plain object; `{}` when there is none.
   * @throws {StoreFormatError} When the document is not valid JSON or not an object.
   * @throws {StoreIOError} When the backend cannot lock or read the document.
   * @throws {StoreLockedError} When another store owns the document.
   */
  async getAll(): Promise<JsonObject> {
    this.#checkOpen("getAll");
    const text = await this.#step("open", () => this.#queue.render());
    // Parsing makes the copy, and defines `__proto__` as an own key, not a prototype.
    return JSON.parse(text) as JsonObject;
  }

  /**
   * Removes every key and the document itself. Works on a corrupt document: it is the way out.
   * Never rejects: it logs errors and resolves `false`.
   *
   * @returns `true` when the document is gone (or was absent), `false` on error.
   */
  async clear(): Promise<boolean> {
    this.#checkOpen("clear");
    return this.#tolerate("Cannot clear", "own", () =>
      this.#queue.stage((batch) => {
        batch.cleared = true;
        batch.changes.clear();
      }),
    );
  }

  /**
   * Waits for every pending write, then releases the owner lock. Later calls reject; calls made
   * before it still complete. Resolves when called again. Also `await using kv = new AioKV(...)`.
   *
   * @returns Resolves once the store is closed; a failed pending write rejects its own caller, not this.
   */
  close(): Promise<void> {
    this.#closing ??= this.#lock.run(async () => {
      await this.#queue.settled();
      if (!this.#owned) return;
      this.#owned = false;
      try {
        await this.#backend.unlock?.();
      } catch (error) {
        this.#logger.error(`Cannot release the lock of store ${JSON.stringify(this.location)}`, error);
      }
    });
    return this.#closing;
  }

  /** Closes the store: `await using kv = new AioKV(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #checkOpen(method: string): void {
    if (this.#closing) throw new Error(`Cannot call ${method}() on store ${JSON.stringify(this.location)}: it is closed`);
  }

  /**
   * Runs `step` once every operation called before it has run its own, with the store owned and,
   * for "open", its document read. Synchronously when nothing is waiting and that is already so.
   */
  #step<T>(needs: "open" | "own", step: () => T): T | Promise<T> {
    if (this.#lock.idle && this.#isOwned && (needs === "own" || this.#queue.isReady)) return step();
    return this.#lock.run(async () => {
      await this.#own();
      if (needs === "open") await this.#queue.ready();
      return step();
    });
  }

  get #isOwned(): boolean {
    return this.#owned || !this.#locking || this.#backend.lock === undefined;
  }

  async #own(): Promise<void> {
    if (this.#owned || !this.#locking || !this.#backend.lock) return;
    try {
      await this.#backend.lock();
    } catch (error) {
      throw isStoreLockedError(error) ? error : new StoreIOError("lock", this.location, error);
    }
    this.#owned = true;
  }

  async #tolerate(action: string, needs: "open" | "own", step: () => { done: unknown }): Promise<boolean> {
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

/**
 * The name the store had as a Python library, kept for its call sites.
 * @deprecated Use {@link AioKV}; this is the same class.
 */
export const aiocache: typeof AioKV = AioKV;
/** @deprecated Use {@link AioKV}. */
export type aiocache = AioKV;
