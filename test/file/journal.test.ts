// Journal mode (journal: true) on real files: modes, symlinks, quarantine, torn records, short
// writes, processes that exit without close(), and what close() leaves for other readers.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { AioKV, CorruptStoreError, type AioKVOptions } from "@aiokv/core";
import { recordingLogger } from "@aiokv/test-suite";
import { FileBackend, type FileBackendOptions } from "@aiokv/fs-backend";
import { describe, expect, it } from "vitest";
import { aiokv, fixture } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";

const hasStrace = spawnSync("strace", ["-V"]).status === 0;
const hasPython = spawnSync("python3", ["--version"]).status === 0;
if (!hasStrace) console.log("journal.test.ts: the ENOSPC test is skipped, strace is not installed (apt-get install strace)");
if (!hasPython) console.log("journal.test.ts: the json.load test is skipped, python3 is not installed");

type Step = ["set", string, unknown] | ["big", string, number] | ["getAll"] | ["journal"] | ["close"];
interface Outcome {
  ok: boolean;
  value?: unknown;
  name?: string;
  code?: string;
  cause?: string;
}

/**
 * Runs journal-writer.mjs on `file` (a journal store unless `options.journal` is false), after
 * `shell` (sh commands such as `ulimit -f 8` or `umask 000`) or under `prefix` (strace); what each
 * step did. The process exits without close() unless a step closes the store.
 */
function writer(file: string, steps: Step[], options: { sync?: boolean; mode?: number; journal?: boolean } = {}, shell?: string, prefix: string[] = []): Outcome[] {
  const node = [process.execPath, fixture("journal-writer.mjs"), file, JSON.stringify(options), JSON.stringify(steps)];
  const argv = shell === undefined ? [...prefix, ...node] : ["sh", "-c", `${shell} && exec "$0" "$@"`, ...node];
  const { stdout, stderr, status } = spawnSync(argv[0] ?? "", argv.slice(1), { encoding: "utf8" });
  expect(status, stderr).toBe(0);
  return JSON.parse(stdout) as Outcome[];
}

const journalOf = (file: string): string => `${file}.journal`;
const modeOf = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

/** Opens a store on `file`, reads everything, closes; what it read. */
async function readAll(file: string, options: AioKVOptions & FileBackendOptions = { readOnly: true }): Promise<Record<string, unknown>> {
  const kv = new AioKV(new FileBackend(file, options), options);
  try {
    return await kv.getAll();
  } finally {
    await kv.close();
  }
}

/** What opening `file` rejects with. */
async function loadError(file: string): Promise<unknown> {
  return readAll(file).then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe("Journal mode on real files: modes", () => {
  it("the journal gets the state file's mode: 0600 for a new store, the mode option, an existing file's own mode", async () => {
    const dir = await tempDir();
    for (const [name, options, existing, expected] of [
      ["fresh.json", {}, undefined, 0o600],
      ["option.json", { mode: 0o640 }, undefined, 0o640],
      ["existing.json", {}, 0o644, 0o644],
      ["existing-option.json", { mode: 0o600 }, 0o660, 0o660],
    ] as const) {
      const file = join(dir, name);
      if (existing !== undefined) {
        await writeFile(file, '{"old":1}');
        await chmod(file, existing);
      }
      const kv = new AioKV(new FileBackend(file, options), { journal: true });
      await kv.set("a", 1);
      expect({ name, journal: await modeOf(journalOf(file)) }).toStrictEqual({ name, journal: expected });
      await kv.close();
      // Compaction rewrote the file with its mode.
      expect({ name, file: await modeOf(file) }).toStrictEqual({ name, file: expected });
    }
  });

  it("under a permissive umask (000) a new journal is still private (0600); under a strict one (077) the mode option is kept", async () => {
    const dir = await tempDir();
    const open = join(dir, "open.json");
    writer(open, [["set", "a", 1]], {}, "umask 000");
    expect(await modeOf(journalOf(open))).toBe(0o600);
    const strict = join(dir, "strict.json");
    writer(strict, [["set", "a", 1]], { mode: 0o640 }, "umask 077");
    expect(await modeOf(journalOf(strict))).toBe(0o640);
    // Compaction by the next owner, under the same umask, keeps the modes.
    writer(open, [["getAll"], ["close"]], {}, "umask 000");
    writer(strict, [["getAll"], ["close"]], { mode: 0o640 }, "umask 077");
    expect([await modeOf(open), await modeOf(strict)]).toStrictEqual([0o600, 0o640]);
    expect((await readdir(dir)).sort()).toStrictEqual(["open.json", "open.json.lock", "strict.json", "strict.json.lock"]);
  });
});

describe("Journal mode on real files: a symlinked state file", () => {
  it("the journal sits beside the target, with its mode and its lock, compaction rewrites the target, and the link stays a link", async () => {
    const dir = await tempDir();
    await mkdir(join(dir, "real"));
    const target = join(dir, "real", "target.json");
    await writeFile(target, '{"a":1}');
    await chmod(target, 0o640);
    const link = join(dir, "link.json");
    await symlink("real/target.json", link);
    writer(link, [["set", "b", 2]]);
    // The journal beside the target, as the owner lock is: every path to the file finds both.
    expect((await readdir(dir)).sort()).toStrictEqual(["link.json", "real"]);
    expect((await readdir(join(dir, "real"))).sort()).toStrictEqual(["target.json", "target.json.journal", "target.json.lock"]);
    expect(await modeOf(journalOf(target))).toBe(0o640);
    expect(new FileBackend(link).journalLocation).toBe(journalOf(target));
    // The target alone is the document as of the last rewrite; the journal holds the rest.
    expect(JSON.parse(await readFile(target, "utf8"))).toStrictEqual({ a: 1 });
    expect(await readAll(link)).toStrictEqual({ a: 1, b: 2 });
    expect(await readAll(target)).toStrictEqual({ a: 1, b: 2 });
    const kv = new AioKV(new FileBackend(link), { journal: true });
    await kv.set("c", 3);
    await kv.close();
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect((await readdir(dir)).sort()).toStrictEqual(["link.json", "real"]);
    expect((await readdir(join(dir, "real"))).sort()).toStrictEqual(["target.json", "target.json.lock"]);
    expect(JSON.parse(await readFile(target, "utf8"))).toStrictEqual({ a: 1, b: 2, c: 3 });
    expect(await modeOf(target)).toBe(0o640);
  });

  it("a change acknowledged through a link, then a kill: a store opened by the target's own path applies it, and writes after it", async () => {
    const dir = await tempDir();
    await mkdir(join(dir, "real"));
    const target = join(dir, "real", "target.json");
    const link = join(dir, "link.json");
    await symlink("real/target.json", link);
    writer(link, [["set", "a", 1], ["close"]]);
    // No close: the process exits with its last change in the journal only.
    writer(link, [["set", "b", 2]]);
    expect(JSON.parse(await readFile(target, "utf8"))).toStrictEqual({ a: 1 });
    const kv = new AioKV(new FileBackend(target), { journal: false });
    await kv.set("c", 3);
    await kv.close();
    expect(await readAll(link)).toStrictEqual({ a: 1, b: 2, c: 3 });
    expect(JSON.parse(await readFile(target, "utf8"))).toStrictEqual({ a: 1, b: 2, c: 3 });
  });
});

describe("Journal mode on real files: quarantine()", () => {
  for (const [what, damage] of [
    ["a damaged journal line", async (file: string) => writeFile(journalOf(file), (await readFile(journalOf(file), "utf8")).replace('"b"', '"b"}{'))],
    ["a document that does not load", (file: string) => writeFile(file, '{"a": tru')],
  ] as const) {
    it(`${what}: quarantine() moves the document and the journal aside together, and the store starts empty`, async () => {
      const dir = await tempDir();
      const file = join(dir, "state.json");
      // A document (a) and a journal (b, c) left by a process that did not close.
      writer(file, [["set", "a", 1], ["close"]]);
      writer(file, [
        ["set", "b", 2],
        ["set", "c", 3],
      ]);
      await damage(file);
      const [document, journal] = [await readFile(file, "utf8"), await readFile(journalOf(file), "utf8")];
      expect(await loadError(file)).toBeInstanceOf(CorruptStoreError);
      const logger = recordingLogger();
      const kv = new AioKV(new FileBackend(file), { journal: true, logger });
      const moved = await kv.quarantine();
      expect(moved).toMatch(/\/state\.json\.corrupt-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z$/);
      const stamp = (moved ?? "").slice(file.length + 1);
      expect((await readdir(dir)).sort()).toStrictEqual(["state.json.journal." + stamp, "state.json.lock", "state.json." + stamp].sort());
      expect([await readFile(`${file}.${stamp}`, "utf8"), await readFile(`${journalOf(file)}.${stamp}`, "utf8")]).toStrictEqual([document, journal]);
      expect(await kv.getAll()).toStrictEqual({});
      await kv.set("fresh", true);
      await kv.close();
      expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ fresh: true });
      expect(await readdir(dir)).not.toContain("state.json.journal");
    });
  }
});

describe("Journal mode on real files: torn and damaged records", () => {
  it("a journal cut at every byte offset of its last record loads the records before it; the next owner's first write folds them into the file, the torn tail dropped", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    writer(file, [["set", "doc", "in the file"], ["close"]]);
    // The last record's value is multi-byte UTF-8, so that cuts fall inside characters too.
    writer(file, [
      ["set", "a", 1],
      ["set", "b", { nested: [1, 2, { deep: true }] }],
      ["set", "c", "é 日本 🙂 \u2028"],
    ]);
    const document = await readFile(file);
    const journal = await readFile(journalOf(file));
    const start = journal.lastIndexOf(0x0a, journal.length - 2) + 1;
    const before = { doc: "in the file", a: 1, b: { nested: [1, 2, { deep: true }] } };
    const after = { ...before, c: "é 日本 🙂 \u2028" };
    expect(await readAll(file)).toStrictEqual(after);
    expect(journal.length - start).toBeGreaterThan(20);
    const plant = async (cut: number): Promise<void> => {
      await writeFile(file, document);
      await writeFile(journalOf(file), journal.subarray(0, cut));
    };
    for (let cut = start; cut <= journal.length; cut++) {
      const expected = cut === journal.length ? after : before;
      // Read as a follower reads it, and by a whole-file owner; what that owner leaves reads the same.
      await plant(cut);
      expect({ cut, read: await readAll(file) }).toStrictEqual({ cut, read: expected });
      expect({ cut, read: await readAll(file, { sync: false }) }).toStrictEqual({ cut, read: expected });
      expect({ cut, read: await readAll(file) }).toStrictEqual({ cut, read: expected });
      // An owner in journal mode never appends to the journal it found (sync: false, for speed):
      // its first write folds the complete records into the file, the torn tail dropped with that
      // journal, and starts its own, a header naming the file, then the new record.
      await plant(cut);
      const kv = new AioKV(new FileBackend(file, { sync: false }), { journal: true });
      await kv.set("next", cut);
      const folded = await readFile(file);
      expect({ cut, read: JSON.parse(folded.toString("utf8")) as unknown }).toStrictEqual({ cut, read: expected });
      const base = `sha256:${createHash("sha256").update(folded).digest("hex")}`;
      expect({ cut, journal: await readFile(journalOf(file), "utf8") }).toStrictEqual({
        cut,
        journal: `${JSON.stringify({ aiokv: "journal", version: 1, base })}\n{"set":[["next",${cut}]]}\n`,
      });
      await kv.close();
      expect({ cut, read: JSON.parse(await readFile(file, "utf8")) as unknown }).toStrictEqual({ cut, read: { ...expected, next: cut } });
    }
  });

  it("a damaged record before the last is a CorruptStoreError naming the journal and the line; nothing is rewritten", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    writer(file, [
      ["set", "a", 1],
      ["set", "b", 2],
      ["set", "c", 3],
    ]);
    const journal = await readFile(journalOf(file), "utf8");
    const lines = journal.split("\n");
    // Line 2 (a's record) and line 3 (b's) damaged in turn: cut short, or with a byte changed.
    for (const line of [2, 3]) {
      for (const damage of [(text: string) => text.slice(0, -3), (text: string) => text.replace("set", "sXt")]) {
        const damaged = lines.map((text, index) => (index === line - 1 ? damage(text) : text)).join("\n");
        await writeFile(journalOf(file), damaged);
        const error = await loadError(file);
        expect(error).toBeInstanceOf(CorruptStoreError);
        expect((error as CorruptStoreError).message).toMatch(new RegExp(`^Cannot load journal ${JSON.stringify(journalOf(file)).replaceAll("/", "\\/")}: line ${line} is damaged: `));
        expect((error as CorruptStoreError).position).toStrictEqual({ line, column: 1 });
        // An owner is refused too, and writes nothing.
        const kv = new AioKV(new FileBackend(file), { journal: true });
        await expect(kv.set("d", 4)).rejects.toBeInstanceOf(CorruptStoreError);
        await kv.close();
        expect(await readFile(journalOf(file), "utf8")).toBe(damaged);
        expect(await readdir(dir)).not.toContain("state.json");
      }
    }
  });
});

describe("Journal mode on real files: a write that does not fit", () => {
  it("EFBIG mid-append (ulimit -f): set() rejects, the journal is cut back to what memory holds, the next small write succeeds, and a reopen sees exactly the acknowledged changes", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    // Files may not grow past 8 KiB: a 20 KB record is written in part, then refused.
    const results = writer(
      file,
      [["set", "a", "first"], ["journal"], ["big", "big", 20_000], ["journal"], ["getAll"], ["set", "b", "second"], ["journal"], ["getAll"]],
      {},
      "ulimit -f 8",
    );
    const [setA, journalA, big, journalAfter, memoryAfter, setB, journalB, memoryB] = results;
    expect(setA).toStrictEqual({ ok: true });
    expect(big).toStrictEqual({ ok: false, name: "StoreIOError", code: "EFBIG", cause: "EFBIG" });
    // The part written is gone: the journal and memory agree.
    expect(journalAfter?.value).toBe(journalA?.value);
    expect(memoryAfter?.value).toStrictEqual({ a: "first" });
    expect(setB).toStrictEqual({ ok: true });
    expect(journalB?.value).toBe(`${String(journalA?.value)}{"set":[["b","second"]]}\n`);
    expect(memoryB?.value).toStrictEqual({ a: "first", b: "second" });
    expect(await readAll(file)).toStrictEqual({ a: "first", b: "second" });
    expect(await readAll(file, { journal: true })).toStrictEqual({ a: "first", b: "second" });
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ a: "first", b: "second" });
  });

  it.skipIf(!hasStrace)(
    "ENOSPC on every write of a journal store (strace): folding the journal it found into the file, starting its own journal, appending to it: set() rejects, the file, the journal and memory keep what was acknowledged; with space back, the next process writes",
    async () => {
      const dir = await tempDir();
      const logs = await tempDir();
      const file = join(dir, "state.json");
      const noSpace = { ok: false, name: "StoreIOError", code: "ENOSPC", cause: "ENOSPC" };
      /**
       * strace arguments that fail, with ENOSPC, every write at an offset: the writes of a temp
       * file renamed into place once written (the file's rewrite, a new journal), and the owner
       * lock's refresh, whose failure only lets the lock age; or, given `path`, every write to that
       * file (the journal, where appends go). Only the calls that fail are traced, into `log` (-y:
       * with their files).
       */
      const full = (log: string, path?: string): string[] => {
        const calls = path === undefined ? "pwrite64,pwritev,pwritev2" : "write,writev,pwrite64,pwritev,pwritev2";
        return ["strace", "-f", "-qq", "-y", "-o", join(logs, log), ...(path === undefined ? [] : ["-P", path]), "-e", `trace=${calls}`, "-e", `inject=${calls}:error=ENOSPC`];
      };
      /** The writes that failed in `log`, besides the lock's: the calls, and their files (names, a temp file's pid and random part as <temp>). */
      const failures = async (log: string): Promise<Array<{ call: string; name: string }>> => {
        const text = await readFile(join(logs, log), "utf8");
        const calls = [...text.matchAll(/^\d+ +(\w+)\(\d+<([^>]+)>/gm)].map((match) => ({ call: match[1] ?? "", path: match[2] ?? "" }));
        return calls
          .filter(({ path }) => !path.includes(".lock/"))
          .map(({ call, path }) => ({ call, name: basename(path).replace(/\.\d+\.[0-9a-f]{8}\.aiokv\.tmp$/, ".<temp>") }));
      };
      /** The files whose writes failed in `log`, in the order they first did. */
      const failedIn = async (log: string): Promise<string[]> => [...new Set((await failures(log)).map(({ name }) => name))];
      writer(file, [["set", "a", "first"]]);
      const acknowledged = await readFile(journalOf(file), "utf8");

      // A new process never appends to the journal it finds: taking the lock, it copies that one
      // into a new file in its place, which fails and is given up (the journal stays as it is, the
      // lock taken); its first write folds the journal into the file first, and fails there.
      const fold = writer(file, [["set", "b", "refused"], ["getAll"], ["journal"], ["set", "c", "refused too"], ["getAll"]], {}, undefined, full("fold"));
      expect(fold).toStrictEqual([noSpace, { ok: true, value: { a: "first" } }, { ok: true, value: acknowledged }, noSpace, { ok: true, value: { a: "first" } }]);
      expect(await failedIn("fold")).toStrictEqual([".state.json.journal.<temp>", ".state.json.<temp>"]);
      expect(await readFile(journalOf(file), "utf8")).toBe(acknowledged);
      expect((await readdir(dir)).sort()).toStrictEqual(["state.json.journal", "state.json.lock"]);
      expect(await readAll(file)).toStrictEqual({ a: "first" });

      // With space back for whole files, the next process folds it and starts its own journal;
      // then every append to that journal fails, and the journal is cut back to what memory holds.
      const append = writer(
        file,
        [["set", "b", "started"], ["journal"], ["set", "c", "refused"], ["getAll"], ["journal"], ["set", "c", "refused too"], ["getAll"]],
        {},
        undefined,
        full("append", journalOf(file)),
      );
      const started = append[1]?.value;
      expect(started).toMatch(/^\{"aiokv":"journal","version":1,"base":"sha256:[0-9a-f]{64}"\}\n\{"set":\[\["b","started"\]\]\}\n$/);
      const ab = { a: "first", b: "started" };
      expect(append).toStrictEqual([{ ok: true }, { ok: true, value: started }, noSpace, { ok: true, value: ab }, { ok: true, value: started }, noSpace, { ok: true, value: ab }]);
      // Each append, through the descriptor it keeps open (O_APPEND: a write at no offset), which
      // strace -P matches by the path it resolves to; lock()'s copy of the journal and the new one are
      // temp files, never failed here.
      const appends = await failures("append");
      expect(appends.length).toBeGreaterThanOrEqual(2);
      expect(new Set(appends.map(({ call, name }) => `${/^writev?$/.test(call) ? "append" : call} ${name}`))).toStrictEqual(new Set(["append state.json.journal"]));
      expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ a: "first" });
      expect(await readFile(journalOf(file), "utf8")).toBe(started);
      expect(await readAll(file)).toStrictEqual(ab);

      // A process that finds no journal starts one: a new file, which fails, and none is left.
      writer(file, [["getAll"], ["close"]]);
      const begin = writer(file, [["set", "c", "refused"], ["getAll"], ["journal"]], {}, undefined, full("start"));
      expect(begin).toStrictEqual([noSpace, { ok: true, value: ab }, { ok: true, value: null }]);
      expect(await failedIn("start")).toStrictEqual([".state.json.journal.<temp>"]);
      expect((await readdir(dir)).sort()).toStrictEqual(["state.json", "state.json.lock"]);
      expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual(ab);

      expect(writer(file, [["set", "d", "space is back"], ["getAll"]])).toStrictEqual([{ ok: true }, { ok: true, value: { ...ab, d: "space is back" } }]);
      expect(await readAll(file)).toStrictEqual({ ...ab, d: "space is back" });
    },
  );
});

describe("Journal mode on real files: a process that exits without close()", () => {
  it("leaves a journal, which the next open applies: the aiokv command, a whole-file store, a journal store", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    writer(file, [
      ["set", "a", 1],
      ["set", "b", { two: 2 }],
      ["set", "c", "three"],
    ]);
    expect((await readdir(dir)).sort()).toStrictEqual(["state.json.journal", "state.json.lock"]);
    const abc = { a: 1, b: { two: 2 }, c: "three" };
    // The command reads it (and, reading, leaves it as it is).
    expect(JSON.parse((await aiokv("list", file, "--json")).stdout)).toStrictEqual(abc);
    expect(await aiokv("get", file, "c")).toMatchObject({ code: 0, stdout: '"three"\n' });
    expect((await readdir(dir)).sort()).toStrictEqual(["state.json.journal", "state.json.lock"]);
    // A whole-file store reads it, and its first write folds it into the file.
    const whole = new AioKV(new FileBackend(file));
    expect(await whole.getAll()).toStrictEqual(abc);
    await whole.set("d", 4);
    expect((await readdir(dir)).sort()).toStrictEqual(["state.json", "state.json.lock"]);
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ ...abc, d: 4 });
    await whole.close();
    // Again, now over a document: a journal store applies it, and close() folds it.
    writer(file, [["set", "e", [5]]]);
    expect((await readdir(dir)).sort()).toStrictEqual(["state.json", "state.json.journal", "state.json.lock"]);
    const journaled = new AioKV(new FileBackend(file), { journal: true });
    expect(await journaled.getAll()).toStrictEqual({ ...abc, d: 4, e: [5] });
    await journaled.close();
    expect((await readdir(dir)).sort()).toStrictEqual(["state.json", "state.json.lock"]);
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ ...abc, d: 4, e: [5] });
  });
});

describe("Journal mode on real files: close()", () => {
  it.skipIf(!hasPython)("leaves one plain JSON file, which JSON.parse and Python's json.load read whole", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const kv = new AioKV(new FileBackend(file), { journal: true });
    await kv.set("gone", 0);
    await kv.clear();
    await Promise.all([kv.set("café", "é 日本 🙂"), kv.set("nested", { list: [1, 2.5, null, true], "\u2028": "line separator" }), kv.set("n", 1e21)]);
    await kv.delete("n");
    await kv.setMany({ big: "x".repeat(70_000), "with \"quotes\"": "and \\ backslash" });
    await kv.set("last", "one");
    const expected = await kv.getAll();
    await kv.close();
    expect((await readdir(dir)).sort()).toStrictEqual(["state.json", "state.json.lock"]);
    const text = await readFile(file, "utf8");
    expect(JSON.parse(text)).toStrictEqual(expected);
    const python = execFileSync("python3", ["-c", "import json, sys; print(json.dumps(json.load(open(sys.argv[1], encoding='utf-8'))))", file], { encoding: "utf8" });
    expect(JSON.parse(python)).toStrictEqual(expected);
  });
});
