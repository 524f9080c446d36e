#!/usr/bin/env node
// The aiokv command: look inside a state file, change it, check it, compact it, follow it. Every
// command reads the file and its journal (journal: true) as a store does. Reads (get, list,
// check, watch) take no lock, since the file is only ever replaced whole and the journal only
// appended to; changes take the owner lock, so they fail with a clear error while a program owns
// the file instead of being overwritten by it.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { isStoreFormatError, unlessAbsent, isStoreIOError, isStoreLockedError, type AioKVOptions, type JsonValue, type Logger } from "@aiokv/core";
import { FileBackend, type FileBackendOptions } from "@aiokv/fs-backend";
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
  check <store>              exit 0 for a valid store (the file and its journal); say where it
                             is not, and how many journal records apply
  compact <store>            fold the journal (<store>.journal) into the file, so that the file
                             alone holds the store
  quarantine <store>         move an unreadable store aside (<store>.corrupt-<time>), keeping it
  copy <from> <to>           copy a store, such as a file to Redis; a non-empty <to> needs --force
  watch <store>              print each change as a JSON line as it happens, until Ctrl-C
                             ({"type":"set","key":...,"value":...}, "delete", "clear")

Options:
  --key <key>     the Redis key of a redis:// store that names none after #
  --force         with copy: replace a target store that holds keys
  --json          with list: print the document as JSON
  --no-sync       with set, delete, clear, compact: do not fsync (faster, not durable on power loss)
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
  // Reads follow the store (readOnly: true): no lock, and nothing written, not even a journal folded on close.
  const reading = { readOnly: true, logger };
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
      const backend = isRedis(file) ? undefined : new ReadingBackend(file);
      await using kv = backend === undefined ? await open(file, reading) : new AioKV(backend, reading);
      // The store reads the journal and the file, and refuses either where it does not load.
      const keys = await kv.keys();
      // An absent file reads as an empty store; a check of a mistyped path must not pass.
      if (keys.length === 0 && backend !== undefined && backend.document === undefined && backend.journal === undefined) {
        err(`aiokv: Cannot check store ${JSON.stringify(kv.location)}: the file does not exist`);
        return 1;
      }
      const journal = backend?.journalRead();
      out(`${kv.location}: a valid store of ${keysCount(keys.length)}${journal === undefined ? "" : `, ${describeJournal(journal, backend?.journalLocation ?? "")}`}`);
      return 0;
    }
    case "compact": {
      expect(0, "");
      if (isRedis(file)) {
        await using kv = await open(file, writing);
        await kv.compact();
        out(`${kv.location}: no journal (a Redis store has none), nothing to compact; ${keysCount((await kv.keys()).length)}`);
        return 0;
      }
      const location = resolve(file);
      // Taking the lock would create a store where a mistyped path names none.
      if ((await isAbsent(location)) && (await isAbsent(`${location}.journal`))) {
        err(`aiokv: Cannot compact store ${JSON.stringify(location)}: the file does not exist`);
        return 1;
      }
      const backend = new ReadingBackend(file, writing);
      await using kv = new AioKV(backend, writing);
      await kv.compact();
      const keys = keysCount((await kv.keys()).length);
      const journal = backend.journalRead();
      if (journal === undefined) out(`${kv.location}: no journal, nothing to compact; the file holds the store's ${keys}`);
      else if (journal.stale) out(`compacted ${kv.location}: removed a stale journal, already in the file; the file holds the store's ${keys}`);
      else if (journal.records === 0) out(`compacted ${kv.location}: removed an empty journal (no records); the file holds the store's ${keys}`);
      else out(`compacted ${kv.location}: folded the journal's ${recordsCount(journal.records)} into the file, which holds the store's ${keys}; the journal is removed`);
      return 0;
    }
    case "quarantine": {
      expect(0, "");
      await using kv = await open(file, { ...writing, logger: { error: () => {} } });
      const moved = await kv.quarantine();
      if (moved === undefined) {
        out(`${kv.location}: no file, nothing moved`);
        return 0;
      }
      // The journal goes with the file, under the same suffix.
      const suffix = /\.corrupt-[^/]*$/.exec(moved)?.[0];
      const journal = suffix === undefined || isRedis(file) ? undefined : `${kv.location}.journal${suffix}`;
      const movedJournal = journal !== undefined && journal !== moved && !(await isAbsent(journal));
      out(`moved ${kv.location} to ${moved}${movedJournal ? `, and its journal to ${journal}` : ""}`);
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

/**
 * The file backend, keeping the bytes of the journal and of the file as the store read them
 * (the journal first, then the file), so that check and compact can say what the journal held.
 */
class ReadingBackend extends FileBackend {
  /** The journal's bytes as last read; `undefined` when there was none. */
  journal: Uint8Array | undefined;
  /** The file's bytes as last read; `undefined` when there was none. */
  document: Uint8Array | undefined;

  override async readJournal(): Promise<Uint8Array | undefined> {
    this.journal = await super.readJournal();
    return this.journal;
  }

  override async read(): Promise<Uint8Array | undefined> {
    this.document = await super.read();
    return this.document;
  }

  /** What the journal read held, once the store loaded it (so its lines are valid); `undefined` when there was none. */
  journalRead(): JournalRead | undefined {
    return this.journal === undefined ? undefined : readJournalLines(this.journal, this.document);
  }
}

/** A journal the store loaded: its records, whether they apply, and whether a torn last line was dropped. */
interface JournalRead {
  /** The complete records after its header. */
  readonly records: number;
  /** Its header names another file than the one read: a rewrite already folded it in, so it is skipped. */
  readonly stale: boolean;
  /** Its last line has no newline: a write a crash cut short, which is dropped. */
  readonly torn: boolean;
}

function readJournalLines(journal: Uint8Array, document: Uint8Array | undefined): JournalRead {
  const end = journal.lastIndexOf(0x0a) + 1;
  const torn = end < journal.length;
  const lines = new TextDecoder().decode(journal.subarray(0, end)).split("\n").slice(0, -1);
  if (lines.length === 0) return { records: 0, stale: false, torn };
  // The store checked the header when it loaded: the base is the SHA-256 of the file it extends.
  const { base } = JSON.parse(lines[0] ?? "") as { base: string | null };
  const digest = document === undefined ? null : `sha256:${createHash("sha256").update(document).digest("hex")}`;
  return base === digest ? { records: lines.length - 1, stale: false, torn } : { records: 0, stale: true, torn };
}

function describeJournal(journal: JournalRead, location: string): string {
  const torn = journal.torn ? "; its last line, cut short by a crash, is dropped" : "";
  if (journal.stale) return `with a stale journal ${location} (from before the file's last rewrite, which holds it), which is skipped${torn}`;
  if (journal.records === 0) return `with an empty journal ${location} (no records; aiokv compact removes it)${torn}`;
  return `with a journal of ${recordsCount(journal.records)} that applies (${location}; aiokv compact folds it into the file)${torn}`;
}

const recordsCount = (count: number): string => `${count} ${count === 1 ? "record" : "records"}`;

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
