import { describe, expect, it } from "vitest";
import type { StoreChange } from "@aiokv/core";
import { recordingLogger, type HarnessFactory } from "./harness.js";
import { instrumentedOpener, opener, rejection, type Open, type OpenInstrumented } from "./support.js";

/**
 * `watch()`: each change reported once the backend holds it, in write order, with copies of the
 * values; a failed write reports nothing; a listener's error is logged, never thrown into the store.
 *
 * @param name The backend's name, for the test titles.
 * @param makeHarness Makes a fresh harness per test.
 */
export function watchContract(name: string, makeHarness: HarnessFactory): void {
  describe(`${name} store contract: watch()`, () => {
    watchTests(opener(makeHarness), instrumentedOpener(makeHarness));
  });
}

function watchTests(open: Open, openInstrumented: OpenInstrumented): void {
  it("reports sets, deletes and a clear after the write that holds them, in order, until unsubscribed", async () => {
    const { h, kv } = await open();
    const changes: StoreChange[] = [];
    const stop = kv.watch((change) => {
      changes.push(change);
    });
    const set = kv.set("a", { n: 1 });
    expect(changes).toStrictEqual([]);
    await set;
    expect(changes).toStrictEqual([{ type: "set", key: "a", value: { n: 1 } }]);
    expect(await h.peek()).toContain('"a"');
    await kv.setMany({ b: 2, c: 3 });
    await kv.delete("a");
    void kv.clear();
    await kv.set("d", 4);
    expect(changes.slice(1)).toStrictEqual([
      { type: "set", key: "b", value: 2 },
      { type: "set", key: "c", value: 3 },
      { type: "delete", key: "a" },
      { type: "clear" },
      { type: "set", key: "d", value: 4 },
    ]);
    stop();
    await kv.set("e", 5);
    expect(changes).toHaveLength(6);
  });

  it("gives each listener its own copy; a failed write reports nothing; a throwing listener is logged", async () => {
    const logger = recordingLogger();
    const { kv, backend } = await openInstrumented({ logger });
    const seen: unknown[] = [];
    kv.watch((change) => {
      if (change.type === "set") (change.value as { n: number }).n = 0;
    });
    kv.watch((change) => seen.push(change));
    kv.watch(() => {
      throw new Error("listener bug");
    });
    await kv.set("a", { n: 1 });
    expect(seen).toStrictEqual([{ type: "set", key: "a", value: { n: 1 } }]);
    expect(await kv.get("a")).toStrictEqual({ n: 1 });
    expect(logger.calls.map(([message]) => message)).toStrictEqual([expect.stringContaining("watch() listener threw")]);
    backend.failNext = new Error("disk gone");
    await rejection(kv.set("b", 2));
    expect(seen).toHaveLength(1);
    expect(() => kv.watch("no" as unknown as () => void)).toThrow(TypeError);
  });
}
