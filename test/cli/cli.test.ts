// The aiokv command, run as a real process on real files.
import { execFileSync } from "node:child_process";
import { copyFile, readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { AioKV } from "aiokv";
import { describe, expect, it } from "vitest";
import { aiokv, aiokvManifest, fixture } from "../helpers/processes.js";
import { tempFile } from "../helpers/temp.js";

const manifest = JSON.parse(await readFile(aiokvManifest(), "utf8")) as { version: string };

/** Sets `entries` one write each in a journal store in another process, which exits without close(): its journal stays. */
function leaveJournal(file: string, entries: Record<string, unknown>): void {
  const steps = Object.entries(entries).map(([key, value]) => ["set", key, value]);
  execFileSync(process.execPath, [fixture("journal-writer.mjs"), file, "{}", JSON.stringify(steps)]);
}

const listed = async (file: string): Promise<string[]> => (await readdir(dirname(file))).sort();
const hint = "(aiokv quarantine moves it aside and keeps it; aiokv clear deletes it)\n";

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

  it("get, list and check read the file and its journal, and leave both as they are", async () => {
    const file = await tempFile();
    expect(await aiokv("set", file, "a", "1")).toMatchObject({ code: 0 });
    leaveJournal(file, { b: [2], c: "three" });
    expect(await listed(file)).toStrictEqual(["state.json", "state.json.journal", "state.json.lock"]);
    const journal = await readFile(`${file}.journal`, "utf8");
    expect(await aiokv("get", file, "c")).toStrictEqual({ code: 0, stdout: '"three"\n', stderr: "" });
    expect(await aiokv("list", file)).toStrictEqual({ code: 0, stdout: "a\nb\nc\n", stderr: "" });
    expect(JSON.parse((await aiokv("list", file, "--json")).stdout)).toStrictEqual({ a: 1, b: [2], c: "three" });
    expect(await aiokv("check", file)).toStrictEqual({
      code: 0,
      stdout: `${file}: a valid store of 3 keys, with a journal of 2 records that applies (${file}.journal; aiokv compact folds it into the file)\n`,
      stderr: "",
    });
    // Only the journal: a store whose file was never written is valid too.
    const fresh = join(dirname(file), "fresh.json");
    leaveJournal(fresh, { x: 1 });
    expect(await aiokv("check", fresh)).toMatchObject({ code: 0, stdout: `${fresh}: a valid store of 1 key, with a journal of 1 record that applies (${fresh}.journal; aiokv compact folds it into the file)\n` });
    expect(await readFile(`${file}.journal`, "utf8")).toBe(journal);
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ a: 1 });
  });

  it("check fails on a damaged journal line, naming the journal and the line; says when a torn last line is dropped and when a stale journal is skipped", async () => {
    const file = await tempFile();
    leaveJournal(file, { a: 1, b: 2, c: 3 });
    const journal = await readFile(`${file}.journal`, "utf8");
    // A torn last line: a write a crash cut short, dropped.
    await writeFile(`${file}.journal`, `${journal}{"set":[["d",`);
    expect(await aiokv("check", file)).toMatchObject({
      code: 0,
      stdout: `${file}: a valid store of 3 keys, with a journal of 3 records that applies (${file}.journal; aiokv compact folds it into the file); its last line, cut short by a crash, is dropped\n`,
    });
    // A complete line that is not a record: the store refuses it, and so does check.
    const lines = journal.split("\n");
    await writeFile(`${file}.journal`, lines.map((line, index) => (index === 2 ? line.replace("]]", "]") : line)).join("\n"));
    const damaged = await aiokv("check", file);
    expect(damaged.code).toBe(1);
    expect(damaged.stdout).toBe("");
    expect(damaged.stderr).toMatch(new RegExp(`^aiokv: Cannot load journal ${JSON.stringify(`${file}.journal`).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: line 3 is damaged: not valid JSON`));
    expect(damaged.stderr.endsWith(hint)).toBe(true);
    for (const command of [["get", "a"], ["list"], ["compact"], ["set", "a", "2"]]) {
      expect(await aiokv(command[0] ?? "", file, ...command.slice(1))).toMatchObject({ code: 1, stderr: expect.stringContaining("line 3 is damaged") as string });
    }
    // A stale journal: one a rewrite already folded in (as a crash between the rename and the removal leaves).
    await writeFile(`${file}.journal`, journal);
    expect(await aiokv("compact", file)).toMatchObject({ code: 0 });
    await writeFile(`${file}.journal`, journal);
    expect(await aiokv("check", file)).toStrictEqual({
      code: 0,
      stdout: `${file}: a valid store of 3 keys, with a stale journal ${file}.journal (from before the file's last rewrite, which holds it), which is skipped\n`,
      stderr: "",
    });
    expect(await aiokv("compact", file)).toStrictEqual({
      code: 0,
      stdout: `compacted ${file}: removed a stale journal, already in the file; the file holds the store's 3 keys\n`,
      stderr: "",
    });
    expect(await listed(file)).toStrictEqual(["state.json", "state.json.lock"]);
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ a: 1, b: 2, c: 3 });
  });

  it("compact folds the journal into the file, which alone then holds the store", async () => {
    const file = await tempFile();
    expect(await aiokv("set", file, "a", "1")).toMatchObject({ code: 0 });
    leaveJournal(file, { b: 2, c: { three: 3 } });
    expect(await aiokv("compact", file)).toStrictEqual({
      code: 0,
      stdout: `compacted ${file}: folded the journal's 2 records into the file, which holds the store's 3 keys; the journal is removed\n`,
      stderr: "",
    });
    expect(await listed(file)).toStrictEqual(["state.json", "state.json.lock"]);
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ a: 1, b: 2, c: { three: 3 } });
    expect(await aiokv("compact", file)).toStrictEqual({ code: 0, stdout: `${file}: no journal, nothing to compact; the file holds the store's 3 keys\n`, stderr: "" });
    leaveJournal(file, { d: 4 });
    expect(await aiokv("compact", file, "--no-sync")).toMatchObject({ code: 0, stdout: `compacted ${file}: folded the journal's 1 record into the file, which holds the store's 4 keys; the journal is removed\n` });
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ a: 1, b: 2, c: { three: 3 }, d: 4 });
    // A journal without a file: the file is written.
    const fresh = join(dirname(file), "fresh.json");
    leaveJournal(fresh, { x: 1 });
    expect(await aiokv("compact", fresh)).toMatchObject({ code: 0, stdout: `compacted ${fresh}: folded the journal's 1 record into the file, which holds the store's 1 key; the journal is removed\n` });
    expect(JSON.parse(await readFile(fresh, "utf8"))).toStrictEqual({ x: 1 });
    // An empty journal, as a kill between its creation and its first write leaves it: removed.
    await writeFile(`${fresh}.journal`, "");
    expect(await aiokv("check", fresh)).toMatchObject({ code: 0, stdout: `${fresh}: a valid store of 1 key, with an empty journal ${fresh}.journal (no records; aiokv compact removes it)\n` });
    expect(await aiokv("compact", fresh)).toMatchObject({ code: 0, stdout: `compacted ${fresh}: removed an empty journal (no records); the file holds the store's 1 key\n` });
    expect(await listed(file)).toStrictEqual(["fresh.json", "fresh.json.lock", "state.json", "state.json.lock"]);
    // A mistyped path is not a store: nothing is created.
    const missing = join(dirname(file), "missing.json");
    expect(await aiokv("compact", missing)).toStrictEqual({ code: 1, stdout: "", stderr: `aiokv: Cannot compact store ${JSON.stringify(missing)}: the file does not exist\n` });
    expect(await listed(file)).toStrictEqual(["fresh.json", "fresh.json.lock", "state.json", "state.json.lock"]);
    expect(await aiokv("compact", file, "extra")).toMatchObject({ code: 2, stderr: expect.stringContaining("compact: expected no more arguments after the store") as string });
  });

  it("compact respects the owner lock: a program that has the store open keeps its journal", async () => {
    const file = await tempFile();
    await using kv = new AioKV(file, { journal: true });
    await kv.set("a", 1);
    const refused = await aiokv("compact", file);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^aiokv: Cannot own store .*: it is locked by process /);
    expect(await listed(file)).toStrictEqual(["state.json.journal", "state.json.lock"]);
    // Reads go on, journal included.
    expect(await aiokv("get", file, "a")).toMatchObject({ code: 0, stdout: "1\n" });
  });

  it("set folds a journal into the file as it writes; quarantine moves the journal with the file", async () => {
    const file = await tempFile();
    leaveJournal(file, { a: 1, b: 2 });
    expect(await aiokv("set", file, "c", "3")).toMatchObject({ code: 0 });
    expect(await listed(file)).toStrictEqual(["state.json", "state.json.lock"]);
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ a: 1, b: 2, c: 3 });
    leaveJournal(file, { d: 4 });
    await writeFile(file, "{");
    await copyFile(`${file}.journal`, `${file}.journal.kept`);
    const ran = await aiokv("quarantine", file);
    expect(ran.code).toBe(0);
    const [, moved, journal] = /^moved .* to (.*), and its journal to (.*)\n$/.exec(ran.stdout) ?? [];
    expect(moved).toMatch(/state\.json\.corrupt-[^/]*Z$/);
    expect(journal).toBe(`${file}.journal${(moved ?? "").slice(file.length)}`);
    expect(await readFile(moved ?? "", "utf8")).toBe("{");
    expect(await readFile(journal ?? "", "utf8")).toBe(await readFile(`${file}.journal.kept`, "utf8"));
    expect(await aiokv("list", file)).toStrictEqual({ code: 0, stdout: "", stderr: "" });
  });

  it("--help and --version", async () => {
    expect(await aiokv("--help")).toMatchObject({ code: 0, stdout: expect.stringContaining("Commands:") as string });
    expect(await aiokv("--version")).toStrictEqual({ code: 0, stdout: `${manifest.version}\n`, stderr: "" });
  });
});
