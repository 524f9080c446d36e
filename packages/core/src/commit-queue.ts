import type { Backend } from "./backend.js";
import { combine, isEmptyDocument, StoredDocument, type Batch, type LoadCheck } from "./document.js";
import { isStoreFormatError, isStoreIOError, isStoreLockedError, StoreIOError } from "./errors.js";

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
 */
export class CommitQueue {
  readonly #backend: Backend;
  /** What the backend holds, once read. */
  #stored: StoredDocument | undefined;
  #loading: Promise<StoredDocument> | undefined;
  #writing: PendingBatch | undefined;
  #pending: PendingBatch | undefined;

  readonly #check: LoadCheck | undefined;

  /**
   * @param backend Where the document lives.
   * @param check Runs on every key and value of the document when it is read (a schema's check).
   */
  constructor(backend: Backend, check?: LoadCheck) {
    this.#backend = backend;
    this.#check = check;
  }

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
    for (const batch of [this.#pending, this.#writing]) {
      if (batch?.changes.has(key)) return batch.changes.get(key);
      if (batch?.cleared) return undefined;
    }
    return this.#stored?.get(key);
  }

  /** Whether `key` is present as of every change staged so far, without serialising its value. */
  has(key: string): boolean {
    for (const batch of [this.#pending, this.#writing]) {
      if (batch?.changes.has(key)) return batch.changes.get(key) !== undefined;
      if (batch?.cleared) return false;
    }
    return this.#stored?.has(key) ?? false;
  }

  /** The keys as of every change staged so far, in file order; call after `ready()`. */
  keys(): string[] {
    const batch = combine(this.#writing, this.#pending);
    const keys = new Set(batch.cleared ? [] : this.#stored?.keys());
    for (const [key, json] of batch.changes) {
      if (json === undefined) keys.delete(key);
      else keys.add(key);
    }
    return [...keys];
  }

  /** Forgets the document read, so that the next read starts from the backend (after it moved the document aside). */
  forget(): void {
    this.#stored = undefined;
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
   * Adds a change to the pending batch. The promise comes wrapped so that an async caller can
   * return it without waiting for it.
   */
  stage(change: (batch: Batch) => void): { done: Promise<void> } {
    if (this.#pending === undefined) {
      this.#pending = pendingBatch();
      // setImmediate, not a microtask: every change called in this turn joins the first write.
      if (this.#writing === undefined) setImmediate(() => void this.#flush());
    }
    change(this.#pending);
    return { done: this.#pending.done };
  }

  /** Resolves once every staged change is written or has failed. */
  async settled(): Promise<void> {
    for (let batch = this.#pending ?? this.#writing; batch; batch = this.#pending ?? this.#writing) {
      await batch.done.catch(() => {});
    }
  }

  /** Resolves once every change staged so far is written; rejects with the error of the first write that failed. */
  async written(): Promise<void> {
    const batches = [this.#writing, this.#pending].filter((batch) => batch !== undefined);
    const results = await Promise.allSettled(batches.map((batch) => batch.done));
    for (const result of results) if (result.status === "rejected") throw result.reason;
  }

  #load(): Promise<StoredDocument> {
    this.#loading ??= this.#read().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  async #read(): Promise<StoredDocument> {
    let text: string | undefined;
    try {
      text = await this.#backend.read();
    } catch (error) {
      throw new StoreIOError("read", this.#backend.location, error);
    }
    const location = this.#backend.location;
    return text === undefined ? new StoredDocument(location) : StoredDocument.parse(text, location, this.#check);
  }

  async #flush(): Promise<void> {
    const batch = this.#pending;
    if (batch === undefined || this.#writing !== undefined) return;
    this.#pending = undefined;
    this.#writing = batch;
    try {
      // Not yet read only when a clear below this batch failed: the changes go on what is stored.
      const base = batch.cleared ? new StoredDocument(this.#backend.location) : (this.#stored ?? (await this.#load()));
      await this.#persist(batch, base.render(batch));
      base.apply(batch);
      this.#stored = base;
      batch.resolve();
    } catch (error) {
      // The batch is dropped: what is stored, and the batch staged after it, stay as they were.
      batch.reject(error);
    } finally {
      this.#writing = undefined;
      void this.#flush();
    }
  }

  async #persist(batch: Batch, data: Uint8Array[]): Promise<void> {
    const remove = batch.cleared && isEmptyDocument(data);
    try {
      await (remove ? this.#backend.remove() : this.#backend.write(data));
    } catch (error) {
      if (isStoreIOError(error) || isStoreFormatError(error) || isStoreLockedError(error)) throw error;
      throw new StoreIOError(remove ? "remove" : "write", this.#backend.location, error);
    }
  }
}

function pendingBatch(): PendingBatch {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { cleared: false, changes: new Map(), done, resolve, reject };
}
