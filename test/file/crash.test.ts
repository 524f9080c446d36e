import { spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { isDeepStrictEqual } from "node:util";
import { AioKV, unlessAbsent } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp.js";
import { exited, fixture } from "../helpers/processes.js";

// `pnpm test:crash` runs 200 rounds per sync mode; the everyday suite runs fewer.
const rounds = Number(process.env["AIOKV_CRASH_ROUNDS"] ?? 25);
const storm = fixture("storm.mjs");

type Op = ["set", string, number, number] | ["delete", string] | ["clear"];
type Doc = Record<string, unknown>;

function applied(doc: Doc, ops: readonly Op[]): Doc {
  const next = { ...doc };
  for (const op of ops) {
    if (op[0] === "set") next[op[1]] = { seq: op[2], pad: "x".repeat(op[3]) };
    else if (op[0] === "delete") delete next[op[1]];
    else for (const key of Object.keys(next)) delete next[key];
  }
  return next;
}

/** Runs the storm until a SIGKILL at a random moment; resolves the batches it announced and acknowledged. */
async function stormUntilKilled(file: string, sync: boolean, seed: number): Promise<{ acked: Op[][]; inFlight: Op[] }> {
  const child = spawn(process.execPath, [storm, file, sync ? "1" : "0", String(seed)], { stdio: ["ignore", "pipe", "inherit"] });
  const acked: Op[][] = [];
  let inFlight: Op[] = [];
  const gone = exited(child);
  for await (const line of createInterface({ input: child.stdout })) {
    if (line === "ready") setTimeout(() => child.kill("SIGKILL"), 5 + Math.random() * 120);
    else if (line.startsWith("B ")) inFlight = JSON.parse(line.slice(2)) as Op[];
    else if (line === "A") {
      acked.push(inFlight);
      inFlight = [];
    }
  }
  await gone;
  return { acked, inFlight };
}

async function readDoc(file: string): Promise<Doc> {
  const text = await unlessAbsent(readFile(file, "utf8"));
  if (text === undefined) return {};
  const doc = JSON.parse(text) as unknown;
  expect(typeof doc === "object" && doc !== null && !Array.isArray(doc)).toBe(true);
  return doc as Doc;
}

describe.each([
  ["synced", true],
  ["unsynced", false],
])("FileBackend crash safety (%s writes, SIGKILL mid-storm)", (_, sync) => {
  it(`leaves a whole file holding every acknowledged change, over ${rounds} rounds`, async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    let expected: Doc = {};
    let acknowledged = 0;
    for (let round = 0; round < rounds; round++) {
      const seed = (Math.random() * 2 ** 32) >>> 0;
      const { acked, inFlight } = await stormUntilKilled(file, sync, seed);
      acknowledged += acked.length;
      for (const batch of acked) expected = applied(expected, batch);
      const actual = await readDoc(file);
      // The batch in flight may have reached the file whole, in part (group commit splits it in
      // call order), or not at all; nothing else may differ.
      const allowed = Array.from({ length: inFlight.length + 1 }, (_, n) => applied(expected, inFlight.slice(0, n)));
      const match = allowed.findIndex((doc) => isDeepStrictEqual(doc, actual));
      expect(match, `round ${round}, seed ${seed}: the file is not the acknowledged state`).toBeGreaterThanOrEqual(0);
      expected = actual;
      const temps = (await readdir(dir)).filter((name) => name.endsWith(".aiokv.tmp"));
      expect(temps.length, `round ${round}: leftover temp files pile up`).toBeLessThanOrEqual(1);
    }
    expect(acknowledged).toBeGreaterThan(rounds);
    const kv = new AioKV(new FileBackend(file));
    expect(await kv.getAll()).toStrictEqual(expected);
    await kv.close();
    // The file, and the owner lock's directory, which stays (its numbers must never go back).
    expect((await readdir(dir)).sort()).toStrictEqual(["state.json", "state.json.lock"]);
    console.log(`${sync ? "synced" : "unsynced"}: ${rounds} rounds, ${acknowledged} acknowledged batches, 0 torn or lost`);
  });
});
