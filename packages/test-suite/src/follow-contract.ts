import { AioKV, CorruptStoreError, isStoreReadOnlyError, StoreReadOnlyError, type Backend, type StoreChange } from "@aiokv/core";
import { describe, expect, it, type TestContext } from "vitest";
import { journalMethods, skipWithout, storeOptions, type HarnessFactory } from "./harness.js";
import { eventually, moment, rejection } from "./support.js";

/**
 * Followers, stores opened with `readOnly: true` beside the store that owns the document: they
 * take no lock and refuse every change, writing nothing; on a backend with `watch()` they see the
 * owner's writes within a bounded delay and report what changed between the documents they read
 * (the tests that need `watch()` are skipped without it); on one without, every read reads the
 * document again.
 *
 * @param name The backend's name, for the test titles.
 * @param makeHarness Makes a fresh harness per test.
 */
export function followContract(name: string, makeHarness: HarnessFactory): void {
  describe(`${name} store contract: followers (readOnly)`, () => {
    it("refuse every change with StoreReadOnlyError while another store owns the document, writing nothing", async () => {
      const h = await makeHarness();
      const owner = new AioKV(h.backend(), storeOptions(h));
      await owner.set("a", 1);
      const before = await h.peek();
      const follower = new AioKV(h.backend(), storeOptions(h, { readOnly: true }));
      expect(follower.readOnly).toBe(true);
      expect(owner.readOnly).toBe(false);
      const changes: Array<[string, () => Promise<unknown>]> = [
        ["set", () => follower.set("a", 2)],
        ["setMany", () => follower.setMany({ a: 2 })],
        ["update", () => follower.update("a", () => 2)],
        ["delete", () => follower.delete("a")],
        ["deleteMany", () => follower.deleteMany(["a"])],
        ["remove", () => follower.remove("a")],
        ["removeMany", () => follower.removeMany(["a"])],
        ["clear", () => follower.clear()],
        ["quarantine", () => follower.quarantine()],
      ];
      for (const [method, change] of changes) {
        const error = await rejection(change());
        expect(error).toBeInstanceOf(StoreReadOnlyError);
        expect(isStoreReadOnlyError(error)).toBe(true);
        expect(error).toMatchObject({ method, location: follower.location });
        expect(error.message).toBe(
          `Cannot call ${method}() on store ${JSON.stringify(follower.location)}: it is read-only (opened with readOnly: true; the store that owns it makes changes)`,
        );
      }
      expect(await follower.get("a")).toBe(1);
      await follower.flush();
      expect(await h.peek()).toBe(before);
      // The owner kept its lock and its document: nothing the follower did reached either.
      await owner.set("b", 2);
      expect(await owner.getAll()).toStrictEqual({ a: 1, b: 2 });
      await follower.close();
      await owner.close();
    });

    it("see the owner's writes within a bounded delay; watch() reports each, in order", async (context) => {
      const { owner, follower, seen } = await following(context, makeHarness, { a: 1, b: 2 });
      // Each step is seen before the next is made, so no two come as one.
      const steps: Array<[() => Promise<unknown>, Record<string, unknown>, StoreChange[]]> = [
        [() => owner.set("c", { n: [3] }), { a: 1, b: 2, c: { n: [3] } }, [{ type: "set", key: "c", value: { n: [3] } }]],
        [
          () => owner.setMany({ a: 10, d: "four" }),
          { a: 10, b: 2, c: { n: [3] }, d: "four" },
          [
            { type: "set", key: "a", value: 10 },
            { type: "set", key: "d", value: "four" },
          ],
        ],
        [() => owner.deleteMany(["b", "c"]), { a: 10, d: "four" }, [{ type: "delete", key: "b" }, { type: "delete", key: "c" }]],
        [() => owner.clear(), {}, [{ type: "clear" }]],
        [() => owner.set("e", null), { e: null }, [{ type: "set", key: "e", value: null }]],
      ];
      for (const [change, state, reported] of steps) {
        const from = seen.length;
        await change();
        await eventually(async () => expect(await follower.getAll()).toStrictEqual(state));
        await eventually(() => expect(seen.slice(from)).toStrictEqual(reported));
      }
      expect(await follower.keys()).toStrictEqual(["e"]);
      await follower.close();
      await owner.close();
    });

    it("reject reads with the format error while the document does not load, and follow again once it does", async (context) => {
      const h = await makeHarness();
      skipWithout(context, h.backend(), "watch");
      await h.plant('{"a": 1}');
      const follower = new AioKV(h.backend(), storeOptions(h, { readOnly: true }));
      const seen: StoreChange[] = [];
      follower.watch((change) => void seen.push(change));
      expect(await follower.get("a")).toBe(1);
      await h.plant('{"a": 2,');
      await eventually(async () => expect(await rejection(follower.get("a"))).toBeInstanceOf(CorruptStoreError));
      // Still corrupt: every read says so, not the document read before.
      await expect(follower.getAll()).rejects.toBeInstanceOf(CorruptStoreError);
      expect(seen).toStrictEqual([]);
      await h.plant('{"a": 3, "b": 4}');
      await eventually(async () => expect(await follower.getAll()).toStrictEqual({ a: 3, b: 4 }));
      // Reported against the last document that loaded.
      expect(seen).toStrictEqual([
        { type: "set", key: "a", value: 3 },
        { type: "set", key: "b", value: 4 },
      ]);
      await follower.close();
    });

    it("on a backend without watch(), read the document again on every read", async () => {
      const h = await makeHarness();
      const inner = h.backend();
      // Only what every backend has: no watch(), so nothing tells the follower of a change. (On a
      // journal harness, the journal's methods too: without them the owner's appends are unseen.)
      const bare: Backend = {
        location: inner.location,
        read: () => inner.read(),
        write: (pieces) => inner.write(pieces),
        remove: () => inner.remove(),
        ...(h.storeOptions?.journal === true && journalMethods(inner)),
      };
      const owner = new AioKV(h.backend(), storeOptions(h));
      const follower = new AioKV(bare, storeOptions(h, { readOnly: true }));
      const seen: StoreChange[] = [];
      follower.watch((change) => void seen.push(change));
      expect(await follower.getAll()).toStrictEqual({});
      await owner.set("a", 1);
      expect(await follower.get("a")).toBe(1);
      await owner.setMany({ a: 2, b: 3 });
      expect(await follower.getAll()).toStrictEqual({ a: 2, b: 3 });
      // What the reads found, reported as they found it.
      expect(seen).toStrictEqual([
        { type: "set", key: "a", value: 1 },
        { type: "set", key: "a", value: 2 },
        { type: "set", key: "b", value: 3 },
      ]);
      await h.plant("[]");
      await expect(follower.get("a")).rejects.toThrow("expected a JSON object, found an array");
      await follower.close();
      await owner.close();
    });

    it("stop following on close(): nothing is reported after it, and later calls reject", async (context) => {
      const { owner, follower, seen } = await following(context, makeHarness, {});
      await owner.set("a", 1);
      await eventually(() => expect(seen).toHaveLength(1));
      await follower.close();
      await owner.set("b", 2);
      await owner.delete("a");
      await moment();
      await moment();
      expect(seen).toStrictEqual([{ type: "set", key: "a", value: 1 }]);
      await expect(follower.get("a")).rejects.toThrow("it is closed");
      await owner.close();
    });
  });
}

/**
 * An owner holding `contents` and a follower of it that records what its watch() reports, on a
 * fresh harness; skips the test on a backend without `watch`.
 */
async function following(context: TestContext, makeHarness: HarnessFactory, contents: Record<string, number>): Promise<{ owner: AioKV; follower: AioKV; seen: StoreChange[] }> {
  const h = await makeHarness();
  skipWithout(context, h.backend(), "watch");
  const owner = new AioKV(h.backend(), storeOptions(h));
  if (Object.keys(contents).length > 0) await owner.setMany(contents);
  const follower = new AioKV(h.backend(), storeOptions(h, { readOnly: true }));
  const seen: StoreChange[] = [];
  follower.watch((change) => void seen.push(change));
  expect(await follower.getAll()).toStrictEqual(contents);
  return { owner, follower, seen };
}
