// The stores under test, each behind one small interface, plus the raw limits they are compared
// with. Each opens its store in a directory of its own.
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

export interface System {
  readonly name: string;
  readonly promised: Promised;
  readonly note: string;
  open(dir: string): Promise<Store>;
  /** Writes `entries` as this system's stored state (its own API, or its file format). */
  prefill(dir: string, entries: Record<string, unknown>): Promise<void>;
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

function aiokv(
  name: string,
  promised: Promised,
  note: string,
  backend: (dir: string) => Backend | Promise<Backend>,
  prefill?: System["prefill"],
): System {
  const system: System = {
    name,
    promised,
    note,
    open: async (dir) => {
      const kv = new AioKV(await backend(dir));
      return { set: (k, v) => kv.set(k, v as never), get: (k) => kv.get(k), close: () => kv.close() };
    },
    prefill: prefill ?? ((dir, entries) => (promised === "in memory" ? prefillBySets(system, dir, entries) : writeJson(dir, entries))),
  };
  return system;
}

/** A keyv instance as a Store. */
function keyvStore(keyv: { set(k: string, v: unknown): Promise<unknown>; get(k: string): Promise<unknown>; disconnect(): Promise<void> }): Store {
  return { set: (k, v) => keyv.set(k, v), get: (k) => keyv.get(k), close: () => keyv.disconnect() };
}

/**
 * A document in memory rewritten whole by `save` after each set, one save at a time: the raw
 * limits. `get` returns a copy, as a store would.
 */
function rewritingStore(data: Record<string, unknown>, save: () => Promise<unknown>, close = async (): Promise<void> => {}): Store {
  let tail: Promise<unknown> = Promise.resolve();
  return {
    set: (k, v) => {
      data[k] = v;
      tail = tail.then(save);
      return tail;
    },
    get: async (k) => structuredClone(data[k]),
    close: async () => {
      await tail;
      await close();
    },
  };
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

const redisSystems: Record<string, System> = {
  "aiokv (redis)": aiokv(
    "aiokv (redis)",
    "in redis",
    "RedisBackend on a local redis-server (no persistence): fenced writes of the whole document",
    async (dir) => new (await import("@aiokv/redis-backend")).RedisBackend({ url: redisUrl(), key: dir }),
    setRedis,
  ),
  "keyv + @keyv/redis": {
    name: "keyv + @keyv/redis",
    promised: "in redis",
    note: "one Redis key per entry, no lock",
    open: async (dir) => {
      const { default: KeyvRedis } = await import("@keyv/redis");
      const { default: Keyv } = await import("keyv");
      return keyvStore(new Keyv({ store: new KeyvRedis(redisUrl()), namespace: dir }));
    },
    prefill: (dir, entries) => prefillBySets(redisSystems["keyv + @keyv/redis"] as System, dir, entries),
  },
  "raw stringify + SET": {
    name: "raw stringify + SET",
    promised: "in redis",
    note: "the limit: JSON.stringify of the document and one SET per set",
    open: async (dir) => {
      const client = await redisClient();
      const data = JSON.parse((await client.get(dir)) ?? "{}") as Record<string, unknown>;
      return rewritingStore(
        data,
        () => client.set(dir, JSON.stringify(data)),
        async () => void (await client.quit()),
      );
    },
    prefill: (dir, entries) => setRedis(dir, entries),
  },
};

export const systems: Record<string, System> = {
  "aiokv (sync)": aiokv("aiokv (sync)", "synced", "default: file and directory fsynced before a set resolves", (dir) => new FileBackend(jsonFile(dir))),
  "aiokv (no sync)": aiokv("aiokv (no sync)", "unsynced", "sync: false", (dir) => new FileBackend(jsonFile(dir), { sync: false })),
  "aiokv (memory)": aiokv("aiokv (memory)", "in memory", "MemoryBackend (memfs)", (dir) => {
    let backend = memoryStores.get(dir);
    if (!backend) memoryStores.set(dir, (backend = new MemoryBackend()));
    return backend;
  }),
  lowdb: {
    name: "lowdb",
    promised: "unsynced",
    note: "steno: temp file + rename, no fsync",
    open: async (dir) => {
      const { JSONFilePreset } = await import("lowdb/node");
      const db = await JSONFilePreset<Record<string, unknown>>(jsonFile(dir), {});
      return {
        set: (k, v) => db.update((data) => void (data[k] = v)),
        get: async (k) => structuredClone(db.data[k]),
        close: async () => {},
      };
    },
    prefill: writeJson,
  },
  conf: {
    name: "conf",
    promised: "synced",
    note: "sync API; atomically: temp + fsync + rename, no directory fsync; get reads the file",
    open: async (dir) => {
      const { default: Conf } = await import("conf");
      const conf = new Conf<Record<string, unknown>>({ cwd: dir, configName: "state", projectName: "bench" });
      return { set: async (k, v) => conf.set(k, v), get: async (k) => conf.get(k), close: async () => {} };
    },
    prefill: async (dir, entries) => {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, "state.json"), JSON.stringify(entries));
    },
  },
  "keyv-file": {
    name: "keyv-file",
    promised: "unsynced",
    note: "writeDelay 0; writes the file in place (not atomic); a set during a write resolves with it",
    open: async (dir) => {
      const [{ default: Keyv }, { KeyvFile }] = await Promise.all([import("keyv"), import("keyv-file")]);
      return keyvStore(new Keyv({ store: new KeyvFile({ filename: jsonFile(dir), writeDelay: 0 }) }));
    },
    prefill: (dir, entries) => prefillBySets(systems["keyv-file"] as System, dir, entries),
  },
  "node-persist": {
    name: "node-persist",
    promised: "unsynced",
    note: "one file per key, written in place (not atomic)",
    open: async (dir) => {
      const { default: nodePersist } = await import("node-persist");
      const storage = nodePersist.create({ dir: join(dir, "persist") });
      await storage.init();
      return { set: (k, v) => storage.setItem(k, v), get: (k) => storage.getItem(k) as Promise<unknown>, close: async () => {} };
    },
    prefill: (dir, entries) => prefillBySets(systems["node-persist"] as System, dir, entries),
  },
  "unstorage (fs)": {
    name: "unstorage (fs)",
    promised: "unsynced",
    note: "fs driver: one file per key, written in place (not atomic)",
    open: async (dir) => {
      const [{ createStorage }, { default: fsDriverUntyped }] = await Promise.all([import("unstorage"), import("unstorage/drivers/fs")]);
      // The driver's declaration resolves to an error type under the linter's project service.
      const fsDriver = fsDriverUntyped as unknown as (options: { base: string }) => Driver;
      const storage = createStorage({ driver: fsDriver({ base: join(dir, "unstorage") }) });
      return { set: (k, v) => storage.setItem(k, v as never), get: (k) => storage.getItem(k), close: () => storage.dispose() };
    },
    prefill: (dir, entries) => prefillBySets(systems["unstorage (fs)"] as System, dir, entries),
  },
  ...redisSystems,
};

/** One JSON.stringify + temp file + rename per set, one set at a time; with fsync of file and directory when synced. */
export function rawLimit(synced: boolean, stringify = true): System {
  const name = `raw ${stringify ? "stringify + " : ""}write + rename${synced ? " + fsync" : ""}`;
  return {
    name,
    promised: synced ? "synced" : "unsynced",
    note: stringify ? "the limit: nothing but the work a set must do" : "the same bytes each time: the limit without JSON.stringify",
    open: async (dir) => {
      const file = jsonFile(dir);
      await mkdir(dir, { recursive: true });
      const data = JSON.parse(await readFile(file, "utf8").catch(() => "{}")) as Record<string, unknown>;
      let text = JSON.stringify(data);
      return rewritingStore(data, async () => {
        if (stringify) text = JSON.stringify(data);
        await replace(file, text, synced);
      });
    },
    prefill: writeJson,
  };
}

/** The ideal group commit: sets that arrive during a write join the next one; nothing else. */
export function idealGroupCommit(synced: boolean): System {
  return {
    name: `ideal group commit${synced ? " + fsync" : ""}`,
    promised: synced ? "synced" : "unsynced",
    note: "the limit for concurrent sets",
    open: async (dir) => {
      const file = jsonFile(dir);
      await mkdir(dir, { recursive: true });
      const data = JSON.parse(await readFile(file, "utf8").catch(() => "{}")) as Record<string, unknown>;
      let writing: Promise<void> | undefined;
      let next: Promise<void> | undefined;
      const flush = (): Promise<void> => {
        const write = (async () => {
          await writing?.catch(() => {});
          next = undefined;
          await replace(file, JSON.stringify(data), synced);
        })();
        writing = write;
        return write;
      };
      return {
        set: (k, v) => {
          data[k] = v;
          next ??= flush();
          return next;
        },
        get: async (k) => structuredClone(data[k]),
        close: async () => {
          await writing;
        },
      };
    },
    prefill: writeJson,
  };
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

/** The limits each workload is compared with. */
export const limits: System[] = [
  rawLimit(true),
  rawLimit(false),
  rawLimit(true, false),
  rawLimit(false, false),
  idealGroupCommit(true),
  idealGroupCommit(false),
  {
    name: "Map + structuredClone",
    promised: "in memory",
    note: "the limit for get: an async function returning a copy from a Map",
    open: async (dir) => {
      const map = new Map(Object.entries(seeded.get(dir) ?? {}));
      return { set: async (k, v) => void map.set(k, v), get: async (k) => structuredClone(map.get(k)), close: async () => {} };
    },
    prefill: async (dir, entries) => void seeded.set(dir, entries),
  },
  {
    name: "readFile + JSON.parse",
    promised: "in memory",
    note: "the limit for a cold open",
    open: async (dir) => {
      const data = JSON.parse(await readFile(jsonFile(dir), "utf8")) as Record<string, unknown>;
      return { set: async (k, v) => void (data[k] = v), get: async (k) => data[k], close: async () => {} };
    },
    prefill: writeJson,
  },
];
