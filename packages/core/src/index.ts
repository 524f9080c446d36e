export { AioKV, type AioKVOptions, type Logger } from "./aiokv.js";
export type { Backend } from "./backend.js";
export { parseOwner, unlessAbsent } from "./backend-helpers.js";
export {
  CorruptStoreError,
  errorCode,
  InvalidStoreShapeError,
  isStoreFormatError,
  isStoreIOError,
  isStoreLockedError,
  isStoreReadOnlyError,
  isUnsyncedWriteError,
  SchemaMismatchError,
  StoreFormatError,
  StoreIOError,
  StoreLockedError,
  StoreReadOnlyError,
  UnsyncedWriteError,
  type StoreOperation,
  type StoreOwner,
  type TextPosition,
} from "./errors.js";
export type { StoreSchema } from "./schema.js";
export type { StoreChange, StoreContents, StoreEntry, StoreKey, StoreShape, StoreValue, TimestampKey, UntypedKey } from "./types.js";
export { MAX_DEPTH, MAX_TEXT_LENGTH, type JsonObject, type JsonValue } from "./json-value.js";
