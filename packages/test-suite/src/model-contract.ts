import { AioKV, isStoreFormatError, type JsonValue } from "@aiokv/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { HarnessFactory } from "./harness.js";

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
 * Registers property tests that drive random sequences of set, get, delete, getAll, clear and
 * reopen against a plain Map, one by one and all at once.
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
            kv: new AioKV(h.backend()),
            reopen: async () => {
              await real.kv.close();
              real.kv = new AioKV(h.backend());
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
          const kv = new AioKV(h.backend(), { logger: { error() {} } });
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
      type Op = ["set", string, JsonValue] | ["delete", string] | ["clear"];
      const op: fc.Arbitrary<Op> = fc.oneof(
        fc.tuple(fc.constant("set" as const), key, value),
        fc.tuple(fc.constant("delete" as const), key),
        fc.tuple(fc.constant("clear" as const)),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
          const h = await makeHarness();
          const kv = new AioKV(h.backend());
          const model: Model = new Map();
          const calls = ops.map((o) => {
            if (o[0] === "set") model.set(o[1], normal(o[2]));
            else if (o[0] === "delete") model.delete(o[1]);
            else model.clear();
            return o[0] === "set" ? kv.set(o[1], o[2]) : o[0] === "delete" ? kv.delete(o[1]) : kv.clear();
          });
          await Promise.all(calls);
          await kv.close();
          const reopened = new AioKV(h.backend());
          expectSame(await reopened.getAll(), model);
          await reopened.close();
        }),
        { numRuns },
      );
    });
  });
}
