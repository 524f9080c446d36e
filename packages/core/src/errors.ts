/**
 * Marks a {@link StoreFormatError}, subclasses included, for {@link isStoreFormatError}. A key
 * in the global symbol registry, so that every copy of this module (an ESM and a CommonJS one in
 * one process, two installed copies) marks its errors with the same symbol.
 */
const formatMark: unique symbol = Symbol.for("@aiokv/core.StoreFormatError");

/**
 * Error thrown when a store's document exists but cannot be used as a store: the base of
 * {@link CorruptStoreError}, {@link InvalidStoreShapeError} and {@link SchemaMismatchError}. The
 * document is left as it is; `clear()` is the way out.
 */
export class StoreFormatError extends Error {
  override readonly name: string = "StoreFormatError";
  /** The document's location (a path, `memory:<name>`). */
  readonly location: string;

  static {
    // On the prototype, where every subclass inherits it, and not in the class's type: two
    // copies' error types stay interchangeable, and a new subclass needs no list to join.
    Object.defineProperty(this.prototype, formatMark, { value: true });
  }

  constructor(message: string, location: string, options?: ErrorOptions) {
    super(message, options);
    this.location = location;
  }
}

/** Where in a document's text a problem is: 1-based, as editors count. */
export interface TextPosition {
  readonly line: number;
  readonly column: number;
}

/**
 * Error thrown when a store's document is not valid JSON (truncated, empty, garbage, a BOM) or
 * not valid UTF-8. Its message and `position` say where the text stops being JSON, when that can
 * be told; `byteOffset`, where the bytes stop being UTF-8.
 */
export class CorruptStoreError extends StoreFormatError {
  override readonly name = "CorruptStoreError" as const;
  /** The line and column of the first problem. */
  readonly position: TextPosition | undefined;
  /** For a document that is not valid UTF-8: the 0-based offset of its first invalid byte sequence. */
  readonly byteOffset: number | undefined;

  constructor(
    message: string,
    location: string,
    options?: ErrorOptions & { position?: TextPosition | undefined; byteOffset?: number | undefined },
  ) {
    super(message, location, options);
    this.position = options?.position;
    this.byteOffset = options?.byteOffset;
  }
}

/** Error thrown when a store's document is valid JSON but not an object of storable values. */
export class InvalidStoreShapeError extends StoreFormatError {
  override readonly name = "InvalidStoreShapeError" as const;
}

/**
 * What a backend was doing when it failed. `"sync"`: the document was replaced, but making it
 * durable failed, so the change is in the file yet may not survive a power loss.
 */
export type StoreOperation = "lock" | "read" | "write" | "remove" | "move" | "sync";

/**
 * Error thrown when a backend fails to read, write or remove a store's document. The backend's
 * own error (an `EFBIG`, `ENOTDIR`, a lost connection) is its `cause`.
 */
export class StoreIOError extends Error {
  override readonly name = "StoreIOError" as const;
  /** The document's location (a path, `memory:<name>`). */
  readonly location: string;
  /** What the backend was doing. */
  readonly operation: StoreOperation;
  /** The cause's `code` (`"ENOSPC"`, `"EISDIR"`), when it has one. */
  readonly code: string | undefined;

  constructor(operation: StoreOperation, location: string, cause: unknown) {
    // A failed sync is the one failure after which the change is in place: the message says so.
    const detail = operation === "sync" ? `the change is in the file but may not survive a power loss (${describe(cause)})` : describe(cause);
    super(`Cannot ${operation} store ${JSON.stringify(location)}: ${detail}`, { cause });
    this.location = location;
    this.operation = operation;
    this.code = errorCode(cause);
  }
}

/**
 * Thrown by a backend's `write()` when the new document is in place but could not be made durable
 * (the file system's sync after the rename failed): unlike any other error of `write()`, the
 * backend holds the new text. `AioKV` keeps the change and rejects its callers with a
 * {@link StoreIOError} whose `operation` is `"sync"`. The error of the sync is the `cause`.
 */
export class UnsyncedWriteError extends Error {
  override readonly name = "UnsyncedWriteError" as const;
  /** The cause's `code` (`"EIO"`), when it has one. */
  readonly code: string | undefined;

  constructor(cause: unknown) {
    super(`The document was replaced, but syncing it failed: ${describe(cause)}`, { cause });
    this.code = errorCode(cause);
  }
}

/** Who holds a store's owner lock, as far as its backend can tell. */
export interface StoreOwner {
  /** The holder's process id. */
  readonly pid: number;
  /** The holder's host name. */
  readonly host: string;
  /** When it took the lock (ISO 8601). */
  readonly since: string;
}

/**
 * Error thrown when another owner holds a store's lock: a second `AioKV` on the same file, in this
 * process or another, or an owner whose lock was taken over while it was paused. Nothing was
 * written. Close the other owner first, or wait for its lock to go stale.
 */
export class StoreLockedError extends Error {
  override readonly name = "StoreLockedError" as const;
  /** The document's location (a path, `memory:<name>`). */
  readonly location: string;
  /** The lock's holder, when the backend knows it. */
  readonly owner: StoreOwner | undefined;

  constructor(location: string, owner?: StoreOwner, options?: ErrorOptions) {
    const holder = owner ? `process ${owner.pid} on ${owner.host} since ${owner.since}` : "another owner";
    super(`Cannot own store ${JSON.stringify(location)}: it is locked by ${holder}`, options);
    this.location = location;
    // Only what the error names: a backend's lock record may carry more (tokens, sockets).
    this.owner = owner && { pid: owner.pid, host: owner.host, since: owner.since };
  }
}

/**
 * Error of every change (`set`, `setMany`, `update`, `delete`, `deleteMany`, `remove`,
 * `removeMany`, `clear`, `quarantine`) on a store opened with `readOnly: true`: a follower reads a
 * document that another store owns and writes nothing. Nothing was written and no lock was taken;
 * make the change through the store that owns the document.
 */
export class StoreReadOnlyError extends Error {
  override readonly name = "StoreReadOnlyError" as const;
  /** The document's location (a path, `memory:<name>`). */
  readonly location: string;
  /** The method that was refused (`"set"`, `"clear"`, ...). */
  readonly method: string;

  constructor(method: string, location: string) {
    super(`Cannot call ${method}() on store ${JSON.stringify(location)}: it is read-only (opened with readOnly: true; the store that owns it makes changes)`);
    this.location = location;
    this.method = method;
  }
}

/**
 * Error thrown when a store opened with a `schema` holds a value the schema refuses, or a key it
 * does not name. `key` is the first such key in the document; the zod error is the `cause`.
 */
export class SchemaMismatchError extends StoreFormatError {
  override readonly name = "SchemaMismatchError" as const;
  /** The first key whose value the schema refuses. */
  readonly key: string;

  constructor(message: string, location: string, key: string, options?: ErrorOptions) {
    super(message, location, options);
    this.key = key;
  }
}

/**
 * Whether `error` is a {@link StoreFormatError} (or a subclass), also when it comes from another
 * copy of `@aiokv/core` (its CommonJS build, another install), where `instanceof` fails: it checks
 * the mark every format error inherits, not a name, which any error can take.
 *
 * @param error Anything caught.
 * @returns `true` for a corrupt or wrongly shaped document.
 */
export function isStoreFormatError(error: unknown): error is StoreFormatError {
  return error instanceof Error && (error as Error & { [formatMark]?: unknown })[formatMark] === true;
}

/**
 * Whether `error` is a {@link StoreIOError}, also across installed copies of `@aiokv/core`.
 *
 * @param error Anything caught.
 * @returns `true` for a failed read, write or remove.
 */
export function isStoreIOError(error: unknown): error is StoreIOError {
  return error instanceof Error && error.name === "StoreIOError";
}

/**
 * Whether `error` is a {@link StoreLockedError}, also across installed copies of `@aiokv/core`.
 *
 * @param error Anything caught.
 * @returns `true` when another owner holds the store.
 */
export function isStoreLockedError(error: unknown): error is StoreLockedError {
  return error instanceof Error && error.name === "StoreLockedError";
}

/**
 * Whether `error` is a {@link StoreReadOnlyError}, also across installed copies of `@aiokv/core`.
 *
 * @param error Anything caught.
 * @returns `true` when a change was refused because the store is read-only.
 */
export function isStoreReadOnlyError(error: unknown): error is StoreReadOnlyError {
  return error instanceof Error && error.name === "StoreReadOnlyError";
}

/**
 * Whether `error` is an {@link UnsyncedWriteError}, also when it comes from another installed
 * copy of `@aiokv/core` (a backend built against its own).
 *
 * @param error Anything caught.
 * @returns `true` when the write is in place but not known to be durable.
 */
export function isUnsyncedWriteError(error: unknown): error is UnsyncedWriteError {
  return error instanceof Error && error.name === "UnsyncedWriteError";
}

/** The `code` of a Node.js system error (`"ENOENT"`, `"EEXIST"`), if it has one. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
