export { AioKV, aiocache, type AioKVOptions, type Logger } from "./aiokv.js";
export type { Backend } from "./backend.js";
export {
  CorruptStoreError,
  InvalidStoreShapeError,
  isStoreFormatError,
  isStoreIOError,
  StoreFormatError,
  StoreIOError,
  type StoreOperation,
} from "./errors.js";
export { MAX_DEPTH, type JsonObject, type JsonValue } from "./json-value.js";
