// watch(): the driver reports the store's own events (AioKV.watch, after each change is durable)
// in unstorage's terms: a set is "update", a removal "remove", a clear of the store one "remove"
// per key the watcher knew; keys relative to the driver's base, and to the mountpoint.
import { AioKV, StoreIOError } from "@aiokv/core";
import { MemoryBackend } from "@aiokv/memory-backend";
import { aiokvDriver } from "@aiokv/unstorage";
import { createStorage, type Driver, type Storage, type Unwatch, type WatchEvent } from "unstorage";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { tempFile } from "../helpers/temp.js";

type Event = [WatchEvent, string];

function open(driver: Driver): Storage {
  const storage = createStorage({ driver });
  onTestFinished(() => storage.dispose());
  return storage;
}

/** Watches `storage`; the events it reported so far. */
async function record(storage: Storage): Promise<{ events: Event[]; unwatch: Unwatch }> {
  const events: Event[] = [];
  const unwatch = await storage.watch((event, key) => events.push([event, key]));
  return { events, unwatch };
}

/** A store on MemoryBackend, closed when the test finishes. */
function store(text?: string): AioKV {
  const kv = new AioKV(new MemoryBackend(text === undefined ? {} : { text }));
  onTestFinished(() => kv.close());
  return kv;
}

describe("watch", () => {
  it("reports unstorage's calls on a file, each once the write holding it is done", async () => {
    const storage = open(aiokvDriver({ path: await tempFile() }));
    const { events } = await record(storage);
    await storage.setItem("user:1", { name: "Ada" });
    await storage.setItemRaw("avatar/1", new Uint8Array([1]));
    await storage.setItems([
      { key: "a", value: 1 },
      { key: "b", value: 2 },
    ]);
    await storage.removeItem("a");
    await storage.removeItem("never:set");
    await vi.waitFor(() => expect(events.length).toBeGreaterThanOrEqual(5));
    expect(events).toStrictEqual([
      ["update", "user:1"],
      ["update", "avatar:1"],
      ["update", "a"],
      ["update", "b"],
      ["remove", "a"],
    ]);
  });

  it("reports changes made on the store directly, by other code that holds it", async () => {
    const kv = store();
    const storage = open(aiokvDriver({ store: kv }));
    const { events } = await record(storage);
    await kv.set("x", 1);
    await kv.update<number>("x", (n) => (n ?? 0) + 1);
    await kv.delete("x");
    await vi.waitFor(() => expect(events).toStrictEqual([["update", "x"], ["update", "x"], ["remove", "x"]]));
  });

  it("reports a clear of the store as a remove of each key the watcher knew", async () => {
    const kv = store('{"old": "1", "other": "2"}');
    const storage = open(aiokvDriver({ store: kv }));
    const { events } = await record(storage);
    await storage.setItem("new", "3");
    await kv.clear();
    await vi.waitFor(() => expect(events.length).toBe(4));
    expect(events[0]).toStrictEqual(["update", "new"]);
    expect(events.slice(1).toSorted()).toStrictEqual([
      ["remove", "new"],
      ["remove", "old"],
      ["remove", "other"],
    ]);
    // After the clear it knows no key: a second clear reports nothing.
    await kv.set("later", 1);
    await kv.clear();
    await vi.waitFor(() => expect(events.slice(4)).toStrictEqual([["update", "later"], ["remove", "later"]]));
  });

  it("reports unstorage's clear, and the driver's clear(base), as a remove of each key cleared", async () => {
    const driver = aiokvDriver({ backend: new MemoryBackend() });
    const root = createStorage().mount("mnt", driver);
    onTestFinished(() => root.dispose());
    await root.setItems([
      { key: "mnt:cache:a", value: 1 },
      { key: "mnt:cache:b", value: 2 },
      { key: "mnt:keep", value: 3 },
    ]);
    const { events } = await record(root);
    await driver.clear("cache", {});
    await vi.waitFor(() => expect(events.toSorted()).toStrictEqual([["remove", "mnt:cache:a"], ["remove", "mnt:cache:b"]]));
    await root.clear("mnt");
    await vi.waitFor(() => expect(events.slice(2)).toStrictEqual([["remove", "mnt:keep"]]));
  });

  it("reports nothing for a write that failed", async () => {
    const backend = new MemoryBackend();
    const storage = open(aiokvDriver({ backend }));
    const { events } = await record(storage);
    vi.spyOn(backend, "write").mockRejectedValueOnce(Object.assign(new Error("EIO: i/o error, write"), { code: "EIO" }));
    await expect(storage.setItem("lost", "1")).rejects.toBeInstanceOf(StoreIOError);
    await storage.setItem("kept", "2");
    await vi.waitFor(() => expect(events).toStrictEqual([["update", "kept"]]));
    expect(await storage.hasItem("lost")).toBe(false);
  });

  it("with a base, reports only the keys under it, relative to it", async () => {
    const kv = store();
    const storage = open(aiokvDriver({ store: kv, base: "cache" }));
    const { events } = await record(storage);
    await kv.set("bot_state", 1);
    await kv.set("cachet", 1);
    await storage.setItem("pages:home", "<h1>");
    await kv.delete("cache:pages:home");
    await vi.waitFor(() => expect(events).toStrictEqual([["update", "pages:home"], ["remove", "pages:home"]]));
  });

  it("mounted, reports keys with the mountpoint", async () => {
    const root = createStorage().mount("data", aiokvDriver({ backend: new MemoryBackend() }));
    onTestFinished(() => root.dispose());
    const { events } = await record(root);
    await root.setItem("data:x", "1");
    await root.setItem("elsewhere", "1");
    await vi.waitFor(() => expect(events).toStrictEqual([["update", "data:x"], ["update", "elsewhere"]]));
  });

  it("stops on unwatch, on storage.unwatch() and on dispose", async () => {
    const kv = store();
    const storage = createStorage({ driver: aiokvDriver({ store: kv }) });
    const first = await record(storage);
    await storage.setItem("a", "1");
    await vi.waitFor(() => expect(first.events).toStrictEqual([["update", "a"]]));
    await first.unwatch();
    const second = await record(storage);
    await storage.unwatch();
    const third = await record(storage);
    await storage.dispose();
    await kv.set("b", 2);
    await kv.flush();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(first.events).toStrictEqual([["update", "a"]]);
    expect(second.events).toStrictEqual([]);
    expect(third.events).toStrictEqual([]);
  });

  it("on the driver directly: each watcher has its own callback and unwatch", async () => {
    const kv = store();
    const driver = aiokvDriver({ store: kv });
    const one: Event[] = [];
    const two: Event[] = [];
    const stopOne = await driver.watch((event, key) => one.push([event, key]));
    const stopTwo = await driver.watch((event, key) => two.push([event, key]));
    await kv.set("a", 1);
    await vi.waitFor(() => expect(two).toStrictEqual([["update", "a"]]));
    await stopOne();
    await kv.delete("a");
    await vi.waitFor(() => expect(two).toStrictEqual([["update", "a"], ["remove", "a"]]));
    expect(one).toStrictEqual([["update", "a"]]);
    await stopTwo();
  });
});
