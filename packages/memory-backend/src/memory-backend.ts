import { Volume } from "memfs";
import { StoreLockedError, unlessAbsent, type Backend } from "@aiokv/core";

/** Options of {@link MemoryBackend}. */
export interface MemoryBackendOptions {
  /**
   * Names the store in its location, `memory:<name>`, which every error message shows.
   * @default "store"
   */
  readonly name?: string;
  /** The document's raw text to start with, as a file would hold it: valid, corrupt or old. */
  readonly text?: string;
}

const file = "/store.json";
// Strict, keeping a BOM: the text is what AioKV would decode from a file's bytes.
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const temp = "/store.json.tmp";
const journal = "/store.json.journal";

/**
 * A document held in memory, for unit tests: `AioKV` on it behaves as on a file, errors included
 * (a corrupt seeded text rejects with the same `CorruptStoreError`), because every semantic lives
 * in `AioKV` and this backend, like the file, only moves text. Each instance has a private memfs
 * volume and an owner lock: a second open `AioKV` on one instance gets `StoreLockedError`, as a
 * second one on one path would. A follower (`readOnly: true`) takes no lock, so it shares an
 * instance with the store that owns it: `watch()` tells it of every change made through the instance.
 *
 * @example
 * ```ts
 * import { AioKV } from "@aiokv/core";
 * import { MemoryBackend } from "@aiokv/memory-backend";
 *
 * const backend = new MemoryBackend({ text: '{"seen": [1, 2]}' });
 * const kv = new AioKV(backend, { clock: () => 1_764_000_000_000 });
 * await kv.set("ran_cleanup"); // stores 1764000000
 * await backend.read(); // the text a file would hold now
 * ```
 */
export class MemoryBackend implements Backend {
  readonly location: string;
  readonly #fs: Volume["promises"];
  readonly #watchers = new Set<() => void>();
  #locked = false;

  /**
   * @param options The name, and the text to start with.
   */
  constructor(options: MemoryBackendOptions = {}) {
    this.location = `memory:${options.name ?? "store"}`;
    const volume = new Volume();
    if (options.text !== undefined) volume.writeFileSync(file, options.text);
    this.#fs = volume.promises;
  }

  /**
   * The text a file would hold now; its bytes instead when they are not UTF-8 (written with
   * `write()`), so that `AioKV` rejects them as it rejects such a file.
   */
  async read(): Promise<string | Uint8Array | undefined> {
    const bytes = await unlessAbsent(this.#fs.readFile(file));
    if (bytes === undefined || typeof bytes === "string") return bytes;
    try {
      return strict.decode(bytes);
    } catch {
      return bytes;
    }
  }

  async write(pieces: readonly Uint8Array[]): Promise<void> {
    // Temp then rename, as the file does: a read during the write sees the old text or the new.
    await this.#fs.writeFile(temp, Buffer.concat(pieces));
    await this.#fs.rename(temp, file);
    this.#changed();
  }

  /**
   * Calls `onChange` after each change made through this instance (`write`, `remove`,
   * `moveAside`), whoever made it, until the returned function is called: how a follower
   * (`readOnly: true`) on this instance learns of its owner's writes. Volumes are private to their
   * instance, so this is every change there is. No timer: it works under fake timers.
   */
  watch(onChange: () => void): () => void {
    // A function per call, so that watching twice with one callback is stopped twice.
    const watcher = (): void => onChange();
    this.#watchers.add(watcher);
    return () => void this.#watchers.delete(watcher);
  }

  lock(): Promise<void> {
    if (this.#locked) return Promise.reject(new StoreLockedError(this.location));
    this.#locked = true;
    return Promise.resolve();
  }

  unlock(): Promise<void> {
    this.#locked = false;
    return Promise.resolve();
  }

  /**
   * Renames the document within the volume, and its journal after it; the document's new location
   * is `<location>.<suffix>` (the journal's `<location>.journal.<suffix>`), read back with {@link readAside}.
   */
  async moveAside(suffix: string): Promise<string | undefined> {
    const aside = `${this.location}.${suffix}`;
    const moved = await unlessAbsent(this.#fs.rename(file, `${file}.${suffix}`).then(() => aside));
    const journalAside = await unlessAbsent(this.#fs.rename(journal, `${journal}.${suffix}`).then(() => `${this.location}.journal.${suffix}`));
    if (moved !== undefined || journalAside !== undefined) this.#changed();
    return moved ?? journalAside;
  }

  /** The journal's bytes (`journal: true`), as a file's would be; `undefined` when there is none. */
  async readJournal(): Promise<Uint8Array | undefined> {
    const bytes = await unlessAbsent(this.#fs.readFile(journal));
    return typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  }

  /** Starts the journal with these bytes, replacing any (temp then rename, as the file does). */
  async writeJournal(pieces: readonly Uint8Array[]): Promise<void> {
    await this.#fs.writeFile(`${journal}.tmp`, Buffer.concat(pieces));
    await this.#fs.rename(`${journal}.tmp`, journal);
    this.#changed();
  }

  /** Appends to the journal `writeJournal` started; rejects with ENOENT where there is none, as the file does. */
  async appendJournal(pieces: readonly Uint8Array[]): Promise<void> {
    const handle = await this.#fs.open(journal, "r+");
    try {
      const { size } = await handle.stat();
      const bytes = Buffer.concat(pieces);
      await handle.write(bytes, 0, bytes.length, Number(size));
    } finally {
      await handle.close();
    }
    this.#changed();
  }

  /** Cuts the journal to its first `length` bytes; 0 removes it. */
  async cutJournal(length: number): Promise<void> {
    if (length === 0) await unlessAbsent(this.#fs.unlink(journal));
    else await this.#fs.truncate(journal, length);
  }

  /** The text of a document that `moveAside` (`quarantine()`) moved to `location`. */
  async readAside(location: string): Promise<string | undefined> {
    const prefix = `${this.location}.`;
    if (!location.startsWith(prefix)) return undefined;
    const rest = location.slice(prefix.length);
    return this.#readFile(rest.startsWith("journal.") ? `${journal}.${rest.slice("journal.".length)}` : `${file}.${rest}`);
  }

  async remove(): Promise<void> {
    if ((await unlessAbsent(this.#fs.unlink(file).then(() => true))) !== undefined) this.#changed();
  }

  /** Tells every watcher that the document changed; a watcher that throws stops no other, nor the change. */
  #changed(): void {
    for (const watcher of [...this.#watchers]) {
      try {
        watcher();
      } catch {
        // A backend's watchers must not throw; if one does, the change stands and the others still hear of it.
      }
    }
  }

  #readFile(path: string): Promise<string | undefined> {
    return unlessAbsent(this.#fs.readFile(path, "utf8"));
  }
}
