// KeyvAioKV's own tests, beyond Keyv's suite (keyv-suite.test.ts): what delete reports, one-write
// clear and deleteMany, namespaces sharing a file, the iterator, expiry in has(), raw entries,
// disconnect, errors reaching Keyv's `error` event, durability across reopening, the README's
// example, and a SIGKILL in the middle of a storm of Keyv sets.
import { execFile, spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { AioKV, CorruptStoreError, isStoreFormatError, isStoreLockedError, StoreLockedError } from "aiokv";
import { MemoryBackend } from "@aiokv/memory-backend";
import { KeyvAioKV } from "@aiokv/keyv";
import Keyv, { type KeyvOptions, type KeyvStoreAdapter } from "keyv";
import ts from "typescript";
import { afterEach, describe, expect, it, vi } from "vitest";
import { tempDir, tempFile } from "../helpers/temp.js";
import { fixture, root } from "../helpers/processes.js";

const run = promisify(execFile);

/** A MemoryBackend that counts its writes. */
class CountingBackend extends MemoryBackend {
  writes = 0;
  override write(pieces: readonly Uint8Array[]): Promise<void> {
    this.writes++;
    return super.write(pieces);
  }
}

/** The file's document. */
async function fileDoc(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
}

/** Keyv's options with `undefined` ones, which Keyv reads as "none" (its types, under exactOptionalPropertyTypes, do not say so). */
const options = (given: object): KeyvOptions => given;

const open: KeyvAioKV[] = [];
/** An adapter closed when the test ends. */
function adapter(...args: ConstructorParameters<typeof KeyvAioKV>): KeyvAioKV {
  const made = new KeyvAioKV(...args);
  open.push(made);
  return made;
}
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(open.splice(0).map((store) => store.disconnect().catch(() => undefined)));
});

describe("KeyvAioKV: the store it makes", () => {
  it("takes a path (the file backend), a Backend or an AioKV store", async () => {
    const file = await tempFile();
    const onPath = adapter(file, { sync: false });
    expect(onPath.kv.location).toBe(file);
    expect(onPath.opts.url).toBe(file);
    await new Keyv({ store: onPath }).set("a", 1);
    expect(Object.keys(await fileDoc(file))).toStrictEqual(["keyv:a"]);

    const backend = new MemoryBackend({ name: "cache" });
    const onBackend = adapter(backend);
    expect(onBackend.kv.location).toBe("memory:cache");

    const kv = new AioKV(await tempFile());
    const onStore = adapter(kv);
    expect(onStore.kv).toBe(kv);
  });

  it("refuses anything else, and options with a store it does not make", () => {
    expect(() => new KeyvAioKV(42 as unknown as string)).toThrow(new TypeError("Cannot create KeyvAioKV: expected a path, a Backend or an AioKV store, received number"));
    expect(() => new KeyvAioKV(null as unknown as string)).toThrow(/received null/);
    expect(() => new KeyvAioKV({} as unknown as string)).toThrow(/received an object that is neither/);
    const kv = new AioKV(new MemoryBackend());
    expect(() => new KeyvAioKV(kv, { sync: false })).toThrow(/options are for a store the adapter makes/);
  });

  it("is a KeyvStoreAdapter, and an EventEmitter Keyv listens to", () => {
    const store: KeyvStoreAdapter = new KeyvAioKV(new MemoryBackend());
    new Keyv({ store });
    expect(store.opts).toMatchObject({ dialect: "redis", url: "memory:store" });
    expect((store as KeyvAioKV).listenerCount("error")).toBe(1);
  });

  it("gives Keyv its iterator (Keyv 5 asks for a dialect from its list)", () => {
    const keyv = new Keyv({ store: new KeyvAioKV(new MemoryBackend()) });
    expect(typeof keyv.iterator).toBe("function");
  });
});

describe("KeyvAioKV: delete and deleteMany report whether keys were stored", () => {
  it("delete resolves false for an absent key, true for a stored one (and false again after)", async () => {
    const store = adapter(new MemoryBackend());
    const keyv = new Keyv({ store });
    expect(await keyv.delete("absent")).toBe(false);
    await keyv.set("here", "x");
    expect(await keyv.delete("here")).toBe(true);
    expect(await keyv.delete("here")).toBe(false);
    expect(await store.delete("keyv:here")).toBe(false);
  });

  it("two concurrent deletes of one key: exactly one is true (decided with the removal)", async () => {
    const store = adapter(new MemoryBackend());
    await store.set("k", "v");
    expect(await Promise.all([store.delete("k"), store.delete("k")])).toStrictEqual([true, false]);
    await store.set("k", "v");
    expect(await Promise.all([store.delete("k"), store.set("k", "again"), store.delete("k")])).toStrictEqual([true, true, true]);
    expect(await store.get("k")).toBe(undefined);
  });

  it("deleteMany: one write; true when any key was stored, false when none was", async () => {
    const backend = new CountingBackend();
    const store = adapter(backend);
    const keyv = new Keyv({ store });
    await keyv.set("a", 1);
    await keyv.set("b", 2);
    await keyv.set("c", 3);
    const before = backend.writes;
    expect(await keyv.delete(["a", "b", "absent"])).toBe(true);
    expect(backend.writes).toBe(before + 1);
    expect(await keyv.get("a")).toBe(undefined);
    expect(await keyv.get("c")).toBe(3);
    expect(await keyv.delete(["a", "b", "absent"])).toBe(false);
    expect(await store.deleteMany([])).toBe(false);
  });
});

describe("KeyvAioKV: namespaces", () => {
  it("Keyvs with different namespaces share one file through one store", async () => {
    const file = await tempFile();
    const kv = new AioKV(file);
    const users = new Keyv({ store: adapter(kv), namespace: "users" });
    const sessions = new Keyv({ store: adapter(kv), namespace: "sessions" });
    await users.set("1", "ada");
    await sessions.set("1", "token");
    expect(await users.get("1")).toBe("ada");
    expect(await sessions.get("1")).toBe("token");
    expect(Object.keys(await fileDoc(file))).toStrictEqual(["users:1", "sessions:1"]);
  });

  it("clear removes one namespace's keys in one write, leaving other namespaces and other keys", async () => {
    const backend = new CountingBackend();
    const kv = new AioKV(backend);
    await kv.set("app_state", { started: true });
    const users = new Keyv({ store: adapter(kv), namespace: "users" });
    const usersTwo = new Keyv({ store: adapter(kv), namespace: "users2" });
    for (const id of ["1", "2", "3"]) await users.set(id, `user ${id}`);
    await usersTwo.set("1", "other");
    const before = backend.writes;
    await users.clear();
    expect(backend.writes).toBe(before + 1);
    expect(await users.get("1")).toBe(undefined);
    expect(await usersTwo.get("1")).toBe("other");
    expect(await kv.keys()).toStrictEqual(["app_state", "users2:1"]);
  });

  it("without a namespace, clear removes every key of the store", async () => {
    const kv = new AioKV(new MemoryBackend());
    await kv.set("app_state", 1);
    const plain = new Keyv(options({ store: adapter(kv), namespace: undefined }));
    const named = new Keyv({ store: adapter(kv), namespace: "named" });
    await plain.set("a", 1);
    await named.set("b", 2);
    expect(await kv.keys()).toStrictEqual(["app_state", "a", "named:b"]);
    await plain.clear();
    expect(await kv.keys()).toStrictEqual([]);
  });

  it("a clear called before a set does not remove it", async () => {
    const store = adapter(new MemoryBackend());
    const keyv = new Keyv({ store });
    await keyv.set("old", 1);
    await Promise.all([keyv.clear(), keyv.set("new", 2)]);
    expect(await keyv.get("old")).toBe(undefined);
    expect(await keyv.get("new")).toBe(2);
  });
});

describe("KeyvAioKV: iterator", () => {
  it("yields the namespace's stored pairs (with their prefix, as stored), and only them", async () => {
    const kv = new AioKV(new MemoryBackend());
    await kv.set("other", "x");
    await kv.set("ns2:a", "y");
    const store = adapter(kv);
    await store.set("ns:a", "1");
    await store.set("ns:b", "2");
    const pairs: unknown[] = [];
    for await (const pair of store.iterator("ns")) pairs.push(pair);
    expect(pairs).toStrictEqual([
      ["ns:a", "1"],
      ["ns:b", "2"],
    ]);
    const all: unknown[] = [];
    for await (const pair of store.iterator()) all.push(pair[0]);
    expect(all).toStrictEqual(["other", "ns2:a", "ns:a", "ns:b"]);
  });

  it("through Keyv: unprefixed keys and values; expired entries skipped and deleted", async () => {
    const now = vi.spyOn(Date, "now").mockReturnValue(1_000_000);
    const kv = new AioKV(new MemoryBackend());
    const keyv = new Keyv({ store: adapter(kv), namespace: "cache" });
    await keyv.set("short", "s", 10);
    await keyv.set("long", { n: 1 }, 1_000);
    await keyv.set("forever", [1, 2]);
    now.mockReturnValue(1_000_011);
    const seen: unknown[] = [];
    for await (const pair of (keyv.iterator as () => AsyncGenerator<[string, unknown]>)()) seen.push(pair);
    expect(seen).toStrictEqual([
      ["long", { n: 1 }],
      ["forever", [1, 2]],
    ]);
    expect(await kv.keys()).toStrictEqual(["cache:long", "cache:forever"]);
  });

  it("a key removed during the iteration does not stop it", async () => {
    const store = adapter(new MemoryBackend());
    await store.setMany(["a", "b", "c"].map((key) => ({ key: `ns:${key}`, value: key })));
    const seen: unknown[] = [];
    for await (const [key] of store.iterator("ns")) {
      seen.push(key);
      if (key === "ns:a") expect(await store.delete("ns:b")).toBe(true);
    }
    expect(seen[0]).toBe("ns:a");
    expect(seen).toContain("ns:c");
  });
});

describe("KeyvAioKV: expiry", () => {
  it("has() agrees with get(): true until the expiry time, false after it", async () => {
    const now = vi.spyOn(Date, "now").mockReturnValue(5_000);
    const keyv = new Keyv({ store: adapter(new MemoryBackend()) });
    await keyv.set("k", "v", 100); // expires at 5100
    await keyv.set("forever", "v");
    now.mockReturnValue(5_100);
    expect(await keyv.has("k")).toBe(true);
    expect(await keyv.get("k")).toBe("v");
    now.mockReturnValue(5_101);
    expect(await keyv.has("k")).toBe(false);
    expect(await keyv.has(["k", "forever", "absent"])).toStrictEqual([false, true, false]);
    expect(await keyv.get("k")).toBe(undefined); // and Keyv deletes it
    expect(await keyv.has("forever")).toBe(true);
  });

  it("has() reads the expiry with opts.deserialize when Keyv's text is not JSON", async () => {
    const now = vi.spyOn(Date, "now").mockReturnValue(5_000);
    const serialize = (data: unknown): string => `v1|${JSON.stringify(data)}`;
    const deserialize = <T>(text: string): T => JSON.parse(text.slice(3)) as T;
    const store = adapter(new MemoryBackend());
    const keyv = new Keyv({ store, serialize, deserialize });
    await keyv.set("k", "v", 100);
    now.mockReturnValue(6_000);
    expect(await keyv.has("k")).toBe(true); // cannot read it: present, as stored
    store.opts.deserialize = deserialize;
    expect(await keyv.has("k")).toBe(false);
    expect(await keyv.get("k")).toBe(undefined);
  });

  it("stores raw entries (serialize: undefined) as JSON, expiry included", async () => {
    const now = vi.spyOn(Date, "now").mockReturnValue(5_000);
    const kv = new AioKV(new MemoryBackend());
    const keyv = new Keyv(options({ store: adapter(kv), serialize: undefined, deserialize: undefined }));
    await keyv.set("obj", { at: new Date(0), n: 1 }, 100);
    expect(await kv.get("keyv:obj")).toStrictEqual({ value: { at: "1970-01-01T00:00:00.000Z", n: 1 }, expires: 5_100 });
    expect(await keyv.get("obj")).toStrictEqual({ at: "1970-01-01T00:00:00.000Z", n: 1 });
    now.mockReturnValue(5_101);
    expect(await keyv.has("obj")).toBe(false);
    expect(await keyv.get("obj")).toBe(undefined);
  });

  it("a value with no JSON form: set() rejects with a TypeError, Keyv reports it, nothing is written", async () => {
    const kv = new AioKV(new MemoryBackend());
    const store = adapter(kv);
    await expect(store.set("k", 1n)).rejects.toThrow(TypeError);
    await expect(store.set("k", () => 1)).rejects.toThrow(new TypeError('Cannot set key "k": function has no JSON form'));
    const keyv = new Keyv(options({ store, serialize: undefined, deserialize: undefined }));
    const errors: unknown[] = [];
    keyv.on("error", (error) => errors.push(error));
    expect(await keyv.set("big", 1n)).toBe(false);
    expect(errors).toHaveLength(1);
    expect(await kv.keys()).toStrictEqual([]);
  });
});

describe("KeyvAioKV: disconnect, durability, errors", () => {
  it("disconnect closes the store and releases the file: another store opens it, and sees every value", async () => {
    const file = await tempFile();
    const store = new KeyvAioKV(file);
    const keyv = new Keyv({ store, namespace: "c" });
    await keyv.set("a", { deep: [1, "two"] });
    await keyv.set("b", "text", 60_000);
    await keyv.delete("absent");
    const other = new AioKV(file);
    await expect(other.keys()).rejects.toBeInstanceOf(StoreLockedError);
    await keyv.disconnect();
    await expect(keyv.get("a")).resolves.toBe(undefined); // Keyv drops the error of a closed store
    await expect(store.get("c:a")).rejects.toThrow(/it is closed/);

    expect(await other.keys()).toStrictEqual(["c:a", "c:b"]);
    await other.close();
    const reopened = new Keyv({ store: adapter(file), namespace: "c" });
    expect(await reopened.get("a")).toStrictEqual({ deep: [1, "two"] });
    expect(await reopened.get("b")).toBe("text");
  });

  it("two adapters on one path: the second one's calls fail with StoreLockedError, reported to Keyv", async () => {
    const file = await tempFile();
    const first = new Keyv({ store: adapter(file) });
    await first.set("a", 1);
    const second = new Keyv({ store: adapter(file) });
    const errors: unknown[] = [];
    second.on("error", (error) => errors.push(error));
    expect(await second.set("a", 2)).toBe(false);
    expect(await second.get("a")).toBe(undefined);
    expect(errors.map((error) => isStoreLockedError(error))).toStrictEqual([true, true]);
    expect(await first.get("a")).toBe(1);
  });

  it("a corrupt file: every call reports CorruptStoreError to Keyv's error event; the file is kept as it is", async () => {
    const file = await tempFile();
    await writeFile(file, '{"keyv:a": "{\\"value\\":1}",');
    const store = adapter(file);
    const keyv = new Keyv({ store });
    const errors: unknown[] = [];
    keyv.on("error", (error) => errors.push(error));

    expect(await keyv.get("a")).toBe(undefined); // Keyv's get() drops it; the adapter emitted it
    expect(await keyv.set("b", 1)).toBe(false);
    expect(await keyv.delete("a")).toBe(false);
    expect(await keyv.delete(["a"])).toBe(false);
    await keyv.clear();
    await expect(keyv.has("a")).rejects.toBeInstanceOf(CorruptStoreError);
    await expect(keyv.has(["a", "b"])).rejects.toBeInstanceOf(CorruptStoreError); // one event for the call
    await expect(keyv.get(["a"])).rejects.toBeInstanceOf(CorruptStoreError);
    await expect((keyv.iterator as () => AsyncGenerator)().next()).rejects.toBeInstanceOf(CorruptStoreError);
    expect(errors).toHaveLength(9);
    expect(errors.every((error) => isStoreFormatError(error))).toBe(true);
    expect((errors[0] as Error).message).toMatch(/^Cannot load store ".*state\.json": not valid JSON at line 1, column \d+/);
    expect(await readFile(file, "utf8")).toBe('{"keyv:a": "{\\"value\\":1}",');
  });

  it("with nothing listening, a read error rejects (and throws nothing else)", async () => {
    const store = adapter(new MemoryBackend({ text: "[]" }));
    await expect(store.get("a")).rejects.toBeInstanceOf(Error);
    await expect(store.has("a")).rejects.toBeInstanceOf(Error);
  });

  it("throwOnErrors: Keyv's get() rethrows the store's error, which the adapter emitted once", async () => {
    const keyv = new Keyv({ store: adapter(new MemoryBackend({ text: "{" })), throwOnErrors: true });
    const errors: unknown[] = [];
    keyv.on("error", (error) => errors.push(error));
    await expect(keyv.get("a")).rejects.toBeInstanceOf(CorruptStoreError);
    await expect(keyv.set("a", 1)).rejects.toBeInstanceOf(CorruptStoreError);
    expect(errors).toHaveLength(2);
  });

  it("writes one JSON file: each entry as the text Keyv serialized", async () => {
    const file = await tempFile();
    const keyv = new Keyv({ store: adapter(file), namespace: "n" });
    await keyv.set("s", "it's \"quoted\"");
    await keyv.set("buf", Buffer.from("bytes"));
    await keyv.setMany([
      { key: "m1", value: 1 },
      { key: "m2", value: { x: null }, ttl: 1_000 },
    ]);
    const doc = await fileDoc(file);
    expect(Object.keys(doc)).toStrictEqual(["n:s", "n:buf", "n:m1", "n:m2"]);
    expect(doc["n:s"]).toBe('{"value":"it\'s \\"quoted\\""}');
    expect(typeof doc["n:m2"]).toBe("string");
    expect(JSON.parse(doc["n:m2"] as string)).toMatchObject({ value: { x: null }, expires: expect.any(Number) as number });
    expect(Buffer.from("bytes").equals((await keyv.get<Buffer>("buf")) as Buffer)).toBe(true);
    expect(await keyv.get(["s", "m1", "absent"])).toStrictEqual(["it's \"quoted\"", 1, undefined]);
  });

  it("setMany is one write, all or none", async () => {
    const backend = new CountingBackend();
    const kv = new AioKV(backend);
    const store = adapter(kv);
    await store.setMany([
      { key: "a", value: "1" },
      { key: "b", value: "2" },
    ]);
    expect(backend.writes).toBe(1);
    await expect(store.setMany([{ key: "c", value: "3" }, { key: "d", value: Symbol("no") }])).rejects.toThrow(TypeError);
    expect(await kv.keys()).toStrictEqual(["a", "b"]);
  });
});

describe("KeyvAioKV: the README's example", () => {
  it("type-checks (strict) and runs as written", async () => {
    const readme = await readFile(join(root, "packages/keyv/README.md"), "utf8");
    const example = /```ts\n(import Keyv[\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    expect(typeErrors(example ?? "")).toStrictEqual([]);
    const keyvEntry = join(dirname(createRequire(import.meta.url).resolve("keyv")), "index.js");
    // Types stripped, imports pointed at the built package and the installed keyv: run by node.
    const code = ts.transpileModule(example ?? "", { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText
      .replace('from "keyv"', `from ${JSON.stringify(pathToFileURL(keyvEntry).href)}`)
      .replace('from "@aiokv/keyv"', `from ${JSON.stringify(pathToFileURL(join(root, "packages/keyv/dist/index.js")).href)}`);
    const dir = await tempDir();
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", code], { cwd: dir });
    expect(stdout).toBe("hello\ntrue\nfalse\ngreeting hello\nsession { user: 42 }\n");
    expect(await fileDoc(join(dir, "cache.json"))).toStrictEqual({});
  });
});

/** The type errors of `code` as a module in test/keyv (resolving packages as the tests do), strict and with exactOptionalPropertyTypes. */
function typeErrors(code: string): string[] {
  const file = join(root, "test/keyv/readme-example.ts"); // never written: the host serves it
  const compilerOptions: ts.CompilerOptions = {
    strict: true,
    exactOptionalPropertyTypes: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: ["node"],
    skipLibCheck: true,
    noEmit: true,
  };
  const base = ts.createCompilerHost(compilerOptions);
  const host: ts.CompilerHost = {
    ...base,
    getSourceFile: (name, version, ...rest) => (name === file ? ts.createSourceFile(name, code, version) : base.getSourceFile(name, version, ...rest)),
    fileExists: (name) => name === file || base.fileExists(name),
    readFile: (name) => (name === file ? code : base.readFile(name)),
  };
  const program = ts.createProgram([file], compilerOptions, host);
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"));
}

describe("KeyvAioKV crash safety (SIGKILL in the middle of a storm of Keyv sets)", () => {
  const rounds = Number(process.env["AIOKV_CRASH_ROUNDS"] ?? 25);

  it(`keeps every acknowledged set, over ${rounds} rounds`, async () => {
    const dir = await tempDir();
    const file = join(dir, "cache.json");
    const acked = new Map<string, number>();
    for (let round = 0; round < rounds; round++) {
      const seed = (Math.random() * 2 ** 32) >>> 0;
      const child = spawn(process.execPath, [fixture("keyv-storm.mjs"), file, `r${round}`, String(seed)], { stdio: ["ignore", "pipe", "inherit"] });
      const exited = new Promise((resolve) => child.once("exit", resolve));
      for await (const line of createInterface({ input: child.stdout })) {
        if (line === "ready") setTimeout(() => child.kill("SIGKILL"), 5 + Math.random() * 120);
        else if (line.startsWith("A ")) {
          const [, key, seq] = line.split(" ");
          acked.set(`storm:${key}`, Number(seq));
        } else expect.fail(`round ${round}, seed ${seed}: the storm reported ${line}`);
      }
      await exited;
      const doc = await fileDoc(file); // whole: it parses
      const lost = [...acked].filter(([key, seq]) => {
        const text = doc[key];
        return typeof text !== "string" || (JSON.parse(text) as { value: { seq: number } }).value.seq !== seq;
      });
      expect(lost, `round ${round}, seed ${seed}: acknowledged sets missing from the file`).toStrictEqual([]);
    }
    expect(acked.size).toBeGreaterThan(rounds);
    const keyv = new Keyv({ store: adapter(file), namespace: "storm" });
    const keys = new Set<string>();
    for await (const [key] of (keyv.iterator as () => AsyncGenerator<[string, unknown]>)()) keys.add(`storm:${key}`);
    expect([...acked.keys()].filter((key) => !keys.has(key))).toStrictEqual([]);
    console.log(`keyv storm: ${rounds} rounds, ${acked.size} acknowledged sets, 0 lost`);
  });
});
