// The demo bot as the README runs it: `pnpm demo`, then `pnpm test` (minutes), then `pnpm demo`
// again, which must show the state the first run left, the rate limit refusing `ping` included.
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { root } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";

const demo = join(root, "demo", "dist", "demo.js");
const run = promisify(execFile);

it("a second run of the demo, after a pause as long as the test suite takes, carries the state over and refuses ping", async () => {
  const dir = await tempDir();
  const state = join(dir, "demo-state.json");

  const first = await run(process.execPath, [demo], { cwd: dir });
  expect(first.stdout.split("\n").slice(0, 4)).toStrictEqual([
    `Run 1 on ${state}`,
    "Last command before this run: null",
    "ping: pong",
    "Messages 1, 2: handled 1, 2, skipped none (already seen)",
  ]);

  // `pnpm test` between the two runs: ten minutes pass (the first run's ping moves back that far).
  const left = JSON.parse(await readFile(state, "utf8")) as { ping_ran_at: number };
  await writeFile(state, JSON.stringify({ ...left, ping_ran_at: left.ping_ran_at - 600 }));

  const second = await run(process.execPath, [demo], { cwd: dir });
  const lines = second.stdout.split("\n");
  expect(lines.slice(0, 2)).toStrictEqual([`Run 2 on ${state}`, 'Last command before this run: "ping"']);
  expect(lines[2]).toMatch(/^ping: rate-limited, it ran 60[0-9]s ago \(once a day at most\)$/);
  expect(lines[3]).toBe("Messages 3, 4, 2: handled 3, 4, skipped 2 (already seen)");
  expect(JSON.parse(await readFile(state, "utf8"))).toStrictEqual({
    runs: 2,
    ping_ran_at: left.ping_ran_at - 600,
    last_command: "ping",
    seen_ids: [1, 2, 3, 4],
  });
});
