// One cell of the benchmark, in a worker of its own: a synchronous peer stalls only itself.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parentPort, workerData } from "node:worker_threads";
import { limits, systems, type System } from "./systems.js";
import { run, type Counts, type Workload } from "./workloads.js";

export interface CellInput {
  system: string;
  workload: Workload;
  counts: Counts;
}

/** The systems by name: the peers and aiokv, the raw limits, the baselines. */
export function systemNamed(name: string): System {
  const system = systems[name] ?? limits.find((s) => s.name === name);
  if (!system) throw new Error(`No system named ${name}`);
  return system;
}

if (parentPort) {
  const input = workerData as CellInput;
  const system = systemNamed(input.system);
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
