// An owner paused in the middle of clear() or quarantine() (SIGSTOP: a laptop suspend, a
// debugger, a stopped container) whose lock another process takes over meanwhile: on waking, it
// must be refused and leave the new owner's file alone. clear() and quarantine() rename the file
// aside, check ownership again, and put it back when the lock was lost (02a270f). These tests
// pause a real owner process (test/fixtures/paused-owner.mjs) at a chosen call, and at random
// moments of clear() after its ownership check. AIOKV_RACE_ROUNDS sets those rounds (8), run 8
// at a time: about 5 s a batch.
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AioKV, CorruptStoreError, StoreLockedError } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import { describe, expect, it, onTestFinished } from "vitest";
import { staleAfter } from "../helpers/lock-harness.js";
import { lineChild, sleep, stopped, type LineChild } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";

const rounds = Number(process.env["AIOKV_RACE_ROUNDS"] ?? 8);
const batch = 8;

type Owner = LineChild;

/** Starts paused-owner.mjs owning `file`, once it reports ready. */
async function startOwner(file: string): Promise<Owner> {
  const owner = lineChild("paused-owner.mjs", [file, String(staleAfter)]);
  expect(await owner.next()).toBe("ready");
  return owner;
}

/**
 * Calls `take` until it stops failing with StoreLockedError (the paused owner's lock went stale);
 * resolves how many tries it took, the first refused. Any other failure is thrown, but `found`.
 */
async function takeOver(take: () => Promise<unknown>, found?: typeof CorruptStoreError): Promise<number> {
  for (let tries = 1; ; tries++) {
    const error = await take().then(
      () => undefined,
      (e: unknown) => e,
    );
    if (error === undefined || (found !== undefined && error instanceof found)) return tries;
    if (!(error instanceof StoreLockedError)) throw error instanceof Error ? error : new Error(`Not taken over: ${JSON.stringify(error)}`);
    if (tries > 100) throw new Error("The paused owner's lock was never taken over");
    await sleep(50);
  }
}

/** The names in `dir` that belong to `file` (it, its temp files, files moved aside), less its lock directory. */
async function filesOf(dir: string, file: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => (name === file || name.startsWith(`${file}.`) || name.startsWith(`.${file}.`)) && name !== `${file}.lock`).sort();
}

/** A store of `file` in this process, the new owner, closed when the test finishes. */
function newOwner(file: string): AioKV {
  const kv = new AioKV(new FileBackend(file, { staleAfter }), { logger: { error: () => {} } });
  onTestFinished(() => kv.close());
  return kv;
}

describe("FileBackend: an owner paused in clear() or quarantine() while another takes its lock over", () => {
  it("paused right before clear() renames its file: on waking it is refused (StoreLockedError), and so is its next clear(); the new owner's file stays", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const owner = await startOwner(file);
    expect(await owner.ask("set mine 1")).toBe("ok");
    expect(await owner.ask("arm")).toBe("armed");
    owner.child.stdin.write("clear\n");
    // The code before 02a270f unlinked the file where it now renames it: either one stops it.
    expect(await owner.next()).toMatch(/^paused (rename|unlink)$/);
    await stopped(owner.pid);

    const kv = newOwner(file);
    const started = Date.now();
    // Refused while the paused owner's lock is fresh, admitted once it is stale.
    expect(await takeOver(() => kv.set("owner", "next"))).toBeGreaterThan(1);
    const waited = Date.now() - started;
    const written = await readFile(file, "utf8");
    expect(JSON.parse(written)).toStrictEqual({ mine: 1, owner: "next" });

    owner.child.kill("SIGCONT");
    const answer = await owner.next();
    console.log(`paused clear(): taken over after ${waited} ms; on waking: ${answer}`);
    expect(await filesOf(dir, "state.json")).toStrictEqual(["state.json"]);
    expect(await readFile(file, "utf8")).toBe(written);
    expect(answer).toBe("cleared false StoreLockedError paused-before-move");
    expect(await owner.ask("clear")).toBe("cleared false StoreLockedError running");
    expect(await readFile(file, "utf8")).toBe(written);
    // The new owner's lock is whole too.
    await kv.set("again", 2);
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ mine: 1, owner: "next", again: 2 });
  });

  /** A corrupt file's owner paused right before quarantine() moves it; a new owner empties it and writes. */
  async function quarantinePaused(dir: string): Promise<{ owner: Owner; kv: AioKV; file: string; written: string; answer: string }> {
    const file = join(dir, "state.json");
    await writeFile(file, '{"mine": 1,');
    const owner = await startOwner(file);
    expect(await owner.ask("arm")).toBe("armed");
    owner.child.stdin.write("quarantine\n");
    expect(await owner.next()).toBe("paused rename");
    await stopped(owner.pid);
    const kv = newOwner(file);
    // The new owner finds the corrupt file, and empties it itself before it writes.
    expect(await takeOver(() => kv.get("mine"), CorruptStoreError)).toBeGreaterThan(1);
    expect(await kv.clear()).toBe(true);
    await kv.set("owner", "next");
    const written = await readFile(file, "utf8");
    owner.child.kill("SIGCONT");
    return { owner, kv, file, written, answer: await owner.next() };
  }

  it("paused right before quarantine() moves its corrupt file aside: on waking it is refused (StoreLockedError); the new owner's file stays", async () => {
    const dir = await tempDir();
    const { owner, kv, file, written, answer } = await quarantinePaused(dir);
    console.log(`paused quarantine(): on waking: ${answer}`);
    // Before 02a270f the new owner's file went to state.json.corrupt-<time>.
    expect(await filesOf(dir, "state.json")).toStrictEqual(["state.json"]);
    expect(await readFile(file, "utf8")).toBe(written);
    expect(answer).toBe("error StoreLockedError paused-before-move");
    // Its next quarantine() moves nothing either.
    expect(await owner.ask("quarantine")).toMatch(/^error \w+ running$/);
    expect(await filesOf(dir, "state.json")).toStrictEqual(["state.json"]);
    await kv.set("again", 2);
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ owner: "next", again: 2 });
  });

  // A bug: a quarantine() refused this way does not mark the store as having lost its lock, as a
  // refused write does. Its next get() reads the new owner's document, and its next quarantine()
  // says "it loads without error" (a plain Error); only a write finds the lock lost. This passes
  // while the bug is there: turn it into it() once it is fixed.
  it("after quarantine() was refused that way, its next get() and quarantine() are refused with StoreLockedError, as after a refused write", async () => {
    const { owner, answer } = await quarantinePaused(await tempDir());
    expect(answer).toBe("error StoreLockedError paused-before-move");
    expect(await owner.ask("get owner")).toBe("error StoreLockedError");
    expect(await owner.ask("quarantine")).toBe("error StoreLockedError running");
  });

  it("paused after clear() renamed its file aside, before it removed that temp file: the new owner's takeover removes it, and on waking clear() resolves true", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const owner = await startOwner(file);
    expect(await owner.ask("set mine 1")).toBe("ok");
    expect(await owner.ask("arm temp")).toBe("armed");
    owner.child.stdin.write("clear\n");
    expect(await owner.next()).toBe("paused unlink");
    await stopped(owner.pid);
    // The rename was checked and synced: the file is gone, and the new owner starts from no file.
    expect((await filesOf(dir, "state.json")).map((name) => name.replace(/\.\d+\.[0-9a-f]{8}\./, ".<pid>.<hex>."))).toStrictEqual([".state.json.<pid>.<hex>.aiokv.tmp"]);
    const kv = newOwner(file);
    expect(await takeOver(() => kv.set("owner", "next"))).toBeGreaterThan(1);
    const written = await readFile(file, "utf8");
    expect(JSON.parse(written)).toStrictEqual({ owner: "next" });
    expect(await filesOf(dir, "state.json")).toStrictEqual(["state.json"]);
    owner.child.kill("SIGCONT");
    expect(await owner.next()).toBe("cleared true - paused-after-move");
    expect(await readFile(file, "utf8")).toBe(written);
    expect(await owner.ask("clear")).toBe("cleared false StoreLockedError running");
    expect(await readFile(file, "utf8")).toBe(written);
  });

  it(`paused at a random moment of clear() after its ownership check, ${rounds} rounds: the new owner's file is never removed`, async () => {
    const dir = await tempDir();
    let seed = 11;
    const random = (n: number): number => (seed = (seed * 48271) % 2147483647) % n;
    /** One round: how clear() answered once woken, and what happened to the new owner's file. */
    const round = async (n: number, micros: number): Promise<{ answer: string; lost: string | undefined }> => {
      const name = `state-${n}.json`;
      const file = join(dir, name);
      const owner = await startOwner(file);
      expect(await owner.ask(`set mine ${n}`)).toBe("ok");
      expect(await owner.ask(`stop-after ${micros}`)).toBe("primed");
      // Answered before the pause when clear() finished first.
      const answered = owner.ask("clear");
      answered.catch(() => {});
      await stopped(owner.pid);
      const kv = newOwner(file);
      await takeOver(() => kv.set("owner", "next"));
      const written = await readFile(file, "utf8");
      owner.child.kill("SIGCONT");
      const answer = await answered;
      const after = await readFile(file, "utf8").catch(() => "(no file)");
      const left = await filesOf(dir, name);
      const lost = after !== written || left.length !== 1 ? `round ${n}, paused ${micros} us after the check, clear() said "${answer}": ${after} beside ${left.join(" ")}` : undefined;
      return { answer: answer.replace(/^cleared /, ""), lost };
    };
    const outcomes: Array<{ answer: string; lost: string | undefined }> = [];
    for (let first = 0; first < rounds; first += batch) {
      const size = Math.min(batch, rounds - first);
      // The rename is done some 100-200 us after the check resolves (measured here; the code
      // before 02a270f unlinked the file up to 700 us after it), then come a re-check and the
      // directory's fsync. The pauses are spread over the first 400 us, one in each of `size` slices.
      const slice = Math.floor(400 / size);
      const results = await Promise.allSettled(Array.from({ length: size }, (_, i) => round(first + i, i * slice + random(slice))));
      for (const result of results) {
        if (result.status === "rejected") throw result.reason;
        outcomes.push(result.value);
      }
    }
    const tally: Record<string, number> = {};
    for (const { answer } of outcomes) tally[answer] = (tally[answer] ?? 0) + 1;
    const lost = outcomes.flatMap(({ lost }) => (lost === undefined ? [] : [lost]));
    console.log(`clear() paused at random: ${rounds} rounds, ${lost.length} lost the new owner's file; clear() said ${JSON.stringify(tally)}${lost.length > 0 ? `\n${lost.join("\n")}` : ""}`);
    expect(lost).toStrictEqual([]);
    // Refused when paused before its move was done or checked; else done before the lock was lost.
    // "true - paused-before-move": the rename and its re-check were done on the thread pool before
    // the stop, and only their promise settled after it (the label reads the JavaScript side).
    const expected = [
      "false StoreLockedError paused-before-move",
      "false StoreLockedError paused-after-move",
      "true - paused-after-move",
      "true - running",
      "true - paused-before-move",
    ];
    expect(Object.keys(tally).filter((answer) => !expected.includes(answer))).toStrictEqual([]);
    // How many pauses landed between the check and the re-check after the move (where the code
    // before 02a270f removed the new owner's file) depends on the machine's load: the pause's
    // timer runs on a worker thread. The tests above land there every time, by a hook.
  }, 30_000 + rounds * 2000);
});
