// A chat bot's local state, as the Python aiokv's users keep it: the last command, a rate-limit
// timestamp written with set(key), and the message IDs already handled. Run it twice: the second
// run starts from what the first one left in the file.
import { AioKV } from "aiokv";

const file = process.argv[2] ?? "demo-state.json";
// A day, not a minute: the README's "run it again" comes after `pnpm test`, which takes minutes,
// and the second run must still find `ping` refused.
const cooldownSeconds = 24 * 60 * 60;
const kv = new AioKV(file);

const runs = (await kv.get<number>("runs", 0)) + 1;
await kv.set("runs", runs);
console.log(`Run ${runs} on ${kv.location}`);
console.log(`Last command before this run: ${JSON.stringify(await kv.get("last_command", null))}`);

// Rate limit: `ping` may run once a day; set(key) stores the current unix time.
const lastPing = await kv.get<number>("ping_ran_at");
const now = Math.floor(Date.now() / 1000);
if (lastPing !== undefined && now - lastPing < cooldownSeconds) {
  console.log(`ping: rate-limited, it ran ${now - lastPing}s ago (once a day at most)`);
} else {
  await kv.set("ping_ran_at");
  await kv.set("last_command", "ping");
  console.log("ping: pong");
}

// Seen IDs: messages arrive again after a reconnect; each is handled once across runs.
const incoming = [runs * 2 - 1, runs * 2, runs * 2 - 2].filter((id) => id > 0);
const seen = new Set(await kv.get<number[]>("seen_ids", []));
const fresh = incoming.filter((id) => !seen.has(id));
await kv.set("seen_ids", [...seen, ...fresh].slice(-100));
console.log(`Messages ${incoming.join(", ")}: handled ${fresh.join(", ") || "none"}, skipped ${incoming.filter((id) => seen.has(id)).join(", ") || "none"} (already seen)`);

console.log("State now:", await kv.getAll());
await kv.close();
