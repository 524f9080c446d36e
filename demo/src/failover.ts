// Two replicas of one bot on one Redis store: the first to start owns it and counts; the standby
// tries every half second and is refused with StoreLockedError. The demo SIGKILLs the owner; once
// its lock's ttl runs out the standby takes over and counts on from the last acknowledged value.
//
//   pnpm demo:failover                      # starts its own redis-server (needs one installed)
//   pnpm demo:failover redis://host:6379    # or uses yours, under the key demo:failover
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { AioKV, isStoreLockedError } from "aiokv";
import { startRedis } from "@aiokv/tests/redis-server";
import { RedisBackend } from "@aiokv/redis-backend";

const lockTtl = 2000;
const key = "demo:failover";
const [role, url] = process.argv.slice(2);

if (role === "replica" && url) {
  // A replica: own the store (retrying while another does), then count once every 200 ms.
  const name = `replica ${process.pid}`;
  const kv = new AioKV(new RedisBackend({ url, key, lockTtl }));
  for (;;) {
    try {
      const count = await kv.update("count", (n: number) => n + 1, 0);
      await kv.set("owner", name);
      console.log(`${name}: count ${count}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    } catch (error) {
      if (!isStoreLockedError(error)) throw error;
      console.log(`${name}: standing by (${error.message.replace(/^.*: it is /, "")})`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
} else {
  const server = role === undefined ? await startRedis() : undefined;
  const target = role ?? server?.url ?? "";
  const reset = new AioKV(new RedisBackend({ url: target, key }));
  await reset.clear();
  await reset.close();

  const replicas: ChildProcess[] = [];
  const startReplica = (): ChildProcess => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "replica", target], { stdio: ["ignore", "pipe", "inherit"] });
    createInterface({ input: child.stdout }).on("line", (line) => console.log(line));
    replicas.push(child);
    return child;
  };
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

  const first = startReplica();
  await sleep(1000);
  startReplica();
  await sleep(1500);
  console.log(`--- SIGKILL the owner, replica ${first.pid}: its lock expires within ${lockTtl} ms ---`);
  const killedAt = Date.now();
  first.kill("SIGKILL");
  // A store reads its document once; a fresh one per look sees the replicas' latest write.
  const owner = async (): Promise<unknown> => {
    const reader = new AioKV(new RedisBackend({ url: target, key }), { lock: false });
    const { owner: name } = await reader.getAll();
    await reader.close();
    return name;
  };
  while ((await owner()) === `replica ${first.pid}`) await sleep(50);
  console.log(`--- the standby took over ${Date.now() - killedAt} ms after the kill ---`);
  await sleep(1000);
  for (const replica of replicas) replica.kill("SIGKILL");
  await server?.stop();
}
