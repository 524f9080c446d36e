// The README's TypeScript examples, which the tests run and type-check as written.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { root } from "./processes.js";

/** Every ts block of the README, in order. */
export const readmeBlocks: readonly string[] = Array.from(readFileSync(join(root, "README.md"), "utf8").matchAll(/```ts\n([\s\S]*?)```/g), (match) => match[1] ?? "");

/** The README's one ts block whose text passes `test`; `what` names it in the error when there is not exactly one. */
export function readmeBlock(what: string, test: (text: string) => boolean): string {
  const found = readmeBlocks.filter(test);
  if (found.length !== 1) throw new Error(`Expected one README block ${what}, found ${found.length}`);
  return found[0] ?? "";
}
