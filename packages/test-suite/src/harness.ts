import type { AioKVOptions, Backend, JsonObject, Logger } from "@aiokv/core";
import type { TestContext } from "vitest";

/** What a contract suite needs from a backend under test: fresh per test, one storage each. */
export interface Harness {
  /** A Backend on this harness's storage; each call gives a new handle on the same storage, as reopening would. */
  backend(): Backend;
  /** Puts raw text where the document lives, or removes it (`undefined`), without aiokv. */
  plant(text: string | undefined): Promise<void>;
  /**
   * The raw text where the document lives, or `undefined`, read without aiokv. On a harness whose
   * stores keep a journal (`storeOptions.journal`), what the document and its journal hold
   * together, as a compaction would write it: see {@link journalHarness}.
   */
  peek(): Promise<string | undefined>;
  /**
   * Optional: the raw text at another location, such as where `quarantine()` moved a document;
   * without it, the tests that read a moved document are skipped.
   */
  peekAt?(location: string): Promise<string | undefined>;
  /**
   * Optional: options every store the suite opens on this harness gets (`{ journal: true }` runs
   * the whole contract on journal stores). A test's own options win where they name the same
   * option, except `journal`, which stays the harness's. With `journal: true`, `peek()` answers
   * what a reader of the document and its journal would see: see {@link Harness.peek}.
   */
  readonly storeOptions?: HarnessStoreOptions;
}

/** The store options a harness can give every store: those that do not type the store (no schema, no defaults). */
export type HarnessStoreOptions = Omit<AioKVOptions, "schema" | "defaults">;

/**
 * The options a store opened on `h` by a test that asks for `options` gets: the harness's
 * `storeOptions`, then the test's, the harness's `journal` kept.
 */
export function storeOptions<T = JsonObject>(h: Harness, options: AioKVOptions<T> = {}): AioKVOptions<T> {
  const journal = h.storeOptions?.journal;
  return { ...h.storeOptions, ...options, ...(journal !== undefined && { journal }) };
}

/** The journal methods `backend` has (`readJournal`, `writeJournal`, `appendJournal`, `cutJournal`), bound to it, to give a wrapper of it. */
export function journalMethods(backend: Backend): Pick<Backend, "readJournal" | "writeJournal" | "appendJournal" | "cutJournal"> {
  return {
    ...(backend.readJournal && { readJournal: backend.readJournal.bind(backend) }),
    ...(backend.writeJournal && { writeJournal: backend.writeJournal.bind(backend) }),
    ...(backend.appendJournal && { appendJournal: backend.appendJournal.bind(backend) }),
    ...(backend.cutJournal && { cutJournal: backend.cutJournal.bind(backend) }),
  };
}

/** Makes a fresh harness; called once per test. */
export type HarnessFactory = () => Harness | Promise<Harness>;

/** A logger that keeps what it is given, for asserting on `delete()` and `clear()` failures. */
export function recordingLogger(): Logger & { readonly calls: Array<[string, unknown]> } {
  const calls: Array<[string, unknown]> = [];
  return { calls, error: (message, error) => void calls.push([message, error]) };
}

/**
 * A Backend that passes through to `inner`, counts writes, and can hold or fail the next write.
 * Faults of a real backend are tested with real faults in the backend's own tests; this one
 * exercises AioKV's handling of them (group commit, rollback) identically on every backend.
 * A write to the journal (`journal: true`: starting it, or appending) is a write here as a replace is: counted, held and
 * failed (before anything is appended) the same way; cutting the journal passes through.
 */
export function instrumented(inner: Backend): Backend & {
  writes: number;
  failNext: Error | undefined;
  hold(): () => void;
} {
  const gate = holdable();
  const wrapper = {
    location: inner.location,
    writes: 0,
    failNext: undefined as Error | undefined,
    hold: () => gate.hold(),
    read: () => inner.read(),
    remove: () => inner.remove(),
    // The optional capabilities pass through as they are, so that the store behaves as on `inner`.
    ...(inner.lock && { lock: inner.lock.bind(inner) }),
    ...(inner.unlock && { unlock: inner.unlock.bind(inner) }),
    ...(inner.moveAside && { moveAside: inner.moveAside.bind(inner) }),
    ...(inner.close && { close: inner.close.bind(inner) }),
    ...(inner.watch && { watch: inner.watch.bind(inner) }),
    ...journalMethods(inner),
    ...(inner.appendJournal && {
      appendJournal: async (pieces: readonly Uint8Array[]): Promise<void> => {
        await counted();
        await inner.appendJournal?.(pieces);
      },
    }),
    ...(inner.writeJournal && {
      writeJournal: async (pieces: readonly Uint8Array[]): Promise<void> => {
        await counted();
        await inner.writeJournal?.(pieces);
      },
    }),
    async write(pieces: readonly Uint8Array[]): Promise<void> {
      await counted();
      await inner.write(pieces);
    },
  };
  /** Counts a write, waits for the gate, and throws the failure set for it. */
  async function counted(): Promise<void> {
    wrapper.writes++;
    const failure = wrapper.failNext;
    wrapper.failNext = undefined;
    await gate.passed();
    if (failure) throw failure;
  }
  return wrapper;
}

/**
 * A gate that a test closes with `hold()` (which returns the function that opens it again):
 * `passed()` resolves at once while it is open, else once it is opened.
 */
export function holdable(): { hold(): () => void; passed(): Promise<void> } {
  let gate: Promise<void> | undefined;
  return {
    hold(): () => void {
      let release!: () => void;
      gate = new Promise((resolve) => (release = resolve));
      return () => {
        gate = undefined;
        release();
      };
    },
    passed: async () => gate,
  };
}

/** The optional capabilities of a {@link Backend}, each tested only where the backend has it. */
export type Capability = "lock" | "unlock" | "moveAside" | "close" | "watch";

/**
 * Skips the running test when `backend` lacks one of `capabilities`, so that it is reported as
 * skipped, not passed: a backend needs only read, write and remove to pass the contract.
 */
export function skipWithout(context: TestContext, backend: Backend, ...capabilities: Capability[]): void {
  const missing = capabilities.filter((capability) => typeof backend[capability] !== "function");
  if (missing.length > 0) context.skip(`the backend has no ${missing.map((name) => `${name}()`).join(" or ")}`);
}

/** Resolves once `predicate()` holds, checking every millisecond for up to two seconds. */
export async function until(predicate: () => boolean): Promise<void> {
  for (let waited = 0; !predicate(); waited++) {
    if (waited > 2000) throw new Error("Timed out waiting for a condition");
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
