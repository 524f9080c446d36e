import { Volume } from "memfs";
import { StoreLockedError, type Backend } from "@aiokv/core";

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
const temp = "/store.json.tmp";

/**
 * A document held in memory, for unit tests: `AioKV` on it behaves as on a file, errors included
 * (a corrupt seeded text rejects with the same `CorruptStoreError`), because every semantic lives
 * in `AioKV` and this backend, like the file, only moves text. Each instance has a private memfs
 * volume and an owner lock: a second open `AioKV` on one instance gets `StoreLockedError`, as a
 * second one on one path would.
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

  async read(): Promise<string | undefined> {
    try {
      return await this.#fs.readFile(file, "utf8");
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async write(pieces: readonly Uint8Array[]): Promise<void> {
    // Temp then rename, as the file does: a read during the write sees the old text or the new.
    await this.#fs.writeFile(temp, Buffer.concat(pieces));
    await this.#fs.rename(temp, file);
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

  /** Renames the document within the volume; its new location is `<location>.<suffix>`, read back with {@link readAside}. */
  async moveAside(suffix: string): Promise<string | undefined> {
    try {
      await this.#fs.rename(file, `${file}.${suffix}`);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    return `${this.location}.${suffix}`;
  }

  /** The text of a document that `moveAside` (`quarantine()`) moved to `location`. */
  async readAside(location: string): Promise<string | undefined> {
    const prefix = `${this.location}.`;
    if (!location.startsWith(prefix)) return undefined;
    try {
      return await this.#fs.readFile(`${file}.${location.slice(prefix.length)}`, "utf8");
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async remove(): Promise<void> {
    try {
      await this.#fs.unlink(file);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
}

function isNotFound(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "ENOENT";
}
