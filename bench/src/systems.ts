// The stores under test, each behind one small interface, plus the raw limits they are compared
// with. Each opens its store in a directory of its own.
import { mkdir, open, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AioKV } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import { MemoryBackend } from "@aiokv/memory-backend";
import Conf from "conf";
import Keyv from "keyv";
import { KeyvFile } from "keyv-file";
import { JSONFilePreset } from "lowdb/node";
import nodePersist from "node-persist";
import { createStorage, type Driver } from "unstorage";
import fsDriverUntyped from "unstorage/drivers/fs";

// The driver's declaration resolves to an error type under the linter's project service.
const fsDriver = fsDriverUntyped as unknown as (options: { base: string }) => Driver;

export interface Store {
  set(key: string, value: unknown): Promise<unknown>;
  get(key: string): Promise<unknown>;
  close(): Promise<void>;
}

/** What a resolved set promises; each system is compared with the raw limit that promises the same. */
export type Promised = "synced" | "unsynced" | "in memory";

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

function aiokv(name: string, promised: Promised, note: string, backend: (dir: string) => FileBackend | MemoryBackend): System {
  const system: System = {
    name,
    promised,
    note,
    open: async (dir) => {
      const kv = new AioKV(backend(dir));
      return { set: (k, v) => kv.set(k, v as never), get: (k) => kv.get(k), close: () => kv.close() };
    },
    prefill: (dir, entries) => (promised === "in memory" ? prefillBySets(system, dir, entries) : writeJson(dir, entries)),
  };
  return system;
}

const memoryStores = new Map<string, MemoryBackend>();

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
      const keyv = new Keyv({ store: new KeyvFile({ filename: jsonFile(dir), writeDelay: 0 }) });
      return { set: (k, v) => keyv.set(k, v), get: (k) => keyv.get(k), close: () => keyv.disconnect() };
    },
    prefill: (dir, entries) => prefillBySets(systems["keyv-file"] as System, dir, entries),
  },
  "node-persist": {
    name: "node-persist",
    promised: "unsynced",
    note: "one file per key, written in place (not atomic)",
    open: async (dir) => {
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
      const storage = createStorage({ driver: fsDriver({ base: join(dir, "unstorage") }) });
      return { set: (k, v) => storage.setItem(k, v as never), get: (k) => storage.getItem(k), close: () => storage.dispose() };
    },
    prefill: (dir, entries) => prefillBySets(systems["unstorage (fs)"] as System, dir, entries),
  },
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
      let tail: Promise<unknown> = Promise.resolve();
      return {
        set: (k, v) => {
          data[k] = v;
          tail = tail.then(async () => {
            if (stringify) text = JSON.stringify(data);
            await replace(file, text, synced);
          });
          return tail;
        },
        get: async (k) => structuredClone(data[k]),
        close: () => tail.then(() => undefined),
      };
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
