// How a follower re-reads, on a MemoryBackend shared with its owner (the follower takes no lock,
// so both open the one instance): one re-read at a time, one more for any number of notices that
// arrive meanwhile, each document swapped in whole, listeners' copies and errors kept apart.
import { MemoryBackend } from "@aiokv/memory-backend";
import { holdable, recordingLogger } from "@aiokv/test-suite";
import { AioKV, type Backend, type StoreChange } from "aiokv";
import { describe, expect, it } from "vitest";
import { sleep } from "../helpers/processes.js";

/** The memory backend, with its reads counted and, while held, kept from answering. */
function gated(inner: MemoryBackend): Backend & { reads: number; hold(): () => void } {
  const gate = holdable();
  const backend = {
    location: inner.location,
    reads: 0,
    hold: () => gate.hold(),
    async read(): Promise<string | Uint8Array | undefined> {
      backend.reads++;
      // Read first, then wait: what a slow disk answers is what it found when asked.
      const text = await inner.read();
      await gate.passed();
      return text;
    },
    write: (pieces: readonly Uint8Array[]) => inner.write(pieces),
    remove: () => inner.remove(),
    watch: (onChange: () => void) => inner.watch(onChange),
  };
  return backend;
}

describe("a follower's re-reads", () => {
  it("on a backend without watch(), the first read reads the document once, and each later read again", async () => {
    const memory = new MemoryBackend({ text: '{"a": 1}' });
    let reads = 0;
    const backend: Backend = {
      location: memory.location,
      read: () => (reads++, memory.read()),
      write: (pieces) => memory.write(pieces),
      remove: () => memory.remove(),
    };
    const follower = new AioKV(backend, { readOnly: true });
    expect(await follower.get("a")).toBe(1);
    expect(reads).toBe(1);
    expect(await follower.get("a")).toBe(1);
    expect(reads).toBe(2);
    await follower.close();
  });


  it("run one at a time: notices during one make one more, and reads meanwhile see the last document whole", async () => {
    const memory = new MemoryBackend();
    const owner = new AioKV(memory);
    await owner.setMany({ a: 1, b: 1 });
    const backend = gated(memory);
    const follower = new AioKV(backend, { readOnly: true });
    const seen: StoreChange[] = [];
    follower.watch((change) => void seen.push(change));
    expect(await follower.getAll()).toStrictEqual({ a: 1, b: 1 });
    expect(backend.reads).toBe(1);
    const release = backend.hold();
    await owner.setMany({ a: 2, b: 2 });
    // The re-read this write started is held: 20 more writes, 20 notices.
    for (let n = 3; n <= 22; n++) await owner.setMany({ a: n, b: n });
    expect(backend.reads).toBe(2);
    // Reads answer from the document read before, whole: never a of one write and b of another.
    expect(await follower.getAll()).toStrictEqual({ a: 1, b: 1 });
    release();
    await expect.poll(() => follower.getAll()).toStrictEqual({ a: 22, b: 22 });
    // The held one, then one more for all the notices that came meanwhile.
    expect(backend.reads).toBe(3);
    expect(seen).toStrictEqual([
      { type: "set", key: "a", value: 2 },
      { type: "set", key: "b", value: 2 },
      { type: "set", key: "a", value: 22 },
      { type: "set", key: "b", value: 22 },
    ]);
    await follower.close();
    await owner.close();
  });

  it("give each listener its own copy; a listener that throws is logged and the follower goes on", async () => {
    const memory = new MemoryBackend();
    const logger = recordingLogger();
    const owner = new AioKV(memory);
    const follower = new AioKV(memory, { readOnly: true, logger });
    const seen: StoreChange[] = [];
    follower.watch((change) => {
      if (change.type === "set") (change.value as { n: number }).n = 0;
      throw new Error("listener bug");
    });
    follower.watch((change) => void seen.push(change));
    expect(await follower.getAll()).toStrictEqual({});
    await owner.set("a", { n: 1 });
    await expect.poll(() => seen).toStrictEqual([{ type: "set", key: "a", value: { n: 1 } }]);
    expect(await follower.get("a")).toStrictEqual({ n: 1 });
    expect(logger.calls.map(([message]) => message)).toStrictEqual([`A watch() listener threw for store "memory:store"`]);
    await owner.set("a", { n: 2 });
    await expect.poll(() => seen).toHaveLength(2);
    await follower.close();
    await owner.close();
  });

  it("answer the reads called before close(), which stops them after", async () => {
    const memory = new MemoryBackend({ text: '{"a": 1}' });
    const follower = new AioKV(memory, { readOnly: true });
    const reads = [follower.get("a"), follower.getAll(), follower.keys()];
    const closed = follower.close();
    expect(await Promise.all(reads)).toStrictEqual([1, { a: 1 }, ["a"]]);
    await closed;
    await expect(follower.get("a")).rejects.toThrow("it is closed");
    // watch() on a closed follower starts nothing.
    follower.watch(() => expect.unreachable("a closed follower reported a change"));
    await memory.write([new TextEncoder().encode('{"a": 2}')]);
    await sleep(10);
  });

  it("starts on watch() alone, before any read: changes after the first document read are reported", async () => {
    const memory = new MemoryBackend({ text: '{"a": 1}' });
    const owner = new AioKV(memory);
    const follower = new AioKV(memory, { readOnly: true });
    const seen: StoreChange[] = [];
    follower.watch((change) => void seen.push(change));
    await sleep(10);
    await owner.remove("a");
    await expect.poll(() => seen).toStrictEqual([{ type: "delete", key: "a" }]);
    expect(await follower.has("a")).toBe(false);
    // quarantine() of the owner moves the document aside: the follower sees it gone.
    await memory.write([new TextEncoder().encode("{")]);
    await owner.close();
    const again = new AioKV(memory, { logger: recordingLogger() });
    expect(await again.quarantine()).toMatch(/^memory:store\.corrupt-/);
    await expect.poll(async () => follower.getAll()).toStrictEqual({});
    await follower.close();
    await again.close();
  });
});
