import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { StoreLockedError, type Backend, type StoreOwner } from "@aiokv/core";
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

// Every change checks, in the same atomic script, that the lock still holds this owner's value:
// an owner that was paused past its ttl and lost the lock cannot overwrite the new owner's state.
const fenced = (change: string): string => `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end\n${change}`;
const scripts = {
  write: fenced("redis.call('SET', KEYS[2], ARGV[2]) return 1"),
  remove: fenced("return redis.call('DEL', KEYS[2])"),
  moveAside: fenced("if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end redis.call('RENAME', KEYS[2], KEYS[3]) return 1"),
  renew: fenced("return redis.call('PEXPIRE', KEYS[1], ARGV[2])"),
  release: fenced("return redis.call('DEL', KEYS[1])"),
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
  /**
   * How long WAIT may hold the connection: at most half the timeout, so that its answer comes
   * back before the command times out, and a third of the lock's ttl, so that a renewal queued
   * behind it still comes in time.
   */
  readonly #waitMs: number;
  /** This owner's lock value while it holds the lock: its token, pid, host and time. */
  #held: string | undefined;
  #renewal: NodeJS.Timeout | undefined;

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
        retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
      });
    this.#ownsClient = client === undefined;
    // Failures reach the caller through the command that failed; the event would only be logged.
    if (this.#ownsClient) this.#client.on("error", () => {});
    this.#key = key;
    this.#lockKey = options.lockKey ?? `${key}.lock`;
    this.#ttl = ttl;
    this.#replicas = replicas;
    this.#waitMs = Math.floor(Math.min(timeout / 2, ttl / 3));
    const { host, port, db } = this.#client.options;
    this.location = `redis://${host ?? "localhost"}:${port ?? 6379}/${db ?? 0}#${key}`;
  }

  async read(): Promise<string | undefined> {
    return (await this.#client.get(this.#key)) ?? undefined;
  }

  async write(pieces: readonly Uint8Array[]): Promise<void> {
    const bytes = Buffer.concat(pieces);
    if (this.#held === undefined) await this.#client.set(this.#key, bytes);
    else await this.#fenced(scripts.write, [], [bytes]);
    await this.#replicated();
  }

  async remove(): Promise<void> {
    if (this.#held === undefined) await this.#client.del(this.#key);
    else await this.#fenced(scripts.remove, [], []);
    await this.#replicated();
  }

  /** Renames the document's key to `<key>.<suffix>`, for `quarantine()`. */
  async moveAside(suffix: string): Promise<string | undefined> {
    const aside = `${this.#key}.${suffix}`;
    let moved: number;
    if (this.#held !== undefined) moved = await this.#fenced(scripts.moveAside, [aside], []);
    else {
      // RENAME of a missing key is an error, not a no-op.
      moved = await this.#client.exists(this.#key);
      if (moved !== 0) await this.#client.rename(this.#key, aside);
    }
    await this.#replicated();
    return moved === 0 ? undefined : this.location.replace(/#.*$/, `#${aside}`);
  }

  /**
   * Takes the owner lock: `SET lock value NX PX ttl`, then renews it every third of the ttl.
   * @throws {StoreLockedError} Naming the holder, while another owner holds it.
   */
  async lock(): Promise<void> {
    if (this.#held !== undefined) throw new StoreLockedError(this.location, ownerOf(this.#held));
    await this.#connect();
    const value = JSON.stringify({ token: randomBytes(16).toString("hex"), pid: process.pid, host: hostname(), since: new Date().toISOString() });
    const taken = await this.#client.set(this.#lockKey, value, "PX", this.#ttl, "NX");
    if (taken !== "OK") throw new StoreLockedError(this.location, ownerOf(await this.#client.get(this.#lockKey)));
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

  async #connect(): Promise<void> {
    if (this.#ownsClient && (this.#client.status === "wait" || this.#client.status === "end")) await this.#client.connect();
  }

  async #renew(): Promise<void> {
    const held = this.#held;
    if (held === undefined) return;
    // A failed or refused renewal needs no action here: the next write's fence finds out.
    await this.#eval(scripts.renew, held, [], [this.#ttl]).catch(() => {});
  }

  /** Runs a fenced change; throws StoreLockedError, naming the new holder, when the lock is no longer this owner's. */
  async #fenced(script: string, keys: string[], args: Array<Buffer | string | number>): Promise<number> {
    const held = this.#held ?? "";
    const result = await this.#eval(script, held, [this.#key, ...keys], args);
    if (result === -1) throw new StoreLockedError(this.location, ownerOf(await this.#client.get(this.#lockKey).catch(() => null)));
    return result;
  }

  async #eval(script: string, held: string, keys: string[], args: Array<Buffer | string | number>): Promise<number> {
    return (await this.#client.eval(script, 1 + keys.length, this.#lockKey, ...keys, held, ...args)) as number;
  }

  async #replicated(): Promise<void> {
    if (this.#replicas === 0) return;
    const acknowledged = await this.#client.wait(this.#replicas, this.#waitMs);
    if (acknowledged < this.#replicas) {
      throw new Error(`only ${acknowledged} of ${this.#replicas} replicas acknowledged the write within ${this.#waitMs} ms`);
    }
  }
}

function ownerOf(value: string | null | undefined): StoreOwner | undefined {
  try {
    const { pid, host, since } = JSON.parse(value ?? "") as Partial<StoreOwner>;
    return typeof pid === "number" && typeof host === "string" && typeof since === "string" ? { pid, host, since } : undefined;
  } catch {
    return undefined;
  }
}
