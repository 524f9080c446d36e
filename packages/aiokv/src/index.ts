export { AioKV, aiocache } from "./aiokv.js";
export {
  CorruptStoreError,
  InvalidStoreShapeError,
  isStoreFormatError,
  isStoreIOError,
  MAX_DEPTH,
  StoreFormatError,
  StoreIOError,
  type AioKVOptions,
  type Backend,
  type JsonObject,
  type JsonValue,
  type Logger,
  type StoreOperation,
} from "@aiokv/core";
export { FileBackend, type FileBackendOptions } from "@aiokv/fs-backend";
