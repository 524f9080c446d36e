// What the topic suites share: opening a store on a fresh harness, reopening it, and asserting on
// rejections. Internal to the package: the public helpers are in harness.ts.
import { AioKV, type AioKVOptions, type JsonValue } from "@aiokv/core";
import { expect, type TestContext } from "vitest";
import { instrumented, storeOptions, type Harness, type HarnessFactory } from "./harness.js";

/** A backend that counts, holds and fails writes: see {@link instrumented}. */
export type Instrumented = ReturnType<typeof instrumented>;

/** A store on a fresh harness. */
export interface Opened {
  h: Harness;
  kv: AioKV;
}

/** A store on a fresh harness, through an {@link instrumented} backend. */
export interface OpenedInstrumented extends Opened {
  backend: Instrumented;
}

/** Opens a store with `options` on a fresh harness. */
export type Open = (options?: AioKVOptions) => Promise<Opened>;

/** Opens a store with `options` on a fresh harness, through an {@link instrumented} backend. */
export type OpenInstrumented = (options?: AioKVOptions) => Promise<OpenedInstrumented>;

/** Opens stores on the harness's own backend. */
export function opener(makeHarness: HarnessFactory): Open {
  return async (options = {}) => {
    const h = await makeHarness();
    return { h, kv: new AioKV(h.backend(), storeOptions(h, options)) };
  };
}

/** Opens stores on an {@link instrumented} wrapper of the harness's backend. */
export function instrumentedOpener(makeHarness: HarnessFactory): OpenInstrumented {
  return async (options = {}) => {
    const h = await makeHarness();
    const backend = instrumented(h.backend());
    return { h, backend, kv: new AioKV(backend, storeOptions(h, options)) };
  };
}

/** Closes `kv`, then opens the same storage again, as a restart would. */
export async function reopen(kv: AioKV, h: Harness): Promise<AioKV> {
  await kv.close();
  return new AioKV(h.backend(), storeOptions(h));
}

/** Closes `kv`, and resolves what a store opened again on the same storage holds, closing it too. */
export async function reopened(kv: AioKV, h: Harness): Promise<unknown> {
  const again = await reopen(kv, h);
  const all = await again.getAll();
  await again.close();
  return all;
}

/** The document's raw text parsed, `null` when there is none. */
export const parsed = (text: string | undefined): unknown => JSON.parse(text ?? "null");

/** `text` as a regular expression that matches it literally. */
export const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/** A value `levels` arrays deep. */
export function deep(levels: number): JsonValue {
  let value: JsonValue = 1;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

/** Resolves the error `promise` rejects with; fails the test if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!("error" in outcome)) throw new Error(`Expected a rejection, got ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(Error);
  return outcome.error as Error;
}

/**
 * Calls `get("a")`, `set("a", 2)` and `getAll()` on `kv` one after the other, and hands `check` the
 * error each rejects with; fails the test if one resolves.
 */
export async function eachReadRejects(kv: AioKV, check: (error: Error) => void): Promise<void> {
  for (const call of [() => kv.get("a"), () => kv.set("a", 2), () => kv.getAll()]) check(await rejection(call()));
}

/** Lets every promise job and I/O callback that is ready run: a few real milliseconds. */
export const moment = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

/**
 * Resolves once `check()` resolves without throwing, trying every 5 ms for up to `within` ms;
 * rejects with its last error after that. For what a follower sees within a bounded delay.
 */
export async function eventually<R>(check: () => R | Promise<R>, within = 5000): Promise<R> {
  const end = Date.now() + within;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > end) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

/** Whether `promise` has settled by now (after a moment), without consuming its outcome. */
export async function hasSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await moment();
  return settled;
}

/**
 * The harness's `peekAt`, or, when the harness has none, skips the running test, so that it is
 * reported as skipped, not passed: what only `peekAt` can see is then not checked.
 */
export function peekAtOrSkip(context: TestContext, h: Harness): (location: string) => Promise<string | undefined> {
  if (h.peekAt === undefined) return context.skip("the harness has no peekAt()");
  return h.peekAt.bind(h);
}
