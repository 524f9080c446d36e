/**
 * Where a store's document lives. A backend moves bytes and nothing else: decoding, parsing,
 * value checks, the lock and group commit live in `AioKV`, so every backend behaves the same.
 *
 * Reject with the underlying error (AioKV wraps it, keeping it as `cause`), except for absence,
 * which is a value: `read()` resolves `undefined` and `remove()` resolves. The document goes out
 * as UTF-8 bytes in pieces (AioKV keeps unchanged parts of a large document encoded, and a file
 * writes them with one `writev`, without copying them together) and comes back as bytes, which
 * AioKV decodes strictly (bytes that are not UTF-8 are a `CorruptStoreError` naming the offset),
 * or as text where the storage holds text.
 *
 * @example
 * ```ts
 * import type { Backend } from "@aiokv/core";
 *
 * class StringBackend implements Backend {
 *   readonly location = "string:demo";
 *   #text: string | undefined;
 *   async read() { return this.#text; }
 *   async write(pieces: readonly Uint8Array[]) { this.#text = new TextDecoder().decode(Buffer.concat(pieces)); }
 *   async remove() { this.#text = undefined; }
 * }
 * ```
 */
export interface Backend {
  /** Where the document lives (a path, `memory:<name>`); every error message names it. */
  readonly location: string;
  /**
   * The document's bytes as stored (decoded by AioKV, which refuses bytes that are not UTF-8),
   * or its text where the storage holds text; `undefined` when there is none. An empty document
   * reads as empty bytes or `""`. Do not decode bytes here: a lenient decoder would hide a
   * corrupt document behind U+FFFD, and the next write would make that permanent.
   */
  read(): Promise<string | Uint8Array | undefined>;
  /**
   * Replaces the document whole with these UTF-8 bytes, given in pieces to be written one after
   * the other; a reader sees the old text or the new, never a mix.
   */
  write(pieces: readonly Uint8Array[]): Promise<void>;
  /** Removes the document. Resolves when it is already absent. */
  remove(): Promise<void>;
  /**
   * Optional: takes ownership of the document for this handle, so that no other handle writes it
   * until `unlock()`. Rejects with `StoreLockedError` while another owner holds it. A backend that
   * can lose ownership (a stale lock taken over) rejects its later writes with `StoreLockedError`.
   */
  lock?(): Promise<void>;
  /** Optional, with `lock()`: gives ownership up. */
  unlock?(): Promise<void>;
  /**
   * Optional: renames the document to `<location>.<suffix>`, keeping it as evidence, so that the
   * store starts empty (`quarantine()`). Resolves the new location; `undefined` when there is none.
   */
  moveAside?(suffix: string): Promise<string | undefined>;
  /** Optional: releases what the backend holds open (a connection), called by the store's `close()` after `unlock()`. */
  close?(): Promise<void>;
  /**
   * Optional: calls `onChange` (with no arguments) soon after the document may have changed,
   * whoever changed it (another handle, another process), until the returned function is called.
   * A follower (`readOnly: true`) calls it on first use and re-reads the document whenever told,
   * so a spurious call costs one read and a missed one delays what the follower sees: when
   * unsure, call. It must not throw, and what it starts (watchers, timers) must not keep the
   * process alive and must stop when the returned function is called. Without it, a follower
   * re-reads the document on every read.
   */
  watch?(onChange: () => void): () => void;
  /**
   * Optional, for `journal: true`: the journal beside the document (`<location>.journal`) as
   * stored, bytes or text, `undefined` when there is none. AioKV reads it before the document
   * and applies its records, whatever its own `journal` option says.
   */
  readJournal?(): Promise<string | Uint8Array | undefined>;
  /** Optional, with `readJournal`: where the journal lives, for messages. Default: `<location>.journal`. */
  readonly journalLocation?: string;
  /**
   * Optional, with `readJournal`: starts the journal with these bytes, replacing whatever is
   * there, durable as `write()` is, and atomically: a reader sees the old journal or the new.
   * A file makes a new one each time (a temp file renamed into place), so that an owner paused
   * while its lock was taken over, which may still hold the old one open, never writes into it.
   */
  writeJournal?(pieces: readonly Uint8Array[]): Promise<void>;
  /**
   * Optional, with `readJournal`: appends these bytes to the journal that `writeJournal` started
   * (rejecting, never making one, where there is none), durable as `write()` is. Every byte is
   * written or it rejects; where the bytes are in place but syncing them failed, it rejects with
   * `UnsyncedWriteError`. An owner that lost its lock rejects with `StoreLockedError`.
   */
  appendJournal?(pieces: readonly Uint8Array[]): Promise<void>;
  /**
   * Optional, with `readJournal`: cuts the journal back to its first `length` bytes (after a
   * failed append, or a torn last record found on open); 0 removes it. Resolves when it is absent.
   */
  cutJournal?(length: number): Promise<void>;
}
