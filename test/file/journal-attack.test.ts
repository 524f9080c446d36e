// Attacks on journal mode (journal: true) on real files: each test states a promise of the README
// ("The journal", "Guarantees", `.compact()`, `.close()`) and tries to break it. A test marked
// `it.fails` found a bug: its comment says what is wrong, and it passes once the bug is fixed
// (then drop the `.fails`). The others hold and add coverage the other journal tests lack.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { AioKV, MAX_TEXT_LENGTH, SchemaMismatchError, StoreLockedError, StoreReadOnlyError } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import { MemoryBackend } from "@aiokv/memory-backend";
import { describe, expect, it, onTestFinished } from "vitest";
import { z } from "zod";
import { exited, fixture, runFixture, sleep } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";

const staleAfter = 2000;

interface Owner {
  child: ChildProcessWithoutNullStreams;
  pid: number;
  next(): Promise<string>;
  ask(line: string): Promise<string>;
  send(line: string): void;
}

/** Starts attack-owner.mjs (a journal store) owning `file`, once it reports ready. */
async function startOwner(file: string): Promise<Owner> {
  const child = spawn(process.execPath, [fixture("attack-owner.mjs"), file, String(staleAfter)]);
  onTestFinished(() => {
    child.kill("SIGKILL");
  });
  const lines: AsyncIterator<string> = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const line = await lines.next();
    if (line.done === true) throw new Error("The owner exited");
    return line.value;
  };
  expect(await next()).toBe("ready");
  const send = (line: string): void => void child.stdin.write(`${line}\n`);
  return {
    child,
    pid: child.pid ?? 0,
    next,
    send,
    ask: (line) => {
      send(line);
      return next();
    },
  };
}

/** Resolves once process `pid` is stopped (state T in /proc). */
async function stopped(pid: number): Promise<void> {
  for (let waited = 0; ; waited += 5) {
    const state = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]?.[0];
    if (state === "T") return;
    if (waited > 5000) throw new Error(`Process ${pid} did not stop (state ${state})`);
    await sleep(5);
  }
}

/** Calls `take` until it stops failing with StoreLockedError (the paused owner's lock went stale). */
async function takeOver(take: () => Promise<unknown>): Promise<void> {
  for (let tries = 1; ; tries++) {
    const error = await take().then(
      () => undefined,
      (e: unknown) => e,
    );
    if (error === undefined) return;
    if (!(error instanceof StoreLockedError)) throw error instanceof Error ? error : new Error(`Not taken over: ${JSON.stringify(error)}`);
    if (tries > 200) throw new Error("The paused owner's lock was never taken over");
    await sleep(50);
  }
}

/** A journal store on `file` in this process, closed when the test finishes. */
function journalStore(file: string): AioKV {
  const kv = new AioKV(new FileBackend(file, { staleAfter }), { journal: true, logger: { error: () => {} } });
  onTestFinished(() => kv.close());
  return kv;
}

/** What a store opened on `file` now (as after a crash of its owner) reads: a follower's read of the file and its journal. */
async function onDisk(file: string): Promise<unknown> {
  const kv = new AioKV(new FileBackend(file), { readOnly: true });
  try {
    return await kv.getAll();
  } catch (error) {
    return error;
  } finally {
    await kv.close();
  }
}

describe("Journal attack: an owner paused past staleAfter while another takes its lock over", () => {
  // BUG. README "Paused owners": "If another process took the lock over meanwhile, the paused
  // owner's next write rejects with StoreLockedError ... and the new owner's file stays". In
  // journal mode appendJournal() checks ownership, then opens the journal by path and appends:
  // an owner paused between the two (a suspend, a blocked thread pool around its realpath/open)
  // wakes and appends its record to the NEW owner's journal, and its set() resolves, acknowledged.
  // The new owner never sees the change (its memory lacks it), a follower or a crash-reopen does,
  // and the new owner's next compaction drops it again: an acknowledged write that is both
  // refused by the fence's promise and lost. Whole-file mode closes the same window by removing
  // the old owner's temp files at takeover (its rename then fails); the journal has no such fence.
  // Fix: check ownership again after the append's datasync and, when lost, reject with
  // StoreLockedError (never resolve); better, keep the record out of the new owner's journal: the
  // new owner could start a journal of its own inode at takeover (fold the old one in, then
  // rename a fresh one into place) while an old owner keeps appending through a handle it opened
  // while it held the lock.
  it.fails("paused right before its append's open(): on waking its set() resolves, and its record lands in the new owner's journal", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const owner = await startOwner(file);
    expect(await owner.ask("set a 1")).toBe("ok");
    expect(await owner.ask("arm open")).toBe("armed");
    owner.send("set b 2");
    expect(await owner.next()).toBe("paused open");
    await stopped(owner.pid);

    const kv = journalStore(file);
    await takeOver(() => kv.set("c", 3));
    owner.child.kill("SIGCONT");
    const answer = await owner.next();
    const seen = await onDisk(file);
    const ownerSees = await kv.getAll();
    console.log(`paused before its append: on waking ${answer}; the new owner holds ${JSON.stringify(ownerSees)}, the disk ${JSON.stringify(seen)}`);
    expect(ownerSees).toStrictEqual({ a: 1, c: 3 });
    // What it does now: "ok", and the disk (a crash of the new owner, a follower, `aiokv get`) holds b.
    expect({ answer, seen }).toStrictEqual({ answer: "error StoreLockedError", seen: { a: 1, c: 3 } });
  });

  // BUG, the same window, worse: when the new owner has compacted (its journal removed), the old
  // owner's open() finds no journal and makes one holding its record alone, without the header
  // (its own journal length says the header is there). The new owner's next append goes after
  // it (O_APPEND), header and all, so the journal's first line is not a header: every reader
  // (a follower, `aiokv check`, the next open after a crash of the new owner) gets
  // CorruptStoreError, and the new owner's acknowledged writes are behind it until it closes.
  // Fix: as above; also never create a journal without writing its header (open without
  // O_CREAT when the store believes the journal exists, and treat ENOENT then as a lost lock).
  it.fails("paused right before its append's open() while the new owner compacts: the journal loses its header and no reader can load the store", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const owner = await startOwner(file);
    expect(await owner.ask("set a 1")).toBe("ok");
    expect(await owner.ask("arm open")).toBe("armed");
    owner.send("set b 2");
    expect(await owner.next()).toBe("paused open");
    await stopped(owner.pid);

    const kv = journalStore(file);
    await takeOver(() => kv.compact());
    owner.child.kill("SIGCONT");
    const answer = await owner.next();
    await kv.set("c", 3);
    const journal = await readFile(`${file}.journal`, "utf8").catch(() => null);
    const seen = await onDisk(file);
    console.log(`paused before its append, the new owner compacted: on waking ${answer}; the journal is ${JSON.stringify(journal)}; a reader gets ${String(seen)}`);
    expect(seen).toStrictEqual({ a: 1, c: 3 });
  });

  // BUG. cutJournal() checks ownership, then unlinks (or truncates) the journal by path: an owner
  // paused between the two in a compaction wakes and removes the NEW owner's journal, with every
  // change the new owner acknowledged since it took over. They are still in the new owner's
  // memory, but a crash of it now loses them, and a follower stops seeing them. Worse, the new
  // owner's next append (its journal length says the header is there) makes a journal without
  // a header: CorruptStoreError for every reader. The README's "Not a kernel fence" names only the
  // rename window, which the temp-file removal closes; this one is not closed.
  // Fix: have the cut refuse a journal that is not the one this owner wrote (e.g. compare the
  // header's base, or the inode/size it last saw, right before the unlink, and rename the journal
  // aside then check ownership again, putting it back when lost, as #moveTarget does for clear()),
  // and make appends never create a headerless journal.
  it.fails("paused right before the unlink that empties the journal after a compaction: on waking it removes the new owner's journal", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const owner = await startOwner(file);
    expect(await owner.ask("set a 1")).toBe("ok");
    expect(await owner.ask("set b 2")).toBe("ok");
    expect(await owner.ask("arm unlink")).toBe("armed");
    owner.send("compact");
    expect(await owner.next()).toBe("paused unlink");
    await stopped(owner.pid);

    const kv = journalStore(file);
    await takeOver(() => kv.set("c", 3));
    owner.child.kill("SIGCONT");
    const answer = await owner.next();
    const afterWake = await onDisk(file);
    await kv.set("d", 4);
    const afterNextSet = await onDisk(file);
    console.log(`paused before the journal's unlink: on waking ${answer}; then the disk holds ${JSON.stringify(afterWake)}; after the new owner's next set ${String(afterNextSet)}`);
    expect(await kv.getAll()).toStrictEqual({ a: 1, b: 2, c: 3, d: 4 });
    expect({ afterWake, afterNextSet }).toStrictEqual({ afterWake: { a: 1, b: 2, c: 3 }, afterNextSet: { a: 1, b: 2, c: 3, d: 4 } });
  });
});

describe("Journal attack: what a journal may hold", () => {
  // BUG. README "Limits": "A document is at most 536,870,888 characters ... a longer one could be
  // written but never loaded ... a change that would make the document longer is a RangeError
  // ... before anything is written". Journal mode checks the document's length (assertFits) but
  // not the journal's, which an open decodes whole into one string too: the first set() into an
  // empty store of a value whose document fits (value + 12 characters) writes a journal of value +
  // 62 bytes (header and record). When that passes 2^29 - 24 the set() resolves, acknowledged, and
  // if the process dies before the compaction that follows finishes (seconds, for half a GiB), no
  // open can ever load the store: the decoder's "Cannot create a string longer than 0x1fffffe8
  // characters" is caught as bad UTF-8 and reported as `CorruptStoreError: not valid UTF-8 at
  // byte undefined`, pointing the user at quarantine()/clear(). The same happens without a huge
  // value once the document passes 256 MiB: the journal may grow to the document's size plus one
  // record (up to twice the document) before it is folded. Fix: count the journal in the limit
  // (refuse, or rewrite the document instead of appending, when journal length + record would pass
  // MAX_TEXT_LENGTH), and/or read the journal line by line (decode each record on its own) so that
  // its total size does not matter; and never report a decode failure that is not bad UTF-8 as one.
  // This test writes, byte for byte, the journal that `journal-writer.mjs` makes for
  // ["big", "k", MAX_TEXT_LENGTH - 32] (checked with cmp; the store's own write takes 12 s and
  // 2.7 GB, so it runs only with AIOKV_ATTACK_HUGE=1, below).
  it.fails("an acknowledged set() whose document fits but whose journal passes 2^29 - 24 bytes leaves a store that no open can load", async () => {
    const file = join(await tempDir(), "state.json");
    const [line] = await runFixture("attack-huge.mjs", [file, String(MAX_TEXT_LENGTH - 32)]);
    console.log(`a journal of ${MAX_TEXT_LENGTH + 31} bytes for a value of ${MAX_TEXT_LENGTH - 30} characters: ${line}`);
    expect(JSON.parse(line ?? "null")).toStrictEqual({ ok: true, length: MAX_TEXT_LENGTH - 32 });
  });

  it.runIf(process.env["AIOKV_ATTACK_HUGE"] === "1").fails("(AIOKV_ATTACK_HUGE=1) the store itself acknowledges that set() and exits; the next open fails", { timeout: 120_000 }, async () => {
    const file = join(await tempDir(), "state.json");
    const [written] = await runFixture("journal-writer.mjs", [file, JSON.stringify({ sync: false }), JSON.stringify([["big", "k", MAX_TEXT_LENGTH - 32]])]);
    expect(JSON.parse(written ?? "null")).toStrictEqual([{ ok: true }]);
    const [line] = await runFixture("attack-huge.mjs", [file, "open"]);
    expect(JSON.parse(line ?? "null")).toStrictEqual({ ok: true, length: MAX_TEXT_LENGTH - 32 });
  });

  // BUG. README "The journal": "Opening reads the journal, then the file, and applies the
  // journal's complete lines", and the issue: "Everything else unchanged in journal mode: ...
  // schema". Replay checks every value each record sets against the schema as it goes, not the
  // state the records make: a store whose journal set a key and later deleted (or replaced) it
  // does not load under a schema that refuses the intermediate value, where the same calls on a
  // whole-file store leave a file that loads. The real case is an upgrade: v1 (a looser schema,
  // or none) migrates a key away and exits without close() (or is killed); v2, with the strict
  // schema, cannot open the store, and is told that the key "legacy" of the FILE does not match,
  // a key the file does not hold (the SchemaMismatchError names the document, not the journal).
  // Fix: stage all records, then check the schema on the final values of the keys the journal
  // sets (once each); name the journal (and the line of the last record setting the key) in it.
  it.fails("a key a journal set and later deleted or replaced is checked against the schema: the store does not load where a whole-file one does", async () => {
    const dir = await tempDir();
    const schema = z.object({ n: z.number() });
    const loaded: Record<string, unknown> = {};
    for (const journal of [false, true]) {
      const file = join(dir, `state-${journal}.json`);
      const v1 = new AioKV(new FileBackend(file), { journal, logger: { error: () => {} } });
      onTestFinished(() => v1.close());
      await v1.set("legacy", 1);
      await v1.set("n", "two");
      await v1.delete("legacy");
      await v1.set("n", 3);
      // What v2 reads once v1 is gone without close(): a follower reads what the next open does.
      const v2 = new AioKV(new FileBackend(file), { schema, readOnly: true });
      loaded[String(journal)] = await v2.getAll().catch((error: unknown) => error);
      await v2.close();
    }
    console.log(`under the stricter schema: whole-file ${JSON.stringify(loaded["false"])}, journal ${String(loaded["true"])}`);
    expect(loaded).toStrictEqual({ false: { n: 3 }, true: { n: 3 } });
  });

  // BUG (minor). A value in a journal record that the schema refuses is reported as the
  // document's: `SchemaMismatchError: Cannot load store "<file>": key "n" does not match`, with
  // `location` the file, which holds a valid "n" (or no file at all). The README's errors name
  // "the file" where the problem is, and the journal's other load errors (CorruptStoreError,
  // InvalidStoreShapeError for a value nested too deep) name the journal and the line.
  it.fails("a journal record's value that the schema refuses: the SchemaMismatchError names the journal, as the journal's other load errors do", async () => {
    const file = join(await tempDir(), "state.json");
    const v1 = new AioKV(new FileBackend(file), { journal: true });
    onTestFinished(() => v1.close());
    await v1.set("n", 1);
    await v1.compact();
    await v1.set("n", "bad");
    const v2 = new AioKV(new FileBackend(file), { schema: z.object({ n: z.number() }), readOnly: true });
    const error = await v2.get("n").catch((e: unknown) => e);
    await v2.close();
    expect(error).toBeInstanceOf(SchemaMismatchError);
    console.log(`a schema refusing a journal record's value: ${String(error)}`);
    expect((error as SchemaMismatchError).location).toBe(`${file}.journal`);
  });

  it("keys and values with U+2028, lone surrogates, newlines, NUL, a BOM, __proto__ and a 70,000-character key replay as a whole-file store holds them, and close() writes the same bytes", async () => {
    const dir = await tempDir();
    const keys = ["\u2028", "\u2029x", "\ud800", "a\udc00b", "new\nline", "cr\rx", "__proto__", "constructor", "k".repeat(70_000), "", "\u0000", "tab\t", "é", "😀", "\ufeff", '"q"', "\\"];
    const files = { journal: join(dir, "journal.json"), whole: join(dir, "whole.json") };
    const stores = {
      journal: new AioKV(new FileBackend(files.journal, { sync: false }), { journal: true }),
      whole: new AioKV(new FileBackend(files.whole, { sync: false })),
    };
    for (const kv of Object.values(stores)) {
      await kv.set("first", 1);
      for (const [i, key] of keys.entries()) await kv.set(key, { [key]: key, i, lone: `\ud83d${key}` });
      await kv.delete("first");
      await kv.setMany([
        ["__proto__", [1, "\u2028"]],
        ["first", 2],
      ]);
    }
    // Compared as JSON text: toStrictEqual trips on an own "__proto__" key.
    const entries = async (kv: AioKV): Promise<string> => JSON.stringify([await kv.keys(), Object.entries(await kv.getAll())]);
    const replayed = new AioKV(new FileBackend(files.journal), { readOnly: true });
    expect(await entries(replayed)).toBe(await entries(stores.whole));
    await replayed.close();
    await Promise.all([stores.journal.close(), stores.whole.close()]);
    expect(await readFile(files.journal, "utf8")).toBe(await readFile(files.whole, "utf8"));
  });
});

describe("Journal attack: readers while the owner appends, compacts and clears", () => {
  it("stores opened while another process appends, compacts and clears (and a follower) never see a mix of two writes, nor an older state than before", async () => {
    const file = join(await tempDir(), "state.json");
    const child = spawn(process.execPath, [fixture("attack-churn.mjs"), file, "1200"], { stdio: ["ignore", "pipe", "inherit"] });
    onTestFinished(() => {
      child.kill("SIGKILL");
    });
    let rounds = "";
    child.stdout.on("data", (data: Buffer) => (rounds += data.toString()));
    let running = true;
    const done = exited(child).then(() => (running = false));
    const follower = new AioKV(new FileBackend(file, { pollInterval: 10 }), { readOnly: true });
    const last = { opened: 0, follower: 0 };
    const bad: unknown[] = [];
    let reads = 0;
    const check = (who: "opened" | "follower", all: unknown): void => {
      if (all instanceof Error) return void bad.push(`${who}: ${String(all)}`);
      const { n, m } = all as { n?: number; m?: number };
      if (n === undefined && m === undefined) return;
      if (n !== m || (n ?? 0) < last[who]) bad.push({ who, n, m, before: last[who] });
      last[who] = n ?? 0;
    };
    while (running) {
      const kv = new AioKV(new FileBackend(file), { readOnly: true });
      check("opened", await kv.getAll().catch((error: unknown) => error));
      await kv.close();
      check("follower", await follower.getAll().catch((error: unknown) => error));
      reads++;
    }
    await done;
    await follower.close();
    console.log(`readers while ${rounds.trim()} rounds were written: ${reads} reads each, last n seen ${JSON.stringify(last)}`);
    expect(bad).toStrictEqual([]);
    expect(reads).toBeGreaterThan(50);
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({ n: Number(rounds), m: Number(rounds) });
  });
});

describe("Journal attack: compact()", () => {
  it("is refused on a follower (nothing written) and on a closed store; a second store in this process, journal or not, gets StoreLockedError; compact() between writes folds the ones before it", async () => {
    const file = join(await tempDir(), "state.json");
    const owner = new AioKV(new FileBackend(file), { journal: true });
    await owner.set("x", 1);
    const journal = await readFile(`${file}.journal`, "utf8");
    for (const other of [true, false]) {
      const second = new AioKV(new FileBackend(file), { journal: other });
      await expect(second.compact()).rejects.toBeInstanceOf(StoreLockedError);
      await expect(second.set("y", 2)).rejects.toBeInstanceOf(StoreLockedError);
      await second.close();
    }
    const follower = new AioKV(new FileBackend(file), { readOnly: true, journal: true });
    await expect(follower.compact()).rejects.toBeInstanceOf(StoreReadOnlyError);
    expect(await follower.get("x")).toBe(1);
    await follower.close();
    expect(await readFile(`${file}.journal`, "utf8")).toBe(journal);
    await expect(readFile(file, "utf8")).rejects.toMatchObject({ code: "ENOENT" });

    const [a, compacted, b] = await Promise.allSettled([owner.set("a", 1), owner.compact(), owner.set("b", 2)]);
    expect([a.status, compacted.status, b.status]).toStrictEqual(["fulfilled", "fulfilled", "fulfilled"]);
    const onFile = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
    expect(onFile).toMatchObject({ x: 1, a: 1 });
    expect(await onDisk(file)).toStrictEqual({ x: 1, a: 1, b: 2 });
    await owner.close();
    await expect(owner.compact()).rejects.toThrow(/it is closed/);
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ x: 1, a: 1, b: 2 });
    await expect(readFile(`${file}.journal`)).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("Journal attack: MemoryBackend parity", () => {
  // BUG (minor). README "The journal": "Once the journal is longer than the file (or 64 KiB, for
  // a small file), the store rewrites the file". The rule measures the document read at open by
  // `text.length`: bytes for the file (a Uint8Array), but UTF-16 code units for MemoryBackend,
  // whose read() gives a string. A store opened on a non-ASCII document then compacts at a
  // different point on memory than on a file (here at 64 KiB of journal, below the 80 KB
  // document), so a consumer's test on MemoryBackend sees other journal bytes than production.
  // Fix: measure the document's UTF-8 bytes (documentBytes from the bytes, or
  // Buffer.byteLength/TextEncoder for a string).
  it.fails("a store opened on a non-ASCII document folds its journal at the same write on memory as on a file", async () => {
    const file = join(await tempDir(), "state.json");
    const seed = JSON.stringify({ big: "é".repeat(40_000) });
    await writeFile(file, seed);
    const memory = new MemoryBackend({ text: seed });
    const disk = new FileBackend(file, { sync: false });
    const stores = [new AioKV(memory, { journal: true }), new AioKV(disk, { journal: true })];
    const lengths: Array<[number, number | undefined, number | undefined]> = [];
    for (let i = 0; i < 90; i++) {
      for (const kv of stores) await kv.set(`k${i % 5}`, "v".repeat(1000));
      lengths.push([i, (await memory.readJournal())?.length, (await disk.readJournal())?.length]);
    }
    await Promise.all(stores.map((kv) => kv.close()));
    const differ = lengths.filter(([, inMemory, onFile]) => inMemory !== onFile);
    console.log(`journal bytes [write, memory, file] where they differ: ${JSON.stringify(differ.slice(0, 3))} ... (${differ.length} writes)`);
    expect(differ).toStrictEqual([]);
  });
});
