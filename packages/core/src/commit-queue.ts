import type { Backend } from "./backend.js";
import { combine, isEmptyDocument, StoredDocument, stagingBatch, type Batch, type LoadCheck } from "./document.js";
import { isStoreFormatError, isStoreIOError, isStoreLockedError, isUnsyncedWriteError, StoreIOError } from "./errors.js";
import { documentDigest, journalHeader, journalRecord, readJournal } from "./journal.js";
import { MAX_TEXT_LENGTH } from "./json-value.js";
import { parseJson } from "./json-parse.js";

interface PendingBatch extends Batch {
  readonly done: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

/** What the store knows of the journal beside the document, once read. */
interface JournalState {
  /** The bytes of its header and records: a new record goes after them; 0 starts a new journal. */
  length: number;
  /** It holds bytes past `length` (a torn record, a failed append, a stale journal): cut before the next append. */
  excess: boolean;
  /** The digest of the document as stored, which a new journal names as its base (journal mode only). */
  base: Promise<string | null> | undefined;
  /** The document's size as last read or written, for the compaction rule. */
  documentBytes: number;
  /** It was there when the store read it: started by another owner (or an earlier run), so never appended to. */
  inherited: boolean;
  /** Compact once `length` passes this: the document's size (or 64 KiB), and as much again after a failed compaction. */
  compactAfter: number;
  /**
   * The store has no document, as a store without a journal would leave it (none read, or the
   * last write a clear that set nothing): a compaction then removes the document where it would
   * otherwise write `{}` (the whole-file store's document after deleting its last key).
   */
  absent: boolean;
}

/** The journal is rewritten into the document once it is longer than the document, or than this. */
export const MIN_COMPACTION_BYTES: number = 64 * 1024;

/** Options of {@link CommitQueue} beyond its backend. */
export interface QueueOptions {
  /** Append each write to the backend's journal instead of replacing the document (`journal: true`). */
  readonly journal?: boolean;
  /** Told of a failure that no caller awaits (a compaction after its write resolved). */
  readonly onError?: (message: string, error: unknown) => void;
}

/**
 * The document in memory and the writes that carry its changes to the backend (group commit):
 * changes staged while a write is in flight wait in one pending batch, which becomes the next
 * single write. A read looks through the pending batch, the one in flight, then what is stored.
 * Callers serialise their calls (AioKV's lock); writes run one at a time in the background.
 *
 * Nothing here waits on a timer (setImmediate, setTimeout): a consumer's tests with fake timers
 * would hang on the first write. A write starts from a promise job, once the callers' steps
 * called so far have staged their changes (`caughtUp`), which keeps them in one write.
 */
export class CommitQueue {
  readonly #backend: Backend;
  /** What the backend holds, once read. */
  #stored: StoredDocument | undefined;
  #loading: Promise<StoredDocument> | undefined;
  #writing: PendingBatch | undefined;
  #pending: PendingBatch | undefined;

  /** A write was refused because another owner took the document over: what is in memory is stale. */
  #ousted = false;

  /** The first write failure that no `flush()` has reported yet. */
  #failed: { done: Promise<void>; error: unknown } | undefined;

  readonly #check: LoadCheck | undefined;
  readonly #caughtUp: () => PromiseLike<void> | undefined;
  readonly #journaling: boolean;
  readonly #onError: ((message: string, error: unknown) => void) | undefined;
  /** The journal's state, once read (with the document); `undefined` for a backend without one. */
  #journal: JournalState | undefined;
  /** A rewrite of the document that empties the journal, in flight: the next write waits for it. */
  #compacting: Promise<void> | undefined;

  /**
   * @param backend Where the document lives.
   * @param check Runs on every key and value of the document when it is read (a schema's check).
   * @param caughtUp Resolves once the callers' operations called so far have staged their changes
   *   (`undefined` when they have): a new write waits for it, so that they share it.
   */
  constructor(backend: Backend, check?: LoadCheck, caughtUp: () => PromiseLike<void> | undefined = () => undefined, options: QueueOptions = {}) {
    this.#backend = backend;
    this.#check = check;
    this.#caughtUp = caughtUp;
    this.#journaling = options.journal ?? false;
    this.#onError = options.onError;
  }

  /** Where the journal lives: the backend's word, else beside the document, `<location>.journal`. */
  get journalLocation(): string {
    return this.#backend.journalLocation ?? `${this.#backend.location}.journal`;
  }

  /**
   * Called with each batch once the backend holds it (on disk, for a synced file; also when only
   * its sync failed, since the store and the backend then agree on it), before its callers resume.
   */
  onWritten: ((batch: Batch) => void) | undefined;

  /** Whether reads can be answered now: the document is read, or a pending clear makes it moot. */
  get isReady(): boolean {
    return this.#stored !== undefined || this.#writing?.cleared === true || this.#pending?.cleared === true;
  }

  /** Reads the document unless it is ready. */
  async ready(): Promise<void> {
    if (this.isReady) return;
    const stored = await this.#load();
    this.#stored ??= stored;
  }

  /** A key's JSON text as of every change staged so far; call after `ready()`. */
  lookup(key: string): string | undefined {
    const batch = this.#decider(key);
    return batch ? batch.changes.get(key) : this.#stored?.get(key);
  }

  /** Whether `key` is present as of every change staged so far, without serialising its value. */
  has(key: string): boolean {
    const batch = this.#decider(key);
    return batch ? batch.changes.get(key) !== undefined : (this.#stored?.has(key) ?? false);
  }

  /** Whether a change not yet written (pending or in flight) decides `key`'s value or absence. */
  isUnwritten(key: string): boolean {
    return this.#decider(key) !== undefined;
  }

  /** The in-flight write that `key`'s value or absence comes from: it may yet fail. */
  inFlightFor(key: string): Promise<void> | undefined {
    const batch = this.#decider(key);
    return batch !== undefined && batch === this.#writing ? batch.done : undefined;
  }

  /** The pending write that `key`'s value or absence comes from, if any. */
  pendingFor(key: string): Promise<void> | undefined {
    const batch = this.#decider(key);
    return batch !== undefined && batch === this.#pending ? batch.done : undefined;
  }

  /** Whether `done` is the pending batch's: it has not started. */
  isPending(done: Promise<void>): boolean {
    return this.#pending?.done === done;
  }

  /** Settles once every write staged so far has; never rejects. What a change that writes nothing waits for. */
  tail(): Promise<void> {
    // Batches are written one after the other: the last one settles last.
    return ((this.#pending ?? this.#writing)?.done ?? Promise.resolve()).then(noop, noop);
  }

  /** The batch whose change (or clear) decides `key`: the pending one, then the one in flight. */
  #decider(key: string): PendingBatch | undefined {
    for (const batch of [this.#pending, this.#writing]) if (batch !== undefined && (batch.cleared || batch.changes.has(key))) return batch;
    return undefined;
  }

  /** The keys as of every change staged so far, in file order; call after `ready()`. */
  keys(): string[] {
    const batch = combine(this.#writing, this.#pending);
    const keys = new Set(batch.cleared ? [] : this.#stored?.keys());
    for (const [key, json] of batch.changes) {
      // A Set keeps a key added again in place: a reinserted one is taken out first, to go last.
      if (json === undefined || batch.reinserted?.has(key) === true) keys.delete(key);
      if (json !== undefined) keys.add(key);
    }
    return [...keys];
  }

  /** Whether a write was refused because another owner took the document over since `forget()`. */
  get ousted(): boolean {
    return this.#ousted;
  }

  /** Marks the document in memory stale: an operation outside the writes (moving it aside) found another owner holds it. */
  oust(): void {
    this.#ousted = true;
  }

  /** Forgets the document read, so that the next read starts from the backend (after it moved the document aside, or another owner wrote it). */
  forget(): void {
    this.#stored = undefined;
    this.#journal = undefined;
    this.#ousted = false;
  }

  /** The document's text as of every change staged so far; call after `ready()`. */
  render(): string {
    const stored = this.#stored ?? new StoredDocument(this.#backend.location);
    const decoder = new TextDecoder();
    return stored
      .render(combine(this.#writing, this.#pending))
      .map((piece) => decoder.decode(piece, { stream: true }))
      .join("");
  }

  /**
   * Adds a change to the pending batch, after those staged before it: a key it sets after the
   * batch deleted it goes last (`stagingBatch`), as it does after a delete in an earlier batch.
   * The promise comes wrapped so that an async caller can return it without waiting for it.
   */
  stage(change: (batch: Batch) => void): { done: Promise<void> } {
    if (this.#pending === undefined) {
      this.#pending = pendingBatch();
      // A promise job, which fake timers leave alone; the write itself waits for the callers.
      if (this.#writing === undefined) void Promise.resolve().then(() => this.#start());
    }
    change(this.#pending);
    return { done: this.#pending.done };
  }

  /**
   * Resolves once every staged change is written or has failed. Starts the pending write at once:
   * its caller holds AioKV's lock, which that write would otherwise wait for.
   */
  async settled(): Promise<void> {
    for (;;) {
      const batch = this.#pending ?? this.#writing;
      if (batch !== undefined) {
        void this.#flush();
        await batch.done.catch(noop);
      } else if (this.#compacting !== undefined) {
        await this.#compacting;
      } else {
        return;
      }
    }
  }

  /**
   * Once every staged change is written, rewrites the document with every change in it and
   * empties the journal, when the journal holds any record (`close()`, `compact()`): the document
   * alone is then the whole store again, for readers that know nothing of journals.
   *
   * @throws {StoreIOError} When the rewrite or the cut fails; the journal then stays, and applies.
   */
  async checkpoint(): Promise<void> {
    await this.settled();
    const journal = this.#journal;
    if (journal === undefined || this.#stored === undefined) return;
    try {
      if (journal.length > 0) await this.#compactNow();
      else await this.#cutJournal();
    } catch (error) {
      if (isStoreLockedError(error)) this.#ousted = true;
      throw error;
    }
  }

  /**
   * Resolves once every change staged so far is written. Rejects with the first write failure
   * since the previous call, whether it happened before this call or in a write it waits for;
   * a failure is reported once.
   */
  async written(): Promise<void> {
    const earlier = this.#takeFailure(() => true);
    const batches = [this.#writing, this.#pending].filter((batch) => batch !== undefined);
    const results = await Promise.allSettled(batches.map((batch) => batch.done));
    // Reported below: the next call must not report it again.
    this.#takeFailure((done) => batches.some((batch) => batch.done === done));
    if (earlier !== undefined) throw earlier.error;
    for (const result of results) if (result.status === "rejected") throw result.reason;
  }

  /** Forgets the unreported failure, if `which` is its batch's; returns it. */
  #takeFailure(which: (done: Promise<void>) => boolean): { error: unknown } | undefined {
    const failed = this.#failed;
    if (failed === undefined || !which(failed.done)) return undefined;
    this.#failed = undefined;
    return failed;
  }

  #load(): Promise<StoredDocument> {
    this.#loading ??= this.#read().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  /** The backend's journal as it is now; its errors wrapped as StoreIOError "read". */
  async #readJournalSource(): Promise<string | Uint8Array | undefined> {
    if (this.#backend.readJournal === undefined) return undefined;
    try {
      return await this.#backend.readJournal();
    } catch (error) {
      throw new StoreIOError("read", this.#backend.location, error);
    }
  }

  /** The backend's document as it is now, outside the document in memory; its errors wrapped as StoreIOError "read". */
  async readStored(): Promise<string | Uint8Array | undefined> {
    try {
      return await this.#backend.read();
    } catch (error) {
      throw new StoreIOError("read", this.#backend.location, error);
    }
  }

  async #read(): Promise<StoredDocument> {
    const { document, journal } = await this.#readBoth();
    this.#journal ??= journal;
    return document ?? new StoredDocument(this.#backend.location);
  }

  /**
   * The document with the journal's records applied. The journal is read first: the document
   * read after it is the one it extends, or a later one (rewritten by a compaction since) that
   * holds its records, which the journal's base then tells apart.
   */
  async #readBoth(): Promise<{ document: StoredDocument | undefined; journal: JournalState | undefined }> {
    const journalSource = await this.#readJournalSource();
    const text = await this.readStored();
    const location = this.#backend.location;
    let digest: Promise<string | null> | undefined;
    const base = (): Promise<string | null> => (digest ??= documentDigest(text));
    // The digest is kept only where a new journal will name it, and computed off the thread meanwhile.
    if (this.#journaling) void base().catch(noop);
    const contents = journalSource === undefined ? undefined : await readJournal(journalSource, this.journalLocation, base);
    const replay = contents?.batch;
    // With a journal to apply, the schema checks what the store holds after it, as a whole-file
    // store's document would hold it, not each value on the way (a key a migration removed).
    let document = text === undefined ? undefined : await StoredDocument.parse(text, location, replay === undefined ? this.#check : undefined);
    if (replay !== undefined) {
      document ??= new StoredDocument(location);
      document.apply(replay);
      const check = this.#check;
      if (check !== undefined) for (const key of document.keys()) check(key, parseJson(document.get(key) ?? "null"));
    }
    // A clear that set nothing removes the document in a store without a journal: none here either.
    if (contents?.removed === true) document = undefined;
    const journal =
      this.#backend.readJournal === undefined
        ? undefined
        : {
            length: contents?.length ?? 0,
            excess: contents?.excess ?? false,
            base: this.#journaling ? base() : undefined,
            documentBytes: sourceBytes(text),
            compactAfter: compactionSize(sourceBytes(text)),
            inherited: journalSource !== undefined,
            absent: document === undefined,
          };
    return { document, journal };
  }

  /**
   * The backend's document as it is now, parsed and checked as a load is, without keeping it;
   * `undefined` when there is none.
   *
   * @throws {StoreIOError} When the backend fails to read it.
   * @throws {StoreFormatError} When it does not load.
   */
  async readDocument(): Promise<StoredDocument | undefined> {
    return (await this.#readBoth()).document;
  }

  /**
   * Makes `document` (`undefined`: none) what is stored, in place of what was read: a follower's
   * re-read of a document another store owns. Only for a store that stages no changes.
   */
  adopt(document: StoredDocument | undefined): void {
    this.#stored = document ?? new StoredDocument(this.#backend.location);
  }

  /** Starts the pending write once the callers have staged what they called with it. */
  async #start(): Promise<void> {
    await this.#caughtUp();
    void this.#flush();
  }

  async #flush(): Promise<void> {
    const batch = this.#pending;
    if (batch === undefined || this.#writing !== undefined || this.#compacting !== undefined) return;
    this.#pending = undefined;
    this.#writing = batch;
    let compact = false;
    try {
      const base = await this.#base(batch);
      let unsynced: StoreIOError | undefined;
      const record = this.#journaling && this.#journal !== undefined ? (base.assertFits(batch), journalRecord(batch)) : undefined;
      // A journal is read back as one string: one that would grow past a string's length goes into the document instead.
      if (record !== undefined && this.#journal !== undefined && this.#journal.length + record.length <= MAX_TEXT_LENGTH - MAX_HEADER_BYTES) {
        unsynced = await this.#append(record);
        this.#journal.absent = batch.cleared && ![...batch.changes.values()].some((json) => json !== undefined);
      } else {
        // A journal's records go into the document before anything else does (see #compactNow).
        if (this.#journal !== undefined && this.#journal.length > 0 && this.#stored !== undefined) await this.#compact(this.#stored);
        const pieces = base.render(batch);
        unsynced = await this.#persist(batch, pieces);
        await this.#cutAfterRewrite(batch.cleared && isEmptyDocument(pieces) ? undefined : pieces);
      }
      // Applied even when unsynced: the backend holds the change, and memory must agree with it.
      base.apply(batch);
      this.#stored = base;
      this.onWritten?.(batch);
      if (unsynced !== undefined) throw unsynced;
      batch.resolve();
      compact = this.#journaling && this.#journal !== undefined && this.#journal.length > this.#journal.compactAfter;
    } catch (error) {
      // Unless applied above, the batch is dropped: what is stored, and the batch staged after it, stay as they were.
      // Its promise, not the batch: a store that never flushes keeps no failed changes alive.
      this.#failed ??= { done: batch.done, error };
      if (isStoreLockedError(error)) this.#ousted = true;
      batch.reject(error);
    } finally {
      this.#writing = undefined;
      if (compact) this.#startCompaction();
      else void this.#flush();
    }
  }

  /**
   * What `batch` applies to: a new document for a clear, unless the journal takes it (then the
   * document must be read, to know the journal); else the document read.
   */
  async #base(batch: Batch): Promise<StoredDocument> {
    if (!batch.cleared) return this.#stored ?? (await this.#load());
    if (this.#journaling && this.#journal === undefined) {
      try {
        // Not ready(): this clear, in flight, makes the store count as ready without a read.
        const stored = await this.#load();
        this.#stored ??= stored;
      } catch (error) {
        // A document or journal that does not load is emptied as a file store empties it: removed.
        if (!isStoreFormatError(error)) throw error;
      }
    }
    return new StoredDocument(this.#backend.location);
  }

  /** Appends `batch` to the journal as one record; resolves the error for a record in place but not synced. */
  async #append(record: Uint8Array): Promise<StoreIOError | undefined> {
    const journal = this.#journal as JournalState;
    // An owner never appends to a journal it did not start: an owner paused while this one took
    // the lock over may still write to that one (see Backend.appendJournal). It is folded in first.
    if (journal.inherited && journal.length > 0) await this.#compactNow();
    const start = journal.length === 0;
    const pieces = start ? [journalHeader(await (journal.base ?? documentDigest(undefined))), record] : [record];
    if (!start) await this.#cutJournal();
    const size = byteLength(pieces);
    try {
      await (start ? this.#backend.writeJournal?.(pieces) : this.#backend.appendJournal?.(pieces));
    } catch (error) {
      if (isUnsyncedWriteError(error)) {
        journal.length = (start ? 0 : journal.length) + size;
        journal.excess = false;
        journal.inherited = false;
        return new StoreIOError("sync", this.#backend.location, error.cause);
      }
      if (start) {
        if (isStoreIOError(error) || isStoreLockedError(error)) throw error;
        throw new StoreIOError("write", this.#backend.location, error);
      }
      // Part of the record may be there: it is cut off now, or before the next record goes after it.
      journal.excess = true;
      if (!isStoreLockedError(error)) await this.#cutJournal().catch(noop);
      if (isStoreIOError(error) || isStoreLockedError(error)) throw error;
      throw new StoreIOError("write", this.#backend.location, error);
    }
    journal.length = (start ? 0 : journal.length) + size;
    if (start) {
      journal.excess = false;
      journal.inherited = false;
    }
    return undefined;
  }

  /** Cuts what the journal holds past its known length, if anything. */
  async #cutJournal(): Promise<void> {
    const journal = this.#journal;
    if (journal === undefined || !journal.excess || this.#backend.cutJournal === undefined) return;
    try {
      await this.#backend.cutJournal(journal.length);
    } catch (error) {
      throw isStoreLockedError(error) || isStoreIOError(error) ? error : new StoreIOError("write", this.#backend.location, error);
    }
    journal.excess = false;
  }

  /** After the document was rewritten whole (`pieces`; `undefined`: removed), the journal is stale: it is cut. */
  async #cutAfterRewrite(pieces: readonly Uint8Array[] | undefined): Promise<void> {
    if (this.#backend.cutJournal === undefined) return;
    const known = this.#journal;
    const base = this.#journaling ? documentDigest(pieces) : undefined;
    base?.catch(noop);
    const documentBytes = byteLength(pieces ?? []);
    this.#journal = {
      length: 0,
      excess: known === undefined || known.length > 0 || known.excess,
      base,
      documentBytes,
      compactAfter: compactionSize(documentBytes),
      inherited: false,
      absent: pieces === undefined,
    };
    // A failure here fails nothing written: the journal names the old document, and the next write cuts it first.
    await this.#cutJournal().catch(noop);
  }

  #startCompaction(): void {
    const compaction = this.#compactNow()
      .catch((error: unknown) => {
        // Tried again once the journal has grown as much again: not after every write while a full disk lasts.
        const journal = this.#journal;
        if (journal !== undefined) journal.compactAfter = journal.length + compactionSize(journal.documentBytes);
        if (isStoreLockedError(error)) this.#ousted = true;
        this.#onError?.(`Cannot rewrite the journal ${JSON.stringify(this.journalLocation)} into its document`, error);
      })
      .finally(() => {
        this.#compacting = undefined;
        void this.#flush();
      });
    this.#compacting = compaction;
  }

  /** Rewrites the document with everything written, then empties the journal. */
  async #compactNow(): Promise<void> {
    const stored = this.#stored;
    if (stored !== undefined) await this.#compact(stored);
  }

  /**
   * Writes `document` whole (a file's atomic replace), then cuts the journal to nothing. Until the
   * cut, the journal names the document it extended, which is no longer there: it is stale, and
   * an open skips it; so a crash between the two loses nothing and applies nothing twice. The
   * document written holds exactly what the journal's records made, never a later change: were
   * the new bytes equal to the old ones, a stale journal would be taken as current, and its
   * records applied to a document that already has them must then change nothing.
   */
  async #compact(document: StoredDocument): Promise<void> {
    const journal = this.#journal;
    if (journal === undefined) return;
    const pieces = document.render();
    // Empty, it is removed only where a store without a journal would have none: else it is `{}`.
    const empty = isEmptyDocument(pieces) && journal.absent;
    const digest = this.#journaling ? documentDigest(empty ? undefined : pieces) : undefined;
    digest?.catch(noop);
    const unsynced = await this.#persist({ cleared: empty, changes: new Map() }, pieces);
    journal.length = 0;
    journal.excess = true;
    journal.base = digest;
    journal.documentBytes = byteLength(pieces);
    journal.compactAfter = compactionSize(journal.documentBytes);
    await this.#cutJournal();
    if (unsynced !== undefined) throw unsynced;
  }

/** Writes `data`; resolves the error for a write that is in place but not synced. */
  async #persist(batch: Batch, data: Uint8Array[]): Promise<StoreIOError | undefined> {
    const remove = batch.cleared && isEmptyDocument(data);
    try {
      await (remove ? this.#backend.remove() : this.#backend.write(data));
    } catch (error) {
      if (isUnsyncedWriteError(error)) return new StoreIOError("sync", this.#backend.location, error.cause);
      if (isStoreIOError(error) || isStoreFormatError(error) || isStoreLockedError(error)) throw error;
      throw new StoreIOError(remove ? "remove" : "write", this.#backend.location, error);
    }
    return undefined;
  }
}

function noop(): void {}

/** How long a journal may grow over a document of `documentBytes`: as long as it, so compaction costs O(1) a byte appended. */
function compactionSize(documentBytes: number): number {
  return Math.max(documentBytes, MIN_COMPACTION_BYTES);
}

/**
 * The bytes a header takes at most, kept free under a string's length: a digest and the version.
 */
const MAX_HEADER_BYTES = 256;

/** A document's size in UTF-8 bytes, as a file holds it, whether read as bytes or as text. */
function sourceBytes(source: string | Uint8Array | undefined): number {
  if (source === undefined) return 0;
  if (typeof source !== "string") return source.length;
  let bytes = source.length;
  for (let i = 0; i < source.length; i++) {
    const code = source.charCodeAt(i);
    // Two bytes up to U+07FF, three above; a surrogate pair's four, two for each half.
    if (code >= 0x80) bytes += code < 0x800 || (code >= 0xd800 && code <= 0xdfff) ? 1 : 2;
  }
  return bytes;
}

function byteLength(pieces: readonly Uint8Array[]): number {
  return pieces.reduce((total, piece) => total + piece.length, 0);
}

function pendingBatch(): PendingBatch {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { ...stagingBatch(), done, resolve, reject };
}
