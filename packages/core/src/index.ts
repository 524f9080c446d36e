export { AioKV, aiocache, type AioKVOptions, type Logger } from "./aiokv.js";
export type { Backend } from "./backend.js";
export {
  CorruptStoreError,
  InvalidStoreShapeError,
  isStoreFormatError,
  isStoreIOError,
  isStoreLockedError,
  StoreFormatError,
  StoreIOError,
  StoreLockedError,
  type StoreOperation,
  type StoreOwner,
} from "./errors.js";
export { MAX_DEPTH, type JsonObject, type JsonValue } from "./json-value.js";
