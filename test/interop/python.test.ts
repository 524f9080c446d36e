// A state file moves between the Python original and this library unchanged: Python's json
// writes it, aiokv reads it; aiokv writes it, Python's json reads it. Real python3 processes.
import { execFileSync, spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { AioKV, type JsonObject } from "aiokv";
import { describe, expect, it } from "vitest";
import { tempFile } from "../helpers/temp.js";

const python = spawnSync("python3", ["--version"]).status === 0;
if (!python) console.log("python.test.ts: skipped, python3 is not installed");

const state: JsonObject = {
  last_command: "ping",
  "ключ": "значение",
  "名前": ["東京", "😀", "e\u0301"],
  "emoji_😀": { nested: [1, 2.5, -3, true, false, null] },
  seen_ran_cleanup: 1_764_000_000,
  "": "",
  quote: 'say "hi"\n\ttab \\ backslash \u0000 nul \u2028',
};

/** Runs a Python script with the file as argv[1] and the JSON text of `input` on stdin. */
function py(script: string, file: string, input = ""): string {
  return execFileSync("python3", ["-c", script, file], { input, encoding: "utf8" });
}

describe.skipIf(!python)("a state file shared with the Python original", () => {
  for (const [how, args] of [
    ["json.dump's defaults (ASCII escapes)", ""],
    ["ensure_ascii=False, indent=2 (raw UTF-8)", ", ensure_ascii=False, indent=2"],
  ] as const) {
    it(`aiokv reads a file written by Python's json.dump with ${how}`, async () => {
      const file = await tempFile();
      py(`import json, sys\nwith open(sys.argv[1], "w", encoding="utf-8") as f: json.dump(json.load(sys.stdin), f${args})`, file, JSON.stringify(state));
      const kv = new AioKV(file);
      expect(await kv.getAll()).toStrictEqual(state);
      expect(await kv.get("ключ")).toBe("значение");
      await kv.set("after", "ü");
      await kv.close();
    });
  }

  it("Python's json.load reads what aiokv writes, non-ASCII keys and values included", async () => {
    const file = await tempFile();
    const kv = new AioKV(file);
    await kv.setMany(state);
    await kv.delete("last_command");
    await kv.set("timestamp");
    await kv.close();
    const expected: JsonObject = { ...state };
    delete expected["last_command"];
    // Python loads the file as aiokv left it, and hands it back as ASCII-escaped JSON.
    const loaded = JSON.parse(py('import json, sys\nprint(json.dumps(json.load(open(sys.argv[1], encoding="utf-8"))))', file)) as JsonObject;
    expect(loaded).toStrictEqual({ ...expected, timestamp: expect.any(Number) as number });
    expect(Math.abs((loaded["timestamp"] as number) - Date.now() / 1000)).toBeLessThan(60);
    expect(await readFile(file, "utf8")).toContain('"ключ": "значение"');
  });
});
