import type { Backend } from "./backend.js";
import { combine, isEmptyDocument, StoredDocument, stagingBatch, type Batch, type LoadCheck } from "./document.js";
import { isStoreFormatError, isStoreIOError, isStoreLockedError, isUnsyncedWriteError, StoreIOError } from "./errors.js";

interface PendingBatch extends Batch {
  readonly done: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
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

  /**
   * @param backend Where the document lives.
   * @param check Runs on every key and value of the document when it is read (a schema's check).
   * @param caughtUp Resolves once the callers' operations called so far have staged their changes
   *   (`undefined` when they have): a new write waits for it, so that they share it.
   */
  constructor(backend: Backend, check?: LoadCheck, caughtUp: () => PromiseLike<void> | undefined = () => undefined) {
    this.#backend = backend;
    this.#check = check;
    this.#caughtUp = caughtUp;
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

  /** Forgets the document read, so that the next read starts from the backend (after it moved the document aside, or another owner wrote it). */
  forget(): void {
    this.#stored = undefined;
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
    for (let batch = this.#pending ?? this.#writing; batch; batch = this.#pending ?? this.#writing) {
      void this.#flush();
      await batch.done.catch(noop);
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

  /** The backend's document as it is now, outside the document in memory; its errors wrapped as StoreIOError "read". */
  async readStored(): Promise<string | Uint8Array | undefined> {
    try {
      return await this.#backend.read();
    } catch (error) {
      throw new StoreIOError("read", this.#backend.location, error);
    }
  }

  async #read(): Promise<StoredDocument> {
    return (await this.readDocument()) ?? new StoredDocument(this.#backend.location);
  }

  /**
   * The backend's document as it is now, parsed and checked as a load is, without keeping it;
   * `undefined` when there is none.
   *
   * @throws {StoreIOError} When the backend fails to read it.
   * @throws {StoreFormatError} When it does not load.
   */
  async readDocument(): Promise<StoredDocument | undefined> {
    const text = await this.readStored();
    return text === undefined ? undefined : StoredDocument.parse(text, this.#backend.location, this.#check);
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
    if (batch === undefined || this.#writing !== undefined) return;
    this.#pending = undefined;
    this.#writing = batch;
    try {
      // Not yet read only when a clear below this batch failed: the changes go on what is stored.
      const base = batch.cleared ? new StoredDocument(this.#backend.location) : (this.#stored ?? (await this.#load()));
      const unsynced = await this.#persist(batch, base.render(batch));
      // Applied even when unsynced: the backend holds the change, and memory must agree with it.
      base.apply(batch);
      this.#stored = base;
      this.onWritten?.(batch);
      if (unsynced !== undefined) throw unsynced;
      batch.resolve();
    } catch (error) {
      // Unless applied above, the batch is dropped: what is stored, and the batch staged after it, stay as they were.
      // Its promise, not the batch: a store that never flushes keeps no failed changes alive.
      this.#failed ??= { done: batch.done, error };
      if (isStoreLockedError(error)) this.#ousted = true;
      batch.reject(error);
    } finally {
      this.#writing = undefined;
      void this.#flush();
    }
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

function pendingBatch(): PendingBatch {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { ...stagingBatch(), done, resolve, reject };
}
