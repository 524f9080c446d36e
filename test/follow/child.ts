// A child process whose stdout and stderr lines the follow tests wait on, killed when the test ends.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { onTestFinished } from "vitest";

/** A running child: its lines so far, a way to wait for one, and its exit. */
export interface Child {
  readonly process: ChildProcessWithoutNullStreams;
  readonly stdout: string[];
  readonly stderr: string[];
  /** Resolves the first stdout (or `stream`) line `match` accepts, seen or to come; rejects after `within` ms. */
  line(match: (line: string) => boolean, options?: { stream?: "stdout" | "stderr"; within?: number }): Promise<string>;
  /** Resolves the exit code (the signal's name when killed by one); rejects after `within` ms. */
  exit(within?: number): Promise<number | string>;
}

/** Runs `node <args>`; its lines are collected as they come. */
export function run(args: string[]): Child {
  const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] });
  onTestFinished(() => {
    child.kill("SIGKILL");
  });
  const lines = { stdout: [] as string[], stderr: [] as string[] };
  const waiters = new Set<() => void>();
  for (const stream of ["stdout", "stderr"] as const) {
    let rest = "";
    child[stream].on("data", (data: Buffer) => {
      const parts = (rest + data.toString()).split("\n");
      rest = parts.pop() ?? "";
      lines[stream].push(...parts);
      for (const waiter of [...waiters]) waiter();
    });
  }
  const ended = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")));
  return {
    process: child,
    ...lines,
    line: (match, { stream = "stdout", within = 10_000 } = {}) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const found = lines[stream].find(match);
          if (found === undefined) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`No matching ${stream} line within ${within} ms; got:\n${lines[stream].join("\n")}\nstderr:\n${lines.stderr.join("\n")}`));
        }, within);
        waiters.add(check);
        check();
      }),
    exit: (within = 10_000) =>
      Promise.race([
        ended,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`The child did not exit within ${within} ms`)), within).unref()),
      ]),
  };
}
