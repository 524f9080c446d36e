// A real redis-server for the tests, the bench and the demo: started on a free port of 127.0.0.1
// with a temp directory, stopped, killed and restarted on the same directory (and port).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Whether redis-server is installed (`.ci/run` installs it with apt-get). */
export const haveRedis: boolean = spawnSync("redis-server", ["--version"]).status === 0;

/**
 * For a test file: whether its Redis tests run. Where CI installed the server and set
 * AIOKV_REQUIRE_REDIS, a missing server fails instead of skipping.
 */
export function redisTestsRun(): boolean {
  if (!haveRedis) {
    if (process.env["AIOKV_REQUIRE_REDIS"]) throw new Error("redis-server is not installed, and AIOKV_REQUIRE_REDIS is set");
    console.log("Redis tests skipped: redis-server is not installed (apt-get install redis-server)");
  }
  return haveRedis;
}

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** SIGKILLs the server: whatever was not persisted is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory (an AOF file, if any, is replayed). */
  start(): Promise<void>;
  /** SIGSTOPs or SIGCONTs the server: a server that accepts nothing and answers nothing. */
  signal(signal: "SIGSTOP" | "SIGCONT"): void;
  /** Stops it and removes its directory. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/**
 * Starts a redis-server. `aof`: append-only file with `appendfsync always` (every acknowledged
 * write is on disk); otherwise no persistence at all. `replicaOf`: a replica of the server on that port.
 */
export async function startRedis(options: { aof?: boolean; replicaOf?: number } = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "aiokv-redis-"));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--daemonize", "no", "--loglevel", "warning"];
  args.push(...(options.aof ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]));
  if (options.replicaOf !== undefined) args.push("--replicaof", "127.0.0.1", String(options.replicaOf));
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    const started = spawn("redis-server", args, { stdio: "ignore" });
    child = started;
    // Ready once it answers PING; redis-cli is installed with redis-server.
    for (let waited = 0; spawnSync("redis-cli", ["-p", String(port), "ping"]).stdout?.toString().trim() !== "PONG"; waited += 20) {
      if (waited > 10_000 || started.exitCode !== null) throw new Error(`redis-server on port ${port} did not start`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const kill = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGKILL");
    await exited;
  };

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    kill,
    start,
    signal: (signal) => void child?.kill(signal),
    stop: async () => {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
