// Child processes for the tests: the fixtures in test/fixtures and the built `aiokv` command,
// run as real processes.
import { execFile, spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { onTestFinished } from "vitest";

/** The repository's root directory. */
export const root: string = fileURLToPath(new URL("../../", import.meta.url));

/** The path of a fixture script in test/fixtures. */
export const fixture = (name: string): string => join(root, "test", "fixtures", name);

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const exited = (child: ChildProcess): Promise<unknown> => new Promise((resolve) => child.once("exit", resolve));

/** Runs a fixture to its end, killed if the test finishes first; resolves its stdout lines. */
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

/** What a run of the command did. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

const aiokvPackage = dirname(createRequire(import.meta.url).resolve("aiokv/package.json"));
const bin = join(aiokvPackage, "dist", "cli.js");

/** The `aiokv` package's package.json. */
export const aiokvManifest = (): string => join(aiokvPackage, "package.json");

/** Runs the built `aiokv` command with `args`; resolves its exit code and output. */
export function aiokv(...args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
}

/** A fixture process that answers command lines on stdin with lines on stdout. */
export interface LineChild {
  child: ChildProcessWithoutNullStreams;
  pid: number;
  /** Its next line on stdout; rejects once it exited. */
  next(): Promise<string>;
  /** Sends a command line. */
  send(line: string): void;
  /** Sends a command line and resolves the answer. */
  ask(line: string): Promise<string>;
}

/** Starts fixture `name` with `args`, SIGKILLed when the test ends. */
export function lineChild(name: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): LineChild {
  const child = spawn(process.execPath, [fixture(name), ...args], { env });
  onTestFinished(() => {
    child.kill("SIGKILL");
  });
  const lines: AsyncIterator<string> = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const line = await lines.next();
    if (line.done === true) throw new Error(`${name} exited`);
    return line.value;
  };
  const send = (line: string): void => void child.stdin.write(`${line}\n`);
  return {
    child,
    pid: child.pid ?? 0,
    next,
    send,
    ask: (line) => {
      send(line);
      return next();
    },
  };
}

/** Resolves once process `pid` is stopped (state T in /proc). */
export async function stopped(pid: number): Promise<void> {
  for (let waited = 0; ; waited += 5) {
    const state = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]?.[0];
    if (state === "T") return;
    if (waited > 5000) throw new Error(`Process ${pid} did not stop (state ${state})`);
    await sleep(5);
  }
}
