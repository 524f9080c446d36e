import type { Backend } from "./backend.js";
import { apply, merge, parseDocument, renderDocument, type Batch, type Entries } from "./document.js";
import { isStoreFormatError, isStoreIOError, StoreIOError } from "./errors.js";
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
}

interface PendingBatch extends Batch {
  readonly done: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
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
  /** What the backend holds, once read. */
  #entries: Entries | undefined;
  #loading: Promise<Entries> | undefined;
  #writing: PendingBatch | undefined;
  #pending: PendingBatch | undefined;

  /**
   * @param backend Where the document lives. Nothing is read until the first operation.
   * @param options The clock and the logger.
   * @throws {TypeError} When `backend` is not a Backend.
   */
  constructor(backend: Backend, options: AioKVOptions = {}) {
    if (typeof (backend as Partial<Backend> | null)?.read !== "function") {
      throw new TypeError(
        `Cannot create store: expected a Backend, received ${JSON.stringify(backend)} (a path needs AioKV from "aiokv")`,
      );
    }
    this.#backend = backend;
    this.#clock = options.clock ?? Date.now;
    this.#logger = options.logger ?? console;
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
   * @throws {StoreIOError} When the backend cannot read the document.
   */
  get<T extends JsonValue = JsonValue>(key: string): Promise<T | undefined>;
  get<T extends JsonValue = JsonValue, F = T>(key: string, fallback: F): Promise<T | F>;
  async get(key: string, fallback?: unknown): Promise<unknown> {
    checkKey(key, "get");
    const json = await this.#lock.run(async () => {
      await this.#ready();
      return this.#lookup(key);
    });
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
   */
  async set(key: string, value?: JsonValue): Promise<void> {
    checkKey(key, "set");
    const json = toJson(key, value === undefined ? Math.floor(this.#clock() / 1000) : value);
    const { done } = await this.#lock.run(async () => {
      await this.#ready();
      return this.#stage((batch) => batch.changes.set(key, json));
    });
    await done;
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
    return this.#tolerate(`Cannot delete key ${JSON.stringify(key)}`, async () => {
      await this.#ready();
      return this.#lookup(key) === undefined ? { done: undefined } : this.#stage((batch) => batch.changes.set(key, undefined));
    });
  }

  /**
   * Every key and value: a fresh object, so changing it changes nothing stored.
   *
   * @returns The document as a plain object; `{}` when there is none.
   * @throws {StoreFormatError} When the document is not valid JSON or not an object.
   * @throws {StoreIOError} When the backend cannot read the document.
   */
  async getAll(): Promise<JsonObject> {
    const text = await this.#lock.run(async () => {
      await this.#ready();
      const entries = new Map(this.#entries);
      for (const batch of [this.#writing, this.#pending]) if (batch) apply(entries, batch);
      return renderDocument(entries);
    });
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
    return this.#tolerate("Cannot clear", () =>
      this.#stage((batch) => {
        batch.cleared = true;
        batch.changes.clear();
      }),
    );
  }

  async #tolerate(action: string, step: () => Promise<{ done: unknown }> | { done: unknown }): Promise<boolean> {
    try {
      const { done } = await this.#lock.run(step);
      await done;
      return true;
    } catch (error) {
      this.#logger.error(`${action} in store ${JSON.stringify(this.location)}`, error);
      return false;
    }
  }

  /** Reads the document unless what the backend holds no longer matters (a pending clear). */
  async #ready(): Promise<void> {
    if (this.#entries !== undefined || this.#writing?.cleared || this.#pending?.cleared) return;
    const entries = await this.#load();
    this.#entries ??= entries;
  }

  #load(): Promise<Entries> {
    this.#loading ??= this.#read().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  async #read(): Promise<Entries> {
    let text: string | undefined;
    try {
      text = await this.#backend.read();
    } catch (error) {
      throw new StoreIOError("read", this.location, error);
    }
    return text === undefined ? new Map() : parseDocument(text, this.location);
  }

  #lookup(key: string): string | undefined {
    for (const batch of [this.#pending, this.#writing]) {
      if (batch?.changes.has(key)) return batch.changes.get(key);
      if (batch?.cleared) return undefined;
    }
    return this.#entries?.get(key);
  }

  // Returned in an object: a promise returned from a Lock step would hold the lock until it settled.
  #stage(change: (batch: Batch) => void): { done: Promise<void> } {
    if (this.#pending === undefined) {
      this.#pending = pendingBatch();
      // setImmediate, not a microtask: every change called in this turn joins the first write.
      if (this.#writing === undefined) setImmediate(() => void this.#flush());
    }
    change(this.#pending);
    return { done: this.#pending.done };
  }

  async #flush(): Promise<void> {
    const batch = this.#pending;
    if (batch === undefined || this.#writing !== undefined) return;
    this.#pending = undefined;
    this.#writing = batch;
    try {
      // Not yet read only when a clear below this batch failed: the changes go on what is stored.
      const base = batch.cleared ? new Map<string, string>() : (this.#entries ?? (await this.#load()));
      await this.#persist(batch, renderDocument(merge(base, batch)));
      apply(base, batch);
      this.#entries = base;
      batch.resolve();
    } catch (error) {
      batch.reject(error);
    } finally {
      this.#writing = undefined;
      void this.#flush();
    }
  }

  async #persist(batch: Batch, text: string): Promise<void> {
    const remove = batch.cleared && text === renderDocument([]);
    try {
      await (remove ? this.#backend.remove() : this.#backend.write(text));
    } catch (error) {
      if (isStoreIOError(error) || isStoreFormatError(error)) throw error;
      throw new StoreIOError(remove ? "remove" : "write", this.location, error);
    }
  }
}

function pendingBatch(): PendingBatch {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { cleared: false, changes: new Map(), done, resolve, reject };
}

/**
 * The name the store had as a Python library, kept for its call sites.
 * @deprecated Use {@link AioKV}; this is the same class.
 */
export const aiocache: typeof AioKV = AioKV;
/** @deprecated Use {@link AioKV}. */
export type aiocache = AioKV;
