// Value checks cost what a value holds, not its length: a sparse array of length 1e8 is refused at
// once, where a walk of 0..length would run out of memory.
import { AioKV } from "aiokv";
import { MemoryBackend } from "@aiokv/memory-backend";
import { describe, expect, it } from "vitest";

describe("value checks cost what the value holds", () => {
  it("a sparse array of length 1e8 is a TypeError naming its first hole, at once", async () => {
    const kv = new AioKV(new MemoryBackend());
    await expect(kv.set("k", new Array(1e8))).rejects.toThrow(new TypeError('Cannot set key "k": value at k[0] is a hole in a sparse array'));
    const some = new Array<number>(1e8);
    some[0] = 1;
    some[1] = 2;
    some[99_999_999] = 3;
    await expect(kv.set("k", { "odd key": [some] })).rejects.toThrow('Cannot set key "k": value at k["odd key"][0][2] is a hole in a sparse array');
    await expect(kv.set("k", Object.assign([1, 2], { extra: 3 }))).rejects.toThrow(
      'Cannot set key "k": value at k.extra is a property of an array, which JSON does not write',
    );
    // @ts-expect-error -- a function is no JSON value, at compile time too
    await expect(kv.set("k", [1, [2, () => 3]])).rejects.toThrow('Cannot set key "k": value at k[1][1] is a function');
    expect(await kv.keys()).toStrictEqual([]);
    await kv.close();
  });
});
