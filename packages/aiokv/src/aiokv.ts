import { AioKV as CoreAioKV, type AioKVOptions, type Backend, type JsonObject, type StoreShape } from "@aiokv/core";
import { FileBackend, type FileBackendOptions } from "@aiokv/fs-backend";

/**
 * The store on a JSON file when given a path, or on any {@link Backend}.
 *
 * @example
 * ```ts
 * import { AioKV } from "aiokv";
 *
 * const kv = new AioKV("state.json");
 * await kv.set("seen_ran_cleanup"); // the current unix time
 * ```
 */
export class AioKV<T extends StoreShape<T> = JsonObject> extends CoreAioKV<T> {
  /**
   * @param target A state file's path (the file backend), or any Backend.
   * @param options The store's options, and the file backend's when `target` is a path.
   */
  constructor(target: string | Backend, options: AioKVOptions<T> & FileBackendOptions = {}) {
    super(typeof target === "string" ? new FileBackend(target, options) : target, options);
  }
}

/**
 * The name the store had as a Python library, kept for its call sites.
 * @deprecated Use {@link AioKV}; this is the same class.
 */
export const aiocache: typeof AioKV = AioKV;
/** @deprecated Use {@link AioKV}. */
export type aiocache = AioKV;
