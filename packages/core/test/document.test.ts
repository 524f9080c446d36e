import { describe, expect, it } from "vitest";
import { combine, isEmptyDocument, StoredDocument, stagingBatch, type Batch } from "../src/document.js";
import { CorruptStoreError, InvalidStoreShapeError } from "../src/errors.js";
import { MAX_DEPTH } from "../src/json-value.js";
import { clearing, deleting, expectDocument, keysOf, membersOf, setting, textOf } from "./helpers.js";

const location = "test:document";

/** A document holding `entries`, each set by its own batch, as a store's writes would leave it. */
function documentOf(entries: Iterable<readonly [string, unknown]>): StoredDocument {
  const document = new StoredDocument(location);
  for (const [key, value] of entries) document.apply(setting(key, value));
  return document;
}

const render = (document: StoredDocument, batch?: Batch): string => textOf(document.render(batch));

/** `count` keys `k0`, `k1`… with their index as value: enough lines for several chunks. */
const numbered = (count: number, from = 0): Array<[string, number]> => Array.from({ length: count }, (_, i) => [`k${from + i}`, from + i]);

const jsonEntries = (entries: ReadonlyArray<readonly [string, unknown]>): Array<[string, string]> =>
  entries.map(([key, value]) => [key, JSON.stringify(value)]);

/** A call a batch stages: a set (`[key, value]`), a delete (`[key]`) or a clear. */
type Call = readonly [string, unknown] | readonly [string] | "clear";

/** The batch that stages `calls` in order, as the queue stages a store's calls. */
function staged(calls: readonly Call[]): Batch {
  const batch = stagingBatch();
  for (const call of calls) {
    if (call === "clear") {
      batch.cleared = true;
      batch.changes.clear();
    } else {
      batch.changes.set(call[0], call.length === 1 ? undefined : JSON.stringify(call[1]));
    }
  }
  return batch;
}

// Keys an object literal, a prototype lookup or a naive writer gets wrong.
const oddKeys = ["__proto__", "constructor", "toString", "hasOwnProperty", "", " ", "café", "😀", "\u2028", 'a"b', "back\\slash", "line\nbreak", "10", "0", "-1"];

describe("StoredDocument rendering", () => {
  it("an empty document renders as {} and is recognised as empty", () => {
    const pieces = new StoredDocument(location).render();
    expect(textOf(pieces)).toBe("{}\n");
    expect(isEmptyDocument(pieces)).toBe(true);
    expect(isEmptyDocument(documentOf([["a", 1]]).render())).toBe(false);
  });

  it("setting new keys appends one line each, in the order they were set", () => {
    const document = documentOf([
      ["b", 1],
      ["a", [true, null]],
      ["c", { x: "y" }],
    ]);
    expect(render(document)).toBe('{\n  "b": 1,\n  "a": [true,null],\n  "c": {"x":"y"}\n}\n');
    expect(document.keys()).toEqual(["b", "a", "c"]);
  });

  it("setting an existing key replaces its line where it is, keeping the others' order", () => {
    const document = documentOf([
      ["a", 1],
      ["b", 2],
      ["c", 3],
    ]);
    document.apply(setting("b", "two"));
    expect(render(document)).toBe('{\n  "a": 1,\n  "b": "two",\n  "c": 3\n}\n');
    document.apply(setting("a", { replaced: true }));
    expect(render(document)).toBe('{\n  "a": {"replaced":true},\n  "b": "two",\n  "c": 3\n}\n');
  });

  it("deleting a key removes its line and leaves no empty separator", () => {
    for (const gone of ["a", "b", "c"]) {
      const document = documentOf([
        ["a", 1],
        ["b", 2],
        ["c", 3],
      ]);
      document.apply(deleting(gone));
      const left = (["a", "b", "c"] as const).filter((key) => key !== gone);
      expect(render(document)).toBe(`{\n${left.map((key) => `  "${key}": ${"abc".indexOf(key) + 1}`).join(",\n")}\n}\n`);
      expect(document.has(gone)).toBe(false);
      expect(document.get(gone)).toBeUndefined();
    }
  });

  it("deleting the last key renders an empty document", () => {
    const document = documentOf([["a", 1]]);
    document.apply(deleting("a"));
    expect(isEmptyDocument(document.render())).toBe(true);
    expect(render(document)).toBe("{}\n");
  });

  it("deleting an absent key changes nothing", () => {
    const document = documentOf(numbered(3));
    const before = render(document);
    document.apply(deleting("absent", "k"));
    expect(render(document)).toBe(before);
    expect(document.keys()).toEqual(["k0", "k1", "k2"]);
  });

  it("a key deleted and set again goes last", () => {
    const document = documentOf(numbered(3));
    document.apply(deleting("k0"));
    document.apply(setting("k0", "back"));
    expectDocument(render(document), [
      ["k1", "1"],
      ["k2", "2"],
      ["k0", '"back"'],
    ]);
  });

  it("clear() empties the document, and keys set after it start a new order", () => {
    const document = documentOf(numbered(5));
    document.apply(clearing());
    expect(render(document)).toBe("{}\n");
    expect(document.keys()).toEqual([]);
    expect(document.has("k0")).toBe(false);
    document.apply(setting("k3", "x"));
    document.apply(setting("a", "y"));
    expect(render(document)).toBe('{\n  "k3": "x",\n  "a": "y"\n}\n');
  });

  it("a cleared batch keeps only its own changes, and their order", () => {
    const document = documentOf(numbered(5));
    document.apply(
      clearing([
        ["k4", 1],
        ["new", 2],
        ["k0", 3],
      ]),
    );
    expect(render(document)).toBe('{\n  "k4": 1,\n  "new": 2,\n  "k0": 3\n}\n');
  });

  it("odd keys are written as their own members, each parsed back to its value", () => {
    const document = documentOf(oddKeys.map((key, i) => [key, { i }]));
    const text = render(document);
    expectDocument(
      text,
      oddKeys.map((key, i) => [key, JSON.stringify({ i })]),
    );
    const parsed = JSON.parse(text) as Record<string, unknown>;
    expect(Object.hasOwn(parsed, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    // JSON.parse puts integer-like keys first; the document keeps the order they were set in.
    expect(document.keys()).toEqual(oddKeys);
    for (const [i, key] of oddKeys.entries()) {
      expect(document.has(key)).toBe(true);
      expect(document.get(key)).toBe(JSON.stringify({ i }));
    }
  });

  it("odd keys are replaced and deleted in place like any other", () => {
    const document = documentOf(oddKeys.map((key) => [key, 0]));
    for (const [i, key] of oddKeys.entries()) if (i % 2 === 0) document.apply(setting(key, `set ${i}`));
    for (const [i, key] of oddKeys.entries()) if (i % 3 === 0) document.apply(deleting(key));
    const expected = oddKeys.flatMap((key, i): Array<[string, string]> => (i % 3 === 0 ? [] : [[key, JSON.stringify(i % 2 === 0 ? `set ${i}` : 0)]]));
    expectDocument(render(document), expected);
    expect(document.keys()).toEqual(expected.map(([key]) => key));
  });

  it("very long and deeply nested values round-trip whole", () => {
    const long = "x".repeat(1_000_000) + "é😀\u0000\"\\";
    let deep: unknown = "bottom";
    for (let i = 0; i < MAX_DEPTH - 1; i++) deep = i % 2 === 0 ? [deep] : { d: deep };
    const wide = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`w${i}`, i]));
    const entries: Array<[string, unknown]> = [
      ["long", long],
      ["deep", deep],
      ["wide", wide],
    ];
    const document = documentOf(entries);
    const text = render(document);
    expectDocument(text, jsonEntries(entries));
    expect((JSON.parse(text) as { long: string }).long).toBe(long);
    expect(document.get("long")).toBe(JSON.stringify(long));
  });

  it("many keys over several chunks render in order after sets, replacements and deletes", () => {
    const entries = new Map<string, unknown>(numbered(2000));
    const document = documentOf(entries);
    for (const i of [0, 255, 256, 257, 511, 512, 1024, 1999]) {
      document.apply(setting(`k${i}`, { replaced: i }));
      entries.set(`k${i}`, { replaced: i });
    }
    for (const i of [1, 254, 258, 700, 1998]) {
      document.apply(deleting(`k${i}`));
      entries.delete(`k${i}`);
    }
    for (const i of [2000, 2001]) {
      document.apply(setting(`k${i}`, i));
      entries.set(`k${i}`, i);
    }
    expectDocument(render(document), jsonEntries([...entries]));
    expect(document.keys()).toEqual([...entries.keys()]);
  });

  it("refuses to render a batch that would make a document too long to read back, counting the lines it holds", () => {
    // Half the limit: the text JSON would make of it is never built, only its length counted.
    const half = `"${"x".repeat(2 ** 28)}"`;
    const tooLong = /^Cannot write store "test:document": the document would be \d+ characters long, longer than the \d+ a store can read back$/;
    expect(() => new StoredDocument(location).render({ cleared: false, changes: new Map([["a", half], ["b", half]]) })).toThrow(tooLong);
    const document = new StoredDocument(location);
    document.apply({ cleared: false, changes: new Map([["a", half]]) });
    expect(() => document.render({ cleared: false, changes: new Map([["b", half]]) })).toThrow(tooLong);
    expect(() => document.render({ cleared: false, changes: new Map([["b", half]]) })).toThrow(RangeError);
    expect(document.keys()).toEqual(["a"]);
    // Gone with the batch, the line it replaces no longer counts.
    expect(textOf(document.render({ cleared: false, changes: new Map([["a", undefined], ["b", "1"]]) }))).toBe('{\n  "b": 1\n}\n');
  });

  it("counts a key deleted and set again in one batch once, with its new line", () => {
    const half = `"${"x".repeat(2 ** 28)}"`;
    const document = new StoredDocument(location);
    document.apply({ cleared: false, changes: new Map([["a", half]]) });
    const reinserting = (json: string): Batch => {
      const batch = stagingBatch();
      batch.changes.set("a", undefined);
      batch.changes.set("a", json);
      batch.changes.set("b", half);
      return batch;
    };
    // Its new line counts, wherever it goes: two halves are too long.
    expect(() => document.render(reinserting(half))).toThrow(/^Cannot write store "test:document": the document would be \d+ characters long/);
    // Its old line does not: one half and a short line are not.
    const pieces = document.render(reinserting("1"));
    const expected = ['{\n  "a": 1,\n  "b": ', half, "\n}\n"].reduce((sum, part) => sum + part.length, 0);
    expect(pieces.reduce((sum, piece) => sum + piece.length, 0)).toBe(expected);
  });

  it("a rendered batch leaves the document as it was, and renders what applying it renders", () => {
    const batches: Array<[string, Batch]> = [
      ["set of a new key", setting("new", [1])],
      ["set of an existing key", setting("k1", "changed")],
      ["delete", deleting("k0", "k2")],
      ["delete of an absent key", deleting("absent")],
      ["clear", clearing()],
      ["clear then set", clearing([["k1", 1]])],
      ["several changes", { cleared: false, changes: new Map([["k2", "2.5"], ["k0", undefined], ["z", "null"]]) }],
      ["delete and set again of an existing key", staged([["k1"], ["new", 1], ["k1", "back"]])],
      ["delete and set again of a new key", staged([["new", 1], ["new"], ["k0", 0], ["new", 2]])],
    ];
    for (const [what, batch] of batches) {
      const document = documentOf(numbered(3));
      const before = render(document);
      const preview = render(document, batch);
      expect(render(document), what).toBe(before);
      expect(document.keys(), what).toEqual(["k0", "k1", "k2"]);
      document.apply(batch);
      expect(render(document), what).toBe(preview);
    }
  });
});

describe("StoredDocument chunk cache", () => {
  // Bytes of the second rendering that are the very pieces of the first: kept, not encoded again.
  const reusedShare = (first: readonly Uint8Array[], second: readonly Uint8Array[]): number => {
    const kept = new Set(first);
    const total = second.reduce((sum, piece) => sum + piece.length, 0);
    return second.filter((piece) => kept.has(piece)).reduce((sum, piece) => sum + piece.length, 0) / total;
  };
  const holding = (pieces: readonly Uint8Array[], needle: string): Uint8Array[] =>
    pieces.filter((piece) => Buffer.from(piece).includes(needle));

  it("a change to one key of a large document leaves the other parts as the bytes already encoded", () => {
    const document = documentOf(numbered(10_000));
    const first = document.render();
    document.apply(setting("k5000", "changed"));
    const second = document.render();
    expect(reusedShare(first, second)).toBeGreaterThan(0.8);
    // The one part holding the change was encoded anew.
    const changed = holding(second, '"k5000": "changed"');
    expect(changed).toHaveLength(1);
    expect(first).not.toContain(changed[0]);
    expectDocument(textOf(second), jsonEntries(numbered(10_000).map(([key, value]) => [key, key === "k5000" ? "changed" : value])));
  });

  it("rendering twice without a change gives the same encoded parts", () => {
    const document = documentOf(numbered(3000));
    const first = document.render();
    expect(reusedShare(first, document.render())).toBeGreaterThan(0.95);
  });

  it("a rendered batch that is not applied does not replace the encoded parts", () => {
    const document = documentOf(numbered(3000));
    const before = render(document);
    expect(render(document, setting("k1500", "preview"))).toContain('"k1500": "preview"');
    expect(render(document, deleting("k10"))).not.toContain('"k10"');
    expect(render(document)).toBe(before);
  });

  it("every kind of change shows in the next rendering of a large document, whatever was encoded before", () => {
    const size = 1500;
    const changes: Array<[string, Batch, (entries: Map<string, unknown>) => void]> = [
      ["set of an existing key in the first part", setting("k3", "a"), (m) => m.set("k3", "a")],
      ["set of an existing key in the last part", setting(`k${size - 2}`, "b"), (m) => m.set(`k${size - 2}`, "b")],
      ["set of a new key", setting("new", "c"), (m) => m.set("new", "c")],
      ["delete in the middle", deleting("k700"), (m) => m.delete("k700")],
      ["delete of the last key", deleting(`k${size - 1}`), (m) => m.delete(`k${size - 1}`)],
      ["delete of an absent key", deleting("absent"), () => {}],
      ["clear", clearing(), (m) => m.clear()],
      [
        "clear then set",
        clearing([["k5", 5]]),
        (m) => {
          m.clear();
          m.set("k5", 5);
        },
      ],
    ];
    for (const [what, batch, change] of changes) {
      const entries = new Map<string, unknown>(numbered(size));
      const document = documentOf(entries);
      render(document);
      document.apply(batch);
      change(entries);
      expectDocument(render(document), jsonEntries([...entries]));
      expect(document.keys(), what).toEqual([...entries.keys()]);
    }
  });

  it("a run of sets and deletes, each rendered, keeps every rendering equal to a document built from scratch", () => {
    const entries = new Map<string, unknown>(numbered(1200));
    const document = documentOf(entries);
    for (let step = 0; step < 60; step++) {
      const key = `k${(step * 397) % 1300}`;
      if (step % 3 === 2 && entries.has(key)) {
        document.apply(deleting(key));
        entries.delete(key);
      } else {
        document.apply(setting(key, step));
        entries.set(key, step);
      }
      expect(render(document), `step ${step}`).toBe(render(documentOf(entries)));
    }
  });
});

describe("StoredDocument holes and compaction", () => {
  const separatorsAreWhole = (text: string): void => {
    expect(text).not.toMatch(/\{\n {2},|,\n {2},|,\n {2}\n\}|,\n\}/);
  };

  it("after most keys are deleted one by one, the rendering is what a fresh document of the rest renders", () => {
    const entries = new Map<string, unknown>(numbered(1000));
    const document = documentOf(entries);
    // The last key stays: compaction must carry the last slot over too.
    for (let i = 0; i < 1000; i++) {
      if (i % 10 === 9) continue;
      document.apply(deleting(`k${i}`));
      entries.delete(`k${i}`);
      if (i % 97 === 0) separatorsAreWhole(render(document));
    }
    const text = render(document);
    separatorsAreWhole(text);
    expect(text).toBe(render(documentOf(entries)));
    expectDocument(text, jsonEntries([...entries]));
  });

  it("deleting every key of a whole chunk, in one batch, leaves no empty separator", () => {
    const entries = new Map<string, unknown>(numbered(1024));
    const document = documentOf(entries);
    render(document);
    const gone = numbered(300, 250).map(([key]) => key);
    document.apply(deleting(...gone));
    for (const key of gone) entries.delete(key);
    const text = render(document);
    separatorsAreWhole(text);
    expect(text).toBe(render(documentOf(entries)));
  });

  it("after compaction, a remaining key is still replaced in place, and new and re-set keys go last", () => {
    const entries = new Map<string, unknown>(numbered(100));
    const document = documentOf(entries);
    // Enough holes to compact, with keys left at both ends.
    for (let i = 0; i < 100; i++) {
      if (i % 4 === 3 || i === 0) continue;
      document.apply(deleting(`k${i}`));
      entries.delete(`k${i}`);
    }
    render(document);
    document.apply(setting("k43", "in place"));
    entries.set("k43", "in place");
    document.apply(setting("k41", "was deleted"));
    entries.set("k41", "was deleted");
    document.apply(setting("fresh", true));
    entries.set("fresh", true);
    document.apply(deleting("k3"));
    entries.delete("k3");
    const text = render(document);
    expectDocument(text, jsonEntries([...entries]));
    expect(document.keys()).toEqual([...entries.keys()]);
    expect(document.get("k43")).toBe('"in place"');
    expect(document.get("k99")).toBe("99");
    expect(text).toBe(render(documentOf(entries)));
  });

  it("deleting every key one by one ends with an empty document", () => {
    const document = documentOf(numbered(600));
    for (let i = 599; i >= 0; i--) document.apply(deleting(`k${i}`));
    expect(isEmptyDocument(document.render())).toBe(true);
    document.apply(setting("again", 1));
    expect(render(document)).toBe('{\n  "again": 1\n}\n');
  });
});

describe("StoredDocument loading", () => {
  // Member texts that JSON.parse then JSON.stringify would rewrite.
  const loaded = [
    "{",
    '  "float": 1.0,',
    '  "huge": 1e400,',
    '  "exp": 1E+2,',
    '  "negative zero": -0,',
    '  "bigint": 12345678901234567890123,',
    '  "escapes": "caf\\u00e9 \\/ \\ud83d\\ude00",',
    '  "caf\\u00e9"  :  "escaped key",',
    '  "pretty": {',
    '      "list": [1,   2,',
    "        3]",
    "    },",
    '  "touched": 1.50,',
    '  "deleted": 0.0',
    "}",
  ].join("\n");

  it("a loaded document rewrites its untouched members byte for byte", async () => {
    const document = await StoredDocument.parse(loaded, location);
    document.apply(setting("touched", 1.5));
    document.apply(deleting("deleted"));
    document.apply(setting("added", 2));
    expect(render(document)).toBe(
      [
        "{",
        '  "float": 1.0,',
        '  "huge": 1e400,',
        '  "exp": 1E+2,',
        '  "negative zero": -0,',
        '  "bigint": 12345678901234567890123,',
        '  "escapes": "caf\\u00e9 \\/ \\ud83d\\ude00",',
        '  "caf\\u00e9": "escaped key",',
        '  "pretty": {',
        '      "list": [1,   2,',
        "        3]",
        "    },",
        '  "touched": 1.5,',
        '  "added": 2',
        "}",
        "",
      ].join("\n"),
    );
  });

  it("a loaded document renders its members as loaded before any change", async () => {
    const document = await StoredDocument.parse(loaded, location);
    const members = membersOf(render(document));
    expect(members).toEqual(membersOf(loaded).map(({ key, line }) => ({ key, line: line.replace('"caf\\u00e9"  :  ', '"caf\\u00e9": ') })));
  });

  it("a document in the store's own layout renders back byte for byte", async () => {
    const text = `${JSON.stringify(JSON.parse('{"a": 1, "b": {"c": [1, 2, {"d": "é"}]}, "": null, "__proto__": "p"}'), null, 2)}\n`;
    expect(text).toContain('"__proto__": "p"');
    const document = await StoredDocument.parse(text, location);
    expect(render(document)).toBe(text);
    document.apply(setting("a", 1));
    expect(render(document)).toBe(text);
  });

  it("get() answers a loaded value's JSON, a number JSON cannot write included", async () => {
    const document = await StoredDocument.parse(loaded, location);
    expect(JSON.parse(document.get("float") ?? "")).toBe(1);
    // JSON.stringify(Infinity) would say null, which is not what the file holds.
    expect(JSON.parse(document.get("huge") ?? "")).toBe(Infinity);
    expect(JSON.parse(document.get("pretty") ?? "")).toEqual({ list: [1, 2, 3] });
    expect(document.get("café")).toBe('"escaped key"');
    expect(document.get("caf\\u00e9")).toBeUndefined();
    expect(document.get("absent")).toBeUndefined();
    expect(document.has("café")).toBe(true);
    expect(document.has("toString")).toBe(false);
    document.apply(setting("other", 0));
    expect(JSON.parse(document.get("huge") ?? "")).toBe(Infinity);
    expect(document.get("float")).toBe("1.0");
  });

  it("keys() follows the file, integer-like keys included, which JSON.parse would put first", async () => {
    const document = await StoredDocument.parse('{"b": 1, "10": 2, "a": 3, "2": 4}', location);
    expect(document.keys()).toEqual(["b", "10", "a", "2"]);
    document.apply(setting("1", 5));
    expect(keysOf(render(document))).toEqual(["b", "10", "a", "2", "1"]);
  });

  it("a duplicated key keeps its first place and its last value, as JSON.parse does", async () => {
    const document = await StoredDocument.parse('{"a": 1, "b": 2, "a": 3}', location);
    expect(document.keys()).toEqual(["a", "b"]);
    expect(document.get("a")).toBe("3");
    expect(render(document)).toBe('{\n  "a": 3,\n  "b": 2\n}\n');
  });

  it("an empty object, with any whitespace, loads as an empty document", async () => {
    for (const text of ["{}", " { \n\t} \n", "\n{}\n"]) {
      const document = await StoredDocument.parse(text, location);
      expect(document.keys()).toEqual([]);
      expect(isEmptyDocument(document.render())).toBe(true);
    }
  });

  it("loads UTF-8 bytes as it loads their text", async () => {
    const text = '{"é": "😀", "a": [1.0]}';
    const document = await StoredDocument.parse(new TextEncoder().encode(text), location);
    expect(render(document)).toBe(render(await StoredDocument.parse(text, location)));
    expect(document.get("é")).toBe('"😀"');
  });

  it("refuses bytes that are not UTF-8, naming the first bad byte", async () => {
    const bytes = Uint8Array.from([...new TextEncoder().encode('{"a": "'), 0xff, ...new TextEncoder().encode('"}')]);
    const error = await StoredDocument.parse(bytes, location).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptStoreError);
    expect((error as CorruptStoreError).byteOffset).toBe(7);
    expect((error as CorruptStoreError).location).toBe(location);
  });

  it("refuses a text that is not JSON, with where it stops being JSON", async () => {
    for (const text of ["", '{"a": 1', '{"a": 1,}', "\uFEFF{}", '{"a": 1} x']) {
      const error = await StoredDocument.parse(text, location).catch((e: unknown) => e);
      expect(error, JSON.stringify(text)).toBeInstanceOf(CorruptStoreError);
      expect((error as CorruptStoreError).location).toBe(location);
    }
    const error = (await StoredDocument.parse('{\n  "a": 1,\n  "b": }', location).catch((e: unknown) => e)) as CorruptStoreError;
    expect(error.position).toEqual({ line: 3, column: 8 });
  });

  it("refuses JSON that is not an object", async () => {
    for (const text of ["[]", "[1]", "1", '"text"', "null", "true"]) {
      const error = await StoredDocument.parse(text, location).catch((e: unknown) => e);
      expect(error, text).toBeInstanceOf(InvalidStoreShapeError);
      expect((error as InvalidStoreShapeError).location).toBe(location);
    }
  });

  it("refuses a value nested deeper than a store accepts, naming its key", async () => {
    const nested = (depth: number): string => "[".repeat(depth) + "]".repeat(depth);
    await expect(StoredDocument.parse(`{"ok": ${nested(MAX_DEPTH)}, "deep": ${nested(MAX_DEPTH + 1)}}`, location)).rejects.toThrow(
      InvalidStoreShapeError,
    );
    await expect(StoredDocument.parse(`{"ok": ${nested(MAX_DEPTH)}, "deep": ${nested(MAX_DEPTH + 1)}}`, location)).rejects.toThrow(/"deep"/);
    const document = await StoredDocument.parse(`{"ok": ${nested(MAX_DEPTH)}}`, location);
    expect(document.get("ok")).toBe(JSON.stringify(JSON.parse(nested(MAX_DEPTH))));
  });

  it("runs the load check on every key and value, and fails with what it throws", async () => {
    const seen: Array<[string, unknown]> = [];
    await StoredDocument.parse('{"a": 1, "__proto__": [2]}', location, (key, value) => seen.push([key, value]));
    expect(seen).toEqual([
      ["a", 1],
      ["__proto__", [2]],
    ]);
    const refusal = new Error("refused");
    await expect(
      StoredDocument.parse('{"a": 1, "b": 2}', location, (key) => {
        if (key === "b") throw refusal;
      }),
    ).rejects.toBe(refusal);
  });
});

describe("combine", () => {
  it("keeps a key's last change, and a clear in b drops a's changes", () => {
    const a: Batch = { cleared: false, changes: new Map([["x", "1"], ["y", "2"]]) };
    const b: Batch = { cleared: false, changes: new Map([["y", undefined], ["z", "3"]]) };
    const none = new Set<string>();
    expect(combine(a, b)).toEqual({ cleared: false, changes: new Map([["x", "1"], ["y", undefined], ["z", "3"]]), reinserted: none });
    expect(combine(a, clearing([["w", 4]]))).toEqual({ cleared: true, changes: new Map([["w", "4"]]), reinserted: none });
    expect(combine(clearing([["w", 4]]), b)).toEqual({ cleared: true, changes: new Map([["w", "4"], ["y", undefined], ["z", "3"]]), reinserted: none });
    expect(combine(undefined, undefined)).toEqual({ cleared: false, changes: new Map(), reinserted: none });
    // Neither input is changed: the queue still holds them.
    expect(a.changes.size).toBe(2);
  });

  it("renders what applying a then b renders, for changes to different keys", () => {
    const a: Batch = { cleared: false, changes: new Map([["k1", "10"], ["new", "1"], ["k0", undefined]]) };
    const b: Batch = { cleared: false, changes: new Map([["k2", undefined], ["other", "2"]]) };
    const document = documentOf(numbered(3));
    const combined = render(document, combine(a, b));
    document.apply(a);
    document.apply(b);
    expect(combined).toBe(render(document));
  });

  // CommitQueue renders and lists keys through `combine(writing, pending)`: what it shows during
  // a write must be the file written right after it.
  it("renders what applying a then b renders when a deletes a key that b sets again", () => {
    const a = deleting("k0");
    const b = setting("k0", "back");
    const document = documentOf(numbered(3));
    const combined = render(document, combine(a, b));
    document.apply(a);
    document.apply(b);
    expect(combined).toBe(render(document));
    expect(document.keys()).toEqual(["k1", "k2", "k0"]);
  });

  it("renders what applying a then b renders, whichever batch deletes and sets a key again", () => {
    const cases: Array<[string, Call[], Call[]]> = [
      ["a deletes, b sets with new keys around it", [["k1"], ["new", 1]], [["x", 2], ["k1", "back"], ["y", 3]]],
      ["a sets a new key, b deletes and sets it again", [["new", 1], ["k0", 0]], [["x", 2], ["new"], ["y", 3], ["new", "back"]]],
      ["a deletes and sets a key again, b sets it in its new place", [["k0"], ["k0", "back"], ["x", 1]], [["k0", "again"], ["y", 2]]],
      ["a deletes and sets a key again, b deletes it", [["k0"], ["k0", "back"]], [["k0"]]],
      ["a deletes and sets a key again, b deletes and sets it again", [["k0"], ["k0", 1], ["x", 1]], [["k0"], ["y", 2], ["k0", 2]]],
      ["a clears and sets, b deletes and sets again", ["clear", ["k2", 1], ["x", 1]], [["k2"], ["y", 2], ["k2", 2]]],
      ["a deletes, b clears and sets the key", [["k0"]], ["clear", ["x", 1], ["k0", 0]]],
    ];
    for (const [what, first, second] of cases) {
      const a = staged(first);
      const b = staged(second);
      const before = { a: [...a.changes], b: [...b.changes], aReinserted: [...(a.reinserted ?? [])] };
      const document = documentOf(numbered(3));
      const combined = render(document, combine(a, b));
      document.apply(a);
      document.apply(b);
      expect(combined, what).toBe(render(document));
      const once = documentOf(numbered(3));
      once.apply(combine(a, b));
      expect(render(once), what).toBe(render(document));
      expect(once.keys(), what).toEqual(document.keys());
      // Neither input is changed: the queue still holds them.
      expect({ a: [...a.changes], b: [...b.changes], aReinserted: [...(a.reinserted ?? [])] }, what).toEqual(before);
    }
  });

  it("carries the keys each batch reinserts, and marks those b sets after a deleted them", () => {
    const a = staged([["k0"], ["k0", 0], ["k1"], ["k2"]]);
    const b = staged([["k1", 1], ["x", 1], ["x"], ["x", 2]]);
    expect([...(combine(a, b).reinserted ?? [])].sort()).toEqual(["k0", "k1", "x"]);
    expect([...combine(a, b).changes.keys()]).toEqual(["k0", "k2", "k1", "x"]);
    // A key b deletes is no longer reinserted; a clear in b keeps only b's.
    expect([...(combine(a, staged([["k0"]])).reinserted ?? [])]).toEqual([]);
    expect([...(combine(a, staged(["clear", ["k0", 1]])).reinserted ?? [])]).toEqual([]);
  });
});

describe("a batch's calls, in call order", () => {
  /**
   * Expects `calls` staged as one batch, as each its own batch, and as `combine` of the batches
   * before and after every split, to render the same document (a rendered batch the same as
   * applied) with the same keys: one order, however the calls are batched.
   */
  function expectOneOrder(entries: ReadonlyArray<readonly [string, unknown]>, calls: readonly Call[], expected: readonly string[]): void {
    const separate = documentOf(entries);
    for (const call of calls) separate.apply(staged([call]));
    const text = render(separate);
    expect(keysOf(text)).toEqual(expected);
    expect(separate.keys()).toEqual(expected);
    const together = documentOf(entries);
    // Rendered first: the chunks cached before the batch must not show through.
    render(together);
    const batch = staged(calls);
    expect(render(together, batch), "rendered batch").toBe(text);
    together.apply(batch);
    expect(render(together), "applied batch").toBe(text);
    expect(together.keys()).toEqual(expected);
    for (let split = 0; split <= calls.length; split++) {
      const [a, b] = [staged(calls.slice(0, split)), staged(calls.slice(split))];
      const document = documentOf(entries);
      render(document);
      expect(render(document, combine(a, b)), `combined at ${split}`).toBe(text);
      document.apply(a);
      document.apply(b);
      expect(render(document), `applied in two at ${split}`).toBe(text);
    }
  }

  it("a key deleted and set again in one batch goes last, as when the delete and the set are written separately", () => {
    expectOneOrder(numbered(3), [["k0"], ["k0", "back"]], ["k1", "k2", "k0"]);
    expectOneOrder(numbered(3), [["k1"], ["k1", "back"]], ["k0", "k2", "k1"]);
    // The last key stays last, and a key absent before the delete is simply new.
    expectOneOrder(numbered(3), [["k2"], ["k2", "back"]], ["k0", "k1", "k2"]);
    expectOneOrder(numbered(3), [["absent"], ["absent", 1]], ["k0", "k1", "k2", "absent"]);
  });

  it("a key set again after a delete goes after the keys the batch put last before it", () => {
    expectOneOrder(numbered(3), [["new", 1], ["k0"], ["x", 2], ["k0", "back"], ["y", 3]], ["k1", "k2", "new", "x", "k0", "y"]);
    // A key the batch itself added, deleted and added again.
    expectOneOrder(numbered(3), [["new", 1], ["x", 2], ["new"], ["y", 3], ["new", "back"]], ["k0", "k1", "k2", "x", "y", "new"]);
  });

  it("a key set in place, deleted and set again goes last; set again after that it stays last; deleted after that it is gone", () => {
    expectOneOrder(numbered(3), [["k0", "in place"], ["k0"], ["x", 1], ["k0", "last"], ["k0", "still last"]], ["k1", "k2", "x", "k0"]);
    expectOneOrder(numbered(3), [["k0"], ["k0", "back"], ["k0"]], ["k1", "k2"]);
    expectOneOrder(numbered(3), [["k0"], ["k0", 1], ["k1"], ["k0"], ["k1", 1], ["k0", 2]], ["k2", "k1", "k0"]);
  });

  it("after a clear, sets start a new order, and a key deleted and set again after the clear goes last", () => {
    expectOneOrder(numbered(3), [["k0", 0], "clear", ["k1", 1], ["k0"], ["x", 2]], ["k1", "x"]);
    expectOneOrder(numbered(3), [["k0"], "clear", ["k0", 0], ["k1", 1], ["k0"], ["x", 2], ["k0", "last"]], ["k1", "x", "k0"]);
  });

  it("keys deleted and set again across chunks of a large document, with the chunks cached, go last", () => {
    const entries = numbered(700);
    const calls: Call[] = [["k5"], ["k300", "in place"], ["k600"], ["k5", "five"], ["new", 1], ["k300"], ["k600", "six"], ["k300", "three"]];
    const expected = [...entries.map(([key]) => key).filter((key) => !["k5", "k300", "k600"].includes(key)), "k5", "new", "k600", "k300"];
    expectOneOrder(entries, calls, expected);
  });
});
