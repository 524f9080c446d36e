// What a store does with the text and bytes of a file it did not write: a key nobody changed keeps
// its exact text through every write, bytes that are not UTF-8 are refused (never "repaired"),
// and a value nested deeper than set() accepts is refused at load. Real files, real python3.
import { execFileSync, spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { AioKV, CorruptStoreError, InvalidStoreShapeError } from "aiokv";
import { MemoryBackend } from "@aiokv/memory-backend";
import { describe, expect, it } from "vitest";
import { tempFile } from "../helpers/temp.js";

const python = spawnSync("python3", ["--version"]).status === 0;

/** A logger for the errors that delete() and quarantine() log: the tests assert them otherwise. */
const quiet = { logger: { error: (): void => {} } };

/** Runs a Python script with the file as argv[1]; resolves what it printed. */
function py(script: string, file: string): string {
  return execFileSync("python3", ["-c", script, file], { encoding: "utf8" });
}

// As Python's json.dump writes it (indent=4, ASCII escapes), with 1e400, which JSON allows and
// Python reads as inf, in place of a placeholder: Python itself writes inf as Infinity.
const writePython = `import json, sys
state = {
    "discord_id": 1234567890123456789012,
    "twitter_id": 9007199254740993,
    "twin_id": 9007199254740992,
    "ratio": 1.0,
    "caf\\u00e9": "\\u00e9t\\u00e9",
    "nested": {"a": [1, 2, {"b": None}], "c": "x"},
    "huge": 0,
    "changed": 1,
}
with open(sys.argv[1], "w") as f:
    json.dump(state, f, indent=4)`;

/** The members of that file that no test changes, exactly as Python wrote them. */
const untouched = [
  '"discord_id": 1234567890123456789012',
  '"twitter_id": 9007199254740993',
  '"twin_id": 9007199254740992',
  '"ratio": 1.0',
  '"caf\\u00e9": "\\u00e9t\\u00e9"',
  '"nested": {\n        "a": [\n            1,\n            2,\n            {\n                "b": null\n            }\n        ],\n        "c": "x"\n    }',
  '"huge": 1e400',
];

async function pythonFile(): Promise<{ file: string; text: string }> {
  const file = await tempFile();
  py(writePython, file);
  const text = (await readFile(file, "utf8")).replace('"huge": 0', '"huge": 1e400');
  await writeFile(file, text);
  for (const member of untouched) expect(text).toContain(member);
  return { file, text };
}

describe.skipIf(!python)("a key nobody changed keeps its exact text", () => {
  it("through writes to a file Python wrote: big integers, 1.0, 1e400, escapes and a pretty-printed value", async () => {
    const { file } = await pythonFile();
    const kv = new AioKV(file);
    // A read gives what JSON.parse gives: the nearest double, Infinity.
    expect(await kv.get("discord_id")).toBe(1.2345678901234568e21);
    expect(await kv.get("huge")).toBe(Infinity);
    expect(await kv.get("ratio")).toBe(1);
    await kv.set("changed", 2);
    expect(await kv.get("huge")).toBe(Infinity);
    await kv.set("added", "new");
    await kv.delete("changed");
    await kv.close();
    const written = await readFile(file, "utf8");
    for (const member of untouched) expect(written).toContain(member);
    expect(written).not.toContain('"changed"');
    expect(written).toContain('"added": "new"');
    // Python reads back the integers it wrote, each distinct, and the rest.
    const read = py(
      'import json, sys\nd = json.load(open(sys.argv[1]))\nprint(d["discord_id"], d["twitter_id"], d["twin_id"], repr(d["ratio"]), d["huge"], d["caf\\u00e9"] == "\\u00e9t\\u00e9", d["added"])',
      file,
    );
    expect(read).toBe("1234567890123456789012 9007199254740993 9007199254740992 1.0 inf True new\n");
    const reopened = new AioKV(file);
    expect(await reopened.getAll()).toStrictEqual({
      discord_id: 1.2345678901234568e21,
      twitter_id: 9007199254740992,
      twin_id: 9007199254740992,
      ratio: 1,
      café: "été",
      nested: { a: [1, 2, { b: null }], c: "x" },
      huge: Infinity,
      added: "new",
    });
    await reopened.close();
  });

  it("on the memory backend too, and a value set again is written as JSON.stringify writes it", async () => {
    const { text } = await pythonFile();
    const backend = new MemoryBackend({ text });
    const kv = new AioKV(backend);
    await kv.set("ratio", 1.5);
    await kv.set("twin_id", await kv.get("twin_id"));
    await kv.close();
    const written = await backend.read();
    expect(typeof written).toBe("string");
    for (const member of untouched.filter((line) => !/ratio|twin_id/.test(line))) expect(written).toContain(member);
    expect(written).toContain('"ratio": 1.5');
    expect(written).toContain('"twin_id": 9007199254740992');
  });

  it("keeps the file's key order and a duplicated key's last value in its first place, as JSON.parse reads it", async () => {
    const file = await tempFile();
    await writeFile(file, '{"b": 1, "10": [ 1 ,2 ], "a":"x", "b" : {"k": 1.50}}');
    const kv = new AioKV(file);
    expect(await kv.keys()).toStrictEqual(["b", "10", "a"]);
    expect(await kv.get("b")).toStrictEqual({ k: 1.5 });
    await kv.set("c", true);
    await kv.close();
    expect(await readFile(file, "utf8")).toBe('{\n  "b": {"k": 1.50},\n  "10": [ 1 ,2 ],\n  "a": "x",\n  "c": true\n}\n');
  });
});

/** `{"a": "` + `bytes` + `"}`: a document whose value holds `bytes`. */
const withBytes = (...bytes: number[]): Buffer => Buffer.concat([Buffer.from('{"a": "'), Buffer.from(bytes), Buffer.from('"}')]);

describe("a document that is not valid UTF-8", () => {
  it("is a CorruptStoreError naming the offset, on a real file, which is never rewritten", async () => {
    const file = await tempFile();
    const bytes = withBytes(0xff);
    await writeFile(file, bytes);
    const kv = new AioKV(file, quiet);
    const error = await kv.get("a").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CorruptStoreError);
    expect(error).toMatchObject({ message: `Cannot load store ${JSON.stringify(file)}: not valid UTF-8 at byte 7`, byteOffset: 7, location: file });
    await expect(kv.set("b", 1)).rejects.toThrow(`Cannot load store ${JSON.stringify(file)}: not valid UTF-8 at byte 7`);
    await expect(kv.getAll()).rejects.toBeInstanceOf(CorruptStoreError);
    expect(await kv.delete("a")).toBe(false);
    await kv.close();
    expect(Buffer.compare(await readFile(file), bytes)).toBe(0);
  });

  it("is a CorruptStoreError on the memory backend, whose bytes stay as written", async () => {
    const backend = new MemoryBackend({ name: "bytes" });
    const bytes = withBytes(0xff);
    await backend.write([bytes]);
    const kv = new AioKV(backend);
    await expect(kv.get("a")).rejects.toMatchObject({ name: "CorruptStoreError", message: 'Cannot load store "memory:bytes": not valid UTF-8 at byte 7', byteOffset: 7 });
    await expect(kv.set("b", 1)).rejects.toBeInstanceOf(CorruptStoreError);
    await kv.close();
    const read = await backend.read();
    expect(read).toBeInstanceOf(Uint8Array);
    expect(Buffer.compare(Buffer.from(read as Uint8Array), bytes)).toBe(0);
  });

  it("names the first invalid sequence: overlong, surrogate, past U+10FFFF, stray continuation, truncated", async () => {
    const valid = [0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80]; // é € 😀: 9 bytes
    for (const bad of [[0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80], [0x80], [0xe2, 0x82]]) {
      const backend = new MemoryBackend({ name: "bad" });
      await backend.write([withBytes(...valid, ...bad)]);
      const kv = new AioKV(backend);
      await expect(kv.get("a")).rejects.toMatchObject({ byteOffset: 7 + valid.length });
      await kv.close();
    }
  });

  it("with a BOM is still the CorruptStoreError of a text that is not JSON", async () => {
    const file = await tempFile();
    await writeFile(file, Buffer.from([0xef, 0xbb, 0xbf, ...Buffer.from('{"a": 1}')]));
    await expect(new AioKV(file, { lock: false }).get("a")).rejects.toThrow(`Cannot load store ${JSON.stringify(file)}: not valid JSON`);
  });
});

describe("a value nested deeper than set() accepts, loaded from a file", () => {
  const nest = (depth: number): string => `${"[".repeat(depth)}${"]".repeat(depth)}`;

  it("is an InvalidStoreShapeError naming the key and the depth; quarantine() moves the file aside", async () => {
    const file = await tempFile();
    const text = `{"ok": 1, "deep": ${nest(1001)}}`;
    await writeFile(file, text);
    const kv = new AioKV(file, quiet);
    const message = `Cannot load store ${JSON.stringify(file)}: the value of key "deep" nests 1001 levels deep, deeper than the 1000 a store accepts`;
    await expect(kv.get("ok")).rejects.toThrow(message);
    await expect(kv.get("ok")).rejects.toBeInstanceOf(InvalidStoreShapeError);
    await expect(kv.set("other", 2)).rejects.toThrow(message);
    const moved = await kv.quarantine();
    expect(moved).toMatch(/state\.json\.corrupt-/);
    expect(await readFile(moved ?? "", "utf8")).toBe(text);
    expect(await kv.keys()).toStrictEqual([]);
    await kv.close();
  });

  it("loads at 1000 levels, in a document with brackets enough to be scanned", async () => {
    const file = await tempFile();
    const many = Array.from({ length: 2000 }, (_, i) => `"k${i}": [[${i}]]`).join(", ");
    await writeFile(file, `{${many}, "deep": ${nest(1000)}, "text": "[[[[${"[".repeat(2000)}"}`);
    const kv = new AioKV(file);
    expect(await kv.get("k1999")).toStrictEqual([[1999]]);
    await kv.set("k0", 0);
    await kv.close();
    expect(await readFile(file, "utf8")).toContain(`"deep": ${nest(1000)}`);
  });
});
