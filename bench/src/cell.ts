// One cell of the benchmark, in a worker of its own: a synchronous peer stalls only itself.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parentPort, workerData } from "node:worker_threads";
import { baselineSystems, systems } from "./systems.js";
import { run, type Counts, type Workload } from "./workloads.js";

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
  try {
    const result = await run(input.workload, system, dir, input.counts);
    parentPort.postMessage({ ok: true, result });
  } catch (error) {
    parentPort.postMessage({ ok: false, error: String((error as Error).stack ?? error) });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
