// The unstorage driver through unstorage's own API (createStorage), on a real file in a temp dir
// and on MemoryBackend: what unstorage's shared driver tests check (keys and their normalization,
// bases, depth, serialization, raw values, bulk calls, removal, clear), plus what this driver adds
// (one write per setItems/clear, the `base` option, watch from the store's own events, dispose).
import { readFile } from "node:fs/promises";
import { MemoryBackend } from "@aiokv/memory-backend";
import { aiokvDriver, type AioKVDriver } from "@aiokv/unstorage";
import { createStorage, prefixStorage, restoreSnapshot, snapshot, type Driver, type Storage, type StorageValue } from "unstorage";
import { describe, expect, it, onTestFinished } from "vitest";
import { tempFile } from "../helpers/temp.js";

/** A store for one test: a driver on it, another on it after the first is disposed, and its raw text. */
interface Target {
  driver: () => AioKVDriver;
  peek: () => Promise<string | undefined>;
}

const targets: Array<[string, () => Promise<Target>]> = [
  [
    "a file",
    async () => {
      const path = await tempFile();
      return {
        driver: () => aiokvDriver({ path }),
        peek: () => readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? undefined : Promise.reject(error))),
      };
    },
  ],
  [
    "MemoryBackend",
    () => {
      const backend = new MemoryBackend();
      return Promise.resolve({
        driver: () => aiokvDriver({ backend }),
        peek: async () => {
          const text = await backend.read();
          return typeof text === "string" ? text : undefined;
        },
      });
    },
  ],
];

/** unstorage on `driver`, disposed when the test finishes. */
function open(driver: Driver): Storage {
  const storage = createStorage({ driver });
  onTestFinished(() => storage.dispose());
  return storage;
}

/** The document the store holds, parsed. */
async function doc(target: Target): Promise<Record<string, unknown>> {
  const text = await target.peek();
  return text === undefined ? {} : (JSON.parse(text) as Record<string, unknown>);
}

describe.each(targets)("aiokvDriver on %s", (_, make) => {
  it("starts empty: no item, null, no keys", async () => {
    const storage = open((await make()).driver());
    expect(await storage.hasItem("s1:a")).toBe(false);
    expect(await storage.getItem("s2:a")).toBe(null);
    expect(await storage.getKeys()).toStrictEqual([]);
  });

  it("restores a snapshot and takes one", async () => {
    const storage = open((await make()).driver());
    await restoreSnapshot(storage, { initial: "works", "data:n": 1 });
    expect(await storage.getItem("initial")).toBe("works");
    expect(await snapshot(storage, "")).toStrictEqual({ initial: "works", "data:n": 1 });
  });

  it("sets, has and gets items under normalized keys: a query is dropped, / and \\ are :", async () => {
    const target = await make();
    const storage = open(target.driver());
    await storage.setItem("s1:a", "test_data");
    await storage.setItem("s3:a?q=1", "test_data_3");
    await storage.setItem("/dir/sub\\file.json", "nested");
    expect(await storage.hasItem("s1:a")).toBe(true);
    expect(await storage.getItem("s1:a")).toBe("test_data");
    expect(await storage.getItem("s3:a?q=2")).toBe("test_data_3");
    expect(await storage.getItem("dir:sub:file.json")).toBe("nested");
    expect(await storage.getItem(":dir::sub/file.json:")).toBe("nested");
    // The document's keys are unstorage's normalized keys; the values the strings it stored.
    expect(await doc(target)).toStrictEqual({ "s1:a": "test_data", "s3:a": "test_data_3", "dir:sub:file.json": "nested" });
  });

  it("refuses the keys unstorage refuses, before the store sees them", async () => {
    const storage = open((await make()).driver());
    await expect(storage.setItem("", "x")).rejects.toThrow("Invalid key");
    await expect(storage.getItem("a:..:b")).rejects.toThrow("Invalid key");
    expect(await storage.getKeys()).toStrictEqual([]);
  });

  it("lists every key, or those under a base (a whole segment: s1 is not s10)", async () => {
    const storage = open((await make()).driver());
    await storage.setItem("s1:a", "1");
    await storage.setItem("s1:b:c", "2");
    await storage.setItem("s10:a", "3");
    await storage.setItem("s2:a?q=1", "4");
    expect(await storage.getKeys()).toStrictEqual(["s1:a", "s1:b:c", "s10:a", "s2:a"]);
    expect((await storage.getKeys("s1")).toSorted()).toStrictEqual(["s1:a", "s1:b:c"]);
    expect(await storage.getKeys("s1:b")).toStrictEqual(["s1:b:c"]);
    expect(await storage.getKeys("/s1/b/")).toStrictEqual(["s1:b:c"]);
    expect(await storage.getKeys("s3")).toStrictEqual([]);
  });

  it("lists keys in the order they were first set", async () => {
    const storage = open((await make()).driver());
    for (const key of ["z", "a", "m:1", "b"]) await storage.setItem(key, key);
    await storage.setItem("z", "again");
    expect(await storage.getKeys()).toStrictEqual(["z", "a", "m:1", "b"]);
  });

  it("lists keys up to a depth (maxDepth, filtered by unstorage)", async () => {
    const storage = open((await make()).driver());
    for (const key of ["depth0_0", "depth0:depth1:depth2_0", "depth0:depth1:depth2_1", "depth0:depth1_0", "depth0:depth1_1"]) {
      await storage.setItem(key, "test_data");
    }
    expect(await storage.getKeys(undefined, { maxDepth: 0 })).toStrictEqual(["depth0_0"]);
    expect((await storage.getKeys(undefined, { maxDepth: 1 })).toSorted()).toStrictEqual(["depth0:depth1_0", "depth0:depth1_1", "depth0_0"]);
    expect((await storage.getKeys(undefined, { maxDepth: 2 })).length).toBe(5);
  });

  it("keeps meta items (key$) out of getKeys, and removes them with removeMeta", async () => {
    const storage = open((await make()).driver());
    await storage.setItem("page", "<html>");
    await storage.setMeta("page", { etag: "v1" });
    expect(await storage.getMeta("page")).toEqual({ etag: "v1" });
    expect(await storage.getKeys()).toStrictEqual(["page"]);
    await storage.removeItem("page", { removeMeta: true });
    expect(await storage.getMeta("page")).toEqual({});
    expect(await storage.hasItem("page$")).toBe(false);
  });

  it("serializes objects, primitives and toJSON() as unstorage does, and gets them back", async () => {
    const target = await make();
    const storage = open(target.driver());
    await storage.setItem("data:test.json", { json: "works", list: [1, 2] });
    await storage.setItem("data:true.json", true);
    await storage.setItem("data:n", 42);
    await storage.setItem("data:when", new Date("2026-01-02T03:04:05.000Z"));
    await storage.setItem("data:custom", { toJSON: () => ({ serializedObj: "works" }) });
    expect(await storage.getItem("data:test.json")).toStrictEqual({ json: "works", list: [1, 2] });
    expect(await storage.getItem("data:true.json")).toBe(true);
    expect(await storage.getItem("data:n")).toBe(42);
    expect(await storage.getItem("data:when")).toBe("2026-01-02T03:04:05.000Z");
    expect(await storage.getItem("data:custom")).toStrictEqual({ serializedObj: "works" });
    // What reaches the driver is unstorage's string, and the document holds exactly that.
    expect((await doc(target))["data:test.json"]).toBe('{"json":"works","list":[1,2]}');
    expect((await doc(target))["data:n"]).toBe("42");
  });

  it("refuses a value unstorage cannot stringify, writing nothing", async () => {
    const target = await make();
    const storage = open(target.driver());
    class Opaque {}
    await expect(storage.setItem("data:bad", new Opaque())).rejects.toThrow("[unstorage] Cannot stringify value!");
    expect(await storage.hasItem("data:bad")).toBe(false);
    expect(await target.peek()).toBe(undefined);
  });

  it("returns falsy values as they were set: 0, false, empty string, null", async () => {
    const storage = open((await make()).driver());
    await storage.setItem("zero", 0);
    await storage.setItem("no", false);
    await storage.setItem("empty", "");
    await storage.setItem("nothing", null);
    expect(await storage.getItem("zero")).toBe(0);
    expect(await storage.getItem("no")).toBe(false);
    expect(await storage.getItem("empty")).toBe("");
    expect(await storage.getItem("nothing")).toBe(null);
    expect(await storage.hasItem("nothing")).toBe(true);
  });

  it("treats setItem(key, undefined) as removeItem", async () => {
    const storage = open((await make()).driver());
    await storage.setItem("k", "v");
    await storage.setItem("k", undefined as unknown as string); // as a JavaScript caller may
    expect(await storage.hasItem("k")).toBe(false);
  });

  it("stores raw bytes as base64 and gets them back as bytes", async () => {
    const target = await make();
    const storage = open(target.driver());
    const bytes = new Uint8Array([1, 2, 3, 0, 255]);
    await storage.setItemRaw("data:raw.bin", bytes);
    const raw = await storage.getItemRaw<Uint8Array>("data:raw.bin");
    expect(raw).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(raw ?? []).toString("base64")).toBe(Buffer.from(bytes).toString("base64"));
    // unstorage's own form for bytes kept in a string: getItem sees it, as with any string driver.
    expect((await doc(target))["data:raw.bin"]).toBe("base64:AQIDAP8=");
    expect(await storage.getItem("data:raw.bin")).toBe("base64:AQIDAP8=");
  });

  it("stores a view's own bytes (a subarray, a DataView) and an ArrayBuffer", async () => {
    const storage = open((await make()).driver());
    const whole = new Uint8Array([9, 8, 7, 6, 5]);
    await storage.setItemRaw("sub", whole.subarray(1, 3));
    await storage.setItemRaw("view", new DataView(whole.buffer, 3, 2));
    await storage.setItemRaw("buffer", whole.buffer.slice(0, 2));
    await storage.setItemRaw("node", Buffer.from("héllo"));
    expect([...((await storage.getItemRaw<Uint8Array>("sub")) ?? [])]).toStrictEqual([8, 7]);
    expect([...((await storage.getItemRaw<Uint8Array>("view")) ?? [])]).toStrictEqual([6, 5]);
    expect([...((await storage.getItemRaw<Uint8Array>("buffer")) ?? [])]).toStrictEqual([9, 8]);
    expect(Buffer.from((await storage.getItemRaw<Uint8Array>("node")) ?? []).toString()).toBe("héllo");
  });

  it("keeps raw strings and JSON data as they are (the driver's raw format), null when absent", async () => {
    const target = await make();
    const storage = open(target.driver());
    await storage.setItemRaw("text", "plain");
    await storage.setItemRaw("json", { a: [1, null] });
    expect(await storage.getItemRaw("text")).toBe("plain");
    expect(await storage.getItemRaw("json")).toStrictEqual({ a: [1, null] });
    expect(await storage.getItem("json")).toStrictEqual({ a: [1, null] });
    expect(await storage.getItemRaw("absent")).toBe(null);
    expect(await doc(target)).toStrictEqual({ text: "plain", json: { a: [1, null] } });
    // A raw value must be JSON data or bytes: the store's TypeError, nothing written.
    await expect(storage.setItemRaw("fn", (() => 1) as unknown as string)).rejects.toThrow(TypeError);
    await storage.setItemRaw("text", undefined);
    expect(await storage.hasItem("text")).toBe(false);
  });

  it("sets several items and gets several, keys normalized, absent ones null", async () => {
    const storage = open((await make()).driver());
    await storage.setItems<StorageValue>([
      { key: "t:1", value: "test_data_t1" },
      { key: "t/2", value: { two: 2 } },
      { key: "t:3?x", value: 3 },
    ]);
    expect(await storage.getItem("t:1")).toBe("test_data_t1");
    expect(await storage.getItems([{ key: "t:2" }, "t:3", "t:1?q=1", "t:4"])).toStrictEqual([
      { key: "t:2", value: { two: 2 } },
      { key: "t:3", value: 3 },
      { key: "t:1", value: "test_data_t1" },
      { key: "t:4", value: null },
    ]);
  });

  it("removes items, absent ones too", async () => {
    const target = await make();
    const storage = open(target.driver());
    await storage.setItem("s1:a", "x");
    await storage.setItem("s1:b", "y");
    await storage.removeItem("s1:a");
    await storage.removeItem("s1:never");
    expect(await storage.hasItem("s1:a")).toBe(false);
    expect(await storage.getItem("s1:a")).toBe(null);
    expect(await doc(target)).toStrictEqual({ "s1:b": "y" });
  });

  it("clears everything, and an empty store again", async () => {
    const storage = open((await make()).driver());
    await storage.setItems([
      { key: "a", value: 1 },
      { key: "b:c", value: 2 },
    ]);
    await storage.clear();
    expect(await storage.getKeys()).toStrictEqual([]);
    await storage.clear();
    expect(await storage.getKeys()).toStrictEqual([]);
  });

  it("clears only the keys under a base (the driver's clear(base))", async () => {
    const target = await make();
    const driver = target.driver();
    const storage = open(driver);
    for (const key of ["cache:a", "cache:b:c", "cachet", "cache2:a", "keep"]) await storage.setItem(key, key);
    // unstorage 1.x's storage.clear(base) clears only mounts at or under base, whole (unjs/unstorage#336):
    // on a driver mounted at the root it changes nothing, so the driver is called as a fixed storage would.
    await storage.clear("cache");
    expect(await storage.getKeys()).toHaveLength(5);
    await driver.clear("cache:", {});
    expect(await storage.getKeys()).toStrictEqual(["cachet", "cache2:a", "keep"]);
    await driver.clear("nothing:here", {});
    expect(Object.keys(await doc(target))).toStrictEqual(["cachet", "cache2:a", "keep"]);
  });

  it("keeps every item after dispose, for the next driver on the same store", async () => {
    const target = await make();
    const first = createStorage({ driver: target.driver() });
    await first.setItem("user:1", { name: "Ada" });
    await first.setItemRaw("avatar:1", new Uint8Array([1, 2]));
    await first.setItems([{ key: "n", value: 7 }]);
    await first.removeItem("n");
    await first.dispose();
    const second = open(target.driver());
    expect(await second.getKeys()).toStrictEqual(["user:1", "avatar:1"]);
    expect(await second.getItem("user:1")).toStrictEqual({ name: "Ada" });
    expect([...((await second.getItemRaw<Uint8Array>("avatar:1")) ?? [])]).toStrictEqual([1, 2]);
  });

  it("works mounted at a mountpoint, and under prefixStorage", async () => {
    const target = await make();
    const root = createStorage().mount("cache", target.driver());
    onTestFinished(() => root.dispose());
    await root.setItem("cache:pages:home", "<h1>");
    await root.setItem("elsewhere", "memory");
    expect(await root.getKeys("cache")).toStrictEqual(["cache:pages:home"]);
    const pages = prefixStorage(root, "cache:pages");
    await pages.setItem("about", "<h2>");
    expect(await pages.getKeys()).toStrictEqual(["home", "about"]);
    expect(await pages.getItem("about")).toBe("<h2>");
    // The driver sees keys relative to its mountpoint.
    expect(await doc(target)).toStrictEqual({ "pages:home": "<h1>", "pages:about": "<h2>" });
    // Clearing the mountpoint clears the driver (its clear() with no base), and nothing else.
    await root.clear("cache");
    expect(await doc(target)).toStrictEqual({});
    expect(await root.getItem("elsewhere")).toBe("memory");
  });
});
