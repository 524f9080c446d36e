import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { AioKV, type AioKVOptions, type Logger } from "../src/aiokv.js";
import type { Backend } from "../src/backend.js";
import {
  CorruptStoreError,
  InvalidStoreShapeError,
  SchemaMismatchError,
  StoreIOError,
  StoreLockedError,
  UnsyncedWriteError,
} from "../src/errors.js";
import { MAX_DEPTH, type JsonValue } from "../src/json-value.js";
import { canonical, keysOf, ticks } from "./helpers.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const bytesOf = (text: string): Uint8Array => encoder.encode(text);
const join = (...parts: ReadonlyArray<Uint8Array | undefined>): Uint8Array => new Uint8Array(Buffer.concat(parts.filter((part) => part !== undefined)));

/**
 * What the next append does instead of appending: throw `error`, after keeping the first `keep`
 * bytes (at most all but the last: a failed append did not write every byte), or every byte for
 * an `UnsyncedWriteError` (in place, not synced).
 */
interface AppendFailure {
  readonly error: unknown;
  readonly keep?: number;
}

/**
 * A document and its journal in memory, as bytes, with the journal methods a journal store
 * needs: each call is atomic (a snapshot taken between two calls is what a crash leaves), and
 * the next writes, appends and cuts can be made to fail, an append after keeping part of its bytes.
 */
class JournalBackend implements Backend {
  readonly location = "fake:journal";
  document: Uint8Array | undefined;
  journal: Uint8Array | undefined;
  writes = 0;
  appends = 0;
  readonly cuts: number[] = [];
  readonly failWrites: unknown[] = [];
  readonly failAppends: AppendFailure[] = [];
  readonly failCuts: unknown[] = [];

  constructor(document?: string | Uint8Array, journal?: string | Uint8Array) {
    this.document = typeof document === "string" ? bytesOf(document) : document;
    this.journal = typeof journal === "string" ? bytesOf(journal) : journal;
  }

  /** The document's text, `undefined` when there is none. */
  get text(): string | undefined {
    return this.document === undefined ? undefined : decoder.decode(this.document);
  }

  /** The journal's text, `undefined` when there is none. */
  get journalText(): string | undefined {
    return this.journal === undefined ? undefined : decoder.decode(this.journal);
  }

  #locked = false;

  /** One owner at a time, as the file's and memory's: close() folds the journal in for an owner. */
  async lock(): Promise<void> {
    await ticks(1);
    if (this.#locked) throw new StoreLockedError(this.location);
    this.#locked = true;
  }

  unlock(): Promise<void> {
    this.#locked = false;
    return Promise.resolve();
  }

  /** What moveAside() moved: the document's and the journal's bytes under their new locations. */
  readonly aside = new Map<string, Uint8Array | undefined>();

  /** Moves the document and its journal aside, as the file and memory backends do for quarantine(). */
  async moveAside(suffix: string): Promise<string | undefined> {
    await ticks(1);
    const moved = this.document === undefined ? undefined : `${this.location}.${suffix}`;
    if (moved !== undefined) this.aside.set(moved, this.document);
    if (this.journal !== undefined) this.aside.set(`${this.location}.journal.${suffix}`, this.journal);
    this.document = undefined;
    this.journal = undefined;
    return moved ?? (this.aside.size > 0 ? `${this.location}.journal.${suffix}` : undefined);
  }

  /** A backend holding what this one holds now: what a crash at this moment leaves to the next open. */
  snapshot(): JournalBackend {
    return new JournalBackend(this.document?.slice(), this.journal?.slice());
  }

  async read(): Promise<Uint8Array | undefined> {
    await ticks(1);
    return this.document?.slice();
  }

  async write(pieces: readonly Uint8Array[]): Promise<void> {
    this.writes++;
    await ticks(1);
    if (this.failWrites.length > 0) throw this.failWrites.shift();
    this.document = join(...pieces);
  }

  async remove(): Promise<void> {
    this.writes++;
    await ticks(1);
    if (this.failWrites.length > 0) throw this.failWrites.shift();
    this.document = undefined;
  }

  async readJournal(): Promise<Uint8Array | undefined> {
    await ticks(1);
    return this.journal?.slice();
  }

  /** Starts the journal: all of it or, failing, none (a file renames a new journal into place). */
  async writeJournal(pieces: readonly Uint8Array[]): Promise<void> {
    this.appends++;
    await ticks(1);
    const bytes = join(...pieces);
    const failure = this.failAppends.shift();
    if (failure === undefined || failure.error instanceof UnsyncedWriteError) this.journal = bytes;
    if (failure !== undefined) throw failure.error;
  }

  async appendJournal(pieces: readonly Uint8Array[]): Promise<void> {
    this.appends++;
    await ticks(1);
    if (this.journal === undefined) throw Object.assign(new Error("ENOENT: no such file or directory, open"), { code: "ENOENT" });
    const bytes = join(...pieces);
    const failure = this.failAppends.shift();
    if (failure === undefined) {
      this.journal = join(this.journal, bytes);
      return;
    }
    const kept = failure.error instanceof UnsyncedWriteError ? bytes.length : Math.min(failure.keep ?? 0, bytes.length - 1);
    this.journal = join(this.journal, bytes.subarray(0, kept));
    throw failure.error;
  }

  async cutJournal(length: number): Promise<void> {
    this.cuts.push(length);
    await ticks(1);
    if (this.failCuts.length > 0) throw this.failCuts.shift();
    this.journal = length === 0 ? undefined : this.journal?.slice(0, length);
  }
}

/** The journal methods of `backend`, bound: for a wrapper without its lock. */
const journalMethodsOf = (backend: JournalBackend): Pick<Backend, "readJournal" | "writeJournal" | "appendJournal" | "cutJournal"> => ({
  readJournal: () => backend.readJournal(),
  writeJournal: (pieces) => backend.writeJournal(pieces),
  appendJournal: (pieces) => backend.appendJournal(pieces),
  cutJournal: (length) => backend.cutJournal(length),
});
const eio = (what = "write"): Error => Object.assign(new Error(`EIO: i/o error, ${what}`), { code: "EIO" });
const journalLocation = "fake:journal.journal";
const digest = (text: string): string => `sha256:${createHash("sha256").update(text, "utf8").digest("hex")}`;
const header = (base: string | null, version: unknown = 1): string => `${JSON.stringify({ aiokv: "journal", version, base })}\n`;

function recordingLogger(): Logger & { calls: Array<[string, unknown]> } {
  const calls: Array<[string, unknown]> = [];
  return { calls, error: (message, error) => void calls.push([message, error]) };
}

const journalStore = (backend: Backend, options: AioKVOptions = {}): AioKV => new AioKV(backend, { journal: true, logger: recordingLogger(), ...options });

/** The keys in order and the values of a store, as one string: what two stores must agree on. */
async function stateOf(kv: AioKV): Promise<string> {
  const keys = await kv.keys();
  const all = await kv.getAll();
  return canonical(keys.map((key) => [key, all[key]]));
}

/** The state a fresh journal store on a snapshot of `backend` reads: what a crash now leaves. */
async function stateAfterCrash(backend: JournalBackend): Promise<string> {
  const kv = journalStore(backend.snapshot());
  return stateOf(kv);
}

/** The error `promise` rejects with; fails the test if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => expect.unreachable("expected a rejection"),
    (error: unknown) => error as Error,
  );
}

/** Writes that make a journal of five records on `{"base": 0}`, and the state before and after each. */
async function fiveRecords(): Promise<{ backend: JournalBackend; states: string[]; lineEnds: number[] }> {
  const backend = new JournalBackend('{"base": 0}');
  const kv = journalStore(backend);
  const states = [await stateOf(kv)];
  const writes: Array<() => Promise<unknown>> = [
    () => kv.set("x", 1),
    () => kv.setMany({ ü: "日本 🎉", n: [1, { k: null }] }),
    () => kv.delete("x"),
    () => kv.set("x", "back"),
    () => kv.setMany([["n", 2], ["z", "\u2028 🎉"]]),
  ];
  for (const write of writes) {
    await write();
    states.push(await stateOf(kv));
  }
  expect(backend.appends).toBe(5);
  expect(backend.writes).toBe(0);
  const journal = backend.journal ?? new Uint8Array();
  const lineEnds = [...journal.keys()].filter((at) => journal[at] === 0x0a).map((at) => at + 1);
  expect(lineEnds).toHaveLength(6);
  return { backend, states, lineEnds };
}

describe("journal format", () => {
  it("the header names the SHA-256 of the document's bytes (null: none), then one line per write", async () => {
    const planted = '{"a": 1, "caf\\u00e9": 2.50}\n';
    const backend = new JournalBackend(planted);
    const kv = journalStore(backend);
    await kv.set("b", [1]);
    await Promise.all([kv.delete("a"), kv.set("a", 3), kv.set("b", 2)]);
    await kv.clear();
    await kv.setMany({ c: { d: "e" } });
    expect(backend.text).toBe(planted);
    expect(backend.journalText).toBe(
      `${header(digest(planted))}{"set":[["b",[1]]]}\n{"delete":["a"],"set":[["a",3],["b",2]]}\n{"clear":true}\n{"set":[["c",{"d":"e"}]]}\n`,
    );
    const empty = new JournalBackend();
    await journalStore(empty).set("k", null);
    expect(empty.journalText).toBe(`${header(null)}{"set":[["k",null]]}\n`);
  });

  it("journal: true needs a backend that appends: a TypeError at construction, naming what it lacks", () => {
    const nothing = (): Promise<undefined> => Promise.resolve(undefined);
    const plain: Backend = { location: "plain:store", read: nothing, write: nothing, remove: nothing };
    expect(() => new AioKV(plain, { journal: true })).toThrow(
      new TypeError('Cannot create store "plain:store" with journal: true: its backend cannot append (it has no readJournal, writeJournal, appendJournal, cutJournal)'),
    );
    const readsOnly: Backend = { ...plain, readJournal: nothing };
    expect(() => new AioKV(readsOnly, { journal: true })).toThrow(/it has no writeJournal, appendJournal, cutJournal\)$/);
    expect(() => new AioKV(plain, { journal: "yes" as unknown as boolean })).toThrow(TypeError);
    expect(() => new AioKV(plain, { journal: false })).not.toThrow();
    expect(() => new AioKV(new JournalBackend(), { journal: true })).not.toThrow();
  });
});

describe("journal: a torn last line", () => {
  it("a journal cut at every byte offset loads the complete records before the cut; the store folds them into the document before its first record, and reopens with everything", async () => {
    const { backend, states, lineEnds } = await fiveRecords();
    const journal = backend.journal ?? new Uint8Array();
    const document = backend.document;
    for (let cut = 0; cut <= journal.length; cut++) {
      const at = `journal cut at byte ${cut} of ${journal.length}`;
      const complete = lineEnds.filter((end) => end <= cut).length;
      const torn = new JournalBackend(document, journal.subarray(0, cut));
      const kv = journalStore(torn);
      // The header alone, or a torn one, applies nothing: the document as it is.
      expect(await stateOf(kv), at).toBe(states[Math.max(0, complete - 1)]);
      await kv.set("after", cut);
      const expected = JSON.parse(states[Math.max(0, complete - 1)] ?? "") as Array<[string, unknown]>;
      expected.push(["after", cut]);
      // A store never appends to a journal it found: its complete lines (a header alone too) were
      // folded into the document first, which alone now holds them, and the torn bytes went with
      // that journal; the store's own journal starts anew, a header naming that document and the
      // new record. Without a complete line there was nothing to fold: the document is untouched.
      if (complete > 0) {
        expect(torn.writes, at).toBe(1);
        expect(await stateOf(journalStore(new JournalBackend(torn.document))), at).toBe(states[complete - 1]);
      } else {
        expect(torn.writes, at).toBe(0);
        expect(Buffer.from(torn.document ?? []).equals(Buffer.from(document ?? [])), at).toBe(true);
      }
      expect(torn.journalText, at).toBe(`${header(digest(torn.text ?? ""))}{"set":[["after",${cut}]]}\n`);
      expect(await stateAfterCrash(torn), at).toBe(canonical(expected));
      await kv.close();
      expect(torn.journal, at).toBe(undefined);
      expect(await stateOf(journalStore(torn)), at).toBe(canonical(expected));
    }
  });

  it("a torn last line that is not UTF-8, or not JSON, is dropped, not refused", async () => {
    const planted = '{"a": 1}';
    for (const tail of [new Uint8Array([0x7b, 0x22, 0xe6, 0x97]), bytesOf('{"set":[["b",'), new Uint8Array([0xff, 0xfe])]) {
      const backend = new JournalBackend(planted, join(bytesOf(`${header(digest(planted))}{"set":[["a",2]]}\n`), tail));
      const kv = journalStore(backend);
      expect(await kv.getAll()).toStrictEqual({ a: 2 });
      await kv.set("c", 3);
      // The journal it found was folded into the document before the store's first write, the
      // torn tail dropped with it; the store's own journal names that document and holds c.
      expect(JSON.parse(backend.text ?? "")).toStrictEqual({ a: 2 });
      expect(backend.journalText).toBe(`${header(digest(backend.text ?? ""))}{"set":[["c",3]]}\n`);
      expect(await stateAfterCrash(backend)).toBe(canonical([["a", 2], ["c", 3]]));
    }
  });
});

describe("journal: damage", () => {
  /** Expects every read of a store on `backend` to reject with `check`'s error, and nothing rewritten. */
  async function refused(backend: JournalBackend, check: (error: Error) => void, options: AioKVOptions = {}): Promise<void> {
    const before = { document: backend.document?.slice(), journal: backend.journal?.slice() };
    const logger = recordingLogger();
    const kv = journalStore(backend, { logger, ...options });
    for (const call of [() => kv.get("a"), () => kv.getAll(), () => kv.set("a", 9), () => kv.keys()]) check(await rejection(call()));
    expect(await kv.delete("a")).toBe(false);
    expect(logger.calls).toHaveLength(1);
    await kv.compact().catch(() => {});
    await kv.close();
    expect(backend.writes + backend.appends).toBe(0);
    expect(backend.cuts).toStrictEqual([]);
    expect(backend.document).toStrictEqual(before.document);
    expect(backend.journal).toStrictEqual(before.journal);
    // A non-journal store refuses it alike.
    check(await rejection(new AioKV(backend, options).getAll()));
  }

  const expectDamage = (line: number, why: string | RegExp) => (error: Error) => {
    expect(error).toBeInstanceOf(CorruptStoreError);
    expect((error as CorruptStoreError).location).toBe(journalLocation);
    expect((error as CorruptStoreError).position).toStrictEqual({ line, column: 1 });
    expect(error.message.startsWith(`Cannot load journal "${journalLocation}": line ${line} is damaged: `)).toBe(true);
    expect(error.message).toMatch(why);
  };

  it("a complete line cut short, any line, the last included, is a CorruptStoreError naming the journal and the line; nothing is rewritten", async () => {
    const { backend } = await fiveRecords();
    const lines = (backend.journalText ?? "").split("\n").slice(0, -1);
    for (const [index, line] of lines.entries()) {
      // The line's second half gone (whole characters), its newline kept: damage, not a torn append.
      const characters = Array.from(line);
      const damaged = lines.with(index, characters.slice(0, Math.floor(characters.length / 2)).join(""));
      const why = index === 0 ? /not valid JSON|not a journal header/ : /not valid JSON/;
      await refused(new JournalBackend(backend.document, `${damaged.join("\n")}\n`), expectDamage(index + 1, why));
    }
  });

  it.each([
    ["an array", "[1]", /a record is a JSON object/],
    ["null", "null", /a record is a JSON object/],
    ["an unknown field", '{"set":[],"merge":true}', /unknown field "merge"/],
    ["clear other than true", '{"clear":false}', /clear is true when present/],
    ["a key that is not a string in delete", '{"delete":[1]}', /delete is a list of keys/],
    ["delete that is not a list", '{"delete":"a"}', /delete is a list of keys/],
    ["a pair of one", '{"set":[["a"]]}', /set is a list of \[key, value\] pairs/],
    ["a pair with a number key", '{"set":[[1,2]]}', /set is a list of \[key, value\] pairs/],
    ["an empty line", "", /not valid JSON/],
  ])("a record that is %s, before valid ones, is refused naming its line", async (_, line, why) => {
    const planted = '{"a": 1}';
    const journal = `${header(digest(planted))}{"set":[["a",2]]}\n${line}\n{"set":[["a",3]]}\n`;
    await refused(new JournalBackend(planted, journal), expectDamage(3, why));
  });

  it("a complete line that is not UTF-8 is a CorruptStoreError naming the journal and the byte", async () => {
    const planted = '{"a": 1}';
    const start = bytesOf(`${header(digest(planted))}{"set":[["a","`);
    const journal = join(start, new Uint8Array([0xc3, 0x28]), bytesOf('"]]}\n{"set":[["a",3]]}\n'));
    await refused(new JournalBackend(planted, journal), (error) => {
      expect(error).toBeInstanceOf(CorruptStoreError);
      expect((error as CorruptStoreError).location).toBe(journalLocation);
      expect((error as CorruptStoreError).byteOffset).toBe(start.length);
      expect(error.message).toBe(`Cannot load journal "${journalLocation}": not valid UTF-8 at byte ${start.length}`);
    });
  });

  it("a header that is not one is refused at line 1", async () => {
    for (const first of ['{"set":[["a",1]]}', '{"aiokv":"journal","version":1,"base":7}', '"journal"']) {
      await refused(new JournalBackend(undefined, `${first}\n{"set":[["a",2]]}\n`), expectDamage(1, /not a journal header|base is neither null nor a digest/));
    }
  });

  it("a later version of the format is refused, never misread", async () => {
    for (const version of [2, "1", null]) {
      await refused(
        new JournalBackend(undefined, `${header(null, version)}{"set":[["a",2]]}\n`),
        expectDamage(1, `it is version ${JSON.stringify(version)}, and this aiokv reads version 1`),
      );
    }
    // Refused even when its base names another document (stale): its version is read first.
    await refused(new JournalBackend('{"a": 1}', `${header("sha256:00", 2)}\n`), expectDamage(1, /version 2/));
  });

  it("clear() is the way out of a damaged journal: the document and the journal go, and the store works again", async () => {
    const backend = new JournalBackend('{"a": 1}', `${header(digest('{"a": 1}'))}{"set":[["a",2]]\n`);
    const kv = journalStore(backend);
    await expect(kv.get("a")).rejects.toBeInstanceOf(CorruptStoreError);
    expect(await kv.clear()).toBe(true);
    expect([backend.document, backend.journal]).toStrictEqual([undefined, undefined]);
    await kv.set("b", 2);
    expect(await stateAfterCrash(backend)).toBe(canonical([["b", 2]]));
  });

  it("quarantine() moves the document and the damaged journal aside, and the store starts empty", async () => {
    const planted = '{"a": 1}';
    const journal = `${header(digest(planted))}{"set":[["a",2]]\n{"set":[["a",3]]}\n`;
    const backend = new JournalBackend(planted, journal);
    const kv = journalStore(backend, { clock: () => Date.UTC(2026, 0, 2, 3, 4, 5, 6) });
    await expect(kv.get("a")).rejects.toBeInstanceOf(CorruptStoreError);
    expect(await kv.quarantine()).toBe(`${backend.location}.corrupt-2026-01-02T03-04-05.006Z`);
    expect([...backend.aside.entries()].map(([location, bytes]) => [location, decoder.decode(bytes)])).toStrictEqual([
      [`${backend.location}.corrupt-2026-01-02T03-04-05.006Z`, planted],
      [`${journalLocation}.corrupt-2026-01-02T03-04-05.006Z`, journal],
    ]);
    expect(await kv.getAll()).toStrictEqual({});
    await kv.set("b", 2);
    expect(backend.journalText).toBe(`${header(null)}{"set":[["b",2]]}\n`);
  });
});

describe("journal: what records may hold", () => {
  it("a value nested deeper than set() accepts is an InvalidStoreShapeError naming the journal, the line and the key", async () => {
    const tooDeep = `${"[".repeat(MAX_DEPTH + 1)}${"]".repeat(MAX_DEPTH + 1)}`;
    const backend = new JournalBackend(undefined, `${header(null)}{"set":[["ok",1]]}\n{"set":[["deep",${tooDeep}]]}\n`);
    const kv = journalStore(backend);
    const error = await rejection(kv.get("ok"));
    expect(error).toBeInstanceOf(InvalidStoreShapeError);
    expect((error as InvalidStoreShapeError).location).toBe(journalLocation);
    expect(error.message).toBe(`Cannot load journal "${journalLocation}": line 3 sets key "deep" to a value nested deeper than the ${MAX_DEPTH} a store accepts`);
    // As deep as allowed loads.
    const deepest = `${"[".repeat(MAX_DEPTH)}${"]".repeat(MAX_DEPTH)}`;
    expect(await journalStore(new JournalBackend(undefined, `${header(null)}{"set":[["deep",${deepest}]]}\n`)).has("deep")).toBe(true);
  });

  it("a schema checks every value a record sets, and the keys it names, as it checks the document's", async () => {
    const schema = z.object({ n: z.number(), s: z.string() });
    const good = new JournalBackend('{"n": 1}', `${header(digest('{"n": 1}'))}{"set":[["s","x"],["n",2]]}\n`);
    expect(await journalStore(good, { schema }).getAll()).toStrictEqual({ n: 2, s: "x" });
    for (const [record, key] of [
      ['{"set":[["n","two"]]}', "n"],
      ['{"set":[["other",1]]}', "other"],
    ] as const) {
      const backend = new JournalBackend('{"n": 1}', `${header(digest('{"n": 1}'))}${record}\n`);
      const error = await rejection(journalStore(backend, { schema }).get("n"));
      expect(error).toBeInstanceOf(SchemaMismatchError);
      expect((error as SchemaMismatchError).key).toBe(key);
      expect(backend.appends + backend.writes).toBe(0);
    }
    // A record that deletes a key the schema does not name is no value to check.
    const deletes = new JournalBackend('{"n": 1}', `${header(digest('{"n": 1}'))}{"delete":["gone"]}\n`);
    expect(await journalStore(deletes, { schema }).getAll()).toStrictEqual({ n: 1 });
  });

  it("keys such as __proto__ and values as JSON reads them: a record's values load as a whole-file store's", async () => {
    const backend = new JournalBackend(undefined, `${header(null)}{"set":[["__proto__",{"polluted":true}],["big",1e400],["f",1.50]]}\n`);
    const kv = journalStore(backend);
    const all = await kv.getAll();
    expect(Object.getOwnPropertyDescriptor(all, "__proto__")?.value).toStrictEqual({ polluted: true });
    expect(({} as Record<string, unknown>)["polluted"]).toBe(undefined);
    expect(await kv.get("f")).toBe(1.5);
  });
});

describe("journal: stale journals", () => {
  /** A store's writes, one record each; then compact() with its cut lost, as a crash after the rename leaves it. */
  async function compactedBeforeCut(planted: string | undefined, writes: (kv: AioKV) => Promise<void>): Promise<{ backend: JournalBackend; state: string; journal: Uint8Array }> {
    const backend = new JournalBackend(planted);
    const kv = journalStore(backend);
    await writes(kv);
    const state = await stateOf(kv);
    const journal = backend.journal?.slice() ?? expect.unreachable("no journal");
    await kv.compact();
    expect(backend.journal).toBe(undefined);
    // The crash: the journal is back as it was before its cut.
    const crashed = backend.snapshot();
    crashed.journal = journal;
    return { backend: crashed, state, journal };
  }

  it("a journal whose base is not the document's digest is skipped: set a, set b, delete b, set b, set c does not reorder the compacted document", async () => {
    const { backend, state } = await compactedBeforeCut(undefined, async (kv) => {
      await kv.set("a", 1);
      await kv.set("b", 2);
      await kv.delete("b");
      await kv.set("b", 3);
      await kv.set("c", 4);
    });
    expect(state).toBe(canonical([["a", 1], ["b", 3], ["c", 4]]));
    expect(keysOf(backend.text ?? "")).toStrictEqual(["a", "b", "c"]);
    const kv = journalStore(backend);
    expect(await stateOf(kv)).toBe(state);
    // The stale journal is cut before anything goes after it, and a new one names this document.
    await kv.set("d", 5);
    expect(backend.journalText).toBe(`${header(digest(backend.text ?? ""))}{"set":[["d",5]]}\n`);
    expect(await stateAfterCrash(backend)).toBe(canonical([["a", 1], ["b", 3], ["c", 4], ["d", 5]]));
    await kv.close();
    expect(keysOf(backend.text ?? "")).toStrictEqual(["a", "b", "c", "d"]);
  });

  it("a stale journal applies nothing twice: not a delete of a key set since, nor a clear, nor an increment's value", async () => {
    const { backend, state } = await compactedBeforeCut('{"keep": 0, "n": 0}', async (kv) => {
      await kv.update("n", (n: number) => n + 1, 0);
      await kv.delete("keep");
      await kv.clear();
      await kv.set("n", 10);
      await kv.update("n", (n: number) => n + 1, 0);
      await kv.set("keep", "again");
    });
    expect(state).toBe(canonical([["n", 11], ["keep", "again"]]));
    for (const journalMode of [true, false]) {
      const kv = new AioKV(backend.snapshot(), { journal: journalMode });
      expect(await stateOf(kv)).toBe(state);
    }
  });

  it("a journal left beside a document someone rewrote is stale, and skipped", async () => {
    const backend = new JournalBackend(undefined, `${header(null)}{"set":[["a",1]]}\n`);
    expect(await journalStore(backend.snapshot()).getAll()).toStrictEqual({ a: 1 });
    backend.document = bytesOf('{"b": 2}');
    expect(await journalStore(backend).getAll()).toStrictEqual({ b: 2 });
  });

  it("a compaction that empties the store removes the document: a journal based on the old one is stale", async () => {
    const { backend } = await compactedBeforeCut('{"a": 1}', async (kv) => {
      expect(await kv.get("a")).toBe(1);
      await kv.clear();
    });
    expect(backend.document).toBe(undefined);
    expect(await stateOf(journalStore(backend))).toBe(canonical([]));
  });
});

describe("journal: what is stored reads as a store without a journal would have it", () => {
  it("close() leaves the document a whole-file store leaves: {} after deleting the last key, none after a clear", async () => {
    for (const [what, writes] of [
      ["deleting the last key", async (kv: AioKV) => void (await kv.setMany({ a: 1 }).then(() => kv.delete("a")))],
      ["deleting keys set in the same write", async (kv: AioKV) => void (await Promise.all([kv.set("a", 1), kv.delete("a")]))],
      ["a clear", async (kv: AioKV) => void (await kv.set("a", 1).then(() => kv.clear()))],
      ["a clear, then a delete of a key set with it", async (kv: AioKV) => void (await kv.clear().then(() => Promise.all([kv.set("a", 1), kv.delete("a")])))],
      ["a clear and a set", async (kv: AioKV) => void (await Promise.all([kv.clear(), kv.set("a", 1)]))],
    ] as const) {
      for (const planted of [undefined, '{"k": 0}']) {
        const [whole, journal] = [new JournalBackend(planted), new JournalBackend(planted)];
        const stores = [new AioKV(whole), journalStore(journal)];
        for (const kv of stores) await kv.get("k");
        for (const kv of stores) await writes(kv);
        expect(journal.writes, what).toBe(0);
        expect(await stateAfterCrash(journal), what).toBe(await stateOf(stores[0] as AioKV));
        for (const kv of stores) await kv.close();
        expect([journal.text, journal.journal], `${what} on ${planted}`).toStrictEqual([whole.text, undefined]);
      }
    }
  });

  it("a follower of a journal store reports a clear as a clear: the store it reads has no document", async () => {
    // No watch(): the follower reads the document and the journal again on every read.
    const backend = new JournalBackend('{"a": 1}');
    const owner = journalStore(backend);
    const follower = new AioKV(backend, { readOnly: true });
    const seen: unknown[] = [];
    follower.watch((change) => void seen.push(change));
    await owner.setMany({ b: 2 });
    expect(await follower.getAll()).toStrictEqual({ a: 1, b: 2 });
    await owner.clear();
    expect(await follower.getAll()).toStrictEqual({});
    await owner.set("c", 3);
    expect(await follower.getAll()).toStrictEqual({ c: 3 });
    expect(seen).toStrictEqual([{ type: "set", key: "b", value: 2 }, { type: "clear" }, { type: "set", key: "c", value: 3 }]);
    expect(backend.writes).toBe(0);
  });

  it("close() folds the journal into the document with lock: false too, and on a backend without lock(); a follower's close() writes nothing", async () => {
    for (const lockless of [false, true]) {
      const backend = new JournalBackend('{"a": 1}');
      const target: Backend = lockless ? { ...journalMethodsOf(backend), location: backend.location, read: () => backend.read(), write: (pieces) => backend.write(pieces), remove: () => backend.remove() } : backend;
      const kv = journalStore(target, { lock: lockless });
      await kv.set("b", 2);
      const follower = new AioKV(backend, { readOnly: true });
      expect(await follower.getAll()).toStrictEqual({ a: 1, b: 2 });
      await follower.close();
      expect(backend.writes).toBe(0);
      await kv.close();
      expect([backend.text, backend.journal]).toStrictEqual(['{\n  "a": 1,\n  "b": 2\n}\n', undefined]);
    }
  });
});

describe("journal: stores without journal: true", () => {
  it("apply a journal they find, and fold it into the document on their first write", async () => {
    const planted = '{"a": 1, "b": 2}';
    const backend = new JournalBackend(planted, `${header(digest(planted))}{"delete":["a"],"set":[["c",3]]}\n{"set":[["a",4]]}\n`);
    const kv = new AioKV(backend);
    expect(await kv.keys()).toStrictEqual(["b", "c", "a"]);
    await kv.set("d", 5);
    expect(backend.appends).toBe(0);
    expect(backend.journal).toBe(undefined);
    expect(backend.text).toBe('{\n  "b": 2,\n  "c": 3,\n  "a": 4,\n  "d": 5\n}\n');
  });

  it("fold it into the document on close() and compact() without writing otherwise", async () => {
    const backend = new JournalBackend(undefined, `${header(null)}{"set":[["a",1]]}\n`);
    const kv = new AioKV(backend);
    expect(await kv.get("a")).toBe(1);
    await kv.compact();
    expect([backend.text, backend.journal]).toStrictEqual(['{\n  "a": 1\n}\n', undefined]);
    await kv.close();
    expect(backend.writes).toBe(1);
  });
});

describe("journal: failed appends", () => {
  /** A journal store holding `{ a: 1 }`, whose records are in the journal. */
  async function storeWithA(): Promise<{ backend: JournalBackend; kv: AioKV; logger: ReturnType<typeof recordingLogger> }> {
    const backend = new JournalBackend();
    const logger = recordingLogger();
    const kv = journalStore(backend, { logger });
    await kv.set("a", 1);
    return { backend, kv, logger };
  }

  it("an append that fails after writing part of its record is cut back: the write rejects, memory and journal agree", async () => {
    for (let keep = 0; keep < 12; keep++) {
      const { backend, kv } = await storeWithA();
      const before = backend.journal?.slice();
      backend.failAppends.push({ error: eio(), keep });
      const failed = await rejection(Promise.all([kv.set("a", 2), kv.set("b", 3)]));
      expect(failed).toBeInstanceOf(StoreIOError);
      expect((failed as StoreIOError).operation).toBe("write");
      expect(backend.journal).toStrictEqual(before);
      expect(await stateOf(kv)).toBe(canonical([["a", 1]]));
      expect(await stateAfterCrash(backend)).toBe(canonical([["a", 1]]));
      await kv.set("c", 4);
      expect(await stateAfterCrash(backend)).toBe(canonical([["a", 1], ["c", 4]]));
    }
  });

  it("when the cut after a failed append fails too, the next write cuts first; a crash before it drops the torn record", async () => {
    const { backend, kv } = await storeWithA();
    const before = backend.journal?.slice() ?? new Uint8Array();
    backend.failAppends.push({ error: eio(), keep: 5 });
    backend.failCuts.push(eio("ftruncate"));
    await expect(kv.set("a", 2)).rejects.toBeInstanceOf(StoreIOError);
    expect(backend.journal?.length).toBe(before.length + 5);
    expect(await stateOf(kv)).toBe(canonical([["a", 1]]));
    expect(await stateAfterCrash(backend)).toBe(canonical([["a", 1]]));
    await kv.set("b", 3);
    expect(backend.cuts.at(-1)).toBe(before.length);
    expect(backend.journalText).toBe(`${decoder.decode(before)}{"set":[["b",3]]}\n`);
    expect(await stateAfterCrash(backend)).toBe(canonical([["a", 1], ["b", 3]]));
  });

  it("when the cut fails again at the next write, that write fails without appending, and the one after succeeds", async () => {
    const { backend, kv } = await storeWithA();
    const before = backend.journal?.slice() ?? new Uint8Array();
    backend.failAppends.push({ error: eio(), keep: 5 });
    backend.failCuts.push(eio("ftruncate"), eio("ftruncate"));
    await expect(kv.set("a", 2)).rejects.toBeInstanceOf(StoreIOError);
    const appends = backend.appends;
    await expect(kv.set("b", 3)).rejects.toBeInstanceOf(StoreIOError);
    expect(backend.appends).toBe(appends);
    expect(await stateOf(kv)).toBe(canonical([["a", 1]]));
    expect(await stateAfterCrash(backend)).toBe(canonical([["a", 1]]));
    await kv.set("c", 4);
    expect(backend.journalText).toBe(`${decoder.decode(before)}{"set":[["c",4]]}\n`);
    expect(await stateOf(kv)).toBe(canonical([["a", 1], ["c", 4]]));
    expect(await stateAfterCrash(backend)).toBe(canonical([["a", 1], ["c", 4]]));
  });

  it("the first append, header and record, that fails part-way leaves no journal behind", async () => {
    for (let keep = 0; keep < 70; keep += 7) {
      const backend = new JournalBackend('{"a": 1}');
      const kv = journalStore(backend);
      backend.failAppends.push({ error: eio(), keep });
      await expect(kv.set("b", 2)).rejects.toBeInstanceOf(StoreIOError);
      expect(backend.journal).toBe(undefined);
      await kv.set("c", 3);
      expect(backend.journalText).toBe(`${header(digest('{"a": 1}'))}{"set":[["c",3]]}\n`);
      expect(await stateAfterCrash(backend)).toBe(canonical([["a", 1], ["c", 3]]));
    }
  });

  it("an append in place whose sync failed is kept: its callers get StoreIOError 'sync', memory and journal hold it", async () => {
    const { backend, kv } = await storeWithA();
    backend.failAppends.push({ error: new UnsyncedWriteError(eio("fdatasync")) });
    const failed = await rejection(kv.set("b", 2));
    expect(failed).toBeInstanceOf(StoreIOError);
    expect((failed as StoreIOError).operation).toBe("sync");
    expect(await stateOf(kv)).toBe(canonical([["a", 1], ["b", 2]]));
    expect(await stateAfterCrash(backend)).toBe(canonical([["a", 1], ["b", 2]]));
    await kv.set("c", 3);
    expect(await stateAfterCrash(backend)).toBe(canonical([["a", 1], ["b", 2], ["c", 3]]));
  });

  it("an append refused because another owner took the lock appends nothing, cuts nothing, and rejects with StoreLockedError", async () => {
    const { backend, kv } = await storeWithA();
    const cuts = backend.cuts.length;
    backend.failAppends.push({ error: new StoreLockedError(backend.location) });
    await expect(kv.set("b", 2)).rejects.toBeInstanceOf(StoreLockedError);
    expect(backend.cuts).toHaveLength(cuts);
    expect(await stateAfterCrash(backend)).toBe(canonical([["a", 1]]));
  });
});

describe("journal: faults", () => {
  type Fault =
    | { kind: "set"; key: string; value: number }
    | { kind: "delete"; key: string }
    | { kind: "clear" }
    | { kind: "together"; key: string; value: number }
    | { kind: "big"; key: string }
    | { kind: "failWrite" }
    | { kind: "failAppend"; keep: number; unsynced: boolean }
    | { kind: "failCut" }
    | { kind: "compact" }
    | { kind: "close" }
    | { kind: "crash"; journal: boolean };
  const key = fc.constantFrom("a", "b", "c", "10");
  const step: fc.Arbitrary<Fault> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant("set" as const), key, value: fc.nat(9) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), key }) },
    { weight: 1, arbitrary: fc.constant({ kind: "clear" as const }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("together" as const), key, value: fc.nat(9) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("big" as const), key }) },
    { weight: 2, arbitrary: fc.constant({ kind: "failWrite" as const }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("failAppend" as const), keep: fc.nat(80), unsynced: fc.boolean() }) },
    { weight: 3, arbitrary: fc.constant({ kind: "failCut" as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: "compact" as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: "close" as const }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("crash" as const), journal: fc.boolean() }) },
  );
  const big = "z".repeat(40 * 1024);
  const ignore = (): void => {};

  it("through random failed appends, cuts and rewrites, what a crash leaves always reads as the store's memory", async () => {
    await fc.assert(
      fc.asyncProperty(fc.option(fc.constantFrom('{"a": 0}', "{}"), { nil: undefined }), fc.array(step, { maxLength: 30 }), async (planted, steps) => {
        let backend = new JournalBackend(planted);
        let kv = journalStore(backend);
        for (const [i, s] of steps.entries()) {
          const at = `after step ${i}: ${JSON.stringify(s)}`;
          if (s.kind === "set") await kv.set(s.key, s.value).catch(ignore);
          else if (s.kind === "delete") await kv.delete(s.key);
          else if (s.kind === "clear") await kv.clear();
          else if (s.kind === "together") await Promise.all([kv.set(s.key, s.value).catch(ignore), kv.delete("a"), kv.set("d", s.value).catch(ignore)]);
          else if (s.kind === "big") await kv.set(s.key, big).catch(ignore);
          else if (s.kind === "failWrite") backend.failWrites.push(eio());
          else if (s.kind === "failAppend") backend.failAppends.push({ error: s.unsynced ? new UnsyncedWriteError(eio("fdatasync")) : eio(), keep: s.keep });
          else if (s.kind === "failCut") backend.failCuts.push(eio("ftruncate"));
          else if (s.kind === "compact") await kv.compact().catch(ignore);
          else {
            const before = await stateOf(kv);
            if (s.kind === "close") {
              await kv.close();
              backend.failWrites.length = backend.failAppends.length = backend.failCuts.length = 0;
            } else {
              backend = backend.snapshot();
            }
            kv = s.kind === "crash" ? new AioKV(backend, { journal: s.journal, logger: recordingLogger() }) : journalStore(backend);
            expect(await stateOf(kv), at).toBe(before);
            continue;
          }
          expect(await stateAfterCrash(backend), at).toBe(await stateOf(kv));
        }
      }),
      { numRuns: Number(process.env["AIOKV_MODEL_RUNS"] ?? 200) },
    );
  });
});

describe("journal: compaction", () => {
  const big = "x".repeat(40 * 1024);

  it("once the journal outgrows the document (or 64 KiB), the document is rewritten with everything and the journal removed", async () => {
    const backend = new JournalBackend();
    const kv = journalStore(backend);
    await kv.set("a", big);
    expect(backend.writes).toBe(0);
    await kv.set("b", big);
    // The rewrite follows the write that passed the mark, and the next write waits for it.
    await kv.set("c", 1);
    expect(backend.writes).toBe(1);
    expect(JSON.parse(backend.text ?? "")).toStrictEqual({ a: big, b: big });
    expect(backend.journalText).toBe(`${header(digest(backend.text ?? ""))}{"set":[["c",1]]}\n`);
    expect(await stateAfterCrash(backend)).toBe(canonical([["a", big], ["b", big], ["c", 1]]));
  });

  it("a failed rewrite on close() leaves the journal, which still applies; the error is logged", async () => {
    const backend = new JournalBackend('{"a": 1}');
    const logger = recordingLogger();
    const kv = journalStore(backend, { logger });
    await kv.set("b", 2);
    backend.failWrites.push(eio());
    await kv.close();
    expect(backend.text).toBe('{"a": 1}');
    expect(logger.calls.map(([message]) => message)).toStrictEqual([`Cannot rewrite the journal into the document of store "${backend.location}"`]);
    expect(await stateOf(journalStore(backend))).toBe(canonical([["a", 1], ["b", 2]]));
  });

  it("compact() rejects with the rewrite's StoreIOError; the journal stays and applies, the store goes on appending, and compacts later", async () => {
    const backend = new JournalBackend('{"a": 1}');
    const kv = journalStore(backend);
    await kv.set("b", 2);
    backend.failWrites.push(eio());
    await expect(kv.compact()).rejects.toBeInstanceOf(StoreIOError);
    expect(await stateAfterCrash(backend)).toBe(canonical([["a", 1], ["b", 2]]));
    await kv.set("c", 3);
    expect(await stateAfterCrash(backend)).toBe(canonical([["a", 1], ["b", 2], ["c", 3]]));
    await kv.compact();
    expect([backend.text, backend.journal]).toStrictEqual(['{\n  "a": 1,\n  "b": 2,\n  "c": 3\n}\n', undefined]);
  });

  it("a rewrite whose cut fails leaves a stale journal: skipped on open, cut by the next write", async () => {
    const backend = new JournalBackend();
    const kv = journalStore(backend);
    for (const [key, value] of [["a", 1], ["b", 2], ["b", null], ["c", 3]] as const) {
      if (value === null) await kv.delete(key);
      else await kv.set(key, value);
    }
    await kv.set("b", 4);
    backend.failCuts.push(eio("unlink"));
    await expect(kv.compact()).rejects.toBeInstanceOf(StoreIOError);
    expect(keysOf(backend.text ?? "")).toStrictEqual(["a", "c", "b"]);
    expect(backend.journal).not.toBe(undefined);
    expect(await stateAfterCrash(backend)).toBe(canonical([["a", 1], ["c", 3], ["b", 4]]));
    await kv.set("d", 5);
    expect(backend.journalText).toBe(`${header(digest(backend.text ?? ""))}{"set":[["d",5]]}\n`);
    expect(await stateAfterCrash(backend)).toBe(canonical([["a", 1], ["c", 3], ["b", 4], ["d", 5]]));
  });

  it("a failed rewrite after a write is logged; the journal goes on applying, and the rewrite is not retried at every write", async () => {
    const backend = new JournalBackend();
    const logger = recordingLogger();
    const kv = journalStore(backend, { logger });
    await kv.set("a", big);
    backend.failWrites.push(eio());
    await kv.set("b", big);
    await kv.set("c", 1);
    expect(backend.writes).toBe(1);
    expect(logger.calls.map(([message]) => message)).toStrictEqual([`Cannot rewrite the journal "${journalLocation}" into its document`]);
    expect(backend.document).toBe(undefined);
    for (let i = 0; i < 5; i++) await kv.set(`small${i}`, i);
    expect(backend.writes).toBe(1);
    expect(await stateAfterCrash(backend)).toBe(await stateOf(kv));
    await kv.close();
    expect(backend.journal).toBe(undefined);
    expect(await stateOf(journalStore(backend))).toBe(await stateOf(new AioKV(backend.snapshot())));
  });
});

describe("journal: replay is the same store", () => {
  type Op =
    | { kind: "set"; key: string; value: JsonValue }
    | { kind: "delete"; key: string }
    | { kind: "setMany"; pairs: Array<[string, JsonValue]> }
    | { kind: "deleteMany"; keys: string[] }
    | { kind: "clear" }
    | { kind: "together"; ops: Array<["set", string, JsonValue] | ["delete", string] | ["clear"]> }
    | { kind: "big"; key: string }
    | { kind: "reopen"; close: boolean };
  const key = fc.constantFrom("a", "b", "c", "d", "10", "2", "__proto__", "é", "");
  const value = fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<JsonValue>;
  const single = fc.oneof(
    fc.tuple(fc.constant("set" as const), key, value),
    fc.tuple(fc.constant("delete" as const), key),
    fc.tuple(fc.constant("clear" as const)),
  );
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant("set" as const), key, value }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant("delete" as const), key }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("setMany" as const), pairs: fc.array(fc.tuple(key, value), { maxLength: 4 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("deleteMany" as const), keys: fc.array(key, { maxLength: 3 }) }) },
    { weight: 1, arbitrary: fc.constant({ kind: "clear" as const }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("together" as const), ops: fc.array(single, { maxLength: 6 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("big" as const), key }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("reopen" as const), close: fc.boolean() }) },
  );
  const planted = fc.option(
    fc.constantFrom('{"b": 1, "a": 2.50, "10": "ten"}', '{\n  "c": [1, 2],\n  "caf\\u00e9": 1e400\n}\n', "{}", '{"d": 1, "d": 2}'),
    { nil: undefined },
  );
  const bigValue = "y".repeat(30 * 1024);

  async function run(kv: AioKV, o: Exclude<Op, { kind: "reopen" }>): Promise<void> {
    switch (o.kind) {
      case "set":
        return kv.set(o.key, o.value);
      case "delete":
        return void (await kv.delete(o.key));
      case "setMany":
        return kv.setMany(o.pairs);
      case "deleteMany":
        return void (await kv.deleteMany(o.keys));
      case "clear":
        return void (await kv.clear());
      case "big":
        return kv.set(o.key, bigValue);
      case "together":
        await Promise.all(o.ops.map((call) => (call[0] === "set" ? kv.set(call[1], call[2]) : call[0] === "delete" ? kv.delete(call[1]) : kv.clear())));
    }
  }

  it("random writes, with reopens after close() or after a crash, read back as the same calls on a whole-file store: keys in order, values, and the document after close()", async () => {
    await fc.assert(
      fc.asyncProperty(planted, fc.array(op, { maxLength: 25 }), async (document, ops) => {
        let wholeBackend = new JournalBackend(document);
        let journalBackend = new JournalBackend(document);
        let whole = new AioKV(wholeBackend);
        let journal = journalStore(journalBackend);
        for (const [i, o] of ops.entries()) {
          const step = `after op ${i}: ${JSON.stringify(o)}`;
          if (o.kind === "reopen") {
            if (o.close) {
              await Promise.all([whole.close(), journal.close()]);
              expect(journalBackend.journal, step).toBe(undefined);
              expect(journalBackend.text, step).toBe(wholeBackend.text);
            } else {
              // A crash: the next open gets what the backends hold now; the old stores are dropped.
              wholeBackend = wholeBackend.snapshot();
              journalBackend = journalBackend.snapshot();
            }
            whole = new AioKV(wholeBackend);
            journal = journalStore(journalBackend);
          } else {
            await Promise.all([run(whole, o), run(journal, o)]);
          }
          expect(await stateOf(journal), step).toBe(await stateOf(whole));
        }
        await Promise.all([whole.close(), journal.close()]);
        expect(journalBackend.journal).toBe(undefined);
        expect(journalBackend.text).toBe(wholeBackend.text);
      }),
      { numRuns: Number(process.env["AIOKV_MODEL_RUNS"] ?? 150) },
    );
  });
});
