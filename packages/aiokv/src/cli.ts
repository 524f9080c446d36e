#!/usr/bin/env node
// The aiokv command: look inside a state file, change it, check it, follow it. Reads (get, list,
// check, watch) take no lock, since the file is only ever replaced whole; changes take the owner
// lock, so they fail with a clear error while a program owns the file instead of being
// overwritten by it.
import { readFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import { parseArgs } from "node:util";
import { isStoreFormatError, unlessAbsent, isStoreIOError, isStoreLockedError, type AioKVOptions, type JsonValue, type Logger } from "@aiokv/core";
import type { FileBackendOptions } from "@aiokv/fs-backend";
import { AioKV } from "./aiokv.js";

const usage = `Usage: aiokv <command> <store> [arguments]

A store is a file path, or a Redis URL with the key after # (redis://host:6379#bot:state) or
in --key; Redis needs @aiokv/redis-backend installed beside aiokv.

Commands:
  get <store> <key>          print the key's value as JSON (exit 1 when absent)
  set <store> <key> [json]   store a JSON value (quote strings: '"text"'); no value: the unix time
  delete <store> <key>       remove a key
  list <store> [--json]      print the keys, one per line; --json prints the whole document
  clear <store>              remove every key and the file (or Redis key)
  check <store>              exit 0 for a valid store; say where it is not
  quarantine <store>         move an unreadable store aside (<store>.corrupt-<time>), keeping it
  copy <from> <to>           copy a store, such as a file to Redis; a non-empty <to> needs --force
  watch <store>              print each change as a JSON line as it happens, until Ctrl-C
                             ({"type":"set","key":...,"value":...}, "delete", "clear")

Options:
  --key <key>     the Redis key of a redis:// store that names none after #
  --force         with copy: replace a target store that holds keys
  --json          with list: print the document as JSON
  --no-sync       with set, delete, clear: do not fsync (faster, not durable on power loss)
  -h, --help      print this help
  -v, --version   print the version

Exit codes: 0 done, 1 the store refused (absent key, bad file, locked, I/O), 2 wrong usage.`;

/** Wrong usage: exit 2, with the usage text unless the problem is only in a value. */
class UsageError extends Error {
  readonly showUsage: boolean;

  constructor(message: string, showUsage = true) {
    super(message);
    this.showUsage = showUsage;
  }
}

/** Runs one command; resolves the exit code. Output goes through `out` and `err`. */
async function main(args: string[], out: (text: string) => void, err: (text: string) => void): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        json: { type: "boolean", default: false },
        key: { type: "string" },
        force: { type: "boolean", default: false },
        "no-sync": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", short: "v", default: false },
      },
    });
  } catch (error) {
    err(`aiokv: ${(error as Error).message}\n\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    out(usage);
    return 0;
  }
  if (values.version) {
    out(version());
    return 0;
  }
  const [command, file, ...rest] = positionals;
  try {
    if (command === undefined) throw new UsageError("missing command");
    if (file === undefined) throw new UsageError(`${command}: missing store`);
    return await run(command, file, rest, { json: values.json, sync: !values["no-sync"], key: values.key, force: values.force }, out, err);
  } catch (error) {
    if (error instanceof UsageError) {
      err(error.showUsage ? `aiokv: ${error.message}\n\n${usage}` : `aiokv: ${error.message}`);
      return 2;
    }
    err(`aiokv: ${describe(error)}`);
    return 1;
  }
}

async function run(
  command: string,
  file: string,
  args: string[],
  options: { json: boolean; sync: boolean; key: string | undefined; force: boolean },
  out: (text: string) => void,
  err: (text: string) => void,
): Promise<number> {
  const expect = (count: number, names: string): void => {
    if (args.length !== count) throw new UsageError(`${command}: expected ${names || "no more arguments"} after the store`);
  };
  // delete() and clear() report their failures through the logger and resolve false.
  let failure: unknown;
  const logger: Logger = { error: (_message, error) => void (failure ??= error) };
  const reading = { lock: false, logger };
  const writing = { sync: options.sync, logger };
  const open = (target: string, settings: AioKVOptions & FileBackendOptions): Promise<AioKV> => openStore(target, options.key, settings);
  switch (command) {
    case "get": {
      expect(1, "a key");
      const key = args[0] ?? "";
      await using kv = await open(file, reading);
      const value = await kv.get(key, absent);
      if (value === absent) {
        err(`aiokv: key ${JSON.stringify(key)} is not in ${JSON.stringify(kv.location)}`);
        return 1;
      }
      out(JSON.stringify(value, null, 2));
      return 0;
    }
    case "set": {
      if (args.length !== 1 && args.length !== 2) throw new UsageError("set: expected a key and an optional JSON value after the store");
      const [key = "", text] = args;
      const value = text === undefined ? undefined : parseValue(text);
      await using kv = await open(file, writing);
      await kv.set(key, value);
      return 0;
    }
    case "delete": {
      expect(1, "a key");
      await using kv = await open(file, writing);
      if (await kv.delete(args[0] ?? "")) return 0;
      throw failure;
    }
    case "list": {
      expect(0, "");
      await using kv = await open(file, reading);
      if (options.json) out(JSON.stringify(await kv.getAll(), null, 2));
      else for (const key of await kv.keys()) out(key);
      return 0;
    }
    case "clear": {
      expect(0, "");
      await using kv = await open(file, writing);
      if (await kv.clear()) return 0;
      throw failure;
    }
    case "check": {
      expect(0, "");
      await using kv = await open(file, reading);
      const keys = await kv.keys();
      // An absent file reads as an empty store; a check of a mistyped path must not pass.
      if (keys.length === 0 && !isRedis(file) && (await isAbsent(file))) {
        err(`aiokv: Cannot check store ${JSON.stringify(kv.location)}: the file does not exist`);
        return 1;
      }
      out(`${kv.location}: a valid store of ${keysCount(keys.length)}`);
      return 0;
    }
    case "quarantine": {
      expect(0, "");
      await using kv = await open(file, { ...writing, logger: { error: () => {} } });
      const moved = await kv.quarantine();
      out(moved === undefined ? `${kv.location}: no file, nothing moved` : `moved ${kv.location} to ${moved}`);
      return 0;
    }
    case "watch": {
      expect(0, "");
      await using kv = await open(file, { readOnly: true, logger: { error: (message, error) => err(`aiokv: ${message}: ${describe(error)}`) } });
      // Fails as list does when the store does not load now; later failures are reported and waited out.
      await kv.size();
      kv.watch((change) => out(JSON.stringify(change)));
      err(`aiokv: watching ${kv.location} (Ctrl-C stops)`);
      await followUntilStopped(kv, err);
      return 0;
    }
    case "copy": {
      expect(1, "a target store");
      await using from = await open(file, reading);
      await using to = await open(args[0] ?? "", writing);
      const document = await from.getAll();
      const present = await to.keys();
      if (present.length > 0 && !options.force) {
        err(`aiokv: ${to.location} holds ${keysCount(present.length)}; --force replaces them`);
        return 1;
      }
      // Called together, the clear and the new keys go to the target in one write.
      const cleared = to.clear();
      await to.setMany(document);
      if (!(await cleared)) throw failure;
      out(`copied ${keysCount(Object.keys(document).length)} from ${from.location} to ${to.location}`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

/**
 * Keeps the process (and the follower's watch) alive until SIGINT or SIGTERM. Reads the store
 * every second: a read is answered from memory while the follower is current, reads again on a
 * backend that cannot tell of changes (Redis), whose changes the watch then reports, and says
 * on stderr when the store stops loading (a corrupt file) and when it loads again.
 */
async function followUntilStopped(kv: AioKV, err: (text: string) => void): Promise<void> {
  let failing: string | undefined;
  const check = (): void =>
    void kv.size().then(
      () => {
        if (failing !== undefined) err(`aiokv: ${kv.location} loads again`);
        failing = undefined;
      },
      (error: unknown) => {
        const message = describe(error);
        if (message !== failing) err(`aiokv: ${message}`);
        failing = message;
      },
    );
  let timer: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      process.stdout.off("error", stop);
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    // A reader that went away (`aiokv watch state.json | head -1`): stop as for Ctrl-C.
    process.stdout.on("error", stop);
    // Not unref'd: this timer is what keeps the command running.
    timer = setInterval(check, 1000);
  });
  clearInterval(timer);
}

/** A file store, or a Redis one for a redis:// URL (its key after #, or `--key`). */
async function openStore(target: string, key: string | undefined, options: AioKVOptions & FileBackendOptions): Promise<AioKV> {
  if (!/^rediss?:\/\//.test(target)) return new AioKV(target, options);
  const hash = target.indexOf("#");
  const url = hash === -1 ? target : target.slice(0, hash);
  const name = hash === -1 ? key : target.slice(hash + 1);
  if (!name) throw new UsageError(`${target}: a Redis store needs a key, after # or in --key`);
  let redis: typeof import("@aiokv/redis-backend");
  try {
    redis = await import("@aiokv/redis-backend");
  } catch {
    throw new Error("redis:// stores need @aiokv/redis-backend: npm install @aiokv/redis-backend");
  }
  return new AioKV(new redis.RedisBackend({ url, key: name }), options);
}

const isRedis = (target: string): boolean => /^rediss?:\/\//.test(target);

/** Whether nothing is at `path` (a dangling symlink included). */
async function isAbsent(path: string): Promise<boolean> {
  return (await unlessAbsent(stat(path))) === undefined;
}

/** The fallback `get` answers for an absent key: no stored value can be it. */
const absent = Symbol("absent");

const keysCount = (count: number): string => `${count} ${count === 1 ? "key" : "keys"}`;

function parseValue(text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    throw new UsageError(`set: the value is not JSON: ${text} (a string needs quotes: '"${text}"')`, false);
  }
}

/** The error's message, with what to do about it where the kind of error says so. */
function describe(error: unknown): string {
  if (isStoreFormatError(error)) return `${error.message}\n(aiokv quarantine moves it aside and keeps it; aiokv clear deletes it)`;
  if (isStoreLockedError(error)) return `${error.message}\n(stop that process, or wait for its lock to go stale)`;
  if (isStoreIOError(error)) return error.message;
  return error instanceof Error ? error.message : String(error);
}

function version(): string {
  const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return manifest.version;
}

const print = (stream: NodeJS.WriteStream) => (text: string) => void stream.write(`${text}\n`);
process.exitCode = await main(process.argv.slice(2), print(process.stdout), print(process.stderr));
