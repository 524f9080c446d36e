// SIGKILL in the middle of a setItem storm through unstorage: the file stays whole JSON and holds
// every key whose setItem resolved, with its value; only the calls in flight may be missing.
import { spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { aiokvDriver } from "@aiokv/unstorage";
import { createStorage } from "unstorage";
import { describe, expect, it } from "vitest";
import { fixture } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";

// `AIOKV_CRASH_ROUNDS=200` for the long run, as `pnpm test:crash` does for the file backend.
const rounds = Number(process.env["AIOKV_CRASH_ROUNDS"] ?? 12);
const storm = fixture("unstorage-storm.mjs");
const pads = [0, 10, 200, 2000, 8000];
const valueOf = (seq: number): string => JSON.stringify({ seq, pad: "x".repeat(pads[seq % pads.length] ?? 0) });

/** Runs the storm until a SIGKILL at a random moment; resolves the keys it acknowledged. */
async function stormUntilKilled(file: string, sync: boolean, round: number): Promise<string[]> {
  const child = spawn(process.execPath, [storm, file, sync ? "1" : "0", String(round)], { stdio: ["ignore", "pipe", "inherit"] });
  const acked: string[] = [];
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once("exit", (_, signal) => resolve(signal)));
  for await (const line of createInterface({ input: child.stdout })) {
    if (line === "ready") setTimeout(() => child.kill("SIGKILL"), 5 + Math.random() * 150);
    else if (line.startsWith("A ")) acked.push(line.slice(2));
  }
  expect(await exited).toBe("SIGKILL");
  return acked;
}

describe.each([
  ["synced", true],
  ["unsynced", false],
])("unstorage on aiokv, SIGKILLed mid-storm (%s writes)", (_, sync) => {
  it(`keeps every acknowledged setItem, over ${rounds} rounds`, async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const acknowledged: string[] = [];
    const unacknowledged = new Set<string>();
    for (let round = 0; round < rounds; round++) {
      const acked = await stormUntilKilled(file, sync, round);
      acknowledged.push(...acked);
      // The file is whole JSON; every acknowledged key is in it with its own value.
      const doc = JSON.parse(await readFile(file, "utf8").catch(() => "{}")) as Record<string, unknown>;
      const lost = acknowledged.filter((key) => doc[key] !== valueOf(Number(key.split(":")[1])));
      expect(lost, `round ${round}: acknowledged keys lost or wrong`).toStrictEqual([]);
      // Nothing else: a key never acknowledged is one of this round's last batch, in flight when killed.
      const extra = Object.keys(doc).filter((key) => !acknowledged.includes(key) && !unacknowledged.has(key));
      expect(extra.every((key) => key.startsWith(`r${round}:`)), `round ${round}: unexpected keys ${extra.join(", ")}`).toBe(true);
      expect(extra.length, `round ${round}: more keys than the calls in flight`).toBeLessThanOrEqual(4);
      for (const key of extra) unacknowledged.add(key);
    }
    expect(acknowledged.length).toBeGreaterThan(rounds);
    // Read back through unstorage: the lock of the killed owner is taken over at once.
    const storage = createStorage({ driver: aiokvDriver({ path: file }) });
    const keys = new Set(await storage.getKeys());
    expect(acknowledged.filter((key) => !keys.has(key))).toStrictEqual([]);
    const items = await storage.getItems(acknowledged);
    expect(items.every(({ key, value }) => JSON.stringify(value) === valueOf(Number(key.split(":")[1])))).toBe(true);
    await storage.dispose();
    expect((await readdir(dir)).filter((name) => name.endsWith(".aiokv.tmp")).length).toBeLessThanOrEqual(1);
    console.log(`unstorage ${sync ? "synced" : "unsynced"}: ${rounds} rounds, ${acknowledged.length} acknowledged setItems, 0 lost`);
  }, 30_000 + rounds * 1_500);
});
