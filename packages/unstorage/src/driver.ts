import { AioKV, type AioKVOptions, type Backend, type JsonValue, type StoreChange } from "@aiokv/core";
import { FileBackend, type FileBackendOptions } from "@aiokv/fs-backend";
import { defineDriver, type Driver, type WatchCallback } from "unstorage";

/** What every form of {@link AioKVDriverOptions} takes. */
export interface AioKVDriverBase {
  /**
   * A prefix inside the document: the driver's item `foo:bar` is the document's key
   * `<base>:foo:bar`, and `getKeys()`, `clear()` and `watch()` see only the keys under it. Give
   * two drivers on one `store` different bases to share it.
   * @default "" (the whole document)
   */
  readonly base?: string;
}

/** The store's own options that the driver passes on when it makes the store. */
type StoreOptions = Pick<AioKVOptions, "clock" | "logger" | "lock">;

/**
 * Options of {@link aiokvDriver}: where the items live, as exactly one of
 * - `path`: a JSON file (the file backend, with its options `sync`, `mode`, `staleAfter`),
 * - `backend`: any aiokv `Backend` (`MemoryBackend`, `RedisBackend`, yours),
 * - `store`: an `AioKV` you made (and close yourself).
 */
export type AioKVDriverOptions =
  | (AioKVDriverBase & StoreOptions & FileBackendOptions & { readonly path: string; readonly backend?: never; readonly store?: never })
  | (AioKVDriverBase & StoreOptions & { readonly backend: Backend; readonly path?: never; readonly store?: never })
  | (AioKVDriverBase & { readonly store: AioKV; readonly path?: never; readonly backend?: never });

/** The driver: unstorage's `Driver`, with every method this one has marked present, for calls on it directly. */
export type AioKVDriver = Driver<AioKVDriverOptions, AioKV> &
  Required<
    Pick<
      Driver<AioKVDriverOptions, AioKV>,
      "name" | "options" | "getInstance" | "getItems" | "getItemRaw" | "setItem" | "setItems" | "setItemRaw" | "removeItem" | "clear" | "dispose" | "watch"
    >
  >;

const DRIVER_NAME = "aiokv";
/** How unstorage writes bytes it stores as a string (its `serializeRaw`), read back by `getItemRaw`. */
const BASE64_PREFIX = "base64:";

/** unstorage's key normalization: no query, `/` and `\` as `:`, no empty segment, no `:` at either end. */
function normalizeKey(key: string | undefined): string {
  if (!key) return "";
  return (key.split("?")[0] ?? "").replace(/[/\\]/g, ":").replace(/:+/g, ":").replace(/^:|:$/g, "");
}

/** A base as a key prefix: `""`, or the normalized base and a `:`. */
function normalizeBase(base: string | undefined): string {
  const key = normalizeKey(base);
  return key ? `${key}:` : "";
}

function invalidKey(key: unknown): Error {
  return new Error(`[unstorage] [${DRIVER_NAME}] Invalid key: ${JSON.stringify(key)}`);
}

/** Bytes as unstorage's raw format stores them in a string. */
function bytesOf(value: unknown): Buffer | undefined {
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return undefined;
}

function openStore(options: AioKVDriverOptions): { store: AioKV; owned: boolean } {
  const given = [options.path, options.backend, options.store].filter((target) => target !== undefined).length;
  if (given !== 1) {
    throw new TypeError(`[unstorage] [${DRIVER_NAME}] Give exactly one of the options \`path\`, \`backend\` and \`store\`, not ${given}`);
  }
  if (options.store !== undefined) {
    // Checked by shape, not instanceof: a store from the other build (ESM or CommonJS) of core is one too.
    const methods = ["get", "set", "setMany", "has", "keys", "remove", "removeMany", "watch", "close"] as const;
    if (methods.some((method) => typeof (options.store as unknown as Partial<Record<string, unknown>> | null)?.[method] !== "function")) {
      throw new TypeError(`[unstorage] [${DRIVER_NAME}] \`store\` must be an AioKV`);
    }
    return { store: options.store, owned: false };
  }
  const { clock, logger, lock } = options;
  const storeOptions: AioKVOptions = { ...(clock && { clock }), ...(logger && { logger }), ...(lock !== undefined && { lock }) };
  if (options.backend !== undefined) return { store: new AioKV(options.backend, storeOptions), owned: true };
  if (typeof options.path !== "string" || options.path === "") {
    throw new TypeError(`[unstorage] [${DRIVER_NAME}] \`path\` must be a non-empty string`);
  }
  const { sync, mode, staleAfter } = options;
  const fileOptions: FileBackendOptions = { ...(sync !== undefined && { sync }), ...(mode !== undefined && { mode }), ...(staleAfter !== undefined && { staleAfter }) };
  return { store: new AioKV(new FileBackend(options.path, fileOptions), storeOptions), owned: true };
}

/**
 * An [unstorage](https://unstorage.unjs.io) driver that keeps every item in one aiokv store: by
 * default one JSON file, replaced atomically and synced on each write, owned by one process.
 *
 * Items are stored as unstorage hands them to drivers, the serialized string (`setItem(k, {a: 1})`
 * stores the string `{"a":1}`), under their normalized key (`foo:bar`); `setItemRaw` stores bytes as
 * `base64:<data>` and other JSON data as it is. `getItems` reads one consistent state, and
 * `setItems` and `clear` are one write each. Errors are aiokv's own: a corrupt file rejects with
 * `CorruptStoreError`, never resets to an empty store. There is no TTL.
 *
 * @example
 * ```ts
 * import { createStorage } from "unstorage";
 * import { aiokvDriver } from "@aiokv/unstorage";
 *
 * const storage = createStorage({ driver: aiokvDriver({ path: "state.json" }) });
 * await storage.setItem("user:1", { name: "Ada" });
 * await storage.getItem("user:1"); // { name: "Ada" }
 * await storage.dispose(); // closes the store, releasing the file
 * ```
 */
export const aiokvDriver: (options: AioKVDriverOptions) => AioKVDriver = defineDriver(
  // defineDriver types what it returns as a plain Driver: the cast keeps the methods this one has.
  (options: AioKVDriverOptions): AioKVDriver => {
    const { store, owned } = openStore(options);
    const prefix = normalizeBase(options.base);
    const unwatchers = new Set<() => void>();

    /** The document's key for the driver's `key`. */
    const docKey = (key: string): string => {
      const normalized = normalizeKey(key);
      if (!normalized) throw invalidKey(key);
      return prefix + normalized;
    };
    /** The driver's key for a document key, or `undefined` for one outside `base`. */
    const itemKey = (key: string): string | undefined => (key.startsWith(prefix) && key.length > prefix.length ? key.slice(prefix.length) : undefined);
    /** The document keys of the items under `base`. */
    const isUnder = (base: string | undefined): ((key: string) => boolean) => {
      const start = prefix + normalizeBase(base);
      return (key) => key.startsWith(start) && key.length > prefix.length;
    };
    const keysUnder = async (base: string | undefined): Promise<string[]> => (await store.keys()).filter(isUnder(base));

    return {
      name: DRIVER_NAME,
      options,
      getInstance: () => store,

      async hasItem(key) {
        return store.has(docKey(key));
      },

      async getItem(key) {
        return (await store.get(docKey(key))) ?? null;
      },

      async getItems(items) {
        // Called together, the reads see one state: the store runs calls in order.
        const keys = items.map((item) => docKey(item.key));
        const values = await Promise.all(keys.map((key) => store.get(key)));
        return items.map((item, i) => ({ key: item.key, value: values[i] ?? null }));
      },

      async getItemRaw(key) {
        const value = await store.get(docKey(key));
        if (value === undefined) return null;
        if (typeof value === "string" && value.startsWith(BASE64_PREFIX)) return Buffer.from(value.slice(BASE64_PREFIX.length), "base64");
        return value;
      },

      async setItem(key, value) {
        // unstorage turns setItem(key, undefined) into removeItem; a direct call gets the same.
        if (value === undefined) await store.remove(docKey(key));
        else await store.set(docKey(key), value);
      },

      async setItems(items) {
        await store.setMany(items.map((item): [string, JsonValue] => [docKey(item.key), item.value]));
      },

      async setItemRaw(key, value: unknown) {
        const bytes = bytesOf(value);
        if (value === undefined) await store.remove(docKey(key));
        else await store.set(docKey(key), bytes ? BASE64_PREFIX + bytes.toString("base64") : value);
      },

      async removeItem(key) {
        await store.remove(docKey(key));
      },

      async getKeys(base) {
        return (await keysUnder(base)).map((key) => key.slice(prefix.length));
      },

      async clear(base) {
        // Picked when the removal runs: an item set after clear() was called is kept.
        await store.removeMany(isUnder(base));
      },

      async dispose() {
        for (const unwatch of unwatchers) unwatch();
        if (owned) await store.close();
      },

      async watch(callback: WatchCallback) {
        // The keys this watcher knows of, so that a clear() of the store can name each one removed.
        const known = new Set<string>();
        const apply = (event: StoreChange): void => {
          if (event.type === "clear") {
            const removed = [...known];
            known.clear();
            for (const key of removed) callback("remove", key);
            return;
          }
          const key = itemKey(event.key);
          if (key === undefined) return;
          if (event.type === "set") known.add(key);
          else known.delete(key);
          callback(event.type === "set" ? "update" : "remove", key);
        };
        // Events that arrive while the keys are read wait for them, then apply in order.
        let waiting: StoreChange[] | undefined = [];
        const stop = store.watch((event) => {
          if (waiting) waiting.push(event);
          else apply(event);
        });
        let active = true;
        const unwatch = (): void => {
          if (!active) return;
          active = false;
          unwatchers.delete(unwatch);
          stop();
        };
        unwatchers.add(unwatch);
        try {
          for (const key of await store.keys()) {
            const item = itemKey(key);
            if (item !== undefined) known.add(item);
          }
        } catch (error) {
          unwatch();
          throw error;
        }
        const events = waiting;
        waiting = undefined;
        // Stopped (unwatch, dispose) while the keys were read: nothing more is reported.
        if (active) for (const event of events) apply(event);
        return unwatch;
      },
    };
  },
) as (options: AioKVDriverOptions) => AioKVDriver;
