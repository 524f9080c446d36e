import { AioKV, isStoreFormatError, type JsonValue } from "@aiokv/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { storeOptions, type HarnessFactory } from "./harness.js";

type Model = Map<string, JsonValue>;
interface Real {
  kv: AioKV;
  reopen(): Promise<void>;
}
type Command = fc.AsyncCommand<Model, Real>;

// What JSON makes of a value (-0 becomes 0): the model stores what a reopen would read.
const normal = (value: JsonValue): JsonValue => JSON.parse(JSON.stringify(value)) as JsonValue;
const key = fc.oneof(fc.constantFrom("", "__proto__", "constructor", "toString", "a", "b"), fc.string({ maxLength: 4 }));
// fast-check types objects with optional properties; the values it makes never hold undefined.
const value = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JsonValue>;
// Entries sorted by key: toStrictEqual on the objects would compare an own "constructor" key as a class.
const sorted = (entries: Iterable<[string, unknown]>): Array<[string, unknown]> =>
  [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
const expectSame = (all: Record<string, JsonValue>, model: Model): void =>
  expect(sorted(Object.entries(all))).toStrictEqual(sorted(model));

const commands = [
  fc.tuple(key, value).map(([k, v]): Command => ({
    check: () => true,
    run: async (model, real) => {
      await real.kv.set(k, v);
      model.set(k, normal(v));
    },
    toString: () => `set(${JSON.stringify(k)}, ${JSON.stringify(v)})`,
  })),
  key.map((k): Command => ({
    check: () => true,
    run: async (model, real) => expect(await real.kv.get(k, "absent")).toStrictEqual(model.has(k) ? model.get(k) : "absent"),
    toString: () => `get(${JSON.stringify(k)})`,
  })),
  key.map((k): Command => ({
    check: () => true,
    run: async (model, real) => {
      expect(await real.kv.delete(k)).toBe(true);
      model.delete(k);
    },
    toString: () => `delete(${JSON.stringify(k)})`,
  })),
  fc.constant<Command>({
    check: () => true,
    run: async (model, real) => expectSame(await real.kv.getAll(), model),
    toString: () => "getAll()",
  }),
  fc.constant<Command>({
    check: () => true,
    run: async (model, real) => {
      expect(await real.kv.clear()).toBe(true);
      model.clear();
    },
    toString: () => "clear()",
  }),
  fc.tuple(key, value).map(([k, v]): Command => ({
    check: () => true,
    run: async (model, real) => {
      // update() sees the current value (or the fallback) and stores what it returns.
      const seen = await real.kv.update(k, (current: JsonValue) => [current, v], "absent");
      expect(seen).toStrictEqual(normal([model.has(k) ? (model.get(k) ?? null) : "absent", v]));
      model.set(k, seen);
    },
    toString: () => `update(${JSON.stringify(k)}, current => [current, ${JSON.stringify(v)}])`,
  })),
  fc.array(fc.tuple(key, value), { maxLength: 4 }).map((pairs): Command => ({
    check: () => true,
    run: async (model, real) => {
      await real.kv.setMany(pairs);
      for (const [k, v] of pairs) model.set(k, normal(v));
    },
    toString: () => `setMany(${JSON.stringify(pairs)})`,
  })),
  fc.array(key, { maxLength: 4 }).map((keys): Command => ({
    check: () => true,
    run: async (model, real) => {
      expect(await real.kv.deleteMany(keys)).toBe(true);
      for (const k of keys) model.delete(k);
    },
    toString: () => `deleteMany(${JSON.stringify(keys)})`,
  })),
  key.map((k): Command => ({
    check: () => true,
    run: async (model, real) => {
      expect(await real.kv.has(k)).toBe(model.has(k));
      expect((await real.kv.keys()).toSorted()).toStrictEqual([...model.keys()].toSorted());
    },
    toString: () => `has(${JSON.stringify(k)}), keys()`,
  })),
  fc.constant<Command>({
    check: () => true,
    run: async (model, real) => {
      await real.reopen();
      expectSame(await real.kv.getAll(), model);
    },
    toString: () => "reopen()",
  }),
];

/**
 * Registers property tests that drive random sequences of set, get, delete, update, setMany,
 * deleteMany, has, keys, getAll, clear and reopen against a plain Map, one by one and all at once.
 *
 * @param name The backend's name, for the test titles.
 * @param makeHarness Makes a fresh harness per run.
 * @param numRuns How many random sequences each property tries.
 */
export function modelContract(name: string, makeHarness: HarnessFactory, numRuns = 100): void {
  describe(`${name} model`, () => {
    it("random operations, awaited one by one and with reopens, match a Map", async () => {
      await fc.assert(
        fc.asyncProperty(fc.commands(commands, { maxCommands: 30 }), async (cmds) => {
          const h = await makeHarness();
          const real: Real = {
            kv: new AioKV(h.backend(), storeOptions(h)),
            reopen: async () => {
              await real.kv.close();
              real.kv = new AioKV(h.backend(), storeOptions(h));
            },
          };
          await fc.asyncModelRun(() => ({ model: new Map(), real }), cmds);
          await real.kv.close();
        }),
        { numRuns },
      );
    });

    it("any text as the document loads as an object or rejects with StoreFormatError, and stays as it was", async () => {
      const text = fc.oneof(
        fc.string({ unit: "binary", maxLength: 40 }),
        fc.json({ maxDepth: 3 }),
        fc.json({ maxDepth: 3 }).chain((json) => fc.nat(json.length).map((cut) => json.slice(0, cut))),
        fc.tuple(fc.json({ maxDepth: 2 }), fc.constantFrom("\uFEFF", "\u0000", " ", ",", "}")).map(([json, noise]) => noise + json),
      );
      await fc.assert(
        fc.asyncProperty(text, async (planted) => {
          const h = await makeHarness();
          await h.plant(planted);
          const kv = new AioKV(h.backend(), storeOptions(h, { logger: { error() {} } }));
          const outcome = await kv.getAll().then(
            (all) => ({ all }),
            (error: unknown) => ({ error }),
          );
          if ("error" in outcome) {
            expect(isStoreFormatError(outcome.error), String(outcome.error)).toBe(true);
            expect(await kv.delete("k")).toBe(false);
          } else {
            expect(typeof outcome.all).toBe("object");
            expect(Array.isArray(outcome.all)).toBe(false);
          }
          expect(await h.peek()).toBe(planted);
          await kv.close();
        }),
        { numRuns: numRuns * 2 },
      );
    });

    it("random operations called all at once take effect in call order, as the Map does", async () => {
      type Op = ["set", string, JsonValue] | ["delete", string] | ["clear"] | ["increment", string] | ["deleteMany", string[]];
      const op: fc.Arbitrary<Op> = fc.oneof(
        fc.tuple(fc.constant("set" as const), key, value),
        fc.tuple(fc.constant("delete" as const), key),
        fc.tuple(fc.constant("clear" as const)),
        fc.tuple(fc.constant("increment" as const), key),
        fc.tuple(fc.constant("deleteMany" as const), fc.array(key, { maxLength: 3 })),
      );
      const increment = (current: JsonValue | undefined): number => (typeof current === "number" ? current + 1 : 1);
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
          const h = await makeHarness();
          const kv = new AioKV(h.backend(), storeOptions(h));
          const model: Model = new Map();
          const calls = ops.map((o): Promise<unknown> => {
            switch (o[0]) {
              case "set":
                model.set(o[1], normal(o[2]));
                return kv.set(o[1], o[2]);
              case "delete":
                model.delete(o[1]);
                return kv.delete(o[1]);
              case "clear":
                model.clear();
                return kv.clear();
              case "increment":
                model.set(o[1], increment(model.get(o[1])));
                return kv.update(o[1], (current: JsonValue) => increment(current), null);
              case "deleteMany":
                for (const k of o[1]) model.delete(k);
                return kv.deleteMany(o[1]);
            }
          });
          await Promise.all(calls);
          await kv.close();
          const reopened = new AioKV(h.backend(), storeOptions(h));
          expectSame(await reopened.getAll(), model);
          await reopened.close();
        }),
        { numRuns },
      );
    });
  });
}
