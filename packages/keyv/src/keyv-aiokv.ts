import { EventEmitter } from "node:events";
import { AioKV, type AioKVOptions, type Backend, type JsonValue } from "@aiokv/core";
import { FileBackend, type FileBackendOptions } from "@aiokv/fs-backend";
import type { KeyvStoreAdapter, StoredData } from "keyv";

/** Options of {@link KeyvAioKV}: the store's, and the file backend's when it is given a path. */
export type KeyvAioKVOptions = Omit<AioKVOptions, "schema" | "defaults"> & FileBackendOptions;

/** What a value's text is read with to find its `expires` for `has()`. */
export type KeyvDeserialize = (text: string) => unknown;

/** The adapter's `opts`, which Keyv reads. */
export interface KeyvAioKVOpts {
  /**
   * `"redis"`: Keyv 5 gives `keyv.iterator()` only to stores whose `opts.dialect` is in its own
   * list of iterable adapters (sqlite, postgres, mysql, mongo, redis, valkey, etcd), not to any
   * store with an `iterator()`; `keyv-file` says `"redis"` for the same reason. Nothing else in
   * Keyv reads it.
   */
  readonly dialect: "redis";
  /** The store's location (the file's absolute path), for messages. */
  readonly url: string;
  /**
   * Reads a stored text to find its `expires` for `has()`. Give Keyv's `deserialize` here when
   * it is not JSON (`JSON.parse` reads Keyv's default and `json-bigint`'s texts).
   * @default JSON.parse
   */
  deserialize?: KeyvDeserialize | undefined;
}

/**
 * A Keyv storage adapter over an aiokv store: Keyv's entries in one JSON file, each write atomic
 * and synced to disk before Keyv's promise resolves, behind aiokv's owner lock.
 *
 * - Values are stored as Keyv gives them: its serialized text (a JSON string in the file) or,
 *   with `serialize: undefined`, its `{ value, expires }` object as JSON.
 * - `delete()`/`deleteMany()` resolve whether the key was stored, decided in the same step as
 *   the removal; `clear()` removes only the namespace's keys (every key without a namespace), in
 *   one write; `has()` is false for an expired entry, as Keyv's `get()` is.
 * - Errors reject the call; Keyv emits `error` for its writes, and the adapter emits `error`
 *   (to Keyv) for reads, whose errors Keyv's `get()` would otherwise drop.
 *
 * @example
 * ```ts
 * import Keyv from "keyv";
 * import { KeyvAioKV } from "@aiokv/keyv";
 *
 * const keyv = new Keyv({ store: new KeyvAioKV("cache.json"), namespace: "cache" });
 * await keyv.set("greeting", "hello", 60_000); // expires in a minute
 * await keyv.get("greeting"); // "hello"
 * await keyv.disconnect(); // closes the store, releasing the file
 * ```
 */
export class KeyvAioKV extends EventEmitter implements KeyvStoreAdapter {
  /** The aiokv store that holds the entries. */
  readonly kv: AioKV;
  /** Keyv's namespace, set by Keyv: keys are `<namespace>:<key>`, and `clear()` removes only these. */
  namespace: string | undefined;
  readonly opts: KeyvAioKVOpts;

  /**
   * @param target A JSON file's path (aiokv's file backend on it, with `options`), any aiokv
   *   `Backend`, or an `AioKV` store (its own options apply; `disconnect()` closes it).
   * @param options The store's options (`sync`, `mode`, `staleAfter`, `lock`, `logger`, `clock`),
   *   when the adapter makes the store.
   * @throws {TypeError} When `target` is none of these, or `options` come with an `AioKV`.
   */
  constructor(target: string | Backend | AioKV, options: KeyvAioKVOptions = {}) {
    super();
    if (typeof target === "string") {
      this.kv = new AioKV(new FileBackend(target, options), options);
    } else if (isBackend(target)) {
      this.kv = new AioKV(target, options);
    } else if (isStore(target)) {
      if (Object.keys(options).length > 0) {
        throw new TypeError("Cannot create KeyvAioKV: options are for a store the adapter makes; an AioKV store has its own");
      }
      this.kv = target;
    } else {
      throw new TypeError(`Cannot create KeyvAioKV: expected a path, a Backend or an AioKV store, received ${describe(target)}`);
    }
    this.opts = { dialect: "redis", url: this.kv.location };
  }

  /** The value stored under `key` (as Keyv gave it), or `undefined`. Emits `error` and rejects on a read error. */
  get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    return this.#reading(() => this.kv.get(key) as Promise<StoredData<Value> | undefined>);
  }

  /** The values stored under `keys`, in order, `undefined` for an absent one. Emits `error` and rejects on a read error. */
  getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    return this.#reading(() => Promise.all(keys.map((key) => this.kv.get(key) as Promise<StoredData<Value | undefined>>)));
  }

  /**
   * Stores `value` (Keyv's serialized text, or its entry as JSON) under `key`; resolves `true`
   * once the file holds it. It takes no `ttl`: Keyv keeps the expiry time inside the value.
   * @throws {TypeError} When the value has no JSON form (a symbol, a function, a BigInt).
   * @throws {StoreIOError} {StoreLockedError} {StoreFormatError} As aiokv's `set()`.
   */
  async set(key: string, value: unknown): Promise<boolean> {
    await this.kv.set(key, stored(key, value));
    return true;
  }

  /** Stores every entry in one write: all of them, or (when one is refused) none. */
  async setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<void> {
    await this.kv.setMany(entries.map(({ key, value }): [string, JsonValue] => [key, stored(key, value)]));
  }

  /** Removes `key`; resolves whether it was stored. Rejects on an I/O, lock or format error. */
  delete(key: string): Promise<boolean> {
    return this.kv.remove(key);
  }

  /** Removes `keys` in one write; resolves whether any of them was stored. */
  async deleteMany(keys: string[]): Promise<boolean> {
    return (await this.kv.removeMany(keys)) > 0;
  }

  /**
   * Removes the namespace's keys (`<namespace>:…`) in one write, leaving other namespaces' and
   * other keys; without a namespace, every key of the store.
   */
  async clear(): Promise<void> {
    const prefix = this.namespace === undefined ? undefined : `${this.namespace}:`;
    // Picked when the removal runs: a set called after clear() is kept.
    await this.kv.removeMany(prefix === undefined ? () => true : (key) => key.startsWith(prefix));
  }

  /**
   * Whether `key` holds an entry that has not expired (Keyv calls this instead of its own check,
   * so the adapter reads the entry's `expires` as Keyv's `get()` does). Emits `error` and rejects
   * on a read error.
   */
  has(key: string): Promise<boolean> {
    return this.#reading(async () => this.#present(await this.kv.get(key)));
  }

  /** `has()` for each key, in order. */
  hasMany(keys: string[]): Promise<boolean[]> {
    return this.#reading(() => Promise.all(keys.map(async (key) => this.#present(await this.kv.get(key)))));
  }

  /**
   * The entries whose keys start with `<namespace>:` (every entry without a namespace), as
   * `[key, value]` pairs with the values as stored; Keyv's `iterator()` drops and deletes the
   * expired ones. Emits `error` and throws on a read error.
   */
  async *iterator<Value>(namespace?: string): AsyncGenerator<Array<string | Awaited<Value> | undefined>, void> {
    const prefix = namespace === undefined ? undefined : `${namespace}:`;
    const entries = this.kv.entries()[Symbol.asyncIterator]();
    try {
      for (;;) {
        const step = await this.#reading(() => entries.next());
        if (step.done === true) return;
        const [key, value] = step.value;
        if (prefix === undefined || key.startsWith(prefix)) yield [key, value as Awaited<Value>];
      }
    } finally {
      await entries.return?.();
    }
  }

  /** Closes the store: waits for pending writes, then releases the file. */
  disconnect(): Promise<void> {
    return this.kv.close();
  }

  /** Whether a stored value (`undefined`: none) is an entry that has not expired. */
  async #present(value: unknown): Promise<boolean> {
    return value !== undefined && !(await this.#expired(value));
  }

  async #expired(value: unknown): Promise<boolean> {
    let entry = value;
    if (typeof value === "string") {
      try {
        entry = await (this.opts.deserialize ?? JSON.parse)(value);
      } catch {
        return false; // Not a text it can read: Keyv's own get() decides.
      }
    }
    const expires = typeof entry === "object" && entry !== null ? (entry as { expires?: unknown }).expires : undefined;
    return typeof expires === "number" && Date.now() > expires;
  }

  /** Runs a read; on error, emits it (when anything listens) and rejects with it. */
  async #reading<R>(read: () => Promise<R>): Promise<R> {
    try {
      return await read();
    } catch (error) {
      if (this.listenerCount("error") > 0) this.emit("error", error);
      throw error;
    }
  }
}

/** What the file holds for Keyv's `value`: its text as it is, anything else as its JSON. */
function stored(key: string, value: unknown): JsonValue {
  if (typeof value === "string") return value;
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new TypeError(`Cannot set key ${JSON.stringify(key)}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (json === undefined) throw new TypeError(`Cannot set key ${JSON.stringify(key)}: ${typeof value} has no JSON form`);
  return JSON.parse(json) as JsonValue;
}

function isBackend(target: unknown): target is Backend {
  const backend = target as Partial<Backend> | null;
  return typeof backend?.read === "function" && typeof backend.write === "function";
}

// By shape, not instanceof: an AioKV from the other build (ESM or CommonJS) is another class.
function isStore(target: unknown): target is AioKV {
  const store = target as Partial<Record<keyof AioKV, unknown>> | null;
  return typeof store?.get === "function" && typeof store.remove === "function" && typeof store.removeMany === "function" && typeof store.entries === "function";
}

function describe(target: unknown): string {
  return target === null ? "null" : typeof target === "object" ? "an object that is neither" : typeof target;
}
