// The systems of the benchmark in one table: aiokv, the peers it is compared with, and the raw
// limits of the work a set or get must do. Each opens its store in a directory of its own.
import { mkdir, open, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AioKV, type Backend } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import { MemoryBackend } from "@aiokv/memory-backend";
import type { Driver } from "unstorage";

// Each system's modules are loaded by its own cells only (before anything is timed), so that a
// cell's worker does not pay for loading every peer.

export interface Store {
  set(key: string, value: unknown): Promise<unknown>;
  get(key: string): Promise<unknown>;
  close(): Promise<void>;
}

/** What a resolved set promises; each system is compared with the raw limit that promises the same. */
export type Promised = "synced" | "unsynced" | "in memory" | "in redis";

/** aiokv itself, a peer it is compared with, or a limit: the least work a set or get can do. */
export type Kind = "aiokv" | "peer" | "limit";

export interface System<K extends Kind = Kind> {
  readonly name: string;
  readonly kind: K;
  readonly promised: Promised;
  readonly note: string;
  open(dir: string): Promise<Store>;
  /** Writes `entries` as this system's stored state (its own API, or its file format). */
  prefill(dir: string, entries: Record<string, unknown>): Promise<void>;
}

/** A system; without `prefill`, its stored state is written by sets through its own API. */
function system<K extends Kind>(kind: K, name: string, promised: Promised, note: string, open: System["open"], prefill?: System["prefill"]): System<K> {
  const defined: System<K> = { name, kind, promised, note, open, prefill: prefill ?? ((dir, entries) => prefillBySets(defined, dir, entries)) };
  return defined;
}

async function prefillBySets(system: System, dir: string, entries: Record<string, unknown>): Promise<void> {
  const store = await system.open(dir);
  const keys = Object.keys(entries);
  for (let i = 0; i < keys.length; i += 500) {
    await Promise.all(keys.slice(i, i + 500).map((key) => store.set(key, entries[key])));
  }
  await store.close();
}

const jsonFile = (dir: string): string => join(dir, "state.json");
const writeJson = (dir: string, entries: Record<string, unknown>): Promise<void> =>
  mkdir(dir, { recursive: true }).then(() => writeFile(jsonFile(dir), JSON.stringify(entries)));

/** The document in the directory's JSON file, or an empty one. */
async function readJson(dir: string): Promise<Record<string, unknown>> {
  await mkdir(dir, { recursive: true });
  return JSON.parse(await readFile(jsonFile(dir), "utf8").catch(() => "{}")) as Record<string, unknown>;
}

function aiokv(
  name: string,
  promised: Promised,
  note: string,
  backend: (dir: string) => Backend | Promise<Backend>,
  prefill?: System["prefill"],
): System<"aiokv"> {
  const open = async (dir: string): Promise<Store> => {
    const kv = new AioKV(await backend(dir));
    return { set: (k, v) => kv.set(k, v as never), get: (k) => kv.get(k), close: () => kv.close() };
  };
  return system("aiokv", name, promised, note, open, prefill ?? (promised === "in memory" ? undefined : writeJson));
}

/** A keyv instance as a Store. */
function keyvStore(keyv: { set(k: string, v: unknown): Promise<unknown>; get(k: string): Promise<unknown>; disconnect(): Promise<void> }): Store {
  return { set: (k, v) => keyv.set(k, v), get: (k) => keyv.get(k), close: () => keyv.disconnect() };
}

/**
 * A document in memory, written by `write` after each set (which resolves with it) and settled
 * by `close`: the raw limits. `get` returns a copy, as a store would.
 */
function documentStore(data: Record<string, unknown>, write: () => Promise<unknown>, close: () => Promise<unknown>): Store {
  return {
    set: (k, v) => {
      data[k] = v;
      return write();
    },
    get: async (k) => structuredClone(data[k]),
    close: async () => void (await close()),
  };
}

/** The document rewritten whole by `save` after each set, one save at a time. */
function rewritingStore(data: Record<string, unknown>, save: () => Promise<unknown>, close = async (): Promise<void> => {}): Store {
  let tail: Promise<unknown> = Promise.resolve();
  return documentStore(
    data,
    () => (tail = tail.then(save)),
    async () => {
      await tail;
      await close();
    },
  );
}

const memoryStores = new Map<string, MemoryBackend>();

/** The local redis-server that `pnpm bench` starts; each cell's directory names its key. */
function redisUrl(): string {
  const url = process.env["AIOKV_BENCH_REDIS"];
  if (!url) throw new Error("redis-server is not installed");
  return url;
}

// Loaded by the Redis cells only: the other cells' workers do not pay for loading them.
const redisClient = async (): Promise<import("ioredis").Redis> => new (await import("ioredis")).Redis(redisUrl());

/** Writes `entries` as the document's JSON text under the key, as aiokv would find it. */
async function setRedis(key: string, entries: Record<string, unknown>): Promise<void> {
  const client = await redisClient();
  await client.set(key, JSON.stringify(entries));
  await client.quit();
}

/** One JSON.stringify (or the same text each time) + temp file + rename per set, one set at a time; with fsync of file and directory when synced. */
function rawLimit(name: string, synced: boolean, stringify: boolean): System<"limit"> {
  const note = stringify ? "the limit: nothing but the work a set must do" : "the same bytes each time: the limit without JSON.stringify";
  const open = async (dir: string): Promise<Store> => {
    const data = await readJson(dir);
    let text = JSON.stringify(data);
    return rewritingStore(data, async () => {
      if (stringify) text = JSON.stringify(data);
      await replace(jsonFile(dir), text, synced);
    });
  };
  return system("limit", name, synced ? "synced" : "unsynced", note, open, writeJson);
}

/** The ideal group commit: sets that arrive during a write join the next one; nothing else. */
function idealGroupCommit(name: string, synced: boolean): System<"limit"> {
  const open = async (dir: string): Promise<Store> => {
    const data = await readJson(dir);
    let writing: Promise<void> | undefined;
    let next: Promise<void> | undefined;
    const flush = (): Promise<void> => {
      const write = (async () => {
        await writing?.catch(() => {});
        next = undefined;
        await replace(jsonFile(dir), JSON.stringify(data), synced);
      })();
      writing = write;
      return write;
    };
    return documentStore(data, () => (next ??= flush()), async () => writing);
  };
  return system("limit", name, synced ? "synced" : "unsynced", "the limit for concurrent sets", open, writeJson);
}

async function replace(file: string, text: string, synced: boolean): Promise<void> {
  const temp = `${file}.tmp`;
  const handle = await open(temp, "w");
  await handle.writeFile(text);
  if (synced) await handle.sync();
  await handle.close();
  await rename(temp, file);
  if (synced) {
    const dir = await open(join(file, ".."), "r");
    await dir.sync();
    await dir.close();
  }
}

const seeded = new Map<string, Record<string, unknown>>();

/** Every system, each name written here once; everything else refers to these objects. */
export const systems = {
  aiokvSync: aiokv("aiokv (sync)", "synced", "default: file and directory fsynced before a set resolves", (dir) => new FileBackend(jsonFile(dir))),
  aiokvNoSync: aiokv("aiokv (no sync)", "unsynced", "sync: false", (dir) => new FileBackend(jsonFile(dir), { sync: false })),
  aiokvMemory: aiokv("aiokv (memory)", "in memory", "MemoryBackend (memfs)", (dir) => {
    let backend = memoryStores.get(dir);
    if (!backend) memoryStores.set(dir, (backend = new MemoryBackend()));
    return backend;
  }),
  lowdb: system(
    "peer",
    "lowdb",
    "unsynced",
    "steno: temp file + rename, no fsync",
    async (dir) => {
      const { JSONFilePreset } = await import("lowdb/node");
      const db = await JSONFilePreset<Record<string, unknown>>(jsonFile(dir), {});
      return {
        set: (k, v) => db.update((data) => void (data[k] = v)),
        get: async (k) => structuredClone(db.data[k]),
        close: async () => {},
      };
    },
    writeJson,
  ),
  conf: system(
    "peer",
    "conf",
    "synced",
    "sync API; atomically: temp + fsync + rename, no directory fsync; get reads the file",
    async (dir) => {
      const { default: Conf } = await import("conf");
      // Its file is the directory's state.json, as writeJson writes it.
      const conf = new Conf<Record<string, unknown>>({ cwd: dir, configName: "state", projectName: "bench" });
      return { set: async (k, v) => conf.set(k, v), get: async (k) => conf.get(k), close: async () => {} };
    },
    writeJson,
  ),
  aiokvKeyv: system("aiokv", "keyv + @aiokv/keyv", "synced", "Keyv 5 on an aiokv store (file, synced): Keyv's serialized values, atomic writes", async (dir) => {
    const [{ default: Keyv }, { KeyvAioKV }] = await Promise.all([import("keyv"), import("@aiokv/keyv")]);
    return keyvStore(new Keyv({ store: new KeyvAioKV(jsonFile(dir)) }));
  }),
  keyvFile: system("peer", "keyv-file", "unsynced", "writeDelay 0; writes the file in place (not atomic); a set during a write resolves with it", async (dir) => {
    const [{ default: Keyv }, { KeyvFile }] = await Promise.all([import("keyv"), import("keyv-file")]);
    return keyvStore(new Keyv({ store: new KeyvFile({ filename: jsonFile(dir), writeDelay: 0 }) }));
  }),
  nodePersist: system("peer", "node-persist", "unsynced", "one file per key, written in place (not atomic)", async (dir) => {
    const { default: nodePersist } = await import("node-persist");
    const storage = nodePersist.create({ dir: join(dir, "persist") });
    await storage.init();
    return { set: (k, v) => storage.setItem(k, v), get: (k) => storage.getItem(k) as Promise<unknown>, close: async () => {} };
  }),
  unstorage: system("peer", "unstorage (fs)", "unsynced", "fs driver: one file per key, written in place (not atomic)", async (dir) => {
    const [{ createStorage }, { default: fsDriverUntyped }] = await Promise.all([import("unstorage"), import("unstorage/drivers/fs")]);
    // The driver's declaration resolves to an error type under the linter's project service.
    const fsDriver = fsDriverUntyped as unknown as (options: { base: string }) => Driver;
    const storage = createStorage({ driver: fsDriver({ base: join(dir, "unstorage") }) });
    return { set: (k, v) => storage.setItem(k, v as never), get: (k) => storage.getItem(k), close: () => storage.dispose() };
  }),
  // On the local redis-server that `pnpm bench` starts, when one is installed.
  aiokvRedis: aiokv(
    "aiokv (redis)",
    "in redis",
    "RedisBackend on a local redis-server (no persistence): fenced writes of the whole document",
    async (dir) => new (await import("@aiokv/redis-backend")).RedisBackend({ url: redisUrl(), key: dir }),
    setRedis,
  ),
  keyvRedis: system("peer", "keyv + @keyv/redis", "in redis", "one Redis key per entry, no lock", async (dir) => {
    const { default: KeyvRedis } = await import("@keyv/redis");
    const { default: Keyv } = await import("keyv");
    return keyvStore(new Keyv({ store: new KeyvRedis(redisUrl()), namespace: dir }));
  }),
  rawSet: system(
    "limit",
    "raw stringify + SET",
    "in redis",
    "the limit: JSON.stringify of the document and one SET per set",
    async (dir) => {
      const client = await redisClient();
      const data = JSON.parse((await client.get(dir)) ?? "{}") as Record<string, unknown>;
      return rewritingStore(
        data,
        () => client.set(dir, JSON.stringify(data)),
        async () => void (await client.quit()),
      );
    },
    setRedis,
  ),
  // The limits of the file systems.
  rawSynced: rawLimit("raw stringify + write + rename + fsync", true, true),
  rawUnsynced: rawLimit("raw stringify + write + rename", false, true),
  rawSameTextSynced: rawLimit("raw write + rename + fsync", true, false),
  rawSameTextUnsynced: rawLimit("raw write + rename", false, false),
  idealSynced: idealGroupCommit("ideal group commit + fsync", true),
  idealUnsynced: idealGroupCommit("ideal group commit", false),
  mapClone: system(
    "limit",
    "Map + structuredClone",
    "in memory",
    "the limit for get: an async function returning a copy from a Map",
    async (dir) => {
      const map = new Map(Object.entries(seeded.get(dir) ?? {}));
      return { set: async (k, v) => void map.set(k, v), get: async (k) => structuredClone(map.get(k)), close: async () => {} };
    },
    async (dir, entries) => void seeded.set(dir, entries),
  ),
  readParse: system(
    "limit",
    "readFile + JSON.parse",
    "in memory",
    "the limit for a cold open",
    async (dir) => {
      const data = JSON.parse(await readFile(jsonFile(dir), "utf8")) as Record<string, unknown>;
      return { set: async (k, v) => void (data[k] = v), get: async (k) => data[k], close: async () => {} };
    },
    writeJson,
  ),
} satisfies Record<string, System>;
