// What the owner lock's tests share: its fixtures run as processes, and locks planted as a
// holder would have left them.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { onTestFinished } from "vitest";

/** The shortest stale time, which the lock tests run at. */
export const staleAfter = 2000;

export const fixture = (name: string): string => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url));

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const exited = (child: ChildProcess): Promise<unknown> => new Promise((resolve) => child.once("exit", resolve));

/** Runs a fixture to its end; resolves its stdout lines. */
export function runFixture(name: string, args: string[], prefix: string[] = []): Promise<string[]> {
  const argv = [...prefix, process.execPath, fixture(name), ...args];
  const child = spawn(argv[0] ?? "", argv.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
  onTestFinished(() => {
    child.kill("SIGKILL");
  });
  let out = "";
  child.stdout.on("data", (data: Buffer) => (out += data.toString()));
  return new Promise((resolve) => child.once("exit", () => resolve(out.split("\n").filter((line) => line !== ""))));
}

/** The pid of a process that has exited, so that no process on this host has it (for now). */
export async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""]);
  await exited(child);
  return child.pid ?? 0;
}

/** Leaves `file`'s lock as a holder left it: generation `generation`, written by `record`. */
export async function plantLock(file: string, record: object, generation = 1): Promise<string> {
  await mkdir(`${file}.lock`, { recursive: true });
  const path = join(`${file}.lock`, `${generation}.json`);
  await writeFile(path, JSON.stringify({ since: new Date().toISOString(), process: "elsewhere", token: "0", ...record }));
  return path;
}

/** The generations in `file`'s lock directory (not the holders' sockets and candidates, dot files). */
export async function generations(file: string): Promise<string[]> {
  return (await readdir(`${file}.lock`)).filter((name) => !name.startsWith(".")).sort();
}
