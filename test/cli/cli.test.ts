// The aiokv command, run as a real process on real files.
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AioKV } from "aiokv";
import { describe, expect, it } from "vitest";
import { aiokv, aiokvManifest } from "../helpers/processes.js";
import { tempFile } from "../helpers/temp.js";

const manifest = JSON.parse(await readFile(aiokvManifest(), "utf8")) as { version: string };

describe("aiokv command", () => {
  it("set, get, list, delete and clear a real file", async () => {
    const file = await tempFile();
    expect(await aiokv("set", file, "last_command", '"ping"')).toStrictEqual({ code: 0, stdout: "", stderr: "" });
    expect(await aiokv("set", file, "seen", "[1, 2]")).toMatchObject({ code: 0 });
    expect(await aiokv("set", file, "ran_at")).toMatchObject({ code: 0 });
    expect(await aiokv("get", file, "last_command")).toStrictEqual({ code: 0, stdout: '"ping"\n', stderr: "" });
    expect(await aiokv("get", file, "seen")).toMatchObject({ code: 0, stdout: "[\n  1,\n  2\n]\n" });
    const stamp = Number((await aiokv("get", file, "ran_at")).stdout);
    expect(Math.abs(stamp - Date.now() / 1000)).toBeLessThan(60);
    expect(await aiokv("list", file)).toMatchObject({ code: 0, stdout: "last_command\nseen\nran_at\n" });
    const listed = await aiokv("list", file, "--json");
    expect(JSON.parse(listed.stdout)).toStrictEqual({ last_command: "ping", seen: [1, 2], ran_at: stamp });
    expect(await aiokv("delete", file, "seen")).toMatchObject({ code: 0 });
    expect(await aiokv("delete", file, "seen")).toMatchObject({ code: 0 });
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ last_command: "ping", ran_at: stamp });
    expect(await aiokv("clear", file)).toMatchObject({ code: 0 });
    await expect(readFile(file)).rejects.toMatchObject({ code: "ENOENT" });
    expect(await aiokv("list", file)).toStrictEqual({ code: 0, stdout: "", stderr: "" });
  });

  it("get of an absent key exits 1 and says so", async () => {
    const file = await tempFile();
    await aiokv("set", file, "a", "1");
    expect(await aiokv("get", file, "b")).toStrictEqual({ code: 1, stdout: "", stderr: `aiokv: key "b" is not in ${JSON.stringify(file)}\n` });
  });

  it("check passes a valid store and names line and column of a corrupt one, without a stack trace", async () => {
    const file = await tempFile();
    await aiokv("set", file, "a", "1");
    expect(await aiokv("check", file)).toStrictEqual({ code: 0, stdout: `${file}: a valid store of 1 key\n`, stderr: "" });
    await writeFile(file, '{\n  "a": 1,\n  "b": tru\n}\n');
    const checked = await aiokv("check", file);
    expect(checked.code).toBe(1);
    expect(checked.stderr).toBe(
      `aiokv: Cannot load store ${JSON.stringify(file)}: not valid JSON at line 3, column 8 (invalid symbol)\n` +
        "(aiokv quarantine moves it aside and keeps it; aiokv clear deletes it)\n",
    );
    await writeFile(file, "[1, 2]");
    expect(await aiokv("check", file)).toMatchObject({
      code: 1,
      stderr: expect.stringContaining("expected a JSON object, found an array") as string,
    });
    for (const command of [["get", "a"], ["list"], ["set", "a", "2"]]) {
      const ran = await aiokv(command[0] ?? "", file, ...command.slice(1));
      expect(ran.code).toBe(1);
      expect(ran.stderr).not.toMatch(/\n\s+at /);
    }
    expect(await readFile(file, "utf8")).toBe("[1, 2]");
  });

  it("check of a missing file says so and exits 1; an empty store passes", async () => {
    const file = await tempFile();
    expect(await aiokv("check", file)).toStrictEqual({
      code: 1,
      stdout: "",
      stderr: `aiokv: Cannot check store ${JSON.stringify(file)}: the file does not exist\n`,
    });
    await writeFile(file, "{}");
    expect(await aiokv("check", file)).toStrictEqual({ code: 0, stdout: `${file}: a valid store of 0 keys\n`, stderr: "" });
  });

  it("check reports a value nested deeper than the store accepts, naming the key", async () => {
    const file = await tempFile();
    await writeFile(file, `{"ok": 1, "deep": ${"[".repeat(1001)}${"]".repeat(1001)}}`);
    expect(await aiokv("check", file)).toStrictEqual({
      code: 1,
      stdout: "",
      stderr:
        `aiokv: Cannot load store ${JSON.stringify(file)}: the value of key "deep" nests 1001 levels deep, deeper than the 1000 a store accepts\n` +
        "(aiokv quarantine moves it aside and keeps it; aiokv clear deletes it)\n",
    });
  });

  it("quarantine moves a corrupt file aside and leaves an empty store", async () => {
    const file = await tempFile();
    await writeFile(file, "{");
    const ran = await aiokv("quarantine", file);
    expect(ran.code).toBe(0);
    const moved = /^moved .* to (.*)\n$/.exec(ran.stdout)?.[1] ?? "";
    expect(moved).toMatch(/state\.json\.corrupt-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z$/);
    expect(await readFile(moved, "utf8")).toBe("{");
    expect(await aiokv("list", file)).toStrictEqual({ code: 0, stdout: "", stderr: "" });
    expect(await aiokv("quarantine", file)).toMatchObject({ code: 0, stdout: `${file}: no file, nothing moved\n` });
  });

  it("changes respect the owner lock; reads do not need it", async () => {
    const file = await tempFile();
    await using kv = new AioKV(file);
    await kv.set("a", 1);
    const refused = await aiokv("set", file, "a", "2");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      new RegExp(`^aiokv: Cannot own store ${JSON.stringify(file).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: it is locked by process ${process.pid} on `),
    );
    expect(await aiokv("delete", file, "a")).toMatchObject({ code: 1 });
    expect(await aiokv("clear", file)).toMatchObject({ code: 1 });
    expect(await aiokv("get", file, "a")).toMatchObject({ code: 0, stdout: "1\n" });
    expect(await kv.get("a")).toBe(1);
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ a: 1 });
  });

  it("I/O errors are one line: a parent path that is a file", async () => {
    const file = await tempFile();
    await writeFile(file, "{}");
    const ran = await aiokv("set", join(file, "inner.json"), "a", "1");
    expect(ran.code).toBe(1);
    expect(ran.stderr).toMatch(/^aiokv: Cannot (lock|write) store ".*inner\.json": ENOTDIR: not a directory/);
    expect(ran.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("wrong usage exits 2 with the usage; a value that is not JSON says how to quote it", async () => {
    const file = await tempFile();
    for (const args of [[], ["get"], ["get", file], ["frobnicate", file], ["list", file, "extra"], ["--bogus"]]) {
      const ran = await aiokv(...args);
      expect({ args, code: ran.code }).toStrictEqual({ args, code: 2 });
      expect(ran.stderr).toContain("Usage: aiokv <command> <store>");
    }
    expect(await aiokv("set", file, "a", "hello")).toStrictEqual({
      code: 2,
      stdout: "",
      stderr: `aiokv: set: the value is not JSON: hello (a string needs quotes: '"hello"')\n`,
    });
    expect(await readdir(join(file, ".."))).toStrictEqual([]);
  });

  it("--help and --version", async () => {
    expect(await aiokv("--help")).toMatchObject({ code: 0, stdout: expect.stringContaining("Commands:") as string });
    expect(await aiokv("--version")).toStrictEqual({ code: 0, stdout: `${manifest.version}\n`, stderr: "" });
  });
});
