// Attacks on journal mode (journal: true) on real files: each test states a promise of the README
// ("The journal", "Guarantees", `.compact()`, `.close()`) and tries to break it. A test marked
// `it.fails` found a bug: its comment says what is wrong, and it passes once the bug is fixed
// (then drop the `.fails`). The others hold and add coverage the other journal tests lack.
import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AioKV, MAX_TEXT_LENGTH, SchemaMismatchError, StoreLockedError, StoreReadOnlyError } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import { MemoryBackend } from "@aiokv/memory-backend";
import { describe, expect, it, onTestFinished } from "vitest";
import { z } from "zod";
import { exited, fixture, lineChild, runFixture, sleep, stopped, type LineChild } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";

const staleAfter = 2000;

type Owner = LineChild;

/** Starts attack-owner.mjs owning `file` (with `wait`, waiting for a stale lock), once it reports ready. */
async function startOwner(file: string, wait = false): Promise<Owner> {
  const owner = lineChild("attack-owner.mjs", [file, String(staleAfter), ...(wait ? ["wait"] : [])]);
  expect(await owner.next()).toBe("ready");
  return owner;
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
  // README "Paused owners": "If another process took the lock over meanwhile, the paused owner's
  // next write rejects with StoreLockedError ... and the new owner's file stays". It was a bug: an
  // append checked ownership, then opened the journal by path, so an owner paused between the two
  // (a suspend, a thread pool blocked around its realpath/open) appended its record to the NEW
  // owner's journal and its set() resolved: a change the new owner's memory lacked, seen by a
  // follower or a reopen after a crash, then dropped by the new owner's next compaction. Now an
  // append opens the journal, then checks the lock, writes through that handle and checks again
  // after its sync, and the new owner never appends to a journal it did not start: it folds the
  // one it found into the file, then renames a journal of its own into place.
  it("paused right before its append's open(): on waking its set() is refused with StoreLockedError, and the new owner's journal and memory agree", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const owner = await startOwner(file);
    expect(await owner.ask("set a 1")).toBe("ok");
    expect(await owner.ask("arm open-append")).toBe("armed");
    owner.send("set b 2");
    expect(await owner.next()).toBe("paused open-append");
    await stopped(owner.pid);

    const kv = journalStore(file);
    await takeOver(() => kv.set("c", 3));
    owner.child.kill("SIGCONT");
    const answer = await owner.next();
    const seen = await onDisk(file);
    const ownerSees = await kv.getAll();
    console.log(`paused before its append: on waking ${answer}; the new owner holds ${JSON.stringify(ownerSees)}, the disk ${JSON.stringify(seen)}`);
    expect(ownerSees).toStrictEqual({ a: 1, c: 3 });
    // The disk (a crash of the new owner, a follower, `aiokv get`) holds what the new owner does: no b.
    expect({ answer, seen }).toStrictEqual({ answer: "error StoreLockedError", seen: { a: 1, c: 3 } });
  });

  // The same window, while the new owner has compacted (its journal removed). It was a bug, worse:
  // the old owner's open() found no journal and made one holding its record alone, without the
  // header, and the new owner's next append went after it (O_APPEND): the journal's first line was
  // not a header, and every reader (a follower, `aiokv check`, the next open after a crash of the
  // new owner) got CorruptStoreError. Now an append never makes a journal (no O_CREAT): only
  // writeJournal starts one, header first, renamed into place. It was a bug next (fixed): the
  // open()'s ENOENT was the answer, a StoreIOError where "Paused owners" says StoreLockedError,
  // and the old owner's memory was not marked stale, so its next get() answered from it (null for
  // the new owner's "c") instead of being refused. Now an append whose journal is gone asks the lock.
  it("paused right before its append's open() while the new owner compacts: on waking its set() is refused with StoreLockedError and makes no journal, its next get() is refused too; every reader loads the new owner's store", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const owner = await startOwner(file);
    expect(await owner.ask("set a 1")).toBe("ok");
    expect(await owner.ask("arm open-append")).toBe("armed");
    owner.send("set b 2");
    expect(await owner.next()).toBe("paused open-append");
    await stopped(owner.pid);

    const kv = journalStore(file);
    await takeOver(() => kv.compact());
    owner.child.kill("SIGCONT");
    const answer = await owner.next();
    await kv.set("c", 3);
    const [thenGets, thenSets] = [await owner.ask("get c"), await owner.ask("set d 4")];
    const journal = await readFile(`${file}.journal`, "utf8").catch(() => null);
    const seen = await onDisk(file);
    console.log(`paused before its append, the new owner compacted: on waking ${answer}, then its get c ${thenGets}, its set d ${thenSets}; the journal is ${JSON.stringify(journal)}; a reader gets ${JSON.stringify(seen)}`);
    expect({ answer, thenGets, thenSets }).toStrictEqual({ answer: "error StoreLockedError", thenGets: "error StoreLockedError", thenSets: "error StoreLockedError" });
    expect(journal).toMatch(/^\{"aiokv":"journal","version":1,"base":"sha256:[0-9a-f]{64}"\}\n\{"set":\[\["c",3\]\]\}\n$/);
    expect(seen).toStrictEqual({ a: 1, c: 3 });
  });

  // It was a bug: cutJournal() checked ownership, then unlinked the journal by path, so an owner
  // paused between the two in a compaction woke and removed the NEW owner's journal, with every
  // change the new owner acknowledged since it took over (a crash of it then lost them, a
  // follower stopped seeing them, and its next append made a journal without a header). Now the
  // cut renames the journal aside, checks ownership again and puts it back when lost, as clear()
  // does for the file: the pause is before that rename (an unlink of the journal's path before).
  it("paused right before the rename (the unlink, before) that removes the journal after a compaction: on waking its compact() is refused with StoreLockedError, and the new owner's journal stays", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const owner = await startOwner(file);
    expect(await owner.ask("set a 1")).toBe("ok");
    expect(await owner.ask("set b 2")).toBe("ok");
    expect(await owner.ask("arm remove")).toBe("armed");
    owner.send("compact");
    expect(await owner.next()).toBe("paused remove");
    await stopped(owner.pid);

    const kv = journalStore(file);
    await takeOver(() => kv.set("c", 3));
    owner.child.kill("SIGCONT");
    const answer = await owner.next();
    const afterWake = await onDisk(file);
    await kv.set("d", 4);
    const afterNextSet = await onDisk(file);
    console.log(`paused before the journal's removal: on waking ${answer}; then the disk holds ${JSON.stringify(afterWake)}; after the new owner's next set ${JSON.stringify(afterNextSet)}`);
    expect(await kv.getAll()).toStrictEqual({ a: 1, b: 2, c: 3, d: 4 });
    expect({ answer, afterWake, afterNextSet }).toStrictEqual({ answer: "error StoreLockedError", afterWake: { a: 1, b: 2, c: 3 }, afterNextSet: { a: 1, b: 2, c: 3, d: 4 } });
  });

  // It was a bug: the fence above holds only if the new owner starts a journal of its own, which
  // it did before its first write. An owner paused AFTER its append's lock check, right before the
  // write, while a new owner took the lock over and only read (no write, so the journal it found
  // stayed in place), woke and wrote its record into that journal, then was told StoreLockedError
  // by the check after its sync: refused, yet every follower applied the record, and the next
  // owner (once the new one died) kept it for good. Now taking the lock copies a journal it finds
  // into a new file in its place, so the handle the paused owner holds is to a file never read.
  it("paused right before its append's write, after its lock check, while a new owner takes the lock over and only reads: its set() is refused, and no follower, nor the next owner after the new one is killed, sees the record", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const owner = await startOwner(file);
    expect(await owner.ask("set a 1")).toBe("ok");
    expect(await owner.ask("arm writev")).toBe("armed");
    owner.send("set b 2");
    expect(await owner.next()).toBe("paused writev");
    await stopped(owner.pid);

    const reader = await startOwner(file, true);
    expect([await reader.ask("get a"), await reader.ask("get b")]).toStrictEqual(["1", "null"]);
    owner.child.kill("SIGCONT");
    const answer = await owner.next();
    const follower = await onDisk(file);
    const readerSees = await reader.ask("get b");
    reader.child.kill("SIGKILL");
    await exited(reader.child);
    const next = journalStore(file);
    const nextSees = await next.getAll();
    await next.close();
    const closed = JSON.parse(await readFile(file, "utf8")) as unknown;
    console.log(`paused before its append's write: on waking ${answer}; a follower reads ${JSON.stringify(follower)}, the next owner ${JSON.stringify(nextSees)}, its file after close ${JSON.stringify(closed)}`);
    expect({ answer, readerSees }).toStrictEqual({ answer: "error StoreLockedError", readerSees: "null" });
    expect({ follower, nextSees, closed }).toStrictEqual({ follower: { a: 1 }, nextSees: { a: 1 }, closed: { a: 1 } });
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
  // This test writes, byte for byte, the journal that `journal-writer.mjs` made for
  // ["big", "k", MAX_TEXT_LENGTH - 32] (checked with cmp; the store's own write takes 12 s and
  // 2.7 GB, so it runs only with AIOKV_ATTACK_HUGE=1, below).
  // Fixed in part: a record that would make the journal longer than MAX_TEXT_LENGTH - 256 bytes
  // now goes into the document instead (the store's own write, below, loads), and the open names
  // the cause ("too long to read (<n> bytes)"). Still failing: such a journal, as an earlier
  // version wrote and acknowledged it, is refused by every open (it is not read line by line).
  it.fails("an acknowledged set() whose document fits but whose journal passes 2^29 - 24 bytes leaves a store that no open can load", async () => {
    const file = join(await tempDir(), "state.json");
    const [line] = await runFixture("attack-huge.mjs", [file, String(MAX_TEXT_LENGTH - 32)]);
    console.log(`a journal of ${MAX_TEXT_LENGTH + 31} bytes for a value of ${MAX_TEXT_LENGTH - 30} characters: ${line}`);
    expect(JSON.parse(line ?? "null")).toStrictEqual({ ok: true, length: MAX_TEXT_LENGTH - 32 });
  });

  it.runIf(process.env["AIOKV_ATTACK_HUGE"] === "1")("(AIOKV_ATTACK_HUGE=1) the store itself acknowledges that set() and exits, its record in the file, not the journal; the next open loads it", { timeout: 120_000 }, async () => {
    const file = join(await tempDir(), "state.json");
    const [written] = await runFixture("journal-writer.mjs", [file, JSON.stringify({ sync: false }), JSON.stringify([["big", "k", MAX_TEXT_LENGTH - 32]])]);
    expect(JSON.parse(written ?? "null")).toStrictEqual([{ ok: true }]);
    await expect(readFile(`${file}.journal`)).rejects.toMatchObject({ code: "ENOENT" });
    const [line] = await runFixture("attack-huge.mjs", [file, "open"]);
    expect(JSON.parse(line ?? "null")).toStrictEqual({ ok: true, length: MAX_TEXT_LENGTH - 32 });
  });

  // README "The journal": "Opening reads the journal, then the file, and applies the journal's
  // complete lines", and the issue: "Everything else unchanged in journal mode: ... schema". It was
  // a bug: replay checked every value each record set against the schema as it went, so a store
  // whose journal set a key and later deleted (or replaced) it did not load under a schema that
  // refuses the intermediate value, where the same calls on a whole-file store leave a file that
  // loads. The real case is an upgrade: v1 (a looser schema, or none) migrates a key away and exits
  // without close() (or is killed); v2, with the strict schema, could not open the store. Now the
  // schema checks the state after replay, as it checks a whole-file store's document.
  it("a key a journal set and later deleted or replaced is not checked against the schema: the store loads under it as a whole-file one does", async () => {
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
  // README "The journal": "Once the journal is longer than the file (or 64 KiB, for a small
  // file), the store rewrites the file". It was a bug (minor): the rule measured the document read
  // at open by `text.length`, bytes for the file (a Uint8Array) but UTF-16 code units for
  // MemoryBackend, whose read() gives a string, so a store opened on a non-ASCII document compacted
  // at another write on memory than on a file (here at 64 KiB of journal, below the 80 KB
  // document), and a consumer's test on MemoryBackend saw other journal bytes than production. Now
  // it counts a text document's UTF-8 bytes. The compaction runs after the write that starts it
  // resolves, and takes longer on a file: the journals are compared once it is done.
  it("a store opened on a non-ASCII document folds its journal at the same write on memory as on a file", async () => {
    const file = join(await tempDir(), "state.json");
    const seed = JSON.stringify({ big: "é".repeat(40_000) });
    await writeFile(file, seed);
    const memory = new MemoryBackend({ text: seed });
    const disk = new FileBackend(file, { sync: false });
    const stores = [new AioKV(memory, { journal: true }), new AioKV(disk, { journal: true })];
    /**
     * The journal's length on each once a compaction that the last write started is done. Only a
     * write starts one, so journals that differ while no compaction runs stay so: waited on for a
     * second, they are what the stores wrote, not a compaction still under way on one of them.
     */
    const journalLengths = async (): Promise<[number | undefined, number | undefined]> => {
      for (let waited = 0; ; waited += 10) {
        const now: [number | undefined, number | undefined] = [(await memory.readJournal())?.length, (await disk.readJournal())?.length];
        if (now[0] === now[1] || waited >= 1000) return now;
        await sleep(10);
      }
    };
    const lengths: Array<[number, number | undefined, number | undefined]> = [];
    for (let i = 0; i < 90; i++) {
      for (const kv of stores) await kv.set(`k${i % 5}`, "v".repeat(1000));
      lengths.push([i, ...(await journalLengths())]);
      // Once they differ they go on differing: the first write where they do says it.
      if (lengths.at(-1)?.[1] !== lengths.at(-1)?.[2]) break;
    }
    await Promise.all(stores.map((kv) => kv.close()));
    const differ = lengths.filter(([, inMemory, onFile]) => inMemory !== onFile);
    console.log(`journal bytes [write, memory, file] where they first differ: ${JSON.stringify(differ)}`);
    expect(differ).toStrictEqual([]);
    // They did fold, both at the same write: neither store had a journal then.
    expect(lengths.filter(([, inMemory]) => inMemory === undefined).length).toBeGreaterThan(0);
  });
});
