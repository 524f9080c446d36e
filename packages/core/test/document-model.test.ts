import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { combine, StoredDocument, stagingBatch, type Batch } from "../src/document.js";
import { parseJson } from "../src/json-parse.js";
import { canonical, expectDocument, membersOf, textOf } from "./helpers.js";

const numRuns = Number(process.env["AIOKV_MODEL_RUNS"] ?? 200);
const location = "test:model";

// A small pool, so that commands meet the same keys again; odd ones among them.
const oddKey = fc.constantFrom("a", "b", "c", "", " ", "__proto__", "constructor", "toString", "0", "1", "10", "-1", "é", "😀", "\u2028", 'q"', "\\", "\n");
// Numbered keys reach past one chunk (256 lines) and leave enough holes to be compacted.
const numberedKey = fc.nat(399).map((i) => `k${i}`);
const key = fc.oneof({ weight: 3, arbitrary: oddKey }, { weight: 1, arbitrary: numberedKey });
const json = fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify(value));

type Change = { kind: "set"; key: string; json: string } | { kind: "delete"; key: string } | { kind: "clear" };
/**
 * How a command's changes are also batched otherwise: a batch ends after change `i` when
 * `cuts[i % cuts.length]` (none when empty), and `split` (modulo one more than their number)
 * cuts them in two for `combine`.
 */
interface Grouping {
  cuts: boolean[];
  split: number;
}
type Command =
  | ({ kind: "batch"; changes: Change[] } & Grouping)
  | ({ kind: "setRange"; from: number; count: number } & Grouping)
  | ({ kind: "thin"; keepEvery: number } & Grouping)
  | { kind: "reload"; asBytes: boolean };

const change: fc.Arbitrary<Change> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ kind: fc.constant("set" as const), key, json }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("delete" as const), key }) },
  // Rare: a clear, like a reload, starts the slots afresh, and holes need a run of deletes to pile up.
  { weight: 1, arbitrary: fc.constant({ kind: "clear" as const }) },
);
// A batch may change a key several times: set, delete and set again, each after the one
// before, as the same changes made one by one. A delete then a set of one key, in a row, is
// made likely: keys meet again only now and then otherwise.
const deleteThenSet = fc
  .tuple(key, json)
  .map(([k, j]): Change[] => [
    { kind: "delete", key: k },
    { kind: "set", key: k, json: j },
  ]);
const batchChanges = fc
  .array(fc.oneof({ weight: 4, arbitrary: change.map((c) => [c]) }, { weight: 1, arbitrary: deleteThenSet }), { minLength: 1, maxLength: 5 })
  .map((runs) => runs.flat());
const grouping = { cuts: fc.array(fc.boolean(), { maxLength: 8 }), split: fc.nat(400) };
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("batch" as const), changes: batchChanges, ...grouping }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("setRange" as const), from: fc.nat(60), count: fc.integer({ min: 20, max: 300 }), ...grouping }) },
  // Deletes most numbered keys, keeping every few: holes among lines, enough to compact.
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("thin" as const), keepEvery: fc.constantFrom(0, 3, 4, 7), ...grouping }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("reload" as const), asBytes: fc.boolean() }) },
);

/** The batch a store would stage for `changes`, as AioKV's set, delete and clear stage theirs. */
function batchOf(changes: readonly Change[]): Batch {
  const batch = stagingBatch();
  for (const c of changes) {
    if (c.kind === "clear") {
      batch.cleared = true;
      batch.changes.clear();
    } else {
      batch.changes.set(c.key, c.kind === "set" ? c.json : undefined);
    }
  }
  return batch;
}

/** Key to value's JSON text, in insertion order: what the document should hold. */
type Model = Map<string, string>;

/**
 * Lines the document must write byte for byte: members loaded (or reloaded) and untouched
 * since. Key to the member's `token: value` text as the loaded text had it.
 */
type Raw = Map<string, string>;

function applyToModel(model: Model, raw: Raw, c: Change): void {
  if (c.kind === "clear") {
    model.clear();
    raw.clear();
    return;
  }
  raw.delete(c.key);
  // A Map keeps a replaced key in place and puts a deleted then re-set one last, as a file should.
  if (c.kind === "set") model.set(c.key, c.json);
  else model.delete(c.key);
}

/** Expects the rendering to hold the model, and the raw lines as loaded; `reads` also checks has() and get() of each key. */
function expectMatches(document: StoredDocument, model: Model, raw: Raw, step: string, reads = false): string {
  const text = textOf(document.render());
  try {
    const lines = new Map(expectDocument(text, [...model]).map(({ key, line }) => [key, line]));
    expect(JSON.stringify(document.keys())).toBe(JSON.stringify([...model.keys()]));
    for (const [key, line] of raw) if (lines.get(key) !== line) expect(lines.get(key), `raw line of ${JSON.stringify(key)}`).toBe(line);
    if (reads) {
      const read = (json: string | undefined): unknown => (json === undefined ? undefined : parseJson(json));
      const found = Array.from(model.keys(), (key) => [key, document.has(key), read(document.get(key))]);
      expect(canonical(found)).toBe(canonical(Array.from(model, ([key, value]) => [key, true, read(value)])));
      expect(document.has("absent")).toBe(false);
      expect(document.get("absent")).toBeUndefined();
    }
  } catch (error) {
    throw new Error(`after ${step}, the document renders:\n${text.slice(0, 2000)}`, { cause: error });
  }
  return text;
}

// Value texts as a hand-written or another program's file has them: JSON.stringify would
// write each differently, so a rewrite that does not keep the loaded text shows.
const rawValue = fc.oneof(
  fc.constantFrom("1.0", "1e400", "-1e400", "1E+2", "-0", "0.10", "12345678901234567890123", '"caf\\u00e9"', '"\\/"', '"\\ud83d\\ude00"', "[ ]", "{ }"),
  fc.tuple(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom<string | number | undefined>(undefined, 0, 1, 2, 4, "\t")).map(([value, indent]) => {
    // Nested lines indented past the member's own, as a pretty-printed file nests them.
    return JSON.stringify(value, null, indent).replaceAll("\n", "\n  ");
  }),
);
// A key's token: as JSON.stringify writes it, or every code unit \u-escaped.
const token = (k: string, escaped: boolean): string =>
  escaped ? `"${Array.from({ length: k.length }, (_, i) => `\\u${k.charCodeAt(i).toString(16).padStart(4, "0")}`).join("")}"` : JSON.stringify(k);
const space = fc.constantFrom("", " ", "\n", "\t", "  \r\n  ");
const loadedText = fc
  .tuple(
    fc.uniqueArray(fc.tuple(key, rawValue, fc.boolean(), space, space), { maxLength: 12, selector: ([k]) => k }),
    space,
    space,
  )
  .map(([members, before, after]) => ({
    text: `${before}{${before}${members.map(([k, value, escaped, s1, s2]) => `${token(k, escaped)}${s1}:${s2}${value}`).join(`${after},${before}`)}${after}}${after}`,
    members: members.map(([k, value, escaped]) => [k, value, `${token(k, escaped)}: ${value}`] as const),
  }));

/** `changes` in consecutive groups, a group ending after change `i` when `cuts[i % cuts.length]`. */
function groupsOf(changes: readonly Change[], cuts: readonly boolean[]): Change[][] {
  const groups: Change[][] = [[]];
  for (const [i, c] of changes.entries()) {
    groups.at(-1)?.push(c);
    if (cuts.length > 0 && cuts[i % cuts.length] === true && i < changes.length - 1) groups.push([]);
  }
  return groups;
}

/** `changes` as two batches, cut at `split` modulo one more than their number (either may be empty). */
function halvesOf(changes: readonly Change[], split: number): [Batch, Batch] {
  const at = split % (changes.length + 1);
  return [batchOf(changes.slice(0, at)), batchOf(changes.slice(at))];
}

/**
 * Other ways to batch a command's changes, each kept on a document of its own: each must render
 * what the command's one batch renders, with the keys in the same order.
 */
const batchings: Record<string, (document: StoredDocument, changes: readonly Change[], grouping: Grouping) => void> = {
  "one by one": (document, changes) => {
    for (const c of changes) document.apply(batchOf([c]));
  },
  "in groups": (document, changes, { cuts }) => {
    for (const group of groupsOf(changes, cuts)) document.apply(batchOf(group));
  },
  // What the queue renders during a write (`combine(writing, pending)`), then writes in turn.
  "in two, rendered combined": (document, changes, { split }) => {
    const [a, b] = halvesOf(changes, split);
    const preview = textOf(document.render(combine(a, b)));
    document.apply(a);
    document.apply(b);
    expect(textOf(document.render()), "the combined batch's rendering").toBe(preview);
  },
  "in two, combined": (document, changes, { split }) => {
    document.apply(combine(...halvesOf(changes, split)));
  },
  "in groups, each combined with the ones before": (document, changes, { cuts }) => {
    document.apply(groupsOf(changes, cuts).reduce<Batch | undefined>((before, group) => combine(before, batchOf(group)), undefined) ?? batchOf([]));
  },
};

describe("StoredDocument model", () => {
  it("random batches, ranges and reloads render what a Map of the same changes holds, and keep loaded lines, however batched", async () => {
    await fc.assert(
      fc.asyncProperty(loadedText, fc.array(command, { maxLength: 20 }), async (loaded, commands) => {
        let document = await StoredDocument.parse(loaded.text, location);
        const others = new Map<string, StoredDocument>();
        for (const name of Object.keys(batchings)) others.set(name, await StoredDocument.parse(loaded.text, location));
        const model: Model = new Map(loaded.members.map(([k, value]) => [k, value]));
        const raw: Raw = new Map(loaded.members.map(([k, , line]) => [k, line]));
        expectMatches(document, model, raw, "loading", true);
        for (const [i, c] of commands.entries()) {
          const step = `command ${i} ${JSON.stringify(c)}`;
          let changes: Change[];
          if (c.kind === "reload") {
            const pieces = document.render();
            document = await StoredDocument.parse(c.asBytes ? Buffer.concat(pieces) : textOf(pieces), location);
            // Each other document from its own rendering, the same text when they agree.
            for (const [name, other] of others) others.set(name, await StoredDocument.parse(textOf(other.render()), location));
            raw.clear();
            for (const { key: k, line } of membersOf(textOf(pieces))) raw.set(k, line);
            expectMatches(document, model, raw, step, true);
            continue;
          } else if (c.kind === "batch") {
            changes = c.changes;
          } else if (c.kind === "setRange") {
            changes = Array.from({ length: c.count }, (_, j) => ({ kind: "set", key: `k${c.from + j}`, json: String(i) }));
          } else {
            const numbered = [...model.keys()].filter((k) => /^k\d+$/.test(k));
            changes = numbered.filter((_, j) => c.keepEvery === 0 || j % c.keepEvery !== 0).map((k) => ({ kind: "delete", key: k }));
          }
          const batch = batchOf(changes);
          // What a write sends before the batch is applied must be what the document holds after.
          const preview = textOf(document.render(batch));
          document.apply(batch);
          for (const one of changes) applyToModel(model, raw, one);
          // A full check of a large document after every small batch would take most of the time:
          // then the rendering is only compared with the preview, and fully after ranges and at the end.
          const full = c.kind !== "batch" || model.size <= 64;
          const text = full ? expectMatches(document, model, raw, step) : textOf(document.render());
          expect(text, step).toBe(preview);
          for (const [name, other] of others) {
            batchings[name]?.(other, changes, c);
            expect(textOf(other.render()), `${step}, batched ${name}`).toBe(text);
            if (full) expect(JSON.stringify(other.keys()), `${step}, batched ${name}`).toBe(JSON.stringify([...model.keys()]));
          }
        }
        expectMatches(document, model, raw, "the last command", true);
        for (const [name, other] of others) expectMatches(other, model, raw, `the last command, batched ${name}`, true);
      }),
      { numRuns },
    );
  });

  it("random single changes on a loaded document, rendered only at the end, match the Map", async () => {
    await fc.assert(
      fc.asyncProperty(loadedText, fc.array(change, { maxLength: 60 }), async (loaded, changes) => {
        const document = await StoredDocument.parse(loaded.text, location);
        const model: Model = new Map(loaded.members.map(([k, value]) => [k, value]));
        const raw: Raw = new Map(loaded.members.map(([k, , line]) => [k, line]));
        for (const c of changes) {
          document.apply(batchOf([c]));
          applyToModel(model, raw, c);
        }
        expectMatches(document, model, raw, `changes ${JSON.stringify(changes)}`, true);
      }),
      { numRuns },
    );
  });
});
