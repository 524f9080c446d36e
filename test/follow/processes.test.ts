// An owner process changing a store 200 times, 20-30 ms apart, and three follower processes
// reading it (test/fixtures/follow-owner.mjs, follow-reader.mjs): every follower sees every
// change, in order, and never a document that is not one of the owner's states; the delay from
// the owner's acknowledgement to a follower's report is measured and printed.
import { describe, expect, it } from "vitest";
import { fixture } from "../helpers/processes.js";
import { tempFile } from "../helpers/temp.js";
import { run } from "./child.js";

const changes = 200;

type Document = Record<string, unknown>;
type Op = { set?: Array<[string, unknown]>; delete?: string[]; clear?: true };
type Reported = { type: "set"; key: string; value: unknown } | { type: "delete"; key: string } | { type: "clear" };

/** A document's keys and values, whatever their order, as one comparable string. */
const canonical = (document: Document): string => JSON.stringify(Object.keys(document).sort().map((key) => [key, document[key]]));

function applyOp(document: Map<string, unknown>, op: Op): void {
  if (op.clear) document.clear();
  for (const [key, value] of op.set ?? []) document.set(key, value);
  for (const key of op.delete ?? []) document.delete(key);
}

function applyReported(document: Map<string, unknown>, change: Reported): void {
  if (change.type === "clear") document.clear();
  else if (change.type === "delete") document.delete(change.key);
  else document.set(change.key, change.value);
}

/** The p-th percentile (0-100) of `values`, nearest rank. */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

describe("followers in other processes", () => {
  it(`three followers see each of an owner's ${changes} changes in order, never a torn or mixed document`, { timeout: 60_000 }, async () => {
    const file = await tempFile();
    const owner = run([fixture("follow-owner.mjs"), file, String(changes), "13"]);
    await owner.line((line) => line.includes('"ready"'));
    const readers = Array.from({ length: 3 }, () => run([fixture("follow-reader.mjs"), file]));
    await Promise.all(readers.map((reader) => reader.line((line) => line.includes('"start"'))));
    owner.process.stdin.write("go\n");
    expect(await owner.exit(40_000)).toBe(0);
    await Promise.all(readers.map((reader) => reader.line((line) => line.includes('"end"'), { within: 10_000 })));
    for (const reader of readers) expect(await reader.exit()).toBe(0);

    // The owner's states, S0 (before "go") to S200, and when each change was acknowledged.
    const acks = owner.stdout.filter((line) => line.startsWith('{"i"')).map((line) => JSON.parse(line) as { i: number; c: number; t: number; op: Op });
    expect(acks.map(({ i }) => i)).toStrictEqual(Array.from({ length: changes + 1 }, (_, i) => i));
    const model = new Map<string, unknown>();
    const states = acks.map(({ op }) => {
      applyOp(model, op);
      return canonical(Object.fromEntries(model));
    });
    /** The first state at or after `from` that `document` is; -1 when none is. */
    const stateOf = (document: Document, from: number): number => {
      const text = canonical(document);
      for (let i = from; i < states.length; i++) if (states[i] === text) return i;
      return -1;
    };

    const summaries: string[] = [];
    for (const [n, reader] of readers.entries()) {
      const records = reader.stdout.map((line) => JSON.parse(line) as { t: number; start?: Document; changes?: Reported[]; all?: Document; error?: string });
      expect(records.filter((record) => record.error !== undefined)).toStrictEqual([]);
      const start = records[0]?.start;
      if (start === undefined) return expect.unreachable(`reader ${n} printed no start`);
      expect(stateOf(start, 0)).toBe(0);

      // Each batch of reported changes, applied to what the follower had, gives one of the
      // owner's states, later than the one before: every change seen, in order, none torn.
      const followed = new Map(Object.entries(start));
      const seenAt: number[] = [];
      let at = 0;
      let batches = 0;
      let alone = 0;
      for (const record of records) {
        if (record.changes === undefined) continue;
        for (const change of record.changes) applyReported(followed, change);
        const state = stateOf(Object.fromEntries(followed), at + 1);
        expect(state, `reader ${n}: reported changes ${JSON.stringify(record.changes)} lead to no later state of the owner`).toBeGreaterThan(at);
        for (let i = at + 1; i <= state; i++) seenAt[i] = record.t;
        batches++;
        if (state === at + 1) alone++;
        at = state;
      }
      expect(at).toBe(changes);

      // Every getAll() answer is one of the owner's states, never an earlier one than the last.
      let read = 0;
      for (const record of records) {
        if (record.all === undefined) continue;
        const state = stateOf(record.all, read);
        expect(state, `reader ${n}: getAll() gave ${JSON.stringify(record.all)}, no state of the owner from ${read} on`).toBeGreaterThanOrEqual(read);
        read = state;
      }
      expect(read).toBe(changes);

      // From the owner's call, and from its acknowledgement, which comes after the directory's
      // fsync: a follower may see the renamed file before that (a negative delay).
      const fromCall = acks.slice(1).map(({ i, c }) => (seenAt[i] ?? NaN) - c);
      const fromAck = acks.slice(1).map(({ i, t }) => (seenAt[i] ?? NaN) - t);
      const figures = (delays: number[]): string =>
        `p50 ${percentile(delays, 50).toFixed(1)} ms, p95 ${percentile(delays, 95).toFixed(1)} ms, max ${Math.max(...delays).toFixed(1)} ms`;
      summaries.push(
        `reader ${n}: from the call ${figures(fromCall)}; from the acknowledgement ${figures(fromAck)}, min ${Math.min(...fromAck).toFixed(1)} ms; ` +
          `${batches} re-reads reported changes, ${alone} of the ${changes} changes seen alone, ${records.filter((record) => record.all !== undefined).length} distinct getAll() answers`,
      );
      // Generous: timing is measured, never asserted tightly.
      expect(Math.max(...fromCall)).toBeLessThan(5000);
    }
    console.log(`Followers of ${changes} changes paced 20-30 ms apart (fs.watch and a 1000 ms poll):\n${summaries.join("\n")}`);
  });
});
