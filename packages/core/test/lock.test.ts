import { describe, expect, it } from "vitest";
import { Lock } from "../src/lock.js";
import { deferred, ticks } from "./helpers.js";

describe("Lock", () => {
  it("runs steps one at a time, in the order they were called, whatever each takes", async () => {
    const lock = new Lock();
    const events: string[] = [];
    let running = 0;
    const step = (name: string, rounds: number) => async () => {
      running++;
      expect(running).toBe(1);
      events.push(`start ${name}`);
      await ticks(rounds);
      events.push(`end ${name}`);
      running--;
      return name;
    };
    const results = await Promise.all([lock.run(step("a", 10)), lock.run(step("b", 0)), lock.run(step("c", 5)), lock.run(() => "d")]);
    expect(results).toEqual(["a", "b", "c", "d"]);
    expect(events).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"]);
  });

  it("a waiting step starts only once the one before it has settled", async () => {
    const lock = new Lock();
    const first = deferred<string>();
    const ran: string[] = [];
    const a = lock.run(() => first.promise);
    const b = lock.run(() => ran.push("b"));
    await ticks();
    expect(ran).toEqual([]);
    first.resolve("a");
    await expect(a).resolves.toBe("a");
    await b;
    expect(ran).toEqual(["b"]);
  });

  it("a step that throws or rejects rejects its own call and lets the next step run", async () => {
    const lock = new Lock();
    const thrown = new Error("thrown");
    const rejected = new Error("rejected");
    const ran: string[] = [];
    const a = lock.run(() => {
      throw thrown;
    });
    const b = lock.run(async () => {
      await ticks(3);
      throw rejected;
    });
    const c = lock.run(() => {
      ran.push("c");
      return "c";
    });
    await expect(a).rejects.toBe(thrown);
    await expect(b).rejects.toBe(rejected);
    await expect(c).resolves.toBe("c");
    expect(ran).toEqual(["c"]);
    expect(lock.idle).toBe(true);
  });

  it("is not re-entrant: a step called from inside a running step runs after it", async () => {
    const lock = new Lock();
    const events: string[] = [];
    let inner: Promise<void> | undefined;
    const outer = lock.run(async () => {
      inner = lock.run(() => {
        events.push("inner");
      });
      await ticks();
      events.push("outer done");
    });
    await outer;
    await inner;
    expect(events).toEqual(["outer done", "inner"]);
  });

  it("is idle only while no step is waiting or running", async () => {
    const lock = new Lock();
    expect(lock.idle).toBe(true);
    const gates = [deferred(), deferred()];
    const a = lock.run(() => gates[0]?.promise);
    expect(lock.idle).toBe(false);
    const b = lock.run(() => gates[1]?.promise);
    gates[0]?.resolve();
    await a;
    expect(lock.idle).toBe(false);
    gates[1]?.resolve();
    await b;
    await ticks(2);
    expect(lock.idle).toBe(true);
  });
});

describe("Lock caughtUp()", () => {
  it("is undefined when no step is waiting or running", () => {
    expect(new Lock().caughtUp()).toBeUndefined();
  });

  it("resolves once every step called before it has settled, not waiting for steps called after", async () => {
    const lock = new Lock();
    const gates = [deferred(), deferred(), deferred()];
    const [first, second, third] = gates;
    void lock.run(() => first?.promise);
    void lock.run(() => second?.promise);
    let caughtUp = false;
    void lock.caughtUp()?.then(() => (caughtUp = true));
    void lock.run(() => third?.promise);
    first?.resolve();
    await ticks();
    expect(caughtUp).toBe(false);
    second?.resolve();
    await ticks();
    // The third step is still running: it was called after caughtUp().
    expect(caughtUp).toBe(true);
    expect(lock.idle).toBe(false);
    third?.resolve();
  });

  it("resolves its callers in the order of the steps they wait for", async () => {
    const lock = new Lock();
    const gates = [deferred(), deferred()];
    const order: string[] = [];
    void lock.run(() => gates[0]?.promise);
    void lock.caughtUp()?.then(() => order.push("after first"));
    void lock.run(() => gates[1]?.promise);
    void lock.caughtUp()?.then(() => order.push("after second"));
    gates[1]?.resolve();
    await ticks();
    expect(order).toEqual([]);
    gates[0]?.resolve();
    await ticks();
    expect(order).toEqual(["after first", "after second"]);
  });

  it("a parked step lets callers catch up at once, and only while it is parked", async () => {
    const lock = new Lock();
    const work = deferred<string>();
    const afterPark = deferred();
    let waiting = false;
    let parked: Promise<string> | undefined;
    const step = lock.run(async () => {
      parked = lock.park(work.promise);
      const result = await parked;
      await afterPark.promise;
      return result;
    });
    void lock.run(() => undefined);
    await ticks();
    // Parked on the caller's code: whatever was called so far can act, the later step included.
    expect(lock.caughtUp()).toBeUndefined();
    work.resolve("worked");
    await expect(parked).resolves.toBe("worked");
    // Back in the step: a new caller waits again.
    const caughtUp = lock.caughtUp();
    expect(caughtUp).toBeInstanceOf(Promise);
    void caughtUp?.then(() => (waiting = true));
    await ticks();
    expect(waiting).toBe(false);
    afterPark.resolve();
    await expect(step).resolves.toBe("worked");
    await ticks();
    expect(waiting).toBe(true);
  });

  it("park() wakes callers that were already waiting for the parked step", async () => {
    const lock = new Lock();
    const work = deferred();
    let woken = false;
    const start = deferred();
    const step = lock.run(async () => {
      await start.promise;
      await lock.park(work.promise);
    });
    void lock.caughtUp()?.then(() => (woken = true));
    await ticks();
    expect(woken).toBe(false);
    start.resolve();
    await ticks();
    expect(woken).toBe(true);
    work.resolve();
    await step;
  });

  it("park() passes on the rejection of the work, and unparks", async () => {
    const lock = new Lock();
    const failure = new Error("work failed");
    const step = lock.run(async () => {
      await lock.park(Promise.reject(failure));
    });
    const gate = deferred();
    const other = lock.run(() => gate.promise);
    await expect(step).rejects.toBe(failure);
    // Unparked: the other step is running, so callers wait for it.
    const caughtUp = lock.caughtUp();
    expect(caughtUp).toBeInstanceOf(Promise);
    gate.resolve();
    await other;
    await expect(caughtUp).resolves.toBeUndefined();
  });
});
