import { execFileSync, spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp.js";
import { fixture } from "../helpers/processes.js";

const setOne = fixture("set-one.mjs");
const hasStrace = spawnSync("strace", ["-V"]).status === 0;
if (!hasStrace) console.log("Skipping the fsync-order tests: strace is not installed (apt-get install strace)");

type Event = { call: "fsync"; path: string } | { call: "rename"; from: string; to: string } | { call: "resolved" };

/** Runs one awaited set under strace; the file-system calls on `dir`, in the order they completed. */
async function traceOneSet(sync: boolean): Promise<{ events: Event[]; dir: string; file: string }> {
  const dir = await tempDir();
  const file = join(dir, "state.json");
  const log = join(dir, "..", `${dir.split("/").pop()}.strace`);
  execFileSync("strace", ["-f", "-qq", "-o", log, "-e", "trace=openat,fsync,fdatasync,rename,renameat,renameat2,access", "node", setOne, file, sync ? "1" : "0"]);
  const fds = new Map<string, string>();
  const unfinished = new Map<string, string>();
  const events: Event[] = [];
  for (const raw of (await readFile(log, "utf8")).split("\n")) {
    const [pid = "", ...rest] = raw.trim().split(/\s+/);
    let line = rest.join(" ");
    if (line.endsWith("<unfinished ...>")) {
      unfinished.set(pid, line.replace(" <unfinished ...>", ""));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(line);
    if (resumed) line = `${unfinished.get(pid) ?? ""}${resumed[1] ?? ""}`;
    const opened = /^openat\(AT_FDCWD, "([^"]+)", .*\) = (\d+)$/.exec(line);
    if (opened) fds.set(opened[2] ?? "", opened[1] ?? "");
    const synced = /^f(?:data)?sync\((\d+)\) += 0$/.exec(line);
    if (synced && fds.get(synced[1] ?? "")?.startsWith(dir)) events.push({ call: "fsync", path: fds.get(synced[1] ?? "") ?? "" });
    const renamed = /^rename(?:at2?)?\((?:AT_FDCWD, )?"([^"]+)", (?:AT_FDCWD, )?"([^"]+)".*\) = 0$/.exec(line);
    if (renamed && renamed[2] === file) events.push({ call: "rename", from: renamed[1] ?? "", to: renamed[2] });
    if (line.startsWith(`access("${file}.resolved"`)) events.push({ call: "resolved" });
  }
  return { events, dir, file };
}

describe("FileBackend durability, as the kernel sees it (strace)", () => {
  it.skipIf(!hasStrace)("sync (default): fsync of the temp file, rename, fsync of the directory, then set() resolves", async () => {
    const { events, dir, file } = await traceOneSet(true);
    const rename = events.find((e) => e.call === "rename");
    expect(rename, JSON.stringify(events)).toBeDefined();
    const temp = rename?.call === "rename" ? rename.from : "";
    expect(temp).toMatch(/\/\.state\.json\.\d+\.[0-9a-f]{8}\.aiokv\.tmp$/);
    expect(events).toStrictEqual([
      { call: "fsync", path: temp },
      { call: "rename", from: temp, to: file },
      { call: "fsync", path: dir },
      { call: "resolved" },
    ]);
  });

  it.skipIf(!hasStrace)("sync: false: rename, then set() resolves, with no fsync of file or directory", async () => {
    const { events, file } = await traceOneSet(false);
    expect(events.map((e) => e.call)).toStrictEqual(["rename", "resolved"]);
    expect(events[0]).toMatchObject({ call: "rename", to: file });
  });
});

type JournalEvent =
  | { call: "append" | "write" | "fsync" | "fdatasync" | "truncate" | "unlink"; path: string }
  | { call: "rename"; from: string; to: string }
  | { call: "set-1" | "set-2" | "compacted" };

/**
 * Runs two sets and a compact() of a journal store under strace (-y: each descriptor's path);
 * the calls on the store's files, in the order they completed: writes to the journal (appends:
 * write or writev, at no offset, through the descriptor kept open between them) and to a temp file
 * of the journal's (a journal started, or renamed aside to be removed), fsync and fdatasync of
 * anything in its directory, renames onto the file or the journal and of the
 * journal away, the journal's truncation, the removal of the journal or of a temp file of its, and
 * the fixture's markers after each step resolved.
 */
async function traceJournal(sync: boolean): Promise<{ events: JournalEvent[]; dir: string; file: string; journal: string }> {
  const dir = await tempDir();
  const file = join(dir, "state.json");
  const journal = `${file}.journal`;
  const isJournalTemp = (path: string): boolean => path.startsWith(`${dir}/.state.json.journal.`) && path.endsWith(".aiokv.tmp");
  const log = join(dir, "..", `${dir.split("/").pop()}.strace`);
  const calls = "pwrite64,pwritev,pwritev2,write,writev,fsync,fdatasync,rename,renameat,renameat2,ftruncate,truncate,unlink,unlinkat,access";
  execFileSync("strace", ["-f", "-qq", "-y", "-o", log, "-e", `trace=${calls}`, "node", fixture("journal-writes.mjs"), file, sync ? "1" : "0"]);
  const unfinished = new Map<string, string>();
  const events: JournalEvent[] = [];
  for (const raw of (await readFile(log, "utf8")).split("\n")) {
    const [pid = "", ...rest] = raw.trim().split(/\s+/);
    let line = rest.join(" ");
    if (line.endsWith("<unfinished ...>")) {
      unfinished.set(pid, line.replace(" <unfinished ...>", ""));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(line);
    if (resumed) line = `${unfinished.get(pid) ?? ""}${resumed[1] ?? ""}`;
    const wrote = /^(pwrite64|pwritev2?|writev?)\(\d+<([^>]+)>, .* = [1-9]\d*$/.exec(line);
    if (wrote && wrote[2] === journal) events.push({ call: /^writev?$/.test(wrote[1] ?? "") ? "append" : "write", path: journal });
    if (wrote && isJournalTemp(wrote[2] ?? "")) events.push({ call: "write", path: wrote[2] ?? "" });
    const synced = /^(f(?:data)?sync)\(\d+<([^>]+)>\) += 0$/.exec(line);
    if (synced && (synced[2] ?? "").startsWith(dir)) events.push({ call: synced[1] === "fdatasync" ? "fdatasync" : "fsync", path: synced[2] ?? "" });
    const renamed = /^rename(?:at2?)?\((?:AT_FDCWD, )?"([^"]+)", (?:AT_FDCWD, )?"([^"]+)".*\) = 0$/.exec(line);
    if (renamed && (renamed[2] === file || renamed[2] === journal || renamed[1] === journal)) events.push({ call: "rename", from: renamed[1] ?? "", to: renamed[2] ?? "" });
    const truncated = /^f?truncate\((?:\d+<([^>]+)>|"([^"]+)"), .*\) = 0$/.exec(line);
    if (truncated && (truncated[1] ?? truncated[2]) === journal) events.push({ call: "truncate", path: journal });
    const unlinked = /^unlink(?:at)?\((?:AT_FDCWD, )?"([^"]+)".*\) = 0$/.exec(line);
    if (unlinked && (unlinked[1] === journal || isJournalTemp(unlinked[1] ?? ""))) events.push({ call: "unlink", path: unlinked[1] ?? "" });
    const marker = /^access\("[^"]+\.(set-1|set-2|compacted)"/.exec(line);
    if (marker) events.push({ call: marker[1] as "set-1" | "set-2" | "compacted" });
  }
  return { events, dir, file, journal };
}

describe("FileBackend durability in journal mode, as the kernel sees it (strace)", () => {
  it.skipIf(!hasStrace)(
    "sync (default): a journal started as a temp file, written and synced, renamed into place and its directory synced before set() resolves; each further record written then fdatasynced; compaction syncs, renames and syncs the directory before it removes the journal",
    async () => {
      const { events, dir, file, journal } = await traceJournal(true);
      const renames = events.filter((e) => e.call === "rename");
      expect(renames, JSON.stringify(events)).toHaveLength(3);
      const [started, compacted, removed] = renames.map((e) => (e.call === "rename" ? e : { from: "", to: "" }));
      const temp = compacted?.from ?? "";
      expect(temp).toMatch(/\/\.state\.json\.\d+\.[0-9a-f]{8}\.aiokv\.tmp$/);
      const [journalTemp, aside] = [started?.from ?? "", removed?.to ?? ""];
      expect(journalTemp).toMatch(/\/\.state\.json\.journal\.\d+\.[0-9a-f]{8}\.aiokv\.tmp$/);
      expect(aside).toMatch(/\/\.state\.json\.journal\.\d+\.[0-9a-f]{8}\.aiokv\.tmp$/);
      expect(aside).not.toBe(journalTemp);
      expect(events).toStrictEqual([
        // The first set starts the journal: header and record in one write to a temp file, synced,
        // renamed over the journal's path, then the directory synced.
        { call: "write", path: journalTemp },
        { call: "fsync", path: journalTemp },
        { call: "rename", from: journalTemp, to: journal },
        { call: "fsync", path: dir },
        { call: "set-1" },
        // The second: one record appended through the descriptor the first append opens and keeps
        // (write or writev at no offset), then fdatasync; the directory already holds the journal.
        { call: "append", path: journal },
        { call: "fdatasync", path: journal },
        { call: "set-2" },
        // compact(): the whole file through the atomic path, and only then the journal removed
        // (renamed aside, the lock checked again, then unlinked).
        { call: "fsync", path: temp },
        { call: "rename", from: temp, to: file },
        { call: "fsync", path: dir },
        { call: "rename", from: journal, to: aside },
        { call: "unlink", path: aside },
        { call: "compacted" },
      ]);
    },
  );

  it.skipIf(!hasStrace)("sync: false: the same writes, renames and removal, with no fsync or fdatasync at all", async () => {
    const { events, file, journal } = await traceJournal(false);
    // A temp file of the journal's (one started, or the journal renamed aside to be removed) as "<temp>".
    const temp = "<temp>";
    const named = (path: string): string => (/\/\.state\.json\.journal\.\d+\.[0-9a-f]{8}\.aiokv\.tmp$/.test(path) ? temp : path);
    const shown = events.map((e) => {
      if (e.call === "rename") return e.to === file ? { call: "rename", to: e.to } : { call: "rename", from: named(e.from), to: named(e.to) };
      return "path" in e ? { call: e.call, path: named(e.path) } : e;
    });
    expect(shown).toStrictEqual([
      { call: "write", path: temp },
      { call: "rename", from: temp, to: journal },
      { call: "set-1" },
      { call: "append", path: journal },
      { call: "set-2" },
      { call: "rename", to: file },
      { call: "rename", from: journal, to: temp },
      { call: "unlink", path: temp },
      { call: "compacted" },
    ]);
  });
});
