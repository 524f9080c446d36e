import { AioKV, CorruptStoreError, InvalidStoreShapeError } from "@aiokv/core";
import { describe, expect, it } from "vitest";
import { journalMethods, recordingLogger, skipWithout, storeOptions, type HarnessFactory } from "./harness.js";
import { instrumentedOpener, peekAtOrSkip, reopened } from "./support.js";

/**
 * `quarantine()`: a document the store cannot load is moved aside (on a backend with
 * `moveAside()`), keeping its text where the store says, and the store starts empty; a document
 * that loads is never moved.
 *
 * @param name The backend's name, for the test titles.
 * @param makeHarness Makes a fresh harness per test.
 */
export function quarantineContract(name: string, makeHarness: HarnessFactory): void {
  const open = instrumentedOpener(makeHarness);
  describe(`${name} store contract: quarantine()`, () => {
    const clock = (): number => Date.UTC(2026, 10, 30, 6, 30, 0, 123);

    for (const [what, text, error] of [
      ["not JSON", '{"a": 1,', CorruptStoreError],
      ["not an object", "[1, 2]", InvalidStoreShapeError],
    ] as const) {
      it(`moves a document that is ${what} aside, logs where, and leaves an empty store`, async (context) => {
        const logger = recordingLogger();
        const { h, kv, backend } = await open({ logger, clock });
        skipWithout(context, backend, "moveAside");
        await h.plant(text);
        await expect(kv.get("a")).rejects.toBeInstanceOf(error);
        const moved = await kv.quarantine();
        expect(moved).toBe(`${kv.location}.corrupt-2026-11-30T06-30-00.123Z`);
        expect(logger.calls).toHaveLength(1);
        expect(logger.calls[0]?.[0]).toBe(
          `Moved the unreadable store ${JSON.stringify(kv.location)} aside to ${JSON.stringify(moved)}; the store is empty`,
        );
        expect(logger.calls[0]?.[1]).toBeInstanceOf(error);
        expect(await h.peek()).toBe(undefined);
        expect(await kv.getAll()).toStrictEqual({});
        await kv.set("a", 1);
        expect(await reopened(kv, h)).toStrictEqual({ a: 1 });
      });

      // Only the harness can read where the document went: without peekAt() this is skipped, not passed.
      it(`keeps a document that is ${what} where quarantine() says it moved it`, async (context) => {
        const { h, kv, backend } = await open({ logger: recordingLogger(), clock });
        skipWithout(context, backend, "moveAside");
        const peekAt = peekAtOrSkip(context, h);
        await h.plant(text);
        const moved = await kv.quarantine();
        if (moved === undefined) expect.unreachable("quarantine() resolved undefined for a document that does not load");
        expect(await peekAt(moved)).toBe(text);
      });
    }

    it("refuses to move a document that loads, and resolves undefined when there is none", async () => {
      const { h, kv } = await open();
      expect(await kv.quarantine()).toBe(undefined);
      await kv.set("a", 1);
      const before = await h.peek();
      await expect(kv.quarantine()).rejects.toThrow(
        `Cannot quarantine store ${JSON.stringify(kv.location)}: it loads without error (clear() empties it)`,
      );
      expect(await h.peek()).toBe(before);
      expect(await kv.get("a")).toBe(1);
    });

    it("rejects, moving nothing, on a backend that cannot move a document aside", async () => {
      const h = await makeHarness();
      const inner = h.backend();
      // No moveAside(); on a journal harness, the journal's methods, which a journal store needs.
      const bare = { location: inner.location, read: () => inner.read(), write: (pieces: readonly Uint8Array[]) => inner.write(pieces), remove: () => inner.remove() };
      const kv = new AioKV(h.storeOptions?.journal === true ? { ...bare, ...journalMethods(inner) } : bare, storeOptions(h));
      await h.plant("{");
      await expect(kv.quarantine()).rejects.toThrow(
        `Cannot quarantine store ${JSON.stringify(kv.location)}: its backend cannot move a document aside (clear() removes it)`,
      );
      expect(await h.peek()).toBe("{");
    });
  });
}
