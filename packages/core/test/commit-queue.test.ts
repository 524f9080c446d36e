import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Backend } from "../src/backend.js";
import { CommitQueue } from "../src/commit-queue.js";
import type { Batch } from "../src/document.js";
import { InvalidStoreShapeError, StoreIOError, StoreLockedError, UnsyncedWriteError } from "../src/errors.js";
import { deferred, expectDocument, keysOf, textOf, ticks, type Deferred } from "./helpers.js";

/** What the fake backend does with its next write: fail, or store and then fail (an unsynced write). */
interface Failure {
  readonly error: unknown;
  readonly afterStoring?: boolean;
}

/**
 * A backend in memory that counts its calls, can hold writes until the test releases them, and
 * can fail the next ones: what a unit test of the queue needs, without a file or a server.
 */
class FakeBackend implements Backend {
  readonly location = "fake:queue";
  text: string | undefined;
  /** The text of every write called, in call order, whether it went on to succeed or not. */
  readonly started: string[] = [];
  /** The texts written successfully. */
  readonly writes: string[] = [];
  reads = 0;
  removes = 0;
  /** Writes and removes running now, and the most that ever ran at once. */
  running = 0;
  mostRunning = 0;
  readonly failures: Failure[] = [];
  readError: Error | undefined;
  #gate: Deferred | undefined;

  constructor(text?: string) {
    this.text = text;
  }

  async read(): Promise<string | undefined> {
    this.reads++;
    await ticks(2);
    if (this.readError !== undefined) throw this.readError;
    return this.text;
  }

  async write(pieces: readonly Uint8Array[]): Promise<void> {
    // Decoded at once: the pieces are the document's cached chunks, which a later change replaces.
    const text = textOf(pieces);
    this.started.push(text);
    await this.#run(() => {
      this.text = text;
      this.writes.push(text);
    });
  }

  async remove(): Promise<void> {
    this.started.push("(remove)");
    await this.#run(() => {
      this.text = undefined;
      this.removes++;
    });
  }

  /** Holds every write from now until the returned function is called. */
  hold(): () => void {
    const gate = deferred();
    this.#gate = gate;
    return () => {
      if (this.#gate === gate) this.#gate = undefined;
      gate.resolve();
    };
  }

  async #run(store: () => void): Promise<void> {
    this.running++;
    this.mostRunning = Math.max(this.mostRunning, this.running);
    try {
      await (this.#gate?.promise ?? ticks(2));
      const failure = this.failures.shift();
      if (failure === undefined || failure.afterStoring === true) store();
      if (failure !== undefined) throw failure.error;
    } finally {
      this.running--;
    }
  }
}

const set =
  (key: string, value: unknown) =>
  (batch: Batch): void => {
    batch.changes.set(key, JSON.stringify(value));
  };
const remove =
  (key: string) =>
  (batch: Batch): void => {
    batch.changes.set(key, undefined);
  };
// As AioKV's clear() stages it: everything before, in this batch too, is gone.
const clear = (batch: Batch): void => {
  batch.cleared = true;
  batch.changes.clear();
};

async function readyQueue(text?: string): Promise<{ backend: FakeBackend; queue: CommitQueue }> {
  const backend = new FakeBackend(text);
  const queue = new CommitQueue(backend);
  await queue.ready();
  return { backend, queue };
}

const outcome = (promise: Promise<unknown>): Promise<{ error: unknown } | "resolved"> =>
  promise.then(
    () => "resolved" as const,
    (error: unknown) => ({ error }),
  );

afterEach(() => {
  vi.useRealTimers();
});

describe("CommitQueue group commit", () => {
  it("changes staged together go out in one write, which settles each of them", async () => {
    const { backend, queue } = await readyQueue();
    const a = queue.stage(set("a", 1));
    const b = queue.stage(set("b", [2]));
    const c = queue.stage(set("a", "one"));
    expect(b.done).toBe(a.done);
    expect(c.done).toBe(a.done);
    // Not started from stage() itself: the callers of this turn join it first.
    expect(backend.started).toEqual([]);
    await Promise.all([a.done, b.done, c.done]);
    expect(backend.writes).toHaveLength(1);
    expect(backend.writes[0]).toBe('{\n  "a": "one",\n  "b": [2]\n}\n');
  });

  it("changes staged while a write is in flight wait for it, then share the next single write", async () => {
    const { backend, queue } = await readyQueue();
    const release = backend.hold();
    const first = queue.stage(set("a", 1));
    await ticks();
    expect(backend.started).toHaveLength(1);
    const later = [queue.stage(set("b", 2)), queue.stage(set("c", 3)), queue.stage(remove("a")), queue.stage(set("d", 4))];
    for (const staged of later) expect(staged.done).toBe(later[0]?.done);
    expect(later[0]?.done).not.toBe(first.done);
    await ticks();
    expect(backend.started).toHaveLength(1);
    release();
    await Promise.all(later.map((staged) => staged.done));
    expect(backend.writes).toHaveLength(2);
    expect(backend.writes[1]).toBe('{\n  "b": 2,\n  "c": 3,\n  "d": 4\n}\n');
    expect(backend.mostRunning).toBe(1);
  });

  it("a new write waits until the callers have caught up, so that what they stage meanwhile joins it", async () => {
    const backend = new FakeBackend();
    let callers: Deferred | undefined = deferred();
    const caughtUp = vi.fn(() => callers?.promise);
    const queue = new CommitQueue(backend, undefined, caughtUp);
    await queue.ready();
    const a = queue.stage(set("a", 1));
    await ticks();
    expect(caughtUp).toHaveBeenCalledTimes(1);
    expect(backend.started).toEqual([]);
    const b = queue.stage(set("b", 2));
    callers.resolve();
    callers = undefined;
    await Promise.all([a.done, b.done]);
    expect(backend.writes).toEqual(['{\n  "a": 1,\n  "b": 2\n}\n']);
  });

  it("a batch staged during a write follows it at once, without waiting for the callers, who may be waiting for it", async () => {
    const backend = new FakeBackend();
    let stuck = false;
    const queue = new CommitQueue(backend, undefined, () => (stuck ? new Promise<void>(() => {}) : undefined));
    await queue.ready();
    const release = backend.hold();
    queue.stage(set("a", 1));
    await ticks();
    expect(backend.started).toHaveLength(1);
    const next = queue.stage(set("b", 2));
    // Callers never catch up from now on: one of them holds the lock while it awaits this batch.
    stuck = true;
    release();
    await next.done;
    expect(backend.writes).toHaveLength(2);
  });

  it("settled() starts the pending write without waiting for the callers, whose lock its caller holds", async () => {
    const backend = new FakeBackend();
    const queue = new CommitQueue(backend, undefined, () => new Promise<void>(() => {}));
    await queue.ready();
    const a = queue.stage(set("a", 1));
    await queue.settled();
    await expect(a.done).resolves.toBeUndefined();
    expect(backend.writes).toHaveLength(1);
  });

  it("writes complete under fake timers: nothing waits on a timer", { timeout: 5000 }, async () => {
    vi.useFakeTimers();
    const { backend, queue } = await readyQueue('{"a": 0}');
    await queue.stage(set("a", 1)).done;
    await queue.stage(remove("a")).done;
    await queue.written();
    expect(backend.writes).toHaveLength(2);
  });

  it("writes run one at a time, in the order staged, and each batch settles before the next", async () => {
    const { backend, queue } = await readyQueue();
    const settled: number[] = [];
    const expected = new Map<string, number>();
    const batches: Array<Promise<void>> = [];
    for (let i = 0; i < 40; i++) {
      const key = `k${i % 7}`;
      const { done } = queue.stage(set(key, i));
      expected.set(key, i);
      if (!batches.includes(done)) {
        batches.push(done);
        const index = batches.length - 1;
        void done.then(() => settled.push(index));
      }
      if (i % 3 === 0) await ticks(i % 5);
    }
    await queue.written();
    expect(batches.length).toBeGreaterThan(2);
    expect(settled).toEqual(batches.map((_, i) => i));
    expect(backend.mostRunning).toBe(1);
    expect(backend.writes).toHaveLength(batches.length);
    expectDocument(backend.text ?? "", Array.from(expected, ([key, value]) => [key, JSON.stringify(value)]));
  });

  it("a batch's callers are settled only once its write is done", async () => {
    const { backend, queue } = await readyQueue();
    const release = backend.hold();
    const { done } = queue.stage(set("a", 1));
    let settled = false;
    void done.then(() => (settled = true));
    await ticks();
    expect(backend.started).toHaveLength(1);
    expect(settled).toBe(false);
    release();
    await done;
    expect(settled).toBe(true);
    expect(backend.writes).toHaveLength(1);
  });
});

describe("CommitQueue reads before the write", () => {
  it("reads see the pending and in-flight changes over what is stored", async () => {
    const { backend, queue } = await readyQueue('{"kept": 0, "gone": 1, "changed": 2}');
    const release = backend.hold();
    const flying = queue.stage((batch) => {
      batch.changes.set("changed", "20");
      batch.changes.set("gone", undefined);
    });
    await ticks();
    const pending = queue.stage(set("new", 3));
    expect(queue.lookup("kept")).toBe("0");
    expect(queue.lookup("changed")).toBe("20");
    expect(queue.lookup("gone")).toBeUndefined();
    expect(queue.lookup("new")).toBe("3");
    expect(queue.has("gone")).toBe(false);
    expect(queue.has("new")).toBe(true);
    expect(queue.keys()).toEqual(["kept", "changed", "new"]);
    expectDocument(queue.render(), [
      ["kept", "0"],
      ["changed", "20"],
      ["new", "3"],
    ]);
    expect(queue.isUnwritten("kept")).toBe(false);
    expect(queue.isUnwritten("gone")).toBe(true);
    expect(queue.inFlightFor("changed")).toBe(flying.done);
    expect(queue.pendingFor("changed")).toBeUndefined();
    expect(queue.pendingFor("new")).toBe(pending.done);
    expect(queue.inFlightFor("new")).toBeUndefined();
    expect(queue.isPending(pending.done)).toBe(true);
    expect(queue.isPending(flying.done)).toBe(false);
    release();
    await queue.written();
    expect(queue.isUnwritten("new")).toBe(false);
    expect(queue.isPending(pending.done)).toBe(false);
    expect(queue.lookup("new")).toBe("3");
    expect(queue.render()).toBe(backend.text);
  });

  it("a pending clear decides every key, and makes reads ready without reading the backend", async () => {
    const backend = new FakeBackend('{"a": 1}');
    const queue = new CommitQueue(backend);
    expect(queue.isReady).toBe(false);
    queue.stage(clear);
    expect(queue.isReady).toBe(true);
    await queue.ready();
    expect(backend.reads).toBe(0);
    expect(queue.isUnwritten("a")).toBe(true);
    expect(queue.isUnwritten("anything")).toBe(true);
    expect(queue.lookup("a")).toBeUndefined();
    expect(queue.keys()).toEqual([]);
    expect(queue.render()).toBe("{}\n");
    await queue.written();
    expect(backend.text).toBeUndefined();
  });

  it("ready() reads the backend once, however many callers wait, and runs the load check", async () => {
    const backend = new FakeBackend('{"a": 1, "b": [2]}');
    const seen: string[] = [];
    const queue = new CommitQueue(backend, (key) => seen.push(key));
    await Promise.all([queue.ready(), queue.ready(), queue.ready()]);
    await queue.ready();
    expect(backend.reads).toBe(1);
    expect(seen).toEqual(["a", "b"]);
    expect(queue.keys()).toEqual(["a", "b"]);
  });

  it("a failed read rejects with StoreIOError and a later ready() reads again", async () => {
    const backend = new FakeBackend('{"a": 1}');
    const queue = new CommitQueue(backend);
    const cause = Object.assign(new Error("no such host"), { code: "ENOTFOUND" });
    backend.readError = cause;
    const error = await queue.ready().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreIOError);
    expect(error).toMatchObject({ operation: "read", location: backend.location, code: "ENOTFOUND", cause });
    backend.readError = undefined;
    await queue.ready();
    expect(queue.lookup("a")).toBe("1");
    expect(backend.reads).toBe(2);
  });

  it("a document that is not a store fails ready() with its format error", async () => {
    const queue = new CommitQueue(new FakeBackend("[1, 2]"));
    await expect(queue.ready()).rejects.toBeInstanceOf(InvalidStoreShapeError);
  });

  it("forget() makes the next ready() read what another writer left", async () => {
    const { backend, queue } = await readyQueue('{"a": 1}');
    backend.text = '{"b": 2}';
    expect(queue.lookup("a")).toBe("1");
    queue.forget();
    expect(queue.isReady).toBe(false);
    await queue.ready();
    expect(queue.keys()).toEqual(["b"]);
  });
});

describe("CommitQueue clear", () => {
  it("set, clear and set in one batch write only what the last set left", async () => {
    const { backend, queue } = await readyQueue('{"old": 1, "b": 0}');
    queue.stage(set("a", 1));
    queue.stage(clear);
    const { done } = queue.stage(set("b", 2));
    expect(queue.keys()).toEqual(["b"]);
    expect(queue.lookup("old")).toBeUndefined();
    await done;
    expect(backend.writes).toEqual(['{\n  "b": 2\n}\n']);
    expect(backend.removes).toBe(0);
  });

  it("a clear that leaves nothing removes the document instead of writing an empty one", async () => {
    const { backend, queue } = await readyQueue('{"old": 1}');
    queue.stage(set("a", 1));
    await queue.stage(clear).done;
    expect(backend.writes).toEqual([]);
    expect(backend.removes).toBe(1);
    expect(backend.text).toBeUndefined();
    await queue.stage(set("after", true)).done;
    expect(backend.text).toBe('{\n  "after": true\n}\n');
  });

  it("a clear staged while a write is in flight drops that write's changes from the next one", async () => {
    const { backend, queue } = await readyQueue('{"old": 1}');
    const release = backend.hold();
    queue.stage(set("flying", 1));
    await ticks();
    queue.stage(clear);
    const { done } = queue.stage(set("new", 2));
    release();
    await done;
    expect(backend.writes).toEqual(['{\n  "old": 1,\n  "flying": 1\n}\n', '{\n  "new": 2\n}\n']);
  });
});

describe("CommitQueue failures", () => {
  it("a failed write rejects each of its callers, and the next batch is written without its changes", async () => {
    const { backend, queue } = await readyQueue('{"base": 0}');
    const release = backend.hold();
    const x = queue.stage(set("x", 1));
    const xAgain = queue.stage(set("base", "x's"));
    await ticks();
    const y = queue.stage(set("y", 2));
    const z = queue.stage(set("z", 3));
    const cause = Object.assign(new Error("disk full"), { code: "ENOSPC" });
    backend.failures.push({ error: cause });
    release();
    const [xOutcome, xAgainOutcome] = await Promise.all([outcome(x.done), outcome(xAgain.done)]);
    for (const failed of [xOutcome, xAgainOutcome]) {
      expect(failed).not.toBe("resolved");
      const { error } = failed as { error: unknown };
      expect(error).toBeInstanceOf(StoreIOError);
      expect(error).toMatchObject({ operation: "write", code: "ENOSPC", location: backend.location, cause });
    }
    await Promise.all([y.done, z.done]);
    expect(backend.writes).toEqual(['{\n  "base": 0,\n  "y": 2,\n  "z": 3\n}\n']);
    expect(queue.lookup("x")).toBeUndefined();
    expect(queue.lookup("base")).toBe("0");
    // Nothing of the failed batch comes back in a later write either.
    await queue.stage(set("w", 4)).done;
    expect(keysOf(backend.text ?? "")).toEqual(["base", "y", "z", "w"]);
  });

  it("written() reports a failure once, whether it happened before the call or during it", async () => {
    const { backend, queue } = await readyQueue();
    const cause = new Error("gone");
    backend.failures.push({ error: cause });
    await outcome(queue.stage(set("a", 1)).done);
    const reported = await queue.written().catch((e: unknown) => e);
    expect(reported).toMatchObject({ operation: "write", cause });
    await expect(queue.written()).resolves.toBeUndefined();

    const release = backend.hold();
    const later = new Error("gone again");
    backend.failures.push({ error: later });
    const b = queue.stage(set("b", 2));
    await ticks();
    const waiting = queue.written();
    release();
    await expect(waiting).rejects.toMatchObject({ cause: later });
    await expect(b.done).rejects.toMatchObject({ cause: later });
    await expect(queue.written()).resolves.toBeUndefined();
  });

  it("tail() settles after the last staged write and never rejects", async () => {
    const { backend, queue } = await readyQueue();
    backend.failures.push({ error: new Error("no") });
    const a = queue.stage(set("a", 1));
    await expect(queue.tail()).resolves.toBeUndefined();
    expect(backend.started).toHaveLength(1);
    expect(backend.running).toBe(0);
    await expect(a.done).rejects.toBeInstanceOf(StoreIOError);
    await expect(queue.tail()).resolves.toBeUndefined();
  });

  it("a failed clear loses nothing: the next batch is written over the document as stored", async () => {
    const backend = new FakeBackend('{"kept": 1}');
    const queue = new CommitQueue(backend);
    const release = backend.hold();
    const cleared = queue.stage(clear);
    await ticks();
    const next = queue.stage(set("new", 2));
    backend.failures.push({ error: new Error("cannot remove") });
    release();
    await expect(cleared.done).rejects.toMatchObject({ operation: "remove" });
    await next.done;
    expect(backend.text).toBe('{\n  "kept": 1,\n  "new": 2\n}\n');
    expect(backend.reads).toBe(1);
  });

  it("a write refused by another owner rejects with its StoreLockedError and marks the queue ousted until forget()", async () => {
    const { backend, queue } = await readyQueue();
    const locked = new StoreLockedError(backend.location);
    backend.failures.push({ error: locked });
    await expect(queue.stage(set("a", 1)).done).rejects.toBe(locked);
    expect(queue.ousted).toBe(true);
    queue.forget();
    expect(queue.ousted).toBe(false);
  });

  it("a write in place but not synced rejects with a sync StoreIOError and keeps its change", async () => {
    const { backend, queue } = await readyQueue();
    const cause = Object.assign(new Error("EIO"), { code: "EIO" });
    backend.failures.push({ error: new UnsyncedWriteError(cause), afterStoring: true });
    await expect(queue.stage(set("a", 1)).done).rejects.toMatchObject({ operation: "sync", code: "EIO", cause });
    expect(queue.lookup("a")).toBe("1");
    await queue.stage(set("b", 2)).done;
    expect(backend.text).toBe('{\n  "a": 1,\n  "b": 2\n}\n');
  });
});

describe("CommitQueue key order across writes", () => {
  // keys() and render() look through `combine(writing, pending)`: a key deleted by the write in
  // flight and set again by the pending batch must go last there, as in the file written next.
  it("keys() and render() while a write is in flight list keys in the order the file gets", async () => {
    const { backend, queue } = await readyQueue('{"a": 1, "b": 2}');
    const release = backend.hold();
    queue.stage(remove("a"));
    await ticks();
    const { done } = queue.stage(set("a", 3));
    const keysDuring = queue.keys();
    const textDuring = queue.render();
    release();
    await done;
    expect(keysOf(backend.text ?? "")).toEqual(keysDuring);
    expect(queue.keys()).toEqual(keysDuring);
    expect(backend.text).toBe(textDuring);
  });

  it("a key deleted and set again in one batch goes last, as when the delete and the set are written separately", async () => {
    const separately = await readyQueue('{"a": 1, "b": 2, "c": 3}');
    await separately.queue.stage(remove("a")).done;
    await separately.queue.stage(set("a", 4)).done;
    expect(keysOf(separately.backend.text ?? "")).toEqual(["b", "c", "a"]);

    const { backend, queue } = await readyQueue('{"a": 1, "b": 2, "c": 3}');
    queue.stage(remove("a"));
    queue.stage(set("new", 5));
    const { done } = queue.stage(set("a", 4));
    expect(queue.keys()).toEqual(["b", "c", "new", "a"]);
    const textBefore = queue.render();
    await done;
    expect(backend.writes).toHaveLength(1);
    expect(keysOf(backend.text ?? "")).toEqual(["b", "c", "new", "a"]);
    expect(backend.text).toBe(textBefore);
    expect(queue.keys()).toEqual(["b", "c", "new", "a"]);
    // Set once more, it stays where it went.
    await queue.stage(set("a", 6)).done;
    expect(keysOf(backend.text ?? "")).toEqual(["b", "c", "new", "a"]);
  });

  it("a key deleted and set again while a write is in flight, in either batch, goes last", async () => {
    const { backend, queue } = await readyQueue('{"a": 1, "b": 2, "c": 3}');
    const release = backend.hold();
    queue.stage(remove("a"));
    queue.stage(set("a", 4));
    queue.stage(set("x", 0));
    await ticks();
    expect(backend.started).toHaveLength(1);
    queue.stage(remove("b"));
    queue.stage(set("y", 0));
    queue.stage(set("b", 5));
    queue.stage(set("a", 6));
    const keysDuring = queue.keys();
    const textDuring = queue.render();
    expect(keysDuring).toEqual(["c", "a", "x", "y", "b"]);
    release();
    await queue.written();
    expect(backend.writes).toHaveLength(2);
    expect(backend.text).toBe(textDuring);
    expect(queue.keys()).toEqual(keysDuring);
  });

  it("when the write deleting a key fails, the key set again after it keeps its place, and keys() says so", async () => {
    const { backend, queue } = await readyQueue('{"a": 1, "b": 2}');
    const release = backend.hold();
    const deleting = queue.stage(remove("a"));
    await ticks();
    const { done } = queue.stage(set("a", 3));
    // As staged: the delete, then the set.
    expect(queue.keys()).toEqual(["b", "a"]);
    backend.failures.push({ error: new Error("disk full") });
    release();
    await expect(deleting.done).rejects.toBeInstanceOf(StoreIOError);
    // The delete never happened: the set replaces the key where it is.
    expect(queue.keys()).toEqual(["a", "b"]);
    await done;
    expect(backend.text).toBe('{\n  "a": 3,\n  "b": 2\n}\n');
    expect(queue.keys()).toEqual(["a", "b"]);
  });

  it("random sets, deletes and clears, with writes held and released between them, list and write keys in call order", async () => {
    type Op =
      | { kind: "set"; key: string; value: number }
      | { kind: "delete"; key: string }
      | { kind: "clear" }
      | { kind: "hold" }
      | { kind: "release" }
      | { kind: "ticks"; rounds: number };
    const key = fc.constantFrom("a", "b", "c", "d", "e");
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ kind: fc.constant("set" as const), key, value: fc.nat(9) }) },
      { weight: 4, arbitrary: fc.record({ kind: fc.constant("delete" as const), key }) },
      { weight: 1, arbitrary: fc.constant({ kind: "clear" as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: "hold" as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: "release" as const }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("ticks" as const), rounds: fc.integer({ min: 1, max: 6 }) }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 30 }), async (ops) => {
        const { backend, queue } = await readyQueue('{"a": 1, "b": 2, "c": 3}');
        // A Map keeps a replaced key in place and puts a deleted then re-set one last, as the file should.
        const model = new Map<string, string>([
          ["a", "1"],
          ["b", "2"],
          ["c", "3"],
        ]);
        let release: (() => void) | undefined;
        for (const [i, o] of ops.entries()) {
          if (o.kind === "set") {
            queue.stage(set(o.key, o.value));
            model.set(o.key, String(o.value));
          } else if (o.kind === "delete") {
            queue.stage(remove(o.key));
            model.delete(o.key);
          } else if (o.kind === "clear") {
            queue.stage(clear);
            model.clear();
          } else if (o.kind === "hold") {
            release ??= backend.hold();
          } else if (o.kind === "release") {
            release?.();
            release = undefined;
          } else {
            await ticks(o.rounds);
          }
          const step = `after op ${i} of ${JSON.stringify(ops)}`;
          expect(queue.keys(), step).toEqual([...model.keys()]);
          expectDocument(queue.render(), [...model]);
        }
        release?.();
        await queue.written();
        expectDocument(backend.text ?? "{}", [...model]);
        // The file as the last write left it (none: as loaded).
        if (backend.started.length > 0) expect(queue.render()).toBe(backend.text ?? "{}\n");
        expect(queue.keys()).toEqual([...model.keys()]);
      }),
      { numRuns: Number(process.env["AIOKV_MODEL_RUNS"] ?? 200) },
    );
  });
});
