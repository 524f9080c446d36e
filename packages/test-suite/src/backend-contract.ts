import { describe, expect, it } from "vitest";
import type { HarnessFactory } from "./harness.js";

/** The text as the one piece of a write. */
const utf8 = (text: string): Uint8Array[] => [new TextEncoder().encode(text)];

/** What `read()` resolved, as text: a backend may resolve bytes or text. */
const textOf = (read: string | Uint8Array | undefined): string | undefined =>
  read === undefined || typeof read === "string" ? read : new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(read);

/**
 * Registers the tests every Backend must pass: read, write and remove of raw text.
 *
 * @param name The backend's name, for the test titles.
 * @param makeHarness Makes a fresh harness per test.
 */
export function backendContract(name: string, makeHarness: HarnessFactory): void {
  describe(`${name} backend contract`, () => {
    it("location is a non-empty string", async () => {
      const { location } = (await makeHarness()).backend();
      expect(typeof location).toBe("string");
      expect(location.length).toBeGreaterThan(0);
    });

    it("read() resolves undefined when there is no document", async () => {
      expect(textOf(await (await makeHarness()).backend().read())).toBe(undefined);
    });

    it("read() resolves an empty document as an empty string", async () => {
      const h = await makeHarness();
      await h.plant("");
      expect(textOf(await h.backend().read())).toBe("");
    });

    it("write() stores the text exactly, non-ASCII and large included", async () => {
      const h = await makeHarness();
      const backend = h.backend();
      for (const text of ['{"ü": "日本 🎉"}', "x".repeat(1 << 20), "\uFEFF{}", ""]) {
        await backend.write(utf8(text));
        expect(textOf(await backend.read())).toBe(text);
        expect(await h.peek()).toBe(text);
      }
    });

    it("write() stores its pieces one after the other, empty ones and split characters included", async () => {
      const h = await makeHarness();
      const backend = h.backend();
      const bytes = new TextEncoder().encode('{"ü": "日本 🎉", "k": [1,2,3]}');
      // Cut inside the multi-byte characters, with empty pieces between, and 2,000 pieces (beyond IOV_MAX).
      const cuts = [0, 0, 3, 4, 9, 10, 11, 11, bytes.length];
      const pieces = cuts.slice(1).map((end, i) => bytes.subarray(cuts[i], end));
      await backend.write(pieces);
      expect(textOf(await backend.read())).toBe('{"ü": "日本 🎉", "k": [1,2,3]}');
      const many = Array.from({ length: 2000 }, (_, i) => new TextEncoder().encode(`${i % 10}`));
      await backend.write(many);
      expect(await h.peek()).toBe(Array.from({ length: 2000 }, (_, i) => `${i % 10}`).join(""));
    });

    it("write() replaces the whole document, a shorter text included", async () => {
      const h = await makeHarness();
      const backend = h.backend();
      await backend.write(utf8("a".repeat(1000)));
      await backend.write(utf8("b"));
      expect(textOf(await backend.read())).toBe("b");
    });

    it("write() is seen by another handle on the same storage", async () => {
      const h = await makeHarness();
      await h.backend().write(utf8("shared"));
      expect(textOf(await h.backend().read())).toBe("shared");
    });

    it("read() during a write() resolves the old text or the new, never a mix", async () => {
      const h = await makeHarness();
      const backend = h.backend();
      const [before, after] = ["a".repeat(1 << 20), "b".repeat(1 << 19)];
      await backend.write(utf8(before));
      const writing = backend.write(utf8(after));
      let done = false;
      void writing.then(() => (done = true));
      // A few readers, each checking and dropping its text before the next read: a slow disk
      // makes the write long, and texts kept until it ends once filled a 4 GB heap.
      const reader = async (): Promise<void> => {
        while (!done) {
          const text = textOf(await backend.read());
          expect(text === before || text === after).toBe(true);
        }
      };
      await Promise.all([reader(), reader(), reader(), writing]);
    });

    it("remove() deletes the document, and resolves when it is already absent", async () => {
      const h = await makeHarness();
      const backend = h.backend();
      await backend.write(utf8("{}"));
      await backend.remove();
      expect(textOf(await backend.read())).toBe(undefined);
      expect(await h.peek()).toBe(undefined);
      await expect(backend.remove()).resolves.toBe(undefined);
    });
  });
}
