export { AioKV, aiocache, type AioKVOptions, type Logger } from "./aiokv.js";
export type { Backend } from "./backend.js";
export {
  CorruptStoreError,
  InvalidStoreShapeError,
  isStoreFormatError,
  isStoreIOError,
  isStoreLockedError,
  isUnsyncedWriteError,
  SchemaMismatchError,
  StoreFormatError,
  StoreIOError,
  StoreLockedError,
  UnsyncedWriteError,
  type StoreOperation,
  type StoreOwner,
  type TextPosition,
} from "./errors.js";
export type { StoreSchema } from "./schema.js";
export type { StoreContents, StoreEntry, StoreKey, StoreShape, StoreValue, TimestampKey, UntypedKey } from "./types.js";
export { MAX_DEPTH, type JsonObject, type JsonValue } from "./json-value.js";
