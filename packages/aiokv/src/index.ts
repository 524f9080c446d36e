export { AioKV, aiocache } from "./aiokv.js";
export {
  CorruptStoreError,
  InvalidStoreShapeError,
  isStoreFormatError,
  isStoreIOError,
  isStoreLockedError,
  MAX_DEPTH,
  StoreFormatError,
  StoreIOError,
  StoreLockedError,
  type AioKVOptions,
  type Backend,
  type JsonObject,
  type JsonValue,
  type Logger,
  type StoreOperation,
  type StoreOwner,
} from "@aiokv/core";
export { FileBackend, type FileBackendOptions } from "@aiokv/fs-backend";
