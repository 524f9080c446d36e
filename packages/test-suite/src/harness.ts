import type { Backend, Logger } from "@aiokv/core";
import type { TestContext } from "vitest";

/** What a contract suite needs from a backend under test: fresh per test, one storage each. */
export interface Harness {
  /** A Backend on this harness's storage; each call gives a new handle on the same storage, as reopening would. */
  backend(): Backend;
  /** Puts raw text where the document lives, or removes it (`undefined`), without aiokv. */
  plant(text: string | undefined): Promise<void>;
  /** The raw text where the document lives, or `undefined`, read without aiokv. */
  peek(): Promise<string | undefined>;
  /**
   * Optional: the raw text at another location, such as where `quarantine()` moved a document;
   * without it, the tests that read a moved document are skipped.
   */
  peekAt?(location: string): Promise<string | undefined>;
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
    async write(pieces: readonly Uint8Array[]): Promise<void> {
      wrapper.writes++;
      const failure = wrapper.failNext;
      wrapper.failNext = undefined;
      await gate.passed();
      if (failure) throw failure;
      await inner.write(pieces);
    },
  };
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
