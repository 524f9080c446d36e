// An owner holding its store over time while other processes keep trying to take it. The suite's
// own run holds it for 3x the shortest stale time (2 s); `pnpm test:soak` for AIOKV_SOAK_SECONDS at
// the default stale time (10 s), with a contender every 3 s.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { AioKV } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import { describe, expect, it, onTestFinished } from "vitest";
import { fixture, sleep } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";

const soak = process.env["AIOKV_SOAK_SECONDS"] !== undefined;
const staleAfter = soak ? 10_000 : 2000;
const span = soak ? Number(process.env["AIOKV_SOAK_SECONDS"]) * 1000 : 3 * staleAfter + 1000;
const contendEvery = soak ? 3000 : 200;

interface Counts {
  tries: number;
  refused: number;
  admitted: number;
  other: string[];
}

describe("FileBackend owner lock over time", () => {
  it(`an owner held ${span / 1000} s (staleAfter ${staleAfter} ms), idle and busy in turns, keeps its lock against a contender every ${contendEvery} ms; the contender gets in once it closes`, async () => {
    const file = join(await tempDir(), "state.json");
    const holder = spawn(process.execPath, [fixture("holder.mjs"), file, String(staleAfter)]);
    onTestFinished(() => {
      holder.kill("SIGKILL");
    });
    const lines = createInterface({ input: holder.stdout })[Symbol.asyncIterator]();
    const ask = async (line: string): Promise<string | undefined> => {
      holder.stdin.write(`${line}\n`);
      return ((await lines.next()) as IteratorResult<string, undefined>).value;
    };
    expect((await lines.next()).value).toBe("ready");
    const contending = new Promise<Counts>((resolve) => {
      const child = spawn(process.execPath, [fixture("contender.mjs"), file, String(staleAfter), String(span), String(contendEvery)]);
      onTestFinished(() => {
        child.kill("SIGKILL");
      });
      let out = "";
      child.stdout.on("data", (data: Buffer) => (out += data.toString()));
      child.once("exit", () => resolve(JSON.parse(out || "{}") as Counts));
    });
    // Phases of idleness (only the refresh timer keeps the lock) and of a set every 500 ms.
    const results = { ok: 0, refused: 0 };
    const phase = Math.max(staleAfter * 1.5, span / 6);
    for (let start = Date.now(), n = 0; Date.now() - start < span; n++) {
      if (n % 2 === 0) await sleep(Math.min(phase, span - (Date.now() - start)));
      else {
        for (const end = Date.now() + phase; Date.now() < end && Date.now() - start < span; ) {
          const answer = await ask(`set n ${results.ok + results.refused}`);
          if (answer === "ok") results.ok++;
          else results.refused++;
          await sleep(500);
        }
      }
    }
    const counts = await contending;
    console.log(`lock soak: ${span / 1000} s at staleAfter ${staleAfter} ms; owner's sets ${JSON.stringify(results)}; contender ${JSON.stringify(counts)}`);
    expect(results.refused).toBe(0);
    expect(results.ok).toBeGreaterThan(5);
    expect(counts.tries).toBeGreaterThan(2);
    expect(counts).toStrictEqual({ tries: counts.tries, refused: counts.tries, admitted: 0, other: [] });
    expect(await ask("close")).toBe("closed");
    const kv = new AioKV(new FileBackend(file, { staleAfter }));
    expect(await kv.get("n")).toBe(results.ok - 1);
    await kv.close();
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({ n: results.ok - 1 });
  }, span + 60_000);
});
