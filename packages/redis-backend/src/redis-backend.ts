import { createHash, randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { errorCode, parseOwner, StoreLockedError, type Backend } from "@aiokv/core";
import { Redis } from "ioredis";

/** Options of {@link RedisBackend}. */
export interface RedisBackendOptions {
  /**
   * A `redis://` (or `rediss://`) URL; the backend makes its own client and closes it on
   * `close()`. Give this or `client`.
   */
  readonly url?: string;
  /** A client of your own (ioredis); you close it. Give this or `url`. */
  readonly client?: Redis;
  /** The Redis key holding the document: a string, the same JSON text a state file holds. */
  readonly key: string;
  /**
   * The owner lock's key. In Redis Cluster it must hash to the document's slot: name both with
   * a hash tag, such as `{bot}:state` and `{bot}:state.lock`.
   * @default `${key}.lock`
   */
  readonly lockKey?: string;
  /**
   * Milliseconds an owner lock lives without renewal: an owner renews it every third of this,
   * and a dead owner's lock expires this long after its last renewal.
   * @default 10000
   */
  readonly lockTtl?: number;
  /**
   * Milliseconds a connection attempt or a command may take before it fails (with `url`): a
   * lost server fails calls within this, never hangs them.
   * @default 5000
   */
  readonly timeout?: number;
  /**
   * Wait after each write until this many replicas have it (`WAIT`), failing the write if they
   * do not within half of `timeout` (at most a third of `lockTtl`): a write is then on more than
   * one machine when it resolves.
   * @default 0
   */
  readonly replicas?: number;
}

// Every script gets KEYS[1] the lock, KEYS[2] the document, ARGV[1] this owner's lock value and
// ARGV[2] the ttl. Every change checks, in the same atomic script, that the lock still holds this
// owner's value: an owner that was paused past its ttl and lost the lock cannot overwrite the new
// owner's state. -1: another owner holds it; -2: nobody does (it lapsed).
const fenced = (change: string): string =>
  `local holder = redis.call('GET', KEYS[1]) if holder ~= ARGV[1] then return holder and -1 or -2 end\n${change}`;
const scripts = {
  write: fenced("redis.call('SET', KEYS[2], ARGV[3]) return 1"),
  remove: fenced("return redis.call('DEL', KEYS[2])"),
  moveAside: fenced("if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end redis.call('RENAME', KEYS[2], KEYS[3]) return 1"),
  renew: fenced("return redis.call('PEXPIRE', KEYS[1], ARGV[2])"),
  release: fenced("return redis.call('DEL', KEYS[1])"),
  // A lapsed lock is taken back only while nobody holds it and the document is still what this
  // owner last read or wrote (ARGV[3], its SHA-1, or "" for none): had another owner taken the
  // lock and changed the document meanwhile, even one that has closed since, writing would lose that change.
  // A concurrent call of this owner (a renewal) may have taken it back already.
  retake: `local holder = redis.call('GET', KEYS[1]) if holder then return holder == ARGV[1] and 1 or -1 end
local document = redis.call('GET', KEYS[2])
if (document and redis.sha1hex(document) or '') ~= ARGV[3] then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1`,
};

/**
 * A store's document kept as one Redis string, so that a store moves between a file and Redis
 * unchanged, with an owner lock in Redis (`SET NX PX`, renewed while the owner lives, released
 * by compare-and-delete) that fences every write.
 *
 * @example
 * ```ts
 * import { AioKV } from "@aiokv/core";
 * import { RedisBackend } from "@aiokv/redis-backend";
 *
 * const kv = new AioKV(new RedisBackend({ url: "redis://127.0.0.1:6379", key: "bot:state" }));
 * await kv.set("last_command", "ping");
 * await kv.close(); // releases the lock and closes the connection
 * ```
 */
export class RedisBackend implements Backend {
  readonly location: string;
  readonly #client: Redis;
  readonly #ownsClient: boolean;
  readonly #key: string;
  readonly #lockKey: string;
  readonly #ttl: number;
  readonly #replicas: number;
  readonly #timeout: number;
  /**
   * How long WAIT may hold the connection: at most half the timeout, so that its answer comes
   * back before the command times out, and a third of the lock's ttl, so that a renewal queued
   * behind it still comes in time.
   */
  readonly #waitMs: number;
  /** This owner's lock value while it holds the lock: its token, pid, host and time. */
  #held: string | undefined;
  #renewal: NodeJS.Timeout | undefined;
  /**
   * The document as this backend last read or wrote it (`null`: none; `undefined`: not known),
   * which a lapsed lock is taken back against. Held, not hashed, so that a write costs nothing more.
   */
  #known: Buffer | null | undefined;
  /** Whether the backend's own client was ever connected: only then does it reconnect by itself. */
  #wasReady = false;
  /** The client's connection attempt under way, shared by the calls that wait for it. */
  #connecting: Promise<void> | undefined;

  /** @throws {TypeError} {RangeError} When the options are missing or out of range. */
  constructor(options: RedisBackendOptions) {
    const { url, client, key } = options;
    if (typeof key !== "string" || key === "") throw new TypeError("Cannot open a Redis store: key must be a non-empty string");
    if ((url === undefined) === (client === undefined)) throw new TypeError(`Cannot open Redis store "${key}": give either url or client`);
    const ttl = options.lockTtl ?? 10_000;
    const timeout = options.timeout ?? 5000;
    const replicas = options.replicas ?? 0;
    if (!Number.isInteger(ttl) || ttl < 1000) throw new RangeError(`Cannot open Redis store "${key}": lockTtl must be at least 1000 (ms), received ${ttl}`);
    if (!(timeout > 0)) throw new RangeError(`Cannot open Redis store "${key}": timeout must be positive (ms), received ${timeout}`);
    if (!Number.isInteger(replicas) || replicas < 0) throw new RangeError(`Cannot open Redis store "${key}": replicas must be a whole number, received ${replicas}`);
    this.#client =
      client ??
      new Redis(url ?? "", {
        lazyConnect: true,
        connectTimeout: timeout,
        commandTimeout: timeout,
        maxRetriesPerRequest: 1,
        // Reconnect a connection that was up; a first connection that fails is reported by the
        // call that made it (see #connect), and the next call tries again.
        retryStrategy: (attempt) => (this.#wasReady ? Math.min(attempt * 100, 1000) : null),
      });
    this.#ownsClient = client === undefined;
    // Failures reach the caller through the command that failed; the event would only be logged.
    if (this.#ownsClient) this.#client.on("error", () => {}).on("ready", () => (this.#wasReady = true));
    this.#key = key;
    this.#lockKey = options.lockKey ?? `${key}.lock`;
    this.#ttl = ttl;
    this.#replicas = replicas;
    this.#timeout = timeout;
    this.#waitMs = Math.floor(Math.min(timeout / 2, ttl / 3));
    const { host, port, db } = this.#client.options;
    this.location = `redis://${host ?? "localhost"}:${port ?? 6379}/${db ?? 0}#${key}`;
  }

  /** The document's bytes, undecoded: AioKV decodes them strictly, so bytes that are not UTF-8 are reported, not replaced. */
  async read(): Promise<Uint8Array | undefined> {
    await this.#connect();
    this.#known = await this.#client.getBuffer(this.#key);
    return this.#known ?? undefined;
  }

  async write(pieces: readonly Uint8Array[]): Promise<void> {
    await this.#connect();
    const bytes = Buffer.concat(pieces);
    if (this.#held === undefined) await this.#client.set(this.#key, bytes);
    else await this.#fenced(scripts.write, [], [bytes]);
    this.#known = bytes;
    await this.#replicated();
  }

  async remove(): Promise<void> {
    await this.#connect();
    if (this.#held === undefined) await this.#client.del(this.#key);
    else await this.#fenced(scripts.remove, [], []);
    this.#known = null;
    await this.#replicated();
  }

  /** Renames the document's key to `<key>.<suffix>`, for `quarantine()`. */
  async moveAside(suffix: string): Promise<string | undefined> {
    await this.#connect();
    const aside = `${this.#key}.${suffix}`;
    let moved: number;
    if (this.#held !== undefined) moved = await this.#fenced(scripts.moveAside, [aside], []);
    else {
      // RENAME of a missing key is an error, not a no-op.
      moved = await this.#client.exists(this.#key);
      if (moved !== 0) await this.#client.rename(this.#key, aside);
    }
    this.#known = null;
    await this.#replicated();
    return moved === 0 ? undefined : this.location.replace(/#.*$/, `#${aside}`);
  }

  /**
   * Takes the owner lock: `SET lock value NX PX ttl`, then renews it every third of the ttl.
   * @throws {StoreLockedError} Naming the holder, while another owner holds it.
   */
  async lock(): Promise<void> {
    if (this.#held !== undefined) throw new StoreLockedError(this.location, parseOwner(this.#held));
    await this.#connect();
    const value = JSON.stringify({ token: randomBytes(16).toString("hex"), pid: process.pid, host: hostname(), since: new Date().toISOString() });
    const taken = await this.#client.set(this.#lockKey, value, "PX", this.#ttl, "NX");
    if (taken !== "OK") throw new StoreLockedError(this.location, parseOwner(await this.#client.get(this.#lockKey)));
    this.#held = value;
    this.#renewal = setInterval(() => void this.#renew(), Math.floor(this.#ttl / 3));
    this.#renewal.unref();
  }

  /** Releases the lock if it still holds this owner's value (compare-and-delete). */
  async unlock(): Promise<void> {
    const held = this.#held;
    clearInterval(this.#renewal);
    this.#held = undefined;
    if (held !== undefined) await this.#eval(scripts.release, held, [], []);
  }

  /** Closes the connection when the backend made it; a client you passed stays yours. */
  async close(): Promise<void> {
    clearInterval(this.#renewal);
    if (this.#ownsClient && this.#client.status !== "end") {
      await this.#client.quit().catch(() => this.#client.disconnect());
    }
  }

  /**
   * Connects the backend's own client, or fails within `timeout`. ioredis alone takes longer (its
   * connect timeout covers the TCP handshake only, not a server that accepts and never answers)
   * and fails with "Connection is closed.", hiding why: this error says what happened, with the
   * client's own error as cause. Once connected, the client reconnects by itself.
   */
  async #connect(): Promise<void> {
    if (!this.#ownsClient || this.#wasReady) return;
    let failure: Error | undefined;
    const remember = (error: Error): void => void (failure ??= error);
    this.#client.on("error", remember);
    // One attempt at a time: a call made while an earlier call's attempt goes on waits for it.
    this.#connecting ??= this.#client.connect().finally(() => (this.#connecting = undefined));
    const silence = Object.assign(new Error("the server did not answer"), { code: "ETIMEDOUT" });
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([this.#connecting, new Promise<never>((_, reject) => (timer = setTimeout(reject, this.#timeout, silence)))]);
    } catch (error) {
      if (error === silence) {
        // ioredis would go on waiting, and fail a later call with this attempt's "Connection is
        // closed.": drop the attempt (at once, not after a goodbye the server does not answer).
        this.#client.disconnect();
        this.#client.stream?.destroy();
        await this.#connecting?.catch(() => {});
      }
      // connect() rejects with "Connection is closed.": the error event before it says why.
      const cause = error === silence ? silence : (failure ?? (error as Error));
      throw Object.assign(new Error(`could not connect within ${this.#timeout} ms: ${cause.message}`, { cause }), { code: errorCode(cause) });
    } finally {
      clearTimeout(timer);
      this.#client.off("error", remember);
    }
  }

  async #renew(): Promise<void> {
    if (this.#held === undefined) return;
    // A failed or refused renewal needs no action here: the next write's fence finds out.
    await this.#fenced(scripts.renew, [], []).catch(() => {});
  }

  /**
   * Runs a fenced change. A lock that lapsed (a pause, a suspend) while nobody took it is taken
   * back first; throws StoreLockedError, naming the new holder, when it is no longer this owner's.
   */
  async #fenced(script: string, keys: string[], args: Array<Buffer | string>): Promise<number> {
    const held = this.#held ?? "";
    let result = await this.#eval(script, held, keys, args);
    if (result === -2 && this.#known !== undefined) {
      const known = this.#known === null ? "" : createHash("sha1").update(this.#known).digest("hex");
      if ((await this.#eval(scripts.retake, held, [], [known])) === 1) result = await this.#eval(script, held, keys, args);
    }
    if (result < 0) throw new StoreLockedError(this.location, parseOwner(await this.#client.get(this.#lockKey).catch(() => null)));
    return result;
  }

  async #eval(script: string, held: string, keys: string[], args: Array<Buffer | string>): Promise<number> {
    return (await this.#client.eval(script, 2 + keys.length, this.#lockKey, this.#key, ...keys, held, this.#ttl, ...args)) as number;
  }

  async #replicated(): Promise<void> {
    if (this.#replicas === 0) return;
    const acknowledged = await this.#client.wait(this.#replicas, this.#waitMs);
    if (acknowledged < this.#replicas) {
      throw new Error(`only ${acknowledged} of ${this.#replicas} replicas acknowledged the write within ${this.#waitMs} ms`);
    }
  }
}
