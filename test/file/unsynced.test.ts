import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { AioKV } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp.js";
import { fixture } from "../helpers/processes.js";

const hasStrace = spawnSync("strace", ["-V"]).status === 0;
if (!hasStrace) console.log("Skipping the fsync fault test: strace is not installed (apt-get install strace)");

/** Runs the fixture on `file` under strace with `options`; its stdout and strace's report. */
function traced(file: string, ...options: string[]): { stdout: string; stderr: string } {
  return tracedFixture("unsynced-set.mjs", file, ...options);
}

function tracedFixture(name: string, file: string, ...options: string[]): { stdout: string; stderr: string } {
  const { stdout, stderr, status } = spawnSync("strace", ["-f", "-qq", ...options, "node", fixture(name), file], { encoding: "utf8" });
  expect(status, stderr).toBe(0);
  return { stdout, stderr };
}

describe("FileBackend when the directory's fsync fails after the rename (strace fault injection)", () => {
  it.skipIf(!hasStrace)("set() rejects with StoreIOError 'sync' saying the change is in the file; the store and the file keep it", async () => {
    const dir = await tempDir();
    // A fresh store's synced set makes two fsyncs, the temp file's then the directory's: the
    // second is the one to fail. Counted first, so that a change in the count fails here.
    const counted = traced(join(dir, "counted.json"), "-e", "trace=fsync,fdatasync");
    expect(counted.stderr.match(/\bf(?:data)?sync\(\d+\) += 0$/gm)).toHaveLength(2);

    const file = join(dir, "state.json");
    // -P: only the fsync of the directory itself fails (strace counts calls per thread, so a
    // count such as when=2 would depend on which thread of the pool made the call).
    const { stdout, stderr } = traced(file, "-P", dir, "-e", "trace=fsync", "-e", "inject=fsync:error=EIO");
    expect(stderr).toMatch(/fsync\(\d+\) += -1 EIO .*\(INJECTED\)/);
    expect(JSON.parse(stdout)).toStrictEqual({
      rejected: {
        name: "StoreIOError",
        operation: "sync",
        code: "EIO",
        message: `Cannot sync store ${JSON.stringify(file)}: the change is in the file but may not survive a power loss (EIO: i/o error, fsync)`,
      },
      // The store in the child kept the change, as the file did.
      value: "v",
    });
    const reopened = new AioKV(new FileBackend(file));
    expect(await reopened.getAll()).toStrictEqual({ k: "v" });
    await reopened.close();
  });

  it.skipIf(!hasStrace)("clear() whose directory fsync fails after the unlink resolves false, logs StoreIOError 'sync', and the store agrees with the file: empty", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const kv = new AioKV(new FileBackend(file));
    await kv.set("k", "v");
    await kv.close();
    // -P: only the fsync of the directory itself fails (strace counts calls per thread, so a
    // count such as when=N would depend on which thread of the pool made the call).
    const { stdout, stderr } = tracedFixture("unsynced-clear.mjs", file, "-P", dir, "-e", "trace=fsync", "-e", "inject=fsync:error=EIO");
    expect(stderr).toMatch(/fsync\(\d+\) += -1 EIO .*\(INJECTED\)/);
    expect(JSON.parse(stdout)).toStrictEqual({
      cleared: false,
      logged: [{ message: `Cannot clear in store ${JSON.stringify(file)}`, name: "StoreIOError", operation: "sync" }],
      value: null,
    });
    const reopened = new AioKV(new FileBackend(file));
    expect(await reopened.getAll()).toStrictEqual({});
    await reopened.close();
  });
});
