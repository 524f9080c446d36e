// The systems of the benchmark in one table: aiokv, the peers it is compared with, and the raw
// limits of the work a set or get must do. Each opens its store in a directory of its own.
import { createHash } from "node:crypto";
import { mkdir, open, readFile, rename, stat, writeFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { AioKV, type AioKVOptions, type Backend } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import type { MemoryBackend } from "@aiokv/memory-backend";
import type { Driver } from "unstorage";
import type { JournalSample } from "./workloads.js";

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
  /**
   * Writes `entries` as a document plus `records` as a journal of later sets not yet compacted
   * into it, where the system has one; otherwise the state they make, as `prefill` writes it.
   */
  prefillJournal(dir: string, entries: Record<string, unknown>, records: ReadonlyArray<readonly [string, unknown]>): Promise<void>;
  /**
   * Appends a line per set instead of rewriting a document (aiokv's journal, its limit, SQLite's
   * WAL, lmdb's pages): compared with the append limit rather than the whole-file one.
   */
  readonly appends?: boolean;
  /** aiokv's journal mode: the workloads measure its journal's size against the document's. */
  readonly journal?: boolean;
  /**
   * A module that loads the system and uses it once, run in a child process before the bench: a
   * native module that fails to load or crashes there makes the system's rows "unavailable"
   * instead of taking the bench down with it.
   */
  readonly probe?: string;
}

interface Extras {
  prefill?: System["prefill"] | undefined;
  prefillJournal?: System["prefillJournal"] | undefined;
  appends?: boolean;
  journal?: boolean;
  probe?: string;
}

/** A system; without `prefill`, its stored state is written by sets through its own API. */
function system<K extends Kind>(kind: K, name: string, promised: Promised, note: string, open: System["open"], extras: Extras | System["prefill"] = {}): System<K> {
  const { prefill, prefillJournal, ...flags } = typeof extras === "function" ? { prefill: extras } : extras;
  const defined: System<K> = {
    name,
    kind,
    promised,
    note,
    open,
    prefill: prefill ?? ((dir, entries) => prefillBySets(defined, dir, entries)),
    prefillJournal: prefillJournal ?? ((dir, entries, records) => defined.prefill(dir, applied(entries, records))),
    ...flags,
  };
  return defined;
}

/** The document that `records` make of `entries`: what a compaction writes. */
export function applied(entries: Record<string, unknown>, records: ReadonlyArray<readonly [string, unknown]>): Record<string, unknown> {
  const state = { ...entries };
  for (const [key, value] of records) state[key] = value;
  return state;
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

/** The bytes of a file-backed aiokv store's journal and document in the directory now (0 for one absent). */
export async function journalSizes(dir: string): Promise<JournalSample> {
  const size = (file: string): Promise<number> => stat(file).then(
    (info) => info.size,
    () => 0,
  );
  const [journalBytes, documentBytes] = await Promise.all([size(`${jsonFile(dir)}.journal`), size(jsonFile(dir))]);
  return { journalBytes, documentBytes };
}

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
  options: AioKVOptions = {},
): System<"aiokv"> {
  const open = async (dir: string): Promise<Store> => {
    const kv = new AioKV(await backend(dir), options);
    return { set: (k, v) => kv.set(k, v as never), get: (k) => kv.get(k), close: () => kv.close() };
  };
  const onFile = promised === "synced" || promised === "unsynced";
  return system("aiokv", name, promised, note, open, {
    prefill: prefill ?? (promised === "in memory" ? undefined : writeJson),
    // Every aiokv store on a file reads the journal it finds there, journal mode or not.
    prefillJournal: onFile ? writeJournal : undefined,
    ...(options.journal === true && { appends: true, journal: true }),
  });
}

/**
 * The document, and beside it a journal of `records` as aiokv writes one (version 1: a header
 * naming the document by its SHA-256, then one line per write), as a store that did not close
 * leaves them.
 */
async function writeJournal(dir: string, entries: Record<string, unknown>, records: ReadonlyArray<readonly [string, unknown]>): Promise<void> {
  await writeJson(dir, entries);
  const base = `sha256:${createHash("sha256").update(await readFile(jsonFile(dir))).digest("hex")}`;
  const lines = [JSON.stringify({ aiokv: "journal", version: 1, base }), ...records.map(([key, value]) => JSON.stringify({ set: [[key, value]] }))];
  await writeFile(`${jsonFile(dir)}.journal`, `${lines.join("\n")}\n`);
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

/**
 * The journal's limit: the document in memory, and one JSON line per write appended to a file
 * kept open, with `fdatasync` when synced; sets that arrive during an append share the next one
 * (group commit). No compaction: what a journal costs before it is ever rewritten.
 */
function journalLimit(name: string, synced: boolean): System<"limit"> {
  const file = (dir: string): string => join(dir, "limit.journal");
  const open = async (dir: string): Promise<Store> => {
    const data = await readJson(dir);
    // The replay's limit: the journal's complete lines parsed at once, as one JSON array.
    const text = await readFile(file(dir), "utf8").catch(() => "");
    const lines = text.slice(0, text.lastIndexOf("\n") + 1);
    const records = lines === "" ? [] : (JSON.parse(`[${lines.slice(0, -1).replaceAll("\n", ",")}]`) as Array<{ set: Array<[string, unknown]> }>);
    for (const record of records) for (const [key, value] of record.set) data[key] = value;
    const handle = await openAppending(file(dir), synced);
    let pending: string[] = [];
    let writing: Promise<void> | undefined;
    let next: Promise<void> | undefined;
    const flush = (): Promise<void> => {
      const write = (async () => {
        await writing?.catch(() => {});
        next = undefined;
        const line = `{"set":[${pending.join(",")}]}\n`;
        pending = [];
        await handle.write(line);
        if (synced) await handle.datasync();
      })();
      writing = write;
      return write;
    };
    return {
      set: (k, v) => {
        data[k] = v;
        pending.push(`[${JSON.stringify(k)},${JSON.stringify(v)}]`);
        return (next ??= flush());
      },
      get: async (k) => structuredClone(data[k]),
      close: async () => {
        await writing;
        await handle.close();
      },
    };
  };
  const note = synced ? "the limit for a journal: one JSON line appended + fdatasync per write, group commit" : "the same without fdatasync";
  const prefillJournal = async (dir: string, entries: Record<string, unknown>, records: ReadonlyArray<readonly [string, unknown]>): Promise<void> => {
    await writeJson(dir, entries);
    await writeFile(file(dir), records.map(([key, value]) => `${JSON.stringify({ set: [[key, value]] })}\n`).join(""));
  };
  return system("limit", name, synced ? "synced" : "unsynced", note, open, { prefill: writeJson, prefillJournal, appends: true });
}

/** Opens a file for appending; one that is new has its directory synced (untimed: at open). */
async function openAppending(file: string, synced: boolean): Promise<FileHandle> {
  const existed = await readFile(file).then(
    () => true,
    () => false,
  );
  const handle = await open(file, "a");
  if (synced && !existed) {
    const dir = await open(join(file, ".."), "r");
    await dir.sync();
    await dir.close();
  }
  return handle;
}

/**
 * better-sqlite3 (12: 13 needs Node 22) in WAL mode: one table of keys and JSON text, prepared
 * statements, one `INSERT OR REPLACE` (one transaction) per set. Its calls are synchronous.
 */
function sqlite(synchronous: "FULL" | "NORMAL"): System<"peer"> {
  const connect = async (dir: string): Promise<import("better-sqlite3").Database> => {
    const { default: Database } = await import("better-sqlite3");
    await mkdir(dir, { recursive: true });
    const db = new Database(join(dir, "state.db"));
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${synchronous}`);
    db.exec("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)");
    return db;
  };
  const open = async (dir: string): Promise<Store> => {
    const db = await connect(dir);
    const put = db.prepare<[string, string]>("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)");
    const read = db.prepare<[string], { value: string }>("SELECT value FROM kv WHERE key = ?");
    return {
      set: async (k, v) => put.run(k, JSON.stringify(v)),
      get: async (k) => {
        const row = read.get(k);
        return row === undefined ? undefined : (JSON.parse(row.value) as unknown);
      },
      close: async () => void db.close(),
    };
  };
  const prefill = async (dir: string, entries: Record<string, unknown>): Promise<void> => {
    const db = await connect(dir);
    const put = db.prepare<[string, string]>("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)");
    db.transaction(() => {
      for (const [key, value] of Object.entries(entries)) put.run(key, JSON.stringify(value));
    })();
    db.close();
  };
  const note =
    synchronous === "FULL"
      ? "better-sqlite3 12, WAL, synchronous=FULL: each commit synced; INSERT OR REPLACE of JSON text, sync API"
      : "better-sqlite3 12, WAL, synchronous=NORMAL: atomic, the WAL synced only at checkpoints; sync API";
  const probe = `import Database from "better-sqlite3";
const db = new Database(":memory:");
db.pragma("journal_mode = WAL");
db.exec("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT)");
db.prepare("INSERT OR REPLACE INTO kv VALUES (?, ?)").run("a", "1");
db.close();`;
  return system("peer", `SQLite (WAL, ${synchronous})`, synchronous === "FULL" ? "synced" : "unsynced", note, open, { prefill, appends: true, probe });
}

/**
 * lmdb (lmdb-js 3) with its defaults: writes batched per event turn into one transaction, synced
 * after it commits (overlappingSync); a set awaits its put and then `db.flushed`, so it resolves
 * once synced, as its README's durable writes do.
 */
function lmdb(): System<"peer"> {
  const connect = async (dir: string): Promise<import("lmdb").RootDatabase<unknown, string>> => {
    const { open } = await import("lmdb");
    return open<unknown, string>({ path: join(dir, "lmdb") });
  };
  const open = async (dir: string): Promise<Store> => {
    const db = await connect(dir);
    return {
      set: async (k, v) => {
        await db.put(k, v);
        await db.flushed;
      },
      get: async (k) => db.get(k),
      close: () => db.close(),
    };
  };
  const prefill = async (dir: string, entries: Record<string, unknown>): Promise<void> => {
    const db = await connect(dir);
    await db.transaction(() => {
      for (const [key, value] of Object.entries(entries)) void db.put(key, value);
    });
    await db.flushed;
    await db.close();
  };
  const probe = `import { open } from "lmdb";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
const dir = mkdtempSync(join(tmpdir(), "aiokv-bench-probe-"));
const db = open({ path: join(dir, "lmdb") });
await db.put("a", { b: 1 });
await db.flushed;
if (db.get("a").b !== 1) throw new Error("lmdb read back something else");
await db.close();
rmSync(dir, { recursive: true, force: true });`;
  return system("peer", "lmdb", "synced", "lmdb 3 defaults: puts of one event turn in one transaction; a set awaits put() and db.flushed", open, { prefill, appends: true, probe });
}

let baseline: Array<System<"aiokv">> | undefined;

/**
 * aiokv synced and unsynced as built from an earlier commit by `pnpm bench --baseline <ref>`
 * (its directory and commit in AIOKV_BENCH_BASELINE and AIOKV_BENCH_BASELINE_COMMIT, which the
 * cells' workers inherit); none without it. Made once, so that a run compares them by identity.
 */
export function baselineSystems(): Array<System<"aiokv">> {
  return (baseline ??= makeBaseline());
}

function makeBaseline(): Array<System<"aiokv">> {
  const built = process.env["AIOKV_BENCH_BASELINE"];
  const commit = process.env["AIOKV_BENCH_BASELINE_COMMIT"] ?? "baseline";
  if (built === undefined || built === "") return [];
  const load = async (): Promise<[typeof import("@aiokv/core"), typeof import("@aiokv/fs-backend")]> =>
    (await Promise.all([
      import(pathToFileURL(join(built, "packages", "core", "dist", "index.js")).href),
      import(pathToFileURL(join(built, "packages", "fs-backend", "dist", "index.js")).href),
    ])) as [typeof import("@aiokv/core"), typeof import("@aiokv/fs-backend")];
  const made = (sync: boolean): System<"aiokv"> =>
    system(
      "aiokv",
      `aiokv (${sync ? "sync" : "no sync"}, ${commit})`,
      sync ? "synced" : "unsynced",
      `aiokv ${sync ? "(sync)" : "(no sync)"} as built from ${commit}: the journal-off rows' baseline`,
      async (dir) => {
        const [core, fs] = await load();
        const kv = new core.AioKV(new fs.FileBackend(jsonFile(dir), { sync }));
        return { set: (k, v) => kv.set(k, v as never), get: (k) => kv.get(k), close: () => kv.close() };
      },
      writeJson,
    );
  return [made(true), made(false)];
}

const seeded = new Map<string, Record<string, unknown>>();

/** Every system, each name written here once; everything else refers to these objects. */
export const systems = {
  aiokvSync: aiokv("aiokv (sync)", "synced", "default: file and directory fsynced before a set resolves", (dir) => new FileBackend(jsonFile(dir))),
  aiokvNoSync: aiokv("aiokv (no sync)", "unsynced", "sync: false", (dir) => new FileBackend(jsonFile(dir), { sync: false })),
  aiokvJournal: aiokv(
    "aiokv (journal, sync)",
    "synced",
    "journal: true: one line appended + fdatasync per write, compacted once the journal outgrows the document",
    (dir) => new FileBackend(jsonFile(dir)),
    undefined,
    { journal: true },
  ),
  aiokvJournalNoSync: aiokv(
    "aiokv (journal, no sync)",
    "unsynced",
    "journal: true, sync: false",
    (dir) => new FileBackend(jsonFile(dir), { sync: false }),
    undefined,
    { journal: true },
  ),
  // Loaded by its own cells only: importing memfs costs every other cell's worker about 0.3 s.
  aiokvMemory: aiokv("aiokv (memory)", "in memory", "MemoryBackend (memfs)", async (dir) => {
    let backend = memoryStores.get(dir);
    if (!backend) memoryStores.set(dir, (backend = new (await import("@aiokv/memory-backend")).MemoryBackend()));
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
  sqliteFull: sqlite("FULL"),
  sqliteNormal: sqlite("NORMAL"),
  lmdb: lmdb(),
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
  journalSynced: journalLimit("raw append + fdatasync", true),
  journalUnsynced: journalLimit("raw append", false),
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
