// One cell of the benchmark, in a worker of its own: a synchronous peer stalls only itself.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parentPort, workerData } from "node:worker_threads";
import { baselineSystems, systems } from "./systems.js";
import { run, type Counts, type Measured, type Workload } from "./workloads.js";

export interface CellInput {
  /** The system's name. */
  system: string;
  workload: Workload;
  counts: Counts;
}

if (parentPort) {
  const input = workerData as CellInput;
  const system = [...Object.values(systems), ...baselineSystems()].find((s) => s.name === input.system);
  if (!system) throw new Error(`No system named ${input.system}`);
  const dir = await mkdtemp(join(tmpdir(), "aiokv-bench-"));
  let message: { ok: boolean; result?: Measured; error?: string };
  // A process that serves requests stays alive: a peer's unref'd timer must fire here as it would
  // there. (node-persist resolves a set queued during a queue flush from an unref'd interval; with
  // nothing else pending the worker's loop emptied and it exited with the set unsettled.)
  const alive = setInterval(() => {}, 60_000);
  try {
    message = { ok: true, result: await run(input.workload, system, dir, input.counts) };
  } catch (error) {
    message = { ok: false, error: String((error as Error).stack ?? error) };
  } finally {
    clearInterval(alive);
  }
  // Before the message: the bench terminates the worker once it has it, which used to cut this
  // removal short and leave every cell's directory (and its 100,000-key stores) in the temp dir.
  await rm(dir, { recursive: true, force: true }).catch(() => {});
  parentPort.postMessage(message);
}
